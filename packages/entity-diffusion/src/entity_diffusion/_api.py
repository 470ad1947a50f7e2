"""User-facing estimator: fit on entities, sample, complete, impute, intervals, save/load."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from entity_diffusion._diffusion import diffusion_loss
from entity_diffusion._model import KBFormer, ModelConfig
from entity_diffusion._sampler import UnmaskingSampler, empty_batch
from entity_diffusion._schema import (
    CATEGORICAL,
    NUMERICAL,
    Encoded,
    Schema,
    _category_key,
    _is_missing,
    as_frame,
    datetimes_to_seconds,
    seconds_to_datetimes,
)

CHECKPOINT = "model.safetensors"
SCHEMA = "schema.json"
CONFIG = "config.json"


@dataclass(frozen=True)
class KBFormerConfig:
    """Model + training settings; defaults train a small model on a laptop CPU in about a minute."""

    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    ema_decay: float = 0.995  # TabDDPM-style EMA of the weights, used for sampling
    ema_warmup: bool = True  # decay_t = min(ema_decay, (1 + t) / (10 + t))
    val_fraction: float = 0.1  # entities held out for the validation ELBO (0: none)
    min_val_rows: int = 16  # fewer held-out entities than this: no validation split
    eval_every: int = 100  # steps between held-out evaluations
    val_repeats: int = 4  # mask draws per held-out entity and evaluation
    val_seed: int = 0  # the held-out masks are the same at every evaluation
    patience: int = 5  # evaluations without improvement before stopping (0: run all steps)
    max_seconds: float | None = None  # wall-clock cap on training (GPU windows); None: no cap
    grad_clip: float = 1.0
    weighting: str = "elbo"  # "elbo" (paper, Prop. 1) or "masked-mean" (GSM code practice)
    max_categories: int = 50  # strings with more distinct values become text
    max_text_len: int = 48
    numeric_transform: str = "quantile"  # "quantile" (TabDDPM) or "standard"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KBFormerConfig:
        raw = dict(raw)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; expected some of {sorted(known)}")
        model = raw.pop("model", {})
        model_known = {f.name for f in fields(ModelConfig)}
        bad = sorted(set(model) - model_known)
        if bad:
            raise ValueError(f"unknown model config keys {bad}; expected some of {sorted(model_known)}")
        return cls(model=ModelConfig(**model), **raw)

    def updated(self, **changes: Any) -> KBFormerConfig:
        model_changes = {k: v for k, v in changes.items() if k in {f.name for f in fields(ModelConfig)}}
        rest = {k: v for k, v in changes.items() if k not in model_changes}
        return replace(self, model=replace(self.model, **model_changes), **rest)


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; any other string is passed to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class EntityDiffusion:
    """KBFormer estimator.

    >>> model = EntityDiffusion(KBFormerConfig(steps=500)).fit(frame)   # doctest: +SKIP
    >>> model.sample(100)                      # unconditional entities         # doctest: +SKIP
    >>> model.impute(frame_with_gaps)          # fill NaN / None cells           # doctest: +SKIP
    >>> model.intervals(frame_with_gaps)       # sample-based 90 % intervals     # doctest: +SKIP
    """

    def __init__(self, config: KBFormerConfig | None = None, *, schema_overrides: Mapping[str, str] | None = None,
                 device: str = "auto", random_state: int = 0) -> None:
        self.config = config or KBFormerConfig()
        self.schema_overrides = dict(schema_overrides or {})
        self.device = device
        self.random_state = random_state
        self.schema_: Schema | None = None
        self.model_: KBFormer | None = None
        self.loss_history_: list[float] = []
        self.history_: TrainingHistory | None = None
        self.fit_seconds_: float = math.nan

    # scikit-learn style
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"config": self.config, "schema_overrides": self.schema_overrides, "device": self.device,
                "random_state": self.random_state}

    def set_params(self, **params: Any) -> EntityDiffusion:
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def _generator(self, seed: int | None) -> torch.Generator:
        g = torch.Generator(device=self._device)
        g.manual_seed(self.random_state if seed is None else seed)
        return g

    @property
    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def _check_fitted(self) -> tuple[Schema, KBFormer]:
        if self.schema_ is None or self.model_ is None:
            raise RuntimeError("this EntityDiffusion is not fitted yet; call fit() or load() first")
        return self.schema_, self.model_

    # --------------------------------------------------------------------------------- fit
    def fit(self, data: Any, *, validation_data: Any = None, quiet: bool = True,
            callback: Callable[[int, float], None] | None = None) -> EntityDiffusion:
        """Fit on a DataFrame, nested records or a .csv/.jsonl path. Missing cells stay missing.

        A random ``config.val_fraction`` of the entities (or ``validation_data`` when given) is
        held out: its ELBO selects the best EMA weights and stops training early
        (``config.patience``). ``history_`` records both curves."""
        cfg = self.config
        frame = as_frame(data)
        # The schema covers every entity given to fit (categories, text vocabulary, numeric
        # transform), including those the internal split holds out for validation: a category
        # seen only in the held-out part is still a category of the user's data, and
        # `transform` of the same table must not reject it.
        schema_frame = frame
        held_out = None
        if validation_data is not None:
            held_out = as_frame(validation_data)
        elif cfg.val_fraction > 0 and int(len(frame) * cfg.val_fraction) >= cfg.min_val_rows:
            order = np.random.default_rng(self.random_state).permutation(len(frame))
            n_val = int(len(frame) * cfg.val_fraction)
            held_out = frame.iloc[order[:n_val]].reset_index(drop=True)
            frame = frame.iloc[order[n_val:]].reset_index(drop=True)
        torch.manual_seed(self.random_state)  # parameter initialisation
        self.schema_ = Schema.infer(schema_frame, overrides=self.schema_overrides, max_categories=cfg.max_categories,
                                    max_text_len=cfg.max_text_len, numeric_transform=cfg.numeric_transform)
        encoded = self.schema_.encode(frame).to(self._device)
        validation = None
        if held_out is not None:
            validation = self.schema_.encode(_known_categories_only(held_out, self.schema_)).to(self._device)
        self.model_ = KBFormer(self.schema_, cfg.model).to(self._device)
        start = time.perf_counter()
        self.history_ = train(self.model_, encoded, cfg, generator=self._generator(None), quiet=quiet,
                              callback=callback, validation=validation)
        self.history_.final_live_state = None  # not kept on the estimator (memory, pickling)
        self.loss_history_ = self.history_.train_loss
        self.fit_seconds_ = time.perf_counter() - start
        self.n_fit_rows_ = len(frame)
        self.n_validation_rows_ = 0 if held_out is None else len(held_out)
        return self

    # ------------------------------------------------------------------------------ sampling
    def _run(self, encoded: Encoded, known: torch.Tensor, *, leaps: int, temperature: float,
             seed: int | None, batch_size: int) -> Encoded:
        _, model = self._check_fitted()
        model.eval()
        sampler = UnmaskingSampler(leaps=leaps, temperature=temperature)
        generator = self._generator(seed)
        pieces = []
        for start in range(0, len(encoded), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(encoded)), device=known.device)
            pieces.append(sampler(model, encoded.index(rows), known[rows], generator=generator))
        return Encoded(
            torch.cat([p.num for p in pieces]), torch.cat([p.cat for p in pieces]),
            [torch.cat([p.text[k] for p in pieces]) for k in range(len(encoded.text))],
            torch.cat([p.present for p in pieces]),
        )

    def sample(self, n: int, *, leaps: int = 1, temperature: float = 1.0, seed: int | None = None,
               batch_size: int = 4096, nested: bool = False) -> pd.DataFrame | list[dict[str, Any]]:
        """n new entities, every property generated in a uniformly random order."""
        schema, model = self._check_fitted()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        batch = empty_batch(model, n, self._device)
        out = self._run(batch, batch.present.clone(), leaps=leaps, temperature=temperature, seed=seed,
                        batch_size=batch_size)
        return schema.decode(out, nested=nested)

    def complete(self, data: Any, *, n_samples: int = 1, leaps: int = 1, temperature: float = 1.0,
                 seed: int | None = None, batch_size: int = 4096) -> list[pd.DataFrame]:
        """``n_samples`` conditional completions of each entity: every missing (NaN/None or
        absent-column) property is sampled given the observed ones. Returns n_samples frames
        aligned with the input rows; observed cells keep their values."""
        schema, _ = self._check_fitted()
        _check_n_samples(n_samples)
        frame = as_frame(data)
        encoded = schema.encode(frame).to(self._device)
        repeated = encoded.repeat(n_samples)
        out = schema.decode(self._run(repeated, repeated.present.clone(), leaps=leaps, temperature=temperature,
                                      seed=seed, batch_size=batch_size))
        completions = []
        for s in range(n_samples):
            sampled = out.iloc[s::n_samples].reset_index(drop=True)
            filled = _with_schema_columns(frame, schema)
            for name in schema.names:
                gaps = filled[name].map(_is_missing).to_numpy(dtype=bool)
                if gaps.any():
                    filled[name] = filled[name].astype(object)
                    filled.loc[gaps, name] = sampled.loc[gaps, name].to_numpy()
                    if schema[name].kind == NUMERICAL:
                        filled[name] = (pd.to_datetime(filled[name]) if schema[name].datetime
                                        else pd.to_numeric(filled[name]))
            completions.append(filled)
        return completions

    def impute(self, data: Any, *, n_samples: int = 10, leaps: int = 1, temperature: float = 1.0,
               seed: int | None = None, point: str = "joint") -> pd.DataFrame:
        """Fill missing cells: mean of ``n_samples`` conditional samples for numbers (rounded to
        the property's values when it is integer), their most frequent value for categories, the
        first sample for text. ``temperature=0`` gives one greedy completion (mixture means, most
        probable categories).

        ``point`` says which conditional the draws come from. ``"joint"``: whole completions,
        the missing properties revealed one after another in random order (``leaps``), each
        given the observed ones and those drawn before it. ``"marginal"``: each missing
        property drawn from the model's conditional given the observed properties only (one
        network call per draw, ``leaps`` ignored). The mean of marginal draws estimates
        E[x_j | observed], the point that minimises squared error, and their mode the most
        probable category; joint draws give the same expectation only through the sequential
        draws' extra noise. Use "marginal" for point imputation scored by RMSE / accuracy and
        "joint" (or `complete`) when the imputed cells must be jointly plausible."""
        schema, _ = self._check_fitted()
        _check_n_samples(n_samples)
        if point not in ("joint", "marginal"):
            raise ValueError(f"point must be 'joint' or 'marginal', got {point!r}")
        if point == "marginal":
            leaps = max(1, len(schema))
        if temperature == 0:
            n_samples = 1
        completions = self.complete(data, n_samples=n_samples, leaps=leaps, temperature=temperature, seed=seed)
        return _pool(schema, completions, _with_schema_columns(as_frame(data), schema))

    def intervals(self, data: Any, *, level: float = 0.9, n_samples: int = 99, leaps: int = 1,
                  temperature: float = 1.0, seed: int | None = None, method: str = "order-statistics",
                  conformal: bool = False) -> pd.DataFrame:
        """Central ``level`` intervals for each numerical property from ``n_samples`` conditional
        draws: columns ``<name>`` (sample mean), ``<name>:lower``, ``<name>:upper``. Observed
        cells give a zero-width interval at the observed value.

        ``method="order-statistics"`` (default) takes the k-th smallest and k-th largest draw with
        k = floor((m + 1)(1 - level) / 2): a value drawn from the same conditional falls inside
        with probability (m + 1 - 2k) / (m + 1) >= level whatever m is (exactly ``level`` when
        (m + 1)(1 - level) / 2 is an integer: m = 19, 39, 99 at 90 %). ``method="quantile"`` is
        numpy's interpolated quantile of the draws, which under-covers for few draws (kept for
        comparison). ``conformal=True`` widens (or narrows) each property's interval by the margin
        `calibrate_intervals` measured on held-out entities (split conformal, CQR-style).
        """
        schema, _ = self._check_fitted()
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        _check_n_samples(n_samples)
        if method not in ("order-statistics", "quantile"):
            raise ValueError(f"method must be 'order-statistics' or 'quantile', got {method!r}")
        margins: dict[str, float] = {}
        if conformal:
            cal = getattr(self, "conformal_", None)
            if cal is None:
                raise RuntimeError("conformal=True needs calibrate_intervals(held_out_data) first")
            if abs(cal["level"] - level) > 1e-12:
                raise ValueError(f"the conformal margins were calibrated at level {cal['level']}, not {level}")
            margins = cal["margins"]
        k = order_statistic_rank(n_samples, level) if method == "order-statistics" else 0
        frame = data if isinstance(data, pd.DataFrame) else None
        completions = self.complete(data, n_samples=n_samples, leaps=leaps, temperature=temperature, seed=seed)
        original = _with_schema_columns(as_frame(data), schema)
        out = {}
        for prop in schema.numerical:
            draws = np.stack([_numbers(prop, c[prop.name]) for c in completions])
            out[prop.name] = draws.mean(0)
            if method == "quantile":
                lower = np.quantile(draws, (1 - level) / 2, axis=0)
                upper = np.quantile(draws, (1 + level) / 2, axis=0)
            else:
                ordered = np.sort(draws, axis=0)
                lower, upper = ordered[k - 1], ordered[n_samples - k]
            margin = margins.get(prop.name, 0.0)
            if margin:
                gaps = original[prop.name].map(_is_missing).to_numpy(dtype=bool)
                lower = np.where(gaps, lower - margin, lower)
                upper = np.where(gaps, upper + margin, upper)
                upper = np.maximum(upper, lower)  # a negative margin cannot cross the bounds
            if prop.datetime:
                out[prop.name], lower, upper = (seconds_to_datetimes(v) for v in (out[prop.name], lower, upper))
            out[f"{prop.name}:lower"] = lower
            out[f"{prop.name}:upper"] = upper
        result = pd.DataFrame(out)
        if frame is not None:
            result.index = frame.index
        return result

    def calibrate_intervals(self, data: Any, *, level: float = 0.9, mask_rate: float = 0.3, n_samples: int = 99,
                            seed: int = 0, leaps: int = 1) -> dict[str, Any]:
        """Split-conformal calibration of `intervals` on held-out entities (not seen in
        fit). Cells are hidden completely at random at ``mask_rate`` (use the missing rate of the
        data you will complete), intervals are drawn for them, and for each numerical property
        the score max(lower - y, y - upper) of its n hidden cells is ranked: the
        ceil((n + 1) level)-th smallest is the margin added to both ends (conformalized quantile
        regression, Romano et al. 2019). Then ``intervals(..., conformal=True)`` covers a hidden
        cell with probability >= ``level`` when cells are exchangeable with the calibration ones.
        Returns (and stores as ``conformal_``) the margins and the cell counts."""
        schema, _ = self._check_fitted()
        if not 0 < mask_rate < 1:
            raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}")
        frame = _with_schema_columns(as_frame(data), schema)
        rng = np.random.default_rng(seed)
        hide = (rng.random(frame.shape) < mask_rate) & frame.map(lambda v: not _is_missing(v)).to_numpy()
        everything = hide | frame.map(_is_missing).to_numpy()
        for i in np.flatnonzero(everything.all(1)):  # keep one observed cell per entity where there is one
            observed = np.flatnonzero(hide[i])
            if len(observed):
                hide[i, rng.choice(observed)] = False
        gapped = frame.mask(hide)
        bounds = self.intervals(gapped, level=level, n_samples=n_samples, seed=seed, leaps=leaps)
        margins, cells = {}, {}
        for j, name in enumerate(schema.names):
            if schema[name].kind != NUMERICAL or not hide[:, j].any():
                continue
            rows = hide[:, j]
            prop = schema[name]
            truth = _numbers(prop, frame[name])[rows]
            score = np.maximum(_numbers(prop, bounds[f"{name}:lower"])[rows] - truth,
                               truth - _numbers(prop, bounds[f"{name}:upper"])[rows])
            n = len(score)
            rank = math.ceil((n + 1) * level)
            margins[name] = float(np.sort(score)[rank - 1]) if rank <= n else math.inf
            cells[name] = n
        self.conformal_ = {"level": level, "mask_rate": mask_rate, "n_samples": n_samples, "margins": margins,
                           "cells": cells}
        return self.conformal_

    # ----------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """safetensors weights + schema.json + config.json, each written atomically."""
        from safetensors.torch import save_file

        schema, model = self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        tmp = directory / (CHECKPOINT + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": "pt", "package": "entity-diffusion"})
        os.replace(tmp, directory / CHECKPOINT)
        _atomic_text(directory / SCHEMA, schema.to_json())
        meta = {"config": self.config.to_dict(), "schema_overrides": self.schema_overrides,
                "random_state": self.random_state, "loss_history": self.loss_history_[-50:],
                "training": self.history_.to_dict() if self.history_ is not None else None,
                "conformal": getattr(self, "conformal_", None),
                "fit_seconds": self.fit_seconds_}
        _atomic_text(directory / CONFIG, json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "auto") -> EntityDiffusion:
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in (CHECKPOINT, SCHEMA, CONFIG):
            if not (directory / name).exists():
                raise FileNotFoundError(f"{directory / name}: missing; expected a folder written by save() / `fit`")
        meta = json.loads((directory / CONFIG).read_text())
        self = cls(KBFormerConfig.from_dict(meta["config"]), schema_overrides=meta.get("schema_overrides"),
                   device=device, random_state=meta.get("random_state", 0))
        self.schema_ = Schema.from_json((directory / SCHEMA).read_text())
        self.model_ = KBFormer(self.schema_, self.config.model)
        self.model_.load_state_dict(load_file(str(directory / CHECKPOINT)))
        self.model_.to(self._device).eval()
        self.loss_history_ = list(meta.get("loss_history", []))
        self.fit_seconds_ = meta.get("fit_seconds", math.nan)
        if meta.get("conformal"):
            self.conformal_ = meta["conformal"]
        return self


def _check_n_samples(n_samples: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer (draws per entity), got {n_samples!r}")


def order_statistic_rank(n_draws: int, level: float) -> int:
    """k such that [k-th smallest, k-th largest] of ``n_draws`` exchangeable draws contains one
    more draw from the same distribution with probability (m + 1 - 2k) / (m + 1) >= ``level``
    (its rank among the m + 1 values is uniform). Raises when m is too small for any k >= 1."""
    k = math.floor((n_draws + 1) * (1 - level) / 2 + 1e-9)
    if k < 1:
        need = math.ceil(2 / (1 - level) - 1 - 1e-9)
        raise ValueError(f"{n_draws} draws cannot bound a {level:.0%} interval; use n_samples >= {need}")
    return k


def _pool(schema: Schema, completions: list[pd.DataFrame], original: pd.DataFrame) -> pd.DataFrame:
    """Point imputation from several completions: the mean for numbers (snapped to the property's
    values when integer), the most frequent draw for categories, the first draw for text."""
    result = completions[0].copy()
    for prop in schema.properties:
        gaps = original[prop.name].map(_is_missing).to_numpy(dtype=bool)
        if not gaps.any() or len(completions) == 1:
            continue
        if prop.kind == NUMERICAL:
            mean = np.mean([_numbers(prop, c[prop.name]) for c in completions], axis=0)
            snapped = _snap(prop, mean[gaps])
            if prop.datetime:
                column = result[prop.name].astype(object)
                column[gaps] = seconds_to_datetimes(snapped).to_numpy(dtype=object)
                result[prop.name] = pd.to_datetime(column)
            else:
                result.loc[gaps, prop.name] = snapped
        elif prop.kind == CATEGORICAL:
            stacked = pd.concat([c[prop.name] for c in completions], axis=1)
            mode = stacked.apply(lambda row: row.value_counts().index[0], axis=1)
            result.loc[gaps, prop.name] = mode[gaps].to_numpy()
    return result


def _numbers(prop: Any, column: pd.Series) -> np.ndarray:
    return datetimes_to_seconds(column) if prop.datetime else column.to_numpy(dtype=float)


def _snap(prop: Any, values: np.ndarray) -> np.ndarray:
    if prop.discrete_values is not None:
        grid = np.asarray(prop.discrete_values)
        return grid[np.abs(values[:, None] - grid[None, :]).argmin(axis=1)]
    return np.round(values) if prop.integer else values


def _known_categories_only(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Held-out rows with categories the training split never saw set to missing (a random
    split of a rare category is not an error in the data)."""
    frame = frame.copy()
    for prop in schema.categorical:
        if prop.name in frame.columns:
            known = set(prop.categories)
            keep = [_is_missing(v) or _category_key(v) in known for v in frame[prop.name]]
            frame[prop.name] = frame[prop.name].astype(object).where(keep, None)
    return frame


