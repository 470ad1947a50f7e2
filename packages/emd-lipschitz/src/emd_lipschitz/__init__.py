"""emd-lipschitz: the Energy Mover's Distance from certified 1-Lipschitz critics (NEEMo), tightened.

Public API::

    estimate_emd, EMDResult, Critic, CriticConfig          # the estimator
    Ring, Ellipse, Disk, Segment, Triangle, WeightedPoints, Sum, Shape, shape_points  # shapes
    fit_shape, FitConfig, FitResult, PaperSettings         # paper / accurate / exact fitting
    cluster_events, ClusterResult, choose_k, kmeans        # k weighted points per event
    exact_emd                                              # POT reference (ot.emd2 / partial + |dE|)
"""

from importlib.metadata import PackageNotFoundError, version

from emd_lipschitz._cluster import ClusterResult as ClusterResult
from emd_lipschitz._cluster import choose_k as choose_k
from emd_lipschitz._cluster import cluster_events as cluster_events
from emd_lipschitz._cluster import kmeans as kmeans
from emd_lipschitz._dual import CriticConfig as CriticConfig
from emd_lipschitz._estimate import Critic as Critic
from emd_lipschitz._estimate import EMDResult as EMDResult
from emd_lipschitz._estimate import estimate_emd as estimate_emd
from emd_lipschitz._fit import FitConfig as FitConfig
from emd_lipschitz._fit import FitResult as FitResult
from emd_lipschitz._fit import PaperSettings as PaperSettings
from emd_lipschitz._fit import exact_emd as exact_emd
from emd_lipschitz._fit import fit_shape as fit_shape
from emd_lipschitz._shapes import Disk as Disk
from emd_lipschitz._shapes import Ellipse as Ellipse
from emd_lipschitz._shapes import Ring as Ring
from emd_lipschitz._shapes import Segment as Segment
from emd_lipschitz._shapes import Shape as Shape
from emd_lipschitz._shapes import Sum as Sum
from emd_lipschitz._shapes import Triangle as Triangle
from emd_lipschitz._shapes import WeightedPoints as WeightedPoints
from emd_lipschitz._shapes import shape_points as shape_points

try:
    __version__ = version("emd-lipschitz")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "ClusterResult", "Critic", "CriticConfig", "Disk", "EMDResult", "Ellipse", "FitConfig", "FitResult", "PaperSettings",
    "Ring", "Segment", "Shape", "Sum", "Triangle", "WeightedPoints", "__version__", "choose_k", "cluster_events",
    "estimate_emd", "exact_emd", "fit_shape", "kmeans", "shape_points",
]
