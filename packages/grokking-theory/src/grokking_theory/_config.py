"""Frozen configuration of the addition toy (defaults = the official ``train_add`` defaults)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from grokking_theory._combinatorics import check_p, sample_pairs

LOSSES = ("mse", "ce")
RNG_ORDERS = ("toy", "sweep")


class ConfigMixin:
    """replace / to_dict / from_dict / from_json for the package's frozen config dataclasses."""

    def replace(self: _C, **changes: Any) -> _C:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_json(cls: type[_C], path: str | Path) -> _C:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"config file {path} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a JSON object")
        return cls.from_dict(data)


_C = TypeVar("_C", bound=ConfigMixin)


@dataclass(frozen=True)
class ToyConfig(ConfigMixin):
    """One run of the addition toy.

    ``rng_order="toy"`` replays ``toy/train_add.py`` (per-step batch permutation drawn from numpy,
    test accuracy from the outputs before the update); ``"sweep"`` replays the phase-diagram
    notebooks (unused x-templates and encoder drawn first, no permutation, both accuracies after
    the update). ``decoder_norm="fixed-spectral"`` holds every decoder layer's spectral norm at
    ``decoder_norm_scale`` times its initial value (lipschitz-core ``direct_norm(..., always_norm=True)``; faithful trainer
    only). ``batch_size`` > 0 trains on mini-batches drawn as ``train_add`` draws them
    (``np.random.choice(train_num, batch_size, replace=False)`` each step, continuing the run's numpy
    stream); 0 (default) is the full batch. ``ce_scale`` multiplies the cross-entropy (1/19 = the classification sweep's
    softmax loss ``mean(-log softmax * onehot)``); ``repr_optimizer`` is ``"adamw"`` or ``"adam"``.
    """

    p: int = 10
    reprs_dim: int = 1
    output_dim: int = 30
    train_num: int = 45
    seed: int = 58
    steps: int = 5000
    width: int = 200
    init_scale_reprs: float = 1.0
    init_scale_nn: float = 1.0
    label_scale: float = 1.0
    eta_reprs: float = 1e-3
    eta_dec: float = 1e-4
    weight_decay_reprs: float = 0.0
    weight_decay_dec: float = 0.0
    loss: str = "mse"
    ce_scale: float = 1.0
    repr_optimizer: str = "adamw"
    rng_order: str = "toy"
    threshold_train_acc: float = 0.9
    threshold_test_acc: float = 0.9
    threshold_rqi: float = 0.95
    rqi_tol: float = 0.01
    decoder_norm: str = "free"
    decoder_norm_scale: float = 1.0
    batch_size: int = 0

    def __post_init__(self) -> None:
        check_p(self.p)
        n = len(sample_pairs(self.p))
        if not (1 <= self.train_num <= n):
            raise ValueError(
                f"train_num must lie in [1, {n}] for p={self.p} (train fraction in (0, 1]), "
                f"got {self.train_num}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.rng_order not in RNG_ORDERS:
            raise ValueError(f"rng_order must be one of {RNG_ORDERS}, got {self.rng_order!r}")
        if self.repr_optimizer not in ("adamw", "adam"):
            raise ValueError(f"repr_optimizer must be 'adamw' or 'adam', got {self.repr_optimizer!r}")
        if not self.decoder_norm_scale > 0:
            raise ValueError(f"decoder_norm_scale must be > 0, got {self.decoder_norm_scale}")
        if self.decoder_norm not in ("free", "fixed-spectral"):
            raise ValueError(f"decoder_norm must be 'free' or 'fixed-spectral', got {self.decoder_norm!r}")
        if not 0 <= self.batch_size <= self.train_num:
            raise ValueError(
                f"batch_size must lie in [0, train_num={self.train_num}] (0 = full batch), got {self.batch_size}"
            )
        for name in ("reprs_dim", "width", "steps", "output_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eta_reprs", "eta_dec", "init_scale_reprs", "init_scale_nn"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("weight_decay_reprs", "weight_decay_dec"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def n_samples(self) -> int:
        return len(sample_pairs(self.p))

    @property
    def n_out(self) -> int:
        return 2 * self.p - 1 if self.loss == "ce" else self.output_dim
