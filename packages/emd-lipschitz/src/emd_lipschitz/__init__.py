"""emd-lipschitz: the Energy Mover's Distance, exact where exact is cheap, and NEEMo's neural critic.

Public API::

    emd, EMDSolution                                       # exact / sinkhorn / neural / auto
    jets.emd, jets.emds                                    # EnergyFlow's argument names and semantics
    ringiness, diskiness, nsubjettiness, ObservableResult  # SHAPER-style observables, exact EMD
    estimate_emd, EMDResult, Critic, CriticConfig          # the neural estimator (and 0.1's refinement)
    Ring, Ellipse, Disk, Segment, Triangle, WeightedPoints, Sum, Shape, shape_points  # shapes
    fit_shape, FitConfig, FitResult, PaperSettings         # paper / accurate / exact fitting
    cluster_events, ClusterResult, choose_k, kmeans        # k weighted points per event
    exact_emd                                              # POT reference (ot.emd2 / partial + |dE|)
"""

from importlib.metadata import PackageNotFoundError, version

from emd_lipschitz import jets as jets
from emd_lipschitz._cluster import ClusterResult as ClusterResult
from emd_lipschitz._cluster import choose_k as choose_k
from emd_lipschitz._cluster import cluster_events as cluster_events
from emd_lipschitz._cluster import kmeans as kmeans
from emd_lipschitz._dual import CriticConfig as CriticConfig
from emd_lipschitz._estimate import Critic as Critic
from emd_lipschitz._estimate import EMDResult as EMDResult
from emd_lipschitz._estimate import estimate_emd as estimate_emd
from emd_lipschitz._exact import EMDSolution as EMDSolution
from emd_lipschitz._exact import emd as emd
from emd_lipschitz._fit import FitConfig as FitConfig
from emd_lipschitz._fit import FitResult as FitResult
from emd_lipschitz._fit import PaperSettings as PaperSettings
from emd_lipschitz._fit import exact_emd as exact_emd
from emd_lipschitz._fit import fit_shape as fit_shape
from emd_lipschitz._observables import ObservableResult as ObservableResult
from emd_lipschitz._observables import choose_k_elbow as choose_k_elbow
from emd_lipschitz._observables import diskiness as diskiness
from emd_lipschitz._observables import nsubjettiness as nsubjettiness
from emd_lipschitz._observables import ringiness as ringiness
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
except PackageNotFoundError:  # running from a source tree (e.g. PYTHONPATH=packages/*/src on the GPU runner)
    __version__ = "0.2.0+source"

__all__ = [
    "ClusterResult", "Critic", "CriticConfig", "Disk", "EMDResult", "EMDSolution", "Ellipse", "FitConfig", "FitResult",
    "ObservableResult", "PaperSettings", "Ring", "Segment", "Shape", "Sum", "Triangle", "WeightedPoints", "__version__",
    "choose_k", "choose_k_elbow", "cluster_events", "diskiness", "emd", "estimate_emd", "exact_emd", "fit_shape", "jets",
    "kmeans", "nsubjettiness", "ringiness", "shape_points",
]
