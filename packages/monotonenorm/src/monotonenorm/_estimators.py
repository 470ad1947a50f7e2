"""scikit-learn estimators around the monotonic residual network."""

from __future__ import annotations

import copy
import math
import numbers
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

import lipschitz_core
from monotonenorm._constraints import parse_constraints
from monotonenorm._monotonic import monotonic_mlp


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else as ``torch.device``, which must exist here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this machine; use 'cpu' or 'auto'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif resolved.type == "mps" and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    ):
        raise ValueError(
            f"device={device!r} was requested but MPS is not available on this machine"
        )
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    return resolved


def _check_validation(
    estimator: BaseEstimator, X_val: object, y_val: object
) -> tuple[np.ndarray, np.ndarray]:
    if X_val is None or y_val is None:
        raise ValueError(
            "give both X_val and y_val (the validation set for early stopping), or neither"
        )
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
        vectorwise: bool = False,
        kinds: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        self.monotonic_constraints = monotonic_constraints
        self.vectorwise = vectorwise
        self.kinds = kinds
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

    def _weighted_loss(
        self, out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """Weighted mean of the per-sample losses: sum(w * l) / sum(w)."""
        per_sample = self._loss(out, target)
        return (per_sample * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)

    # -- helpers -------------------------------------------------------------------------------
    def _check_params(self) -> dict:
        """Validate the hyperparameters (numpy scalars welcome) and return them as Python numbers."""
        out: dict = {}

        def positive_int(name: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            out[name] = int(value)

        for name in ("width", "depth", "max_epochs", "batch_size", "n_iter_no_change"):
            positive_int(name, getattr(self, name))
        if out["depth"] > 1 and out["width"] % 2:
            raise ValueError(f"width must be even (GroupSort pairs units), got {self.width}")
        for name in ("lipschitz_const", "learning_rate"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
            out[name] = float(value)
        wd = self.weight_decay
        if (
            isinstance(wd, bool)
            or not isinstance(wd, numbers.Real)
            or not math.isfinite(wd)
            or wd < 0
        ):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        out["weight_decay"] = float(wd)
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, numbers.Real) or not 0 < vf < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}"
            )
        out["validation_fraction"] = float(vf)
        if self.kinds is not None:
            if isinstance(self.kinds, str) or len(self.kinds) != out["depth"]:
                raise ValueError(
                    f"kinds must list one kind per layer (depth={out['depth']}), got {self.kinds!r}"
                )
            for kind in self.kinds:
                if kind not in lipschitz_core.KINDS:
                    raise ValueError(
                        f"kinds: unknown kind {kind!r}; valid kinds are {', '.join(lipschitz_core.KINDS)}"
                    )
        out["device"] = resolve_device(self.device)
        return out

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
            constraints = {
                names.index(k) if isinstance(k, str) else k: v for k, v in constraints.items()
            }
        n_out = self._n_outputs()
        return parse_constraints(constraints, n_features, n_outputs=n_out).double().numpy()

    def _fit_module(
        self,
        X: np.ndarray,
        target: np.ndarray,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
        validation_weight: np.ndarray | None = None,
    ) -> None:
        params = self._check_params()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = params["device"]
        weights = (
            np.ones(len(X))
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64)
        )
        self.monotonic_constraints_ = self._resolve_constraints(X.shape[1])
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        Z = (X - self.x_mean_) / self.x_scale_

        n = len(Z)
        n_val = int(round(params["validation_fraction"] * n))
        use_val = bool(self.early_stopping) and n_val >= 1 and n - n_val >= 2
        if validation is not None:
            # an explicit validation set (e.g. a benchmark's own split): train on all of X
            Z = np.vstack([Z, (validation[0] - self.x_mean_) / self.x_scale_])
            target = np.concatenate([target, validation[1]])
            weights = np.concatenate(
                [
                    weights,
                    np.ones(len(validation[1])) if validation_weight is None else validation_weight,
                ]
            )
            idx_train, idx_val = np.arange(n), np.arange(n, len(Z))
            use_val = bool(self.early_stopping)
        elif use_val:
            stratify = self._stratify(target)
            idx_train, idx_val = train_test_split(
                np.arange(n), test_size=n_val, random_state=seed, stratify=stratify
            )
        else:
            idx_train, idx_val = np.arange(n), np.arange(0)

        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = monotonic_mlp(
                X.shape[1],
                self.monotonic_constraints_,
                width=params["width"],
                depth=params["depth"],
                out_features=self._n_outputs(),
                lipschitz_const=params["lipschitz_const"],
                vectorwise=bool(self.vectorwise),
                kinds=None if self.kinds is None else list(self.kinds),
            ).to(device)
        zt = torch.as_tensor(Z, dtype=torch.float32, device=device)
        yt = torch.as_tensor(target, device=device)
        wt = torch.as_tensor(weights, dtype=torch.float32, device=device)
        opt = torch.optim.Adam(
            module.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"]
        )
        train_idx = torch.as_tensor(idx_train, device=device)
        val_idx = torch.as_tensor(idx_val, device=device)
        best_state, best_val = copy.deepcopy(module.state_dict()), math.inf
        since_best = 0
        self.loss_curve_: list[float] = []
        self.validation_loss_curve_: list[float] = []
        epoch = 0
        batch_size = params["batch_size"]
        for epoch in range(1, params["max_epochs"] + 1):
            module.train()
            perm = train_idx[torch.randperm(len(train_idx), generator=generator).to(device)]
            total = 0.0
            for start in range(0, len(perm), batch_size):
                batch = perm[start : start + batch_size]
                loss = self._weighted_loss(module(zt[batch]), yt[batch], wt[batch])
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
                    val = float(self._weighted_loss(module(zt[val_idx]), yt[val_idx], wt[val_idx]))
                self.validation_loss_curve_.append(val)
                if val < best_val - 1e-7:
                    best_val, since_best = val, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    since_best += 1
                if since_best >= params["n_iter_no_change"]:
                    break
            if self.verbose:
                print(
                    f"epoch {epoch}: train loss {self.loss_curve_[-1]:.5g}"
                    + (f", val {val:.5g}" if use_val else "")
                )
        if use_val:
            module.load_state_dict(best_state)
        module = module.cpu().eval()
        self.certified_bound_ = (
            module.check_certificate()
        )  # never fails for this architecture; checked anyway
        self.module_ = module
        self._module64 = lipschitz_core.freeze(module).double().eval()
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
            self._module64 = lipschitz_core.freeze(self.module_).double().eval()


