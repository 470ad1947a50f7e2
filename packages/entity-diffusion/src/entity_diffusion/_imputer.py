"""scikit-learn imputer on top of the KBFormer estimator: fit / transform, Pipeline-ready."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

PRESETS: dict[str, dict[str, Any]] = {
    # a CPU minute on a few hundred rows; early stopping on the held-out ELBO decides the length
    # dropout 0.1, patience 8 and 16 held-out mask draws per evaluation were chosen on a validation
    # mask (tools/bench/entity_imputation_tune.py, results/imputation_tuning.json): without them the
    # held-out ELBO of 45 rows stopped california's fit at step 50 (0.2.0's first preset)
    "quick": {"steps": 1500, "batch_size": 128, "lr": 3e-3, "d_model": 32, "n_mixtures": 8, "n_frequencies": 8,
              "eval_every": 50, "patience": 8, "val_fraction": 0.15, "dropout": 0.1, "val_repeats": 16},
    # the package's default width, longer patience
    # the package's default width, longer patience; the quick preset's regularisation (not tuned
    # separately: the machine's CPU did not allow it)
    "default": {"steps": 6000, "batch_size": 256, "lr": 2e-3, "d_model": 64, "n_mixtures": 16,
                "eval_every": 50, "patience": 10, "val_fraction": 0.15, "dropout": 0.1, "val_repeats": 16},
}


def preset_config(preset: str):
    """The `KBFormerConfig` of a named preset ("quick" or "default")."""
    from entity_diffusion._api import KBFormerConfig

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    return KBFormerConfig().updated(**PRESETS[preset])


class KBFormerImputer(TransformerMixin, BaseEstimator):
    """Missing-value imputer with the scikit-learn API (``fit`` / ``transform`` /
    ``fit_transform``), backed by a KBFormer fitted on the rows given to ``fit`` (their gaps
    stay gaps; nothing is pre-imputed).

    Args:
        preset: "quick" (small model, CPU minute) or "default" (wider, longer).
        n_imputations: 1 gives one completed table (the mean of ``n_samples`` conditional draws
            for numbers, their mode for categories). k > 1 gives multiple imputation: ``transform``
            returns a list of k completed tables, each one conditional draw (for Rubin's rules).
            Use 1 inside a ``Pipeline``.
        n_samples: conditional draws pooled into the point imputation when ``n_imputations`` is 1.
        point: how the point imputation (``n_imputations`` = 1) is drawn. "marginal" (default):
            each missing cell from the model's conditional given the row's observed cells
            only, so the mean of the draws estimates E[x | observed] (the squared-error
            optimum) and their mode the most probable category. "joint": whole completions
            in random order (0.2.0's first behaviour), which adds the sequential draws' noise.
            See `EntityDiffusion.impute`.
        random_state: seed for initialisation, training and sampling (None: fresh each fit).
        config: a full `KBFormerConfig` used instead of the preset's.
        schema_overrides: property name -> "numerical" | "categorical" | "text".
        device: "cpu", "cuda[:N]" or "auto".

    ``transform`` keeps the input's type (DataFrame in, DataFrame out with the same index,
    columns and dtypes; array in, array out); observed cells come back unchanged; integer
    columns come back as integers.
    """

    def __init__(self, preset: str = "quick", n_imputations: int = 1, n_samples: int = 50,
                 random_state: int | None = None, config: Any = None,
                 schema_overrides: dict[str, str] | None = None, device: str = "cpu",
                 point: str = "marginal") -> None:
        self.preset = preset
        self.n_imputations = n_imputations
        self.n_samples = n_samples
        self.random_state = random_state
        self.config = config
        self.schema_overrides = schema_overrides
        self.device = device
        self.point = point

    def _validate_params_now(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.point not in ("marginal", "joint"):
            raise ValueError(f"point must be 'marginal' or 'joint', got {self.point!r}")
        for name in ("n_imputations", "n_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def _as_frame(self, X: Any, *, fitting: bool) -> tuple[pd.DataFrame, bool]:
        is_frame = isinstance(X, pd.DataFrame)
        if is_frame:
            frame = X.copy()
            frame.columns = [str(c) for c in X.columns]
        else:
            array = np.asarray(X)
            if array.ndim != 2:
                raise ValueError(f"expected a 2-d table, got an array of shape {array.shape}")
            frame = pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])
            if array.dtype == object:
                frame = frame.infer_objects()
        if fitting:
            self.n_features_in_ = frame.shape[1]
            if is_frame:
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} columns; this imputer was fitted on {self.n_features_in_}")
        elif is_frame and hasattr(self, "feature_names_in_") and list(X.columns) != list(self.feature_names_in_):
            raise ValueError(f"X's columns {list(X.columns)} differ from the fitted ones {list(self.feature_names_in_)}")
        return frame.reset_index(drop=True), is_frame

    def fit(self, X: Any, y: Any = None) -> KBFormerImputer:
        """Fit KBFormer on the rows of ``X`` (missing cells as NaN / None)."""
        from entity_diffusion._api import EntityDiffusion

        self._validate_params_now()
        frame, _ = self._as_frame(X, fitting=True)
        config = self.config if self.config is not None else preset_config(self.preset)
        seed = self.random_state if self.random_state is not None else int(np.random.SeedSequence().entropy % 2**31)
        self.seed_ = int(seed)
        self.dtypes_ = frame.dtypes.to_dict()
        self.model_ = EntityDiffusion(config, schema_overrides=self.schema_overrides, device=self.device,
                                      random_state=self.seed_).fit(frame)
        self._draws = 0
        return self

    def transform(self, X: Any) -> Any:
        """Completed table (``n_imputations`` = 1) or a list of ``n_imputations`` of them."""
        check_is_fitted(self, "model_")
        frame, is_frame = self._as_frame(X, fitting=False)
        index = X.index if is_frame else None
        seed = self.seed_ + 1 + self._draws if self.random_state is None else self.seed_ + 1
        if self.random_state is None:
            self._draws += 1  # fresh draws on each call when no seed was fixed
        if self.n_imputations == 1:
            filled = [self.model_.impute(frame, n_samples=self.n_samples, seed=seed, point=self.point)]
        else:
            filled = self.model_.complete(frame, n_samples=self.n_imputations, seed=seed)
        out = [self._restore(f, frame, X, is_frame, index) for f in filled]
        return out[0] if self.n_imputations == 1 else out

    def _restore(self, filled: pd.DataFrame, frame: pd.DataFrame, X: Any, is_frame: bool, index: Any) -> Any:
        result = frame.copy()
        for name in frame.columns:
            gaps = frame[name].isna().to_numpy()
            if gaps.any():
                column = result[name].astype(object)
                column[gaps] = filled[name].to_numpy(dtype=object)[gaps]
                result[name] = column
            result[name] = _as_dtype(result[name], self.dtypes_.get(name, frame[name].dtype), frame[name].dtype)
        if not is_frame:
            return result.to_numpy(dtype=np.asarray(X).dtype if np.asarray(X).dtype != object else object)
        result.columns = list(X.columns)
        result.index = index
        return result

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Same columns as the input."""
        check_is_fitted(self, "model_")
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if hasattr(self, "feature_names_in_"):
            return self.feature_names_in_.copy()
        return np.asarray([f"x{j}" for j in range(self.n_features_in_)], dtype=object)


def _as_dtype(column: pd.Series, fitted: Any, given: Any) -> pd.Series:
    """Back to the dtype the column had: an integer-valued float column whose gaps made it float
    stays float but holds integers; int64 / Int64 / bool / category come back as such."""
    target = given if str(given) != "object" or str(fitted) == "object" else fitted
    if pd.api.types.is_float_dtype(target) or pd.api.types.is_integer_dtype(target) or pd.api.types.is_bool_dtype(target):
        values = pd.to_numeric(column, errors="raise") if not pd.api.types.is_bool_dtype(target) else column
        return values.astype(target)
    if isinstance(target, pd.CategoricalDtype):
        return column.astype(target)
    return column.astype(object) if str(target) == "object" else column.astype(target)
