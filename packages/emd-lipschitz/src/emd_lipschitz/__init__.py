"""emd-lipschitz: the Energy Mover's Distance from certified 1-Lipschitz critics (NEEMo), tightened.

Public API::

    estimate_emd, EMDResult, Critic, CriticConfig          # the estimator
    Ring, Ellipse, Disk, Segment, WeightedPoints, Sum, Shape  # evenly spaced shapes
    fit_shape, FitConfig, FitResult                        # paper / accurate / exact fitting
    cluster_events, ClusterResult, kmeans                  # k weighted points per event
    exact_emd                                              # POT reference (ot.emd2 / partial + |dE|)
"""

from importlib.metadata import PackageNotFoundError, version

from emd_lipschitz._dual import CriticConfig as CriticConfig
from emd_lipschitz._estimate import Critic as Critic
from emd_lipschitz._estimate import EMDResult as EMDResult
from emd_lipschitz._estimate import estimate_emd as estimate_emd

try:
    __version__ = version("emd-lipschitz")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["Critic", "CriticConfig", "EMDResult", "__version__", "estimate_emd"]
