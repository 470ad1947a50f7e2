"""monotonenorm: provably monotonic neural networks (Lipschitz Monotonic Networks).

Public API::

    MonotonicWrapper, MonotonicLayer, monotonic_mlp        # the residual construction
    LipschitzLinear, GroupSort, direct_norm, SigmaNet       # monotonicnetworks-compatible names
    verify_monotonic, certify_monotonic, MonotonicityReport # certificate + empirical search
    MonotonicRegressor, MonotonicClassifier                 # scikit-learn estimators
    trigger                                                 # synthetic two-track trigger data
"""

from importlib.metadata import PackageNotFoundError, version

from monotonenorm._compat import GroupSort as GroupSort
from monotonenorm._compat import LipschitzLinear as LipschitzLinear
from monotonenorm._compat import direct_norm as direct_norm
from monotonenorm._monotonic import MonotonicLayer as MonotonicLayer
from monotonenorm._monotonic import MonotonicWrapper as MonotonicWrapper
from monotonenorm._monotonic import SigmaNet as SigmaNet
from monotonenorm._monotonic import monotonic_mlp as monotonic_mlp
from monotonenorm._verify import MonotonicityReport as MonotonicityReport
from monotonenorm._verify import certify_monotonic as certify_monotonic
from monotonenorm._verify import verify_monotonic as verify_monotonic

try:
    __version__ = version("monotonenorm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "GroupSort",
    "LipschitzLinear",
    "MonotonicLayer",
    "MonotonicWrapper",
    "MonotonicityReport",
    "SigmaNet",
    "__version__",
    "certify_monotonic",
    "direct_norm",
    "monotonic_mlp",
    "verify_monotonic",
]
