"""Public interpretability API."""

from nuclr._interpret import (
    compact_formula,
    embedding_pca,
    hidden_features,
    interpret,
    shell_features,
    symbolic_backend,
    symbolic_components,
    term_library,
)

__all__ = [
    "compact_formula",
    "embedding_pca",
    "hidden_features",
    "interpret",
    "shell_features",
    "symbolic_backend",
    "symbolic_components",
    "term_library",
]
