"""grokking-theory: the effective theory of grokking (Liu et al., NeurIPS 2022), reproduced.

Public API::

    ToyConfig, train_toy, ToyRun, initial_state                 # the exact official toy
    rqi, ideal_accuracy, predicted_accuracy, sample_pairs,       # combinatorics
    equation_matrix, rqi_quadruples, train_num_from_fraction
    effective_loss, effective_flow, hessian_eigenvalues,         # effective theory (summed l0)
    predicted_time_to_structure, critical_fraction, network_vs_effective
    RunSpec, SweepRun, train_batched, run_sweep                  # batched engine
    classify_phase, phase_diagram, PhaseDiagram, PHASES          # phases
    ModAddConfig, train_modular_addition, train_modadd_batched,  # transformer on (a + b) mod p
    entropy_dim, participation_ratio, ring_score, embedding_pca
    DigitsConfig, train_digits, digits_grokking,                 # large init on sklearn digits
    digits_phase_diagram                                         # App. J's 60 % diagram
    S3Config, S3Run, train_s3, group_rqi, s3_table               # the S3 matrix-product toy
"""

from importlib.metadata import PackageNotFoundError, version

from grokking_theory._batched import RunSpec as RunSpec
from grokking_theory._batched import SweepRun as SweepRun
from grokking_theory._batched import run_sweep as run_sweep
from grokking_theory._batched import train_batched as train_batched
from grokking_theory._combinatorics import equation_matrix as equation_matrix
from grokking_theory._combinatorics import ideal_accuracy as ideal_accuracy
from grokking_theory._combinatorics import predicted_accuracy as predicted_accuracy
from grokking_theory._combinatorics import rqi as rqi
from grokking_theory._combinatorics import rqi_quadruples as rqi_quadruples
from grokking_theory._combinatorics import sample_pairs as sample_pairs
from grokking_theory._combinatorics import train_num_from_fraction as train_num_from_fraction
from grokking_theory._config import ToyConfig as ToyConfig
from grokking_theory._digits import DigitsConfig as DigitsConfig
from grokking_theory._digits import digits_grokking as digits_grokking
from grokking_theory._digits import digits_phase_diagram as digits_phase_diagram
from grokking_theory._digits import train_digits as train_digits
from grokking_theory._group import S3Config as S3Config
from grokking_theory._group import S3Run as S3Run
from grokking_theory._group import group_rqi as group_rqi
from grokking_theory._group import s3_table as s3_table
from grokking_theory._group import train_s3 as train_s3
from grokking_theory._init import initial_state as initial_state
from grokking_theory._modadd import ModAddConfig as ModAddConfig
from grokking_theory._modadd import embedding_pca as embedding_pca
from grokking_theory._modadd import entropy_dim as entropy_dim
from grokking_theory._modadd import participation_ratio as participation_ratio
from grokking_theory._modadd import ring_score as ring_score
from grokking_theory._modadd import train_modular_addition as train_modular_addition
from grokking_theory._modadd_sweep import train_modadd_batched as train_modadd_batched
from grokking_theory._phases import PHASES as PHASES
from grokking_theory._phases import PhaseDiagram as PhaseDiagram
from grokking_theory._phases import classify_phase as classify_phase
from grokking_theory._phases import phase_diagram as phase_diagram
from grokking_theory._theory import critical_fraction as critical_fraction
from grokking_theory._theory import effective_flow as effective_flow
from grokking_theory._theory import effective_loss as effective_loss
from grokking_theory._theory import hessian_eigenvalues as hessian_eigenvalues
from grokking_theory._theory import network_vs_effective as network_vs_effective
from grokking_theory._theory import predicted_time_to_structure as predicted_time_to_structure
from grokking_theory._toy import ToyRun as ToyRun
from grokking_theory._toy import train_toy as train_toy

try:
    __version__ = version("grokking-theory")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "DigitsConfig",
    "ModAddConfig",
    "PHASES",
    "PhaseDiagram",
    "RunSpec",
    "S3Config",
    "S3Run",
    "SweepRun",
    "ToyConfig",
    "ToyRun",
    "__version__",
    "classify_phase",
    "critical_fraction",
    "digits_grokking",
    "digits_phase_diagram",
    "embedding_pca",
    "entropy_dim",
    "effective_flow",
    "effective_loss",
    "equation_matrix",
    "group_rqi",
    "hessian_eigenvalues",
    "network_vs_effective",
    "ideal_accuracy",
    "initial_state",
    "predicted_accuracy",
    "predicted_time_to_structure",
    "participation_ratio",
    "phase_diagram",
    "ring_score",
    "rqi",
    "rqi_quadruples",
    "run_sweep",
    "s3_table",
    "sample_pairs",
    "train_batched",
    "train_digits",
    "train_num_from_fraction",
    "train_s3",
    "train_modadd_batched",
    "train_modular_addition",
    "train_toy",
]
