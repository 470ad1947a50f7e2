"""scikit-learn estimators around the monotonic residual network."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from monotonenorm._constraints import parse_constraints
from monotonenorm._monotonic import monotonic_mlp


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else as ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc


def _check_validation(estimator: BaseEstimator, X_val: object, y_val: object) -> tuple[np.ndarray, np.ndarray]:
    if X_val is None or y_val is None:
        raise ValueError("give both X_val and y_val (the validation set for early stopping), or neither")
    from sklearn.utils import check_array, column_or_1d

    Xv = check_array(X_val, dtype=np.float64)
    yv = column_or_1d(y_val)
    if Xv.shape[1] != estimator.n_features_in_ or len(Xv) != len(yv):
        raise ValueError(
            f"X_val must have {estimator.n_features_in_} features and as many rows as y_val; got {Xv.shape} and {yv.shape}"
        )
    return Xv, yv


class _MonotonicEstimator(BaseEstimator):
    """Shared fit loop. Inputs are standardized inside (a positive per-feature scale keeps every
    monotone direction); ``lipschitz_const`` is therefore in units of standard deviations."""

    def __init__(
        self,
        monotonic_constraints: object = None,
        *,
        width: int = 16,
        depth: int = 3,
        lipschitz_const: float = 1.0,
        max_epochs: int = 200,
        learning_rate: float = 1e-2,
        batch_size: int = 256,
        weight_decay: float = 0.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.2,
        n_iter_no_change: int = 20,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.monotonic_constraints = monotonic_constraints
        self.width = width
        self.depth = depth
        self.lipschitz_const = lipschitz_const
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- subclass hooks ------------------------------------------------------------------------
    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None

    # -- helpers -------------------------------------------------------------------------------
    def _check_params(self) -> None:
        def positive_int(name: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

        for name in ("width", "depth", "max_epochs", "batch_size", "n_iter_no_change"):
            positive_int(name, getattr(self, name))
        if self.depth > 1 and self.width % 2:
            raise ValueError(f"width must be even (GroupSort pairs units), got {self.width}")
        for name in ("lipschitz_const", "learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not isinstance(self.validation_fraction, (int, float)) or not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")

    def _resolve_constraints(self, n_features: int) -> np.ndarray:
        constraints = self.monotonic_constraints
        if constraints is None:
            return np.zeros((n_features, 1))
        if isinstance(constraints, Mapping) and any(isinstance(k, str) for k in constraints):
            names = list(getattr(self, "feature_names_in_", []))
            unknown = [k for k in constraints if isinstance(k, str) and k not in names]
            if unknown:
                raise ValueError(
                    f"monotonic_constraints names features {unknown} that are not columns of X "
                    f"(columns: {names or 'none: X has no column names'})"
                )
            constraints = {names.index(k) if isinstance(k, str) else k: v for k, v in constraints.items()}
        n_out = self._n_outputs()
        return parse_constraints(constraints, n_features, n_outputs=n_out).double().numpy()

    def _fit_module(self, X: np.ndarray, target: np.ndarray, validation: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self._check_params()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        self.monotonic_constraints_ = self._resolve_constraints(X.shape[1])
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        Z = (X - self.x_mean_) / self.x_scale_

        n = len(Z)
        n_val = int(round(self.validation_fraction * n))
        use_val = bool(self.early_stopping) and n_val >= 1 and n - n_val >= 2
        if validation is not None:
            # an explicit validation set (e.g. a benchmark's own split): train on all of X
            Z = np.vstack([Z, (validation[0] - self.x_mean_) / self.x_scale_])
            target = np.concatenate([target, validation[1]])
            idx_train, idx_val = np.arange(n), np.arange(n, len(Z))
            use_val = bool(self.early_stopping)
        elif use_val:
            stratify = self._stratify(target)
            idx_train, idx_val = train_test_split(np.arange(n), test_size=n_val, random_state=seed, stratify=stratify)
        else:
            idx_train, idx_val = np.arange(n), np.arange(0)

        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = monotonic_mlp(
                X.shape[1],
                self.monotonic_constraints_,
                width=self.width,
                depth=self.depth,
                out_features=self._n_outputs(),
                lipschitz_const=float(self.lipschitz_const),
            ).to(device)
        zt = torch.as_tensor(Z, dtype=torch.float32, device=device)
        yt = torch.as_tensor(target, device=device)
        opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        train_idx = torch.as_tensor(idx_train, device=device)
        val_idx = torch.as_tensor(idx_val, device=device)
        best_state, best_val = copy.deepcopy(module.state_dict()), math.inf
        since_best = 0
        self.loss_curve_: list[float] = []
        self.validation_loss_curve_: list[float] = []
        epoch = 0
        for epoch in range(1, self.max_epochs + 1):
            module.train()
            perm = train_idx[torch.randperm(len(train_idx), generator=generator).to(device)]
            total = 0.0
            for start in range(0, len(perm), self.batch_size):
                batch = perm[start : start + self.batch_size]
                loss = self._loss(module(zt[batch]), yt[batch])
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"training loss became {loss.item()} at epoch {epoch}; lower learning_rate (now {self.learning_rate})"
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(batch)
            self.loss_curve_.append(total / len(perm))
            if use_val:
                module.eval()
                with torch.no_grad():
                    val = float(self._loss(module(zt[val_idx]), yt[val_idx]))
                self.validation_loss_curve_.append(val)
                if val < best_val - 1e-7:
                    best_val, since_best = val, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    since_best += 1
                if since_best >= self.n_iter_no_change:
                    break
            if self.verbose:
                print(f"epoch {epoch}: train loss {self.loss_curve_[-1]:.5g}" + (f", val {val:.5g}" if use_val else ""))
        if use_val:
            module.load_state_dict(best_state)
        module = module.cpu().eval()
        self.certified_bound_ = module.check_certificate()  # never fails for this architecture; checked anyway
        self.module_ = module
        self._module64 = copy.deepcopy(module).double().eval()
        self.n_iter_ = epoch
        self.best_validation_loss_ = best_val if use_val else None

    def _raw_output(self, X: object) -> np.ndarray:
        check_is_fitted(self, "module_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Z = (X - self.x_mean_) / self.x_scale_
        with torch.no_grad():
            return self._module64(torch.as_tensor(Z, dtype=torch.float64)).numpy()

    @property
    def n_parameters_(self) -> int:
        """Number of trainable parameters of the fitted network."""
        check_is_fitted(self, "module_")
        return sum(p.numel() for p in self.module_.parameters())

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_module64", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "module_" in state:
            self._module64 = copy.deepcopy(self.module_).double().eval()


class MonotonicRegressor(RegressorMixin, _MonotonicEstimator):
    """Regression with a certified monotonic network (Lipschitz Monotonic Network).

    ``predict(x)`` is non-decreasing in every feature with constraint +1 and non-increasing in
    every feature with -1, for *all* inputs (not just the training data): the network is
    ``g(z) + lambda * c . z`` on standardized inputs ``z`` with a certified bound of ``g``.

    Parameters:
        monotonic_constraints: one sign per feature (+1 / -1 / 0), or a mapping
            ``{index or column name: sign}``. ``None`` constrains nothing (the model is then only
            Lipschitz); say which features are monotone.
        width, depth: hidden units and number of linear layers (MaxMin activations between).
        lipschitz_const: lambda, in units of feature and target standard deviations; it bounds
            how steep the fit can be (raise it if the fit is too flat).
        max_epochs, learning_rate, batch_size, weight_decay: Adam training.
        early_stopping, validation_fraction, n_iter_no_change: stop when the loss on a
            validation split carved from the training data stops improving and keep the best
            weights (the test set is never seen).
        random_state: seed for the split, the initialization and the batch order.
        device: "cpu", "cuda", "cuda:N" or "auto".

    Attributes: ``module_`` (the torch network, on standardized inputs), ``monotonic_constraints_``,
    ``certified_bound_``, ``n_iter_``, ``loss_curve_``, ``validation_loss_curve_``, ``n_features_in_``.
    """

    def _n_outputs(self) -> int:
        return 1

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.mean((out.squeeze(-1) - target) ** 2)

    def fit(self, X: object, y: object, *, X_val: object = None, y_val: object = None) -> MonotonicRegressor:
        """Fit on ``X, y``; early stopping on ``(X_val, y_val)`` when given, else on a split of ``X``."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        self.y_mean_ = float(np.mean(y))
        std = float(np.std(y))
        self.y_scale_ = std if std > 0 else 1.0  # positive: keeps the direction
        validation = None
        if X_val is not None or y_val is not None:
            Xv, yv = _check_validation(self, X_val, y_val)
            validation = (Xv, ((yv.astype(np.float64) - self.y_mean_) / self.y_scale_).astype(np.float32))
        self._fit_module(X, ((y - self.y_mean_) / self.y_scale_).astype(np.float32), validation)
        return self

    def predict(self, X: object) -> np.ndarray:
        return self._raw_output(X)[:, 0] * self.y_scale_ + self.y_mean_

    def _monotonic_function(self) -> tuple[Callable[[np.ndarray], np.ndarray], None, np.ndarray]:
        return (lambda x: self.predict(x)[:, None]), None, self.monotonic_constraints_


