"""monotonenorm: provably monotonic neural networks (Lipschitz Monotonic Networks).

Public API::

    MonotonicWrapper, MonotonicLayer, monotonic_mlp        # the residual construction
    LipschitzLinear, GroupSort, direct_norm, SigmaNet       # monotonicnetworks-compatible names
    load_monotonicnetworks_state_dict                       # the authors' checkpoints
    verify_monotonic, certify_monotonic, MonotonicityReport # certificate + empirical search
    MonotonicRegressor, MonotonicClassifier                 # scikit-learn estimators
    trigger                                                 # synthetic two-track trigger data
"""

from importlib.metadata import PackageNotFoundError, version

from monotonenorm._compat import GroupSort as GroupSort
from monotonenorm._compat import LipschitzLinear as LipschitzLinear
from monotonenorm._compat import direct_norm as direct_norm
from monotonenorm._compat import (
    load_monotonicnetworks_state_dict as load_monotonicnetworks_state_dict,
)
from monotonenorm._monotonic import MonotonicLayer as MonotonicLayer
from monotonenorm._monotonic import MonotonicWrapper as MonotonicWrapper
from monotonenorm._monotonic import SigmaNet as SigmaNet
from monotonenorm._monotonic import monotonic_mlp as monotonic_mlp
from monotonenorm._monotonic import unconstrained_layers as unconstrained_layers
from monotonenorm._verify import MonotonicityReport as MonotonicityReport
from monotonenorm._verify import certify_monotonic as certify_monotonic
from monotonenorm._verify import verify_monotonic as verify_monotonic

_LAZY = {
    "MonotonicRegressor": "monotonenorm._estimators",
    "MonotonicClassifier": "monotonenorm._estimators",
    "probability_constraints": "monotonenorm._estimators",
}


def __getattr__(name: str) -> object:
    # scikit-learn is imported only when the estimators are used: `import monotonenorm` stays light.
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'monotonenorm' has no attribute {name!r}")


try:
    __version__ = version("monotonenorm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "unknown"

__all__ = [
    "GroupSort",
    "LipschitzLinear",
    "MonotonicClassifier",
    "MonotonicLayer",
    "MonotonicRegressor",
    "MonotonicWrapper",
    "MonotonicityReport",
    "SigmaNet",
    "__version__",
    "certify_monotonic",
    "direct_norm",
    "load_monotonicnetworks_state_dict",
    "monotonic_mlp",
    "probability_constraints",
    "unconstrained_layers",
    "verify_monotonic",
]
