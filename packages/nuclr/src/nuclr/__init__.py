"""nuclr: NuCLR nuclear co-learned representations on NUBASE2020, with honest evaluation.

Submodules: :mod:`nuclr.data` (ground states and derived observables), :mod:`nuclr.physics`
(theory tables, semi-empirical formula). Model, training and evaluation are re-exported here.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nuclr")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
