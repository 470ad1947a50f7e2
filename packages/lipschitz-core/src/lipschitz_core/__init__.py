"""lipschitz-core: weight-normalized layers with exact per-layer operator-norm constraints.

Public API::

    LipschitzLinear, direct_norm, OperatorNormConstraint, normalize_weight, GroupSort,
    lipschitz_mlp, lipschitz_bound, certified_radius, estimate_lipschitz, freeze,
    operator_norm, gram_spectral_bound, norm_slack, eval_mode, KINDS
"""

from importlib.metadata import PackageNotFoundError, version

from lipschitz_core._bounds import certified_radius as certified_radius
from lipschitz_core._bounds import estimate_lipschitz as estimate_lipschitz
from lipschitz_core._bounds import eval_mode as eval_mode
from lipschitz_core._bounds import lipschitz_bound as lipschitz_bound
from lipschitz_core._builders import lipschitz_mlp as lipschitz_mlp
from lipschitz_core._constraint import OperatorNormConstraint as OperatorNormConstraint
from lipschitz_core._constraint import direct_norm as direct_norm
from lipschitz_core._constraint import find_constraint as find_constraint
from lipschitz_core._constraint import gram_spectral_bound as gram_spectral_bound
from lipschitz_core._constraint import norm_slack as norm_slack
from lipschitz_core._constraint import normalize_weight as normalize_weight
from lipschitz_core._freeze import freeze as freeze
from lipschitz_core._layers import GroupSort as GroupSort
from lipschitz_core._layers import LipschitzLinear as LipschitzLinear
from lipschitz_core._norms import KINDS as KINDS
from lipschitz_core._norms import operator_norm as operator_norm

try:
    __version__ = version("lipschitz-core")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "unknown"

__all__ = [
    "KINDS",
    "GroupSort",
    "LipschitzLinear",
    "OperatorNormConstraint",
    "__version__",
    "certified_radius",
    "direct_norm",
    "estimate_lipschitz",
    "eval_mode",
    "find_constraint",
    "freeze",
    "gram_spectral_bound",
    "lipschitz_bound",
    "lipschitz_mlp",
    "norm_slack",
    "normalize_weight",
    "operator_norm",
]
