"""Alternative data backend: the published AME2020/AME2016 and NUBASE2020/2016 files at a user path.

The AMDC distributes ``mass.mas20``, ``rct1.mas20``, ``rct2.mas20`` and ``nubase_1.mas20`` (AME2020,
NUBASE2020) and ``mass16.txt``, ``rct1-16.txt``, ``rct2-16.txt``, ``nubase2016.txt`` (2016) as
fixed-width text. Column positions below are those of the FORTRAN formats printed in each file's
header (``a1,i3,i5,i5,i5,1x,a3,a4,1x,f14.6,f12.6,...`` in 2020; ``...,f13.5,f11.5,...`` in 2016).
A ``#`` in place of the decimal point marks a value from systematics (not measured); ``*`` means
"cannot be computed".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AME_YEARS = (2016, 2020)
# 0-based [start, stop) slices of the fields read from the mass table, per edition.
MASS_COLUMNS = {
    2020: {"n": (4, 9), "z": (9, 14), "a": (14, 19), "el": (20, 23), "mass": (28, 42), "unc": (42, 54)},
    2016: {"n": (4, 9), "z": (9, 14), "a": (14, 19), "el": (20, 23), "mass": (28, 41), "unc": (41, 52)},
}
# rct1/rct2: a1,i3,1x,a3,i3,1x, then six (value, uncertainty) pairs; widths per edition.
RCT_LAYOUT = {2020: {"a": (1, 4), "z": (8, 11), "first": 12, "value": 12, "pair": 22},
              2016: {"a": (1, 4), "z": (8, 11), "first": 12, "value": 10, "pair": 18}}
RCT1_NAMES = ("s_2n_kev", "s_2p_kev", "q_alpha_kev", "q_2beta_minus_kev", "q_ep_kev", "q_beta_minus_n_kev")
RCT2_NAMES = ("s_n_kev", "s_p_kev", "q_4beta_minus_kev", "q_d_alpha_kev", "q_p_alpha_kev", "q_n_alpha_kev")
FILE_NAMES = {
    2020: {"mass": ("mass.mas20", "mass_1.mas20"), "rct1": ("rct1.mas20",), "rct2": ("rct2.mas20",),
           "nubase": ("nubase_1.mas20", "nubase_4.mas20", "nubase2020.txt")},
    2016: {"mass": ("mass16.txt", "mass.mas16"), "rct1": ("rct1-16.txt", "rct1.mas16"),
           "rct2": ("rct2-16.txt", "rct2.mas16"), "nubase": ("nubase2016.txt", "nubase.mas16")},
}
ENV_VAR = "NUCLR_AME_DIR"


@dataclass(frozen=True)
class AmeMassTable:
    """One AME mass table as numpy columns (one row per nuclide)."""

    year: int
    z: np.ndarray
    n: np.ndarray
    symbol: np.ndarray
    mass_excess_kev: np.ndarray
    mass_excess_unc_kev: np.ndarray
    mass_measured: np.ndarray


def parse_ame_number(text: str, what: str, where: str) -> tuple[float, bool]:
    """(value, measured) of an AME field: ``#`` = from systematics; ``*`` or blank = NaN."""
    s = text.strip()
    if not s or s == "*":
        return math.nan, False
    estimated = "#" in s
    if estimated:
        s = s.rstrip("#") if s.endswith("#") else s.replace("#", ".")
    try:
        return float(s), not estimated
    except ValueError as exc:
        raise ValueError(f"{where}: cannot parse {what} from {text!r}") from exc


def _field(line: str, span: tuple[int, int]) -> str:
    return line[span[0] : span[1]]


def read_ame_mass(path: str | Path, year: int = 2020) -> AmeMassTable:
    """Parse an AME mass table (``mass.mas20`` or ``mass16.txt``) at ``path``.

    Data lines are recognised by integer N, Z and A fields; header and page lines are skipped.
    A line with integer N, Z, A but an unreadable mass is an error naming the file and line.
    """
    if year not in MASS_COLUMNS:
        raise ValueError(f"AME year must be one of {AME_YEARS}, got {year!r}")
    cols = MASS_COLUMNS[year]
    path = Path(path)
    rows = []
    with open(path, encoding="latin-1") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
            nzs = [_field(line, cols[k]).strip() for k in ("n", "z", "a")]
            if len(line) < cols["unc"][0] or not all(s.isdigit() for s in nzs):
                continue
            n, z, a = (int(s) for s in nzs)
            where = f"{path}:{lineno}"
            if n + z != a:
                raise ValueError(f"{where}: N + Z = {n + z} but A = {a}")
            mass, measured = parse_ame_number(_field(line, cols["mass"]), "mass excess", where)
            if not math.isfinite(mass):
                raise ValueError(f"{where}: no mass excess in columns {cols['mass'][0] + 1}-{cols['mass'][1]}")
            unc, _ = parse_ame_number(_field(line, cols["unc"]), "mass uncertainty", where)
            rows.append((z, n, _field(line, cols["el"]).strip() or "n", mass, unc, measured))
    if not rows:
        raise ValueError(f"{path}: no AME{year} mass lines found (is this a mass table of that edition?)")
    z, n, sym, mass, unc, meas = zip(*rows)
    return AmeMassTable(year, np.asarray(z, np.int64), np.asarray(n, np.int64), np.asarray(sym, dtype=object),
                        np.asarray(mass, np.float64), np.asarray(unc, np.float64), np.asarray(meas, bool))


def read_ame_rct(path: str | Path, names: tuple[str, ...], year: int = 2020) -> dict[tuple[int, int], dict[str, float]]:
    """Parse ``rct1``/``rct2``: {(Z, N): {name: value, name + "_measured": bool}} (NaN for ``*``)."""
    lay = RCT_LAYOUT[year]
    path = Path(path)
    out: dict[tuple[int, int], dict[str, float]] = {}
    with open(path, encoding="latin-1") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
            a_s, z_s = _field(line, lay["a"]).strip(), _field(line, lay["z"]).strip()
            if not (a_s.isdigit() and z_s.isdigit()):
                continue
            a, z = int(a_s), int(z_s)
            row: dict[str, float] = {}
            for k, name in enumerate(names):
                start = lay["first"] + lay["pair"] * k
                value, meas = parse_ame_number(line[start : start + lay["value"]], name, f"{path}:{lineno}")
                row[name], row[name + "_measured"] = value, meas
            out[(z, a - z)] = row
    if not out:
        raise ValueError(f"{path}: no AME{year} rct lines found")
    return out


def ame_dir() -> Path | None:
    """The folder named by ``$NUCLR_AME_DIR`` (None when unset); an error when it does not exist."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"${ENV_VAR}={value} is not a folder")
    return path


def find_ame_file(directory: str | Path, year: int, kind: str) -> Path:
    """Locate ``kind`` (mass, rct1, rct2, nubase) of edition ``year`` in ``directory`` or
    ``directory/ame<year>`` (the layout of the shared data folder); a clear error if absent."""
    if year not in FILE_NAMES:
        raise ValueError(f"the AME backend reads editions {AME_YEARS}, got {year!r}")
    directory = Path(directory)
    tried = []
    for base in (directory / f"ame{year}", directory):
        for name in FILE_NAMES[year][kind]:
            p = base / name
            tried.append(str(p))
            if p.exists():
                return p
    raise FileNotFoundError(f"no AME{year} {kind} file; looked for {', '.join(tried)}")
