"""nuclr: NuCLR nuclear co-learned representations on NUBASE2020, with honest evaluation.

Submodules: :mod:`nuclr.data` (NUBASE ground states, derived observables), :mod:`nuclr.physics`
(theory tables, semi-empirical formula), :mod:`nuclr.model` (network, training, checkpoints),
:mod:`nuclr.evaluate` (the three protocols), :mod:`nuclr.interpret` (PCA, probes, symbolic
regression). The names below are re-exported lazily so that ``import nuclr`` stays fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nuclr")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "ground_states": "nuclr._data",
    "derive_observables": "nuclr._data",
    "lookup": "nuclr._data",
    "is_extrapolation": "nuclr._data",
    "NuclideError": "nuclr._data",
    "read_theory_table": "nuclr._physics",
    "SemfFit": "nuclr._physics",
    "ModelConfig": "nuclr._model",
    "NuCLR": "nuclr._model",
    "TrainConfig": "nuclr._train",
    "Trained": "nuclr._train",
    "train": "nuclr._train",
    "build_rows": "nuclr._dataset",
    "evaluate": "nuclr._evaluate",
    "interpret": "nuclr._interpret",
}


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nuclr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_EXPORTS, "__version__"])


__all__ = ["__version__", *_EXPORTS]