class MonotonicClassifier(ClassifierMixin, _MonotonicEstimator):
    """Classification with a certified monotonic network.

    Binary: the constraint signs refer to the probability of ``classes_[1]`` (the larger label),
    which is monotone in every constrained feature. Multiclass (K classes): one logit per class;
    ``monotonic_constraints`` is a ``[n_features, K]`` sign matrix (logit of class k monotone in
    feature i with sign ``C[i, k]``) or a 1-D list applied to every logit. Making class k's logit
    increasing and all other logits decreasing in a feature makes ``P(k)`` increasing in it.

    Parameters and attributes as :class:`MonotonicRegressor`, plus ``classes_``.
    """

    def __sklearn_tags__(self):  # noqa: ANN204 (sklearn's Tags type)
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags

    def _n_outputs(self) -> int:
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if out.shape[-1] == 1:
            return nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), target.float())
        return nn.functional.cross_entropy(out, target.long())

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        counts = np.bincount(y.astype(int))
        n_val = int(round(self.validation_fraction * len(y)))
        if counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts):
            return y
        return None

    def fit(self, X: object, y: object, *, X_val: object = None, y_val: object = None) -> MonotonicClassifier:
        """Fit on ``X, y``; early stopping on ``(X_val, y_val)`` when given, else on a split of ``X``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"MonotonicClassifier needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})"
            )
        validation = None
        if X_val is not None or y_val is not None:
            Xv, yv = _check_validation(self, X_val, y_val)
            unknown = set(np.unique(yv)) - set(self.classes_)
            if unknown:
                raise ValueError(f"y_val has labels {sorted(unknown)} that are not in y's classes {list(self.classes_)}")
            validation = (Xv, encoder.transform(yv).astype(np.int64))
        self._fit_module(X, encoder.transform(y).astype(np.int64), validation)
        return self

    def decision_function(self, X: object) -> np.ndarray:
        """Logit of ``classes_[1]`` (binary, shape [n]) or per-class logits ([n, K])."""
        out = self._raw_output(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, X: object) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-scores))
            return np.column_stack([1.0 - p, p])
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: object) -> np.ndarray:
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    def _monotonic_function(self) -> tuple[Callable[[np.ndarray], np.ndarray], None, np.ndarray]:
        if len(self.classes_) == 2:
            return (lambda x: self.predict_proba(x)[:, 1:]), None, self.monotonic_constraints_
        return (lambda x: self.decision_function(x)), None, self.monotonic_constraints_

