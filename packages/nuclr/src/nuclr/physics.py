"""Public physics-baseline API: theory mass tables and the semi-empirical mass formula."""

from nuclr._physics import (
    DEFAULT_THEORY,
    SEMF_NUCLR_COEFFICIENTS,
    SEMF_TERMS,
    THEORY_TABLES,
    SemfFit,
    TheoryTable,
    read_theory_table,
    semf_binding_kev,
    semf_features,
    semf_grid_observables,
)

__all__ = [
    "DEFAULT_THEORY",
    "SEMF_NUCLR_COEFFICIENTS",
    "SEMF_TERMS",
    "THEORY_TABLES",
    "SemfFit",
    "TheoryTable",
    "read_theory_table",
    "semf_binding_kev",
    "semf_features",
    "semf_grid_observables",
]