def _with_schema_columns(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    filled = frame.copy()
    for name in schema.names:
        if name not in filled.columns:
            filled[name] = None
    return filled[schema.names].copy()


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class TrainingHistory:
    """What `train` did: per-step training loss, the held-out ELBO of the EMA weights at
    each evaluation, which evaluation was kept and whether training stopped early."""

    train_loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)  # EMA weights, held-out entities
    val_loss_live: float = math.nan  # live (non-averaged) weights at the last evaluation
    best_step: int | None = None
    stopped_early: bool = False
    steps_run: int = 0
    stopped_by_time: bool = False
    final_lr: float = math.nan  # learning rate of the last step (0 at a schedule's end)
    final_live_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the live weights are left out)."""
        return {"steps_run": self.steps_run, "best_step": self.best_step, "stopped_early": self.stopped_early,
                "stopped_by_time": self.stopped_by_time, "final_lr": self.final_lr,
                "val_steps": self.val_steps, "val_loss": self.val_loss, "val_loss_live": self.val_loss_live,
                "train_loss_tail": float(np.mean(self.train_loss[-50:])) if self.train_loss else math.nan}


def held_out_loss(model: KBFormer, data: Encoded, *, weighting: str = "elbo", seed: int = 0, repeats: int = 4,
                  batch_size: int = 1024) -> float:
    """Mean per-entity diffusion loss (the ELBO bound with ``weighting="elbo"``) of ``data``,
    averaged over ``repeats`` mask draws from a fixed seed, so that two evaluations of different
    weights see the same masks (common random numbers) and differ only by the weights."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    was_training = model.training
    model.eval()
    device = data.present.device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    total, count = 0.0, 0
    with torch.no_grad():
        for _ in range(repeats):
            for start in range(0, len(data), batch_size):
                rows = torch.arange(start, min(start + batch_size, len(data)), device=device)
                batch = data.index(rows)
                loss = diffusion_loss(model, batch, weighting=weighting, generator=generator)
                total += float(loss) * len(batch)
                count += len(batch)
    model.train(was_training)
    value = total / max(count, 1)
    if not math.isfinite(value):
        raise FloatingPointError(f"non-finite held-out loss {value}")
    return value