def _check_sample_weight(sample_weight: object, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    from sklearn.utils.validation import _check_sample_weight as check

    weights = check(sample_weight, np.zeros((n, 1)), dtype=np.float64)
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("sample_weight must be finite, >= 0 and not all zero")
    return weights


_ESTIMATOR_PARAMS_DOC = """
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
        device: "cpu", "cuda", "cuda:N" or "auto"; a device this machine lacks is a ValueError.
        verbose: print one line per epoch.
        vectorwise: rescale each row/entry of a weight on its own (the authors' default) instead
            of the whole matrix.
        kinds: one operator-norm kind per layer (default one-inf, then inf).

    Every numeric parameter accepts numpy scalars (``GridSearchCV`` over ``np.arange`` grids).
"""


class MonotonicRegressor(RegressorMixin, _MonotonicEstimator):
    __doc__ = (
        """Regression with a certified monotonic network (Lipschitz Monotonic Network).

    ``predict(x)`` is non-decreasing in every feature with constraint +1 and non-increasing in
    every feature with -1, for *all* inputs (not just the training data): the network is
    ``g(z) + lambda * c . z`` on standardized inputs ``z`` with a certified bound of ``g``.
"""
        + _ESTIMATOR_PARAMS_DOC
        + """
    ``fit`` takes ``sample_weight`` (a weighted squared error).

    Attributes: ``module_`` (the torch network, on standardized inputs), ``monotonic_constraints_``,
    ``certified_bound_``, ``n_iter_``, ``loss_curve_``, ``validation_loss_curve_``, ``n_features_in_``.
    """
    )

    _monotonic_output = "predict"

    def _n_outputs(self) -> int:
        return 1

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (out.squeeze(-1) - target) ** 2

    def fit(
        self,
        X: object,
        y: object,
        sample_weight: object = None,
        *,
        X_val: object = None,
        y_val: object = None,
    ) -> MonotonicRegressor:
        """Fit on ``X, y`` (weighted by ``sample_weight``); early stopping on ``(X_val, y_val)`` when given, else on a split of ``X``."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        weights = _check_sample_weight(sample_weight, len(X))
        self.y_mean_ = float(np.average(y, weights=weights))
        std = float(np.sqrt(np.average((y - self.y_mean_) ** 2, weights=weights)))
        self.y_scale_ = std if std > 0 else 1.0  # positive: keeps the direction
        validation = None
        if X_val is not None or y_val is not None:
            Xv, yv = _check_validation(self, X_val, y_val)
            validation = (
                Xv,
                ((yv.astype(np.float64) - self.y_mean_) / self.y_scale_).astype(np.float32),
            )
        self._fit_module(
            X, ((y - self.y_mean_) / self.y_scale_).astype(np.float32), validation, weights
        )
        return self

    def predict(self, X: object) -> np.ndarray:
        """Predicted targets, shape ``[n]``."""
        return self._raw_output(X)[:, 0] * self.y_scale_ + self.y_mean_

    def _monotonic_function(self) -> tuple[Callable[[np.ndarray], np.ndarray], None, np.ndarray]:
        return (lambda x: self.predict(x)[:, None]), None, self.monotonic_constraints_

    def _monotonic_certificate(
        self, constraints: np.ndarray
    ) -> tuple[bool | None, str, float | None, float | None]:
        # predict = y_scale * network + y_mean with y_scale > 0: the network's signs are predict's
        from monotonenorm._verify import certify_monotonic

        return certify_monotonic(self.module_, constraints)


def probability_constraints(logit_constraints: np.ndarray) -> np.ndarray:
    """The ``predict_proba`` constraints that softmax logit constraints ``C`` (``[n_features, K]``) imply.

    ``dP_k/dx_i = P_k * sum_j P_j (dz_k/dx_i - dz_j/dx_i)``: P_k is non-decreasing in x_i when
    logit k is non-decreasing and every other logit non-increasing in x_i (``C[i, k] = +1``,
    ``C[i, j] = -1`` for j != k), and non-increasing in the mirrored case. Anything else
    (e.g. two logits increasing in the same feature) implies nothing about the probabilities: 0.
    """
    c = np.asarray(logit_constraints, dtype=np.float64)
    k = c.shape[1]
    out = np.zeros_like(c)
    for j in range(k):
        others = np.delete(c, j, axis=1)
        out[:, j] = np.where((c[:, j] == 1) & (others == -1).all(axis=1), 1.0, 0.0)
        out[:, j] += np.where((c[:, j] == -1) & (others == 1).all(axis=1), -1.0, 0.0)
    return out


class MonotonicClassifier(ClassifierMixin, _MonotonicEstimator):
    __doc__ = (
        """Classification with a certified monotonic network.

    Binary: one logit for ``classes_[1]``; ``monotonic_constraints`` (one sign per feature)
    refer to it, and ``P(classes_[1]) = sigmoid(logit)`` is then monotone the same way (and
    ``P(classes_[0])`` the opposite way). Multiclass (K classes): one logit per class, and the
    constraints must be a ``[n_features, K]`` sign matrix, one column per class **logit** (a
    single list is refused: it would say nothing about the probabilities). The certificate is
    about the logits; the probabilities it implies are ``probability_constraints_`` (class k's
    probability is monotone in feature i only when logit k moves one way and every other logit
    the other way). ``verify_monotonic`` on a fitted classifier checks ``predict_proba``
    against those.
"""
        + _ESTIMATOR_PARAMS_DOC
        + """        class_weight: ``None``, ``"balanced"`` or ``{label: weight}``, multiplied into the
            per-sample weights of the cross-entropy (``fit`` also takes ``sample_weight``).

    Attributes as :class:`MonotonicRegressor`, plus ``classes_`` and ``probability_constraints_``.
    """
    )

    _monotonic_output = "predict_proba"

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
        vectorwise: bool = False,
        kinds: tuple[str, ...] | list[str] | None = None,
        class_weight: dict | str | None = None,
    ) -> None:
        super().__init__(
            monotonic_constraints,
            width=width,
            depth=depth,
            lipschitz_const=lipschitz_const,
            max_epochs=max_epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            weight_decay=weight_decay,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            device=device,
            verbose=verbose,
            vectorwise=vectorwise,
            kinds=kinds,
        )
        self.class_weight = class_weight

    def __sklearn_tags__(self):  # noqa: ANN204 (sklearn's Tags type)
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags

    def _n_outputs(self) -> int:
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if out.shape[-1] == 1:
            return nn.functional.binary_cross_entropy_with_logits(
                out.squeeze(-1), target.float(), reduction="none"
            )
        return nn.functional.cross_entropy(out, target.long(), reduction="none")

    def _resolve_constraints(self, n_features: int) -> np.ndarray:
        if len(self.classes_) > 2 and self.monotonic_constraints is not None:
            shape = (
                np.shape(self.monotonic_constraints)
                if not isinstance(self.monotonic_constraints, Mapping)
                else ()
            )
            if len(shape) != 2:
                raise ValueError(
                    f"multiclass ({len(self.classes_)} classes): give monotonic_constraints as a [n_features, n_classes] = "
                    f"[{n_features}, {len(self.classes_)}] sign matrix, one column per class logit; a single list or mapping "
                    "would constrain every logit alike, which implies nothing about the class probabilities"
                )
        return super()._resolve_constraints(n_features)

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        counts = np.bincount(y.astype(int))
        n_val = int(round(float(self.validation_fraction) * len(y)))
        if counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts):
            return y
        return None

    def fit(
        self,
        X: object,
        y: object,
        sample_weight: object = None,
        *,
        X_val: object = None,
        y_val: object = None,
    ) -> MonotonicClassifier:
        """Fit on ``X, y`` (weighted by ``sample_weight`` and ``class_weight``); early stopping on ``(X_val, y_val)`` when given, else on a split of ``X``."""
        from sklearn.utils.class_weight import compute_sample_weight

        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"MonotonicClassifier needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})"
            )
        weights = _check_sample_weight(sample_weight, len(X))
        class_w = (
            compute_sample_weight(self.class_weight, y) if self.class_weight is not None else None
        )
        if class_w is not None:
            weights = class_w if weights is None else weights * class_w
        validation = validation_weight = None
        if X_val is not None or y_val is not None:
            Xv, yv = _check_validation(self, X_val, y_val)
            unknown = set(np.unique(yv)) - set(self.classes_)
            if unknown:
                raise ValueError(
                    f"y_val has labels {sorted(unknown)} that are not in y's classes {list(self.classes_)}"
                )
            validation = (Xv, encoder.transform(yv).astype(np.int64))
            if self.class_weight is not None:
                # the training set's class weights, looked up for the validation labels
                lookup = dict(zip(y, class_w, strict=True))
                validation_weight = np.array([lookup[label] for label in yv])
        self._fit_module(
            X, encoder.transform(y).astype(np.int64), validation, weights, validation_weight
        )
        c = self.monotonic_constraints_
        self.probability_constraints_ = (
            np.column_stack([-c[:, 0], c[:, 0]]) if c.shape[1] == 1 else probability_constraints(c)
        )
        return self

    def decision_function(self, X: object) -> np.ndarray:
        """Logit of ``classes_[1]`` (binary, shape [n]) or per-class logits ([n, K])."""
        out = self._raw_output(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, X: object) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` (sigmoid of the logit, or softmax of the logits)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-scores))
            return np.column_stack([1.0 - p, p])
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: object) -> np.ndarray:
        """Predicted class labels."""
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    def _monotonic_function(self) -> tuple[Callable[[np.ndarray], np.ndarray], None, np.ndarray]:
        return (lambda x: self.predict_proba(x)), None, self.probability_constraints_

    def _monotonic_certificate(
        self, constraints: np.ndarray
    ) -> tuple[bool | None, str, float | None, float | None]:
        """Certify the logits, then check that the requested ``predict_proba`` constraints follow from them."""
        from monotonenorm._verify import certify_monotonic

        certified, detail, bound, lam = certify_monotonic(self.module_, self.monotonic_constraints_)
        requested = np.broadcast_to(constraints, self.probability_constraints_.shape)
        need = requested != 0
        implied = self.probability_constraints_
        not_implied = int((need & (requested != implied)).sum())
        detail = f"logits: {detail}; predict_proba constraints from the logit constraints"
        if certified and not_implied:
            certified = False
            detail += f"; {not_implied} requested predict_proba constraint(s) are not implied by the logit constraints"
        return certified, detail, bound, lam