def _ema_decay(config: KBFormerConfig, update: int) -> float:
    """decay_t = min(d, (1 + t) / (10 + t)) (warm-up): early EMA follows the live weights instead
    of keeping the random initialisation for ~1 / (1 - d) steps."""
    if not config.ema_warmup:
        return config.ema_decay
    return min(config.ema_decay, (1 + update) / (10 + update))


def train(model: KBFormer, data: Encoded, config: KBFormerConfig, *, generator: torch.Generator,
          quiet: bool = True, callback: Callable[[int, float], None] | None = None,
          validation: Encoded | None = None) -> TrainingHistory:
    """AdamW with linear decay to 0 (TabDDPM's trainer), gradient clipping and a weight EMA with
    warm-up. With ``validation`` entities the held-out ELBO of the EMA weights is evaluated every
    ``config.eval_every`` steps; the best EMA weights are kept (loaded into ``model`` at the end)
    and training stops after ``config.patience`` evaluations without improvement (0: never early).
    Without validation, the final EMA weights are loaded. Raises on a non-finite loss."""
    from tqdm.auto import tqdm

    if (data.present.sum(1) == 0).all():
        raise ValueError("every entity is empty: nothing to learn")
    if validation is not None and (validation.present.sum(1) == 0).all():
        validation = None
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    started = time.perf_counter()

    def lr_factor(s: int) -> float:
        # linear decay to 0 over the run: over ``steps``, or over ``max_seconds`` when that ends it
        # first (a time-capped fit must anneal too; 0.2.0's first GPU nuclear job did not)
        progress = s / max(1, config.steps)
        if config.max_seconds is not None and config.max_seconds > 0:
            progress = max(progress, (time.perf_counter() - started) / config.max_seconds)
        return max(0.0, 1.0 - progress)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
    live = [v for k, v in model.state_dict().items() if k in ema]
    shadow = list(ema.values())
    n = len(data)
    batch_size = min(config.batch_size, n)
    history = TrainingHistory()
    best_state: dict[str, torch.Tensor] | None = None
    best_loss = math.inf
    since_best = 0
    order = torch.randperm(n, generator=generator, device=generator.device)
    cursor = 0
    bar = tqdm(range(config.steps), disable=True if quiet else None, desc="fit", leave=False)
    piped = not quiet and bar.disable  # no terminal: one line per evaluation instead of a bar

    def evaluate(step: int) -> bool:
        nonlocal best_state, best_loss, since_best
        live_copy = {k: v.detach().clone() for k, v in model.state_dict().items() if k in ema}
        model.load_state_dict({**model.state_dict(), **ema})
        value = held_out_loss(model, validation, weighting=config.weighting, seed=config.val_seed,
                              repeats=config.val_repeats)
        model.load_state_dict({**model.state_dict(), **live_copy})
        history.val_steps.append(step)
        history.val_loss.append(value)
        if value < best_loss:
            best_loss, since_best = value, 0
            best_state = {k: v.clone() for k, v in ema.items()}
            history.best_step = step
        else:
            since_best += 1
        if piped:
            print(f"fit: step {step}/{config.steps} train loss {np.mean(history.train_loss[-50:]):.3f} "
                  f"held-out {value:.3f} (best {best_loss:.3f} at {history.best_step})", flush=True)
        return config.patience > 0 and since_best >= config.patience

    for step in bar:
        if cursor + batch_size > n:
            order = torch.randperm(n, generator=generator, device=generator.device)
            cursor = 0
        rows = order[cursor : cursor + batch_size]
        cursor += batch_size
        loss = diffusion_loss(model, data.index(rows), weighting=config.weighting, generator=generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at step {step}: {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            torch._foreach_lerp_(shadow, live, 1 - _ema_decay(config, step))
        value = float(loss.detach())
        history.train_loss.append(value)
        history.steps_run = step + 1
        if callback is not None:
            callback(step, value)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(history.train_loss[-50:]):.3f}")
        elif piped and not validation and (step + 1) % max(1, config.steps // 10) == 0:
            print(f"fit: step {step + 1}/{config.steps} train loss {np.mean(history.train_loss[-50:]):.3f}", flush=True)
        if validation is not None and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            if evaluate(step + 1):
                history.stopped_early = True
                break
        if config.max_seconds is not None and time.perf_counter() - started > config.max_seconds:
            history.stopped_by_time = True
            break
    bar.close()
    history.final_lr = float(optimizer.param_groups[0]["lr"])
    if validation is not None and not history.stopped_early:
        evaluate(history.steps_run)
    history.final_live_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in ema}
    if validation is not None:  # the model holds the live weights here
        history.val_loss_live = held_out_loss(model, validation, weighting=config.weighting, seed=config.val_seed,
                                              repeats=config.val_repeats)
    model.load_state_dict({**model.state_dict(), **(best_state if best_state is not None else ema)})
    model.eval()
    return history
