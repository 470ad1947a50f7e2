"""Ground-state nuclear data from the files that the ``nucleardatapy`` package ships.

NUBASE2020/2016/2012 (mass excess, half-life) and the Angeli & Marinova 2013 charge radii are read
from ``nucleardatapy``'s package data (no download); the derived observables (binding energy,
separation energies, Q values) are computed from atomic mass excesses with the AME2020 constants.

A derived value counts as *measured* only when every mass entering it is measured (no ``#``).
Uncertainties of derived values are combined in quadrature, ignoring correlations between masses.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# AME2020 constants (keV): atomic mass excesses of the neutron, 1H and 4He (AME2020 mass.mas20).
MASS_EXCESS_NEUTRON_KEV = 8071.31806
MASS_EXCESS_HYDROGEN_KEV = 7288.971064
MASS_EXCESS_HELIUM4_KEV = 2424.91587
ELECTRON_MASS_KEV = 510.99895
ATOMIC_MASS_UNIT_KEV = 931494.10242
SECONDS_PER_YEAR = 31556926.0  # NUBASE2020 convention
HBAR_LN2_EV_S = 6.582119569e-16 * math.log(2.0)  # width -> half-life, T = hbar ln2 / Gamma

NUBASE_YEARS = (2012, 2016, 2020)
_NUBASE_FILES = {
    2020: "2020_nubase_4.mas20.txt",
    2016: "2016_nubase2016.txt",
    2012: "2012_nubase.mas12.txt",
}
# 1-based inclusive column ranges of the fields we read, per NUBASE edition (from the file headers).
_NUBASE_COLUMNS = {
    2020: {"mass": (19, 31), "unc": (32, 42), "t": (70, 78), "unit": (79, 80)},
    2016: {"mass": (19, 29), "unc": (30, 38), "t": (61, 69), "unit": (70, 71)},
    2012: {"mass": (19, 29), "unc": (30, 38), "t": (61, 69), "unit": (70, 71)},
}

_TIME_UNITS_S = {
    "ys": 1e-24, "zs": 1e-21, "as": 1e-18, "fs": 1e-15, "ps": 1e-12, "ns": 1e-9, "us": 1e-6,
    "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "y": SECONDS_PER_YEAR,
    "ky": 1e3 * SECONDS_PER_YEAR, "My": 1e6 * SECONDS_PER_YEAR, "Gy": 1e9 * SECONDS_PER_YEAR,
    "Ty": 1e12 * SECONDS_PER_YEAR, "Py": 1e15 * SECONDS_PER_YEAR, "Ey": 1e18 * SECONDS_PER_YEAR,
    "Zy": 1e21 * SECONDS_PER_YEAR, "Yy": 1e24 * SECONDS_PER_YEAR,
}
_WIDTH_UNITS_EV = {"meV": 1e-3, "eV": 1.0, "keV": 1e3, "MeV": 1e6}

# Derived observables: name -> list of (dZ, dN, coefficient) on the mass excesses plus a constant.
# Q = sum(coef * Delta(Z + dZ, N + dN)) + constant.
_DERIVED = {
    "s_n_kev": ([(0, -1, 1.0), (0, 0, -1.0)], MASS_EXCESS_NEUTRON_KEV),
    "s_p_kev": ([(-1, 0, 1.0), (0, 0, -1.0)], MASS_EXCESS_HYDROGEN_KEV),
    "s_2n_kev": ([(0, -2, 1.0), (0, 0, -1.0)], 2 * MASS_EXCESS_NEUTRON_KEV),
    "s_2p_kev": ([(-2, 0, 1.0), (0, 0, -1.0)], 2 * MASS_EXCESS_HYDROGEN_KEV),
    "q_alpha_kev": ([(0, 0, 1.0), (-2, -2, -1.0)], -MASS_EXCESS_HELIUM4_KEV),
    "q_beta_minus_kev": ([(0, 0, 1.0), (1, -1, -1.0)], 0.0),
    "q_ec_kev": ([(0, 0, 1.0), (-1, 1, -1.0)], 0.0),
    "q_beta_minus_n_kev": ([(0, 0, 1.0), (1, -2, -1.0)], -MASS_EXCESS_NEUTRON_KEV),
}
DERIVED_QUANTITIES = ("binding_energy_kev", *_DERIVED)


RADII_ENV_VAR = "NUCLR_RADII_CSV"


class NuclideError(ValueError):
    """A nucleus given by (Z, N) that is invalid or not in a table."""


def _package_data(*parts: str) -> Path:
    # find_spec does not execute nucleardatapy/__init__.py, which imports matplotlib eagerly.
    spec = importlib.util.find_spec("nucleardatapy")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("nuclr needs the 'nucleardatapy' package for its data files")
    path = Path(list(spec.submodule_search_locations)[0], "data", "nuclei", *parts)
    if not path.exists():
        raise FileNotFoundError(f"nucleardatapy does not ship {path}")
    return path


def nubase_path(year: int) -> Path:
    """Path of the NUBASE file of ``year`` (2012, 2016 or 2020) inside ``nucleardatapy``."""
    if year not in _NUBASE_FILES:
        raise ValueError(f"NUBASE year must be one of {NUBASE_YEARS}, got {year!r}")
    return _package_data("masses", "AME", _NUBASE_FILES[year])


def radii_path() -> Path:
    """Path of the Angeli & Marinova (2013) charge-radius table inside ``nucleardatapy``."""
    return _package_data("radch", "2013-Angeli.csv")


def check_nucleus(z: object, n: object) -> tuple[int, int]:
    """Validate a (Z, N) pair: non-negative integers (bool and non-integral floats rejected)."""
    out = []
    for name, value in (("Z", z), ("N", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
            raise NuclideError(f"{name} must be a non-negative integer, got {value!r} ({type(value).__name__})")
        if isinstance(value, (float, np.floating)):
            if not math.isfinite(value) or value != int(value):
                raise NuclideError(f"{name} must be a non-negative integer, got {value!r}")
        if value < 0:
            raise NuclideError(f"{name} must be a non-negative integer, got {value!r}")
        out.append(int(value))
    if out[0] + out[1] == 0:
        raise NuclideError("Z + N must be at least 1")
    return out[0], out[1]


def _parse_value(text: str, what: str, where: str) -> tuple[float, bool]:
    """Parse an AME/NUBASE number; ``#`` marks a value from systematics (not measured)."""
    from nuclr._ame import parse_ame_number

    return parse_ame_number(text, what, where)


def _parse_half_life(value: str, unit: str) -> tuple[float, bool, bool]:
    """Return (half-life in s, measured, stable). Bounds (<, >) and p-unst give NaN."""
    v = value.strip()
    u = unit.strip()
    if v.startswith("stbl"):
        return math.inf, True, True
    if not v or v.startswith("p-unst") or v[0] in "<>" or "?" in v:
        return math.nan, False, False
    measured = "#" not in v
    v = v.replace("#", "").lstrip("~").strip()
    try:
        x = float(v)
    except ValueError:
        return math.nan, False, False
    if u in _TIME_UNITS_S:
        return x * _TIME_UNITS_S[u], measured, False
    if u in _WIDTH_UNITS_EV and x > 0:
        return HBAR_LN2_EV_S / (x * _WIDTH_UNITS_EV[u]), measured, False
    return math.nan, False, False


def _cols(line: str, span: tuple[int, int]) -> str:
    return line[span[0] - 1 : span[1]]


@dataclass(frozen=True)
class NubaseTable:
    """Ground states of one NUBASE edition as numpy columns (one row per nuclide)."""

    year: int
    z: np.ndarray
    n: np.ndarray
    symbol: np.ndarray
    mass_excess_kev: np.ndarray
    mass_excess_unc_kev: np.ndarray
    mass_measured: np.ndarray
    half_life_s: np.ndarray
    half_life_measured: np.ndarray
    is_stable: np.ndarray


def read_nubase(year: int = 2020, path: str | Path | None = None) -> NubaseTable:
    """Parse the ground states (isomer index 0) of a NUBASE file.

    ``path`` defaults to the copy shipped by ``nucleardatapy``; ``year`` selects the column layout.
    """
    if year not in _NUBASE_COLUMNS:
        raise ValueError(f"NUBASE year must be one of {NUBASE_YEARS}, got {year!r}")
    path = Path(path) if path is not None else nubase_path(year)
    cols = _NUBASE_COLUMNS[year]
    rows = []
    with open(path, encoding="latin-1") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            where = f"{path}:{lineno}"
            if len(line) < cols["unc"][1] or not line[:3].strip().isdigit():
                raise ValueError(f"{where}: not a NUBASE data line: {line[:40]!r}")
            a = int(line[0:3])
            zzzi = line[4:8]
            if not zzzi.isdigit():
                raise ValueError(f"{where}: expected ZZZi digits in columns 5-8, got {zzzi!r}")
            if zzzi[3] != "0":
                continue  # isomers, levels, resonances, IAS
            z = int(zzzi[:3])
            n = a - z
            if not _cols(line, cols["mass"]).strip():
                continue  # NUBASE2012 lists a few new nuclides without a mass (flag 'W')
            symbol = re.sub(r"^\d+", "", line[11:16].strip()) or "n"
            mass, mass_meas = _parse_value(_cols(line, cols["mass"]), "mass excess", where)
            unc_text = _cols(line, cols["unc"]).strip()
            unc = _parse_value(unc_text, "mass uncertainty", where)[0] if unc_text else math.nan
            t, t_meas, stable = _parse_half_life(_cols(line, cols["t"]), _cols(line, cols["unit"]))
            rows.append((z, n, symbol, mass, unc, mass_meas, t, t_meas, stable))
    if not rows:
        raise ValueError(f"{path}: no ground states found")
    z, n, sym, mass, unc, mm, t, tm, st = zip(*rows)
    return NubaseTable(
        year=year,
        z=np.asarray(z, dtype=np.int64),
        n=np.asarray(n, dtype=np.int64),
        symbol=np.asarray(sym, dtype=object),
        mass_excess_kev=np.asarray(mass, dtype=np.float64),
        mass_excess_unc_kev=np.asarray(unc, dtype=np.float64),
        mass_measured=np.asarray(mm, dtype=bool),
        half_life_s=np.asarray(t, dtype=np.float64),
        half_life_measured=np.asarray(tm, dtype=bool),
        is_stable=np.asarray(st, dtype=bool),
    )


def read_charge_radii(path: str | Path | None = None) -> dict[tuple[int, int], tuple[float, float]]:
    """Angeli & Marinova 2013 charge radii: {(Z, N): (radius_fm, unc_fm)} (final values only)."""
    path = Path(path) if path is not None else radii_path()
    out: dict[tuple[int, int], tuple[float, float]] = {}
    with open(path, encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(",")
            if len(fields) < 6:
                raise ValueError(f"{path}:{lineno}: expected 8 comma-separated fields, got {line!r}")
            if not fields[4].strip():
                continue  # only a preliminary value
            try:
                z, n = int(fields[0]), int(fields[2])
                r, dr = float(fields[4]), float(fields[5]) if fields[5].strip() else math.nan
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: bad number in {line!r}") from exc
            if z >= 1 and not (0.5 < r < 7.0):
                raise ValueError(f"{path}:{lineno}: charge radius {r} fm outside 0.5-7 fm")
            out[(z, n)] = (r, dr)
    return out


def derive_observables(
    z: np.ndarray,
    n: np.ndarray,
    mass_excess_kev: np.ndarray,
    mass_measured: np.ndarray | None = None,
    mass_excess_unc_kev: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Binding energies, separation energies and Q values from atomic mass excesses.

    Returns columns ``<name>`` (keV, NaN where a partner nucleus is missing), ``<name>_measured``
    (every mass used is measured) and ``<name>_unc`` (quadrature, correlations ignored).
    """
    z = np.asarray(z, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    delta = np.asarray(mass_excess_kev, dtype=np.float64)
    if not (z.shape == n.shape == delta.shape) or z.ndim != 1:
        raise ValueError(f"z, n and mass excess must be 1-D of one length, got {z.shape}, {n.shape}, {delta.shape}")
    measured = np.ones(z.shape, bool) if mass_measured is None else np.asarray(mass_measured, bool)
    unc = np.zeros(z.shape) if mass_excess_unc_kev is None else np.asarray(mass_excess_unc_kev, float)
    if z.size and (z.min() < 0 or n.min() < 0):
        raise ValueError("z and n must be non-negative")
    # dense (Z, N) -> row index grid (-1 = absent), padded so partner offsets never go out of range
    pad = 3
    grid = np.full((int(z.max(initial=0)) + 2 * pad + 1, int(n.max(initial=0)) + 2 * pad + 1), -1, dtype=np.int64)
    grid[z + pad, n + pad] = np.arange(z.size)
    out: dict[str, np.ndarray] = {}
    b = z * MASS_EXCESS_HYDROGEN_KEV + n * MASS_EXCESS_NEUTRON_KEV - delta
    out["binding_energy_kev"] = b
    out["binding_energy_measured"] = measured.copy()
    out["binding_energy_unc"] = unc.copy()
    out["binding_energy_per_nucleon_kev"] = b / (z + n)
    for name, (terms, const) in _DERIVED.items():
        value = np.full(z.size, float(const))
        meas = np.ones(z.size, bool)
        var = np.zeros(z.size)
        present = np.ones(z.size, bool)
        for dz, dn, coef in terms:
            j = grid[z + dz + pad, n + dn + pad]
            ok = j >= 0
            present &= ok
            jj = np.where(ok, j, 0)
            value += coef * delta[jj]
            meas &= measured[jj]
            var += unc[jj] ** 2
        stem = name.removesuffix("_kev")
        out[name] = np.where(present, value, np.nan)
        out[f"{stem}_measured"] = meas & present
        out[f"{stem}_unc"] = np.where(present, np.sqrt(var), np.nan)
    return out


def data_source() -> str:
    """Where :func:`ground_states` reads from: ``"nucleardatapy"`` (default) or ``"ame:<folder>"``
    when ``$NUCLR_AME_DIR`` names a folder with the published AME/NUBASE files."""
    from nuclr._ame import ame_dir

    folder = ame_dir()
    return "nucleardatapy" if folder is None else f"ame:{folder.resolve()}"


@lru_cache(maxsize=8)
def _ground_states_cached(year: int, radii: bool, source: str = "nucleardatapy") -> pd.DataFrame:
    import pandas as pd

    if source == "nucleardatapy":
        table = read_nubase(year)
        label = f"NUBASE{year} via nucleardatapy"
    else:
        from nuclr._ame import find_ame_file, read_ame_mass

        folder = Path(source.removeprefix("ame:"))
        nubase_file = find_ame_file(folder, year, "nubase")
        mass_file = find_ame_file(folder, year, "mass")
        table = _merge_ame(read_nubase(year, nubase_file), read_ame_mass(mass_file, year))
        label = f"AME{year} ({mass_file.name}) + NUBASE{year} half-lives ({nubase_file.name}) from {folder}"
    cols: dict[str, object] = {
        "z": table.z,
        "n": table.n,
        "a": table.z + table.n,
        "symbol": table.symbol,
        "mass_excess_kev": table.mass_excess_kev,
        "mass_excess_unc_kev": table.mass_excess_unc_kev,
        "mass_measured": table.mass_measured,
    }
    derived = derive_observables(
        table.z, table.n, table.mass_excess_kev, table.mass_measured, table.mass_excess_unc_kev
    )
    for key, value in derived.items():
        if key.endswith("_unc"):
            key = key.removesuffix("_unc") + "_unc_kev"
        cols[key] = value
    if radii:
        rad = _radii_or_empty(source)
        cols["charge_radius_fm"] = np.array([rad.get((a, b), (np.nan, np.nan))[0] for a, b in zip(table.z, table.n)])
        cols["charge_radius_unc_fm"] = np.array([rad.get((a, b), (np.nan, np.nan))[1] for a, b in zip(table.z, table.n)])
        cols["charge_radius_measured"] = np.isfinite(cols["charge_radius_fm"])
    with np.errstate(divide="ignore"):
        t = table.half_life_s
        cols["log10_half_life_s"] = np.where(np.isfinite(t) & (t > 0), np.log10(np.where(t > 0, t, 1.0)), np.nan)
    cols["half_life_measured"] = table.half_life_measured & np.isfinite(cols["log10_half_life_s"])
    cols["is_stable"] = table.is_stable
    frame = pd.DataFrame(cols)
    frame = frame.sort_values(["z", "n"], kind="stable").reset_index(drop=True)
    frame.attrs["source"] = label + ("" if not radii else f"; charge radii: {_radii_label(source)}")
    return frame


def _radii_label(source: str) -> str:
    if os.environ.get(RADII_ENV_VAR):
        return os.environ[RADII_ENV_VAR]
    if source == "nucleardatapy" or importlib.util.find_spec("nucleardatapy") is not None:
        return "Angeli & Marinova 2013 via nucleardatapy"
    return "none (set $NUCLR_RADII_CSV or install nucleardatapy)"


def _radii_or_empty(source: str) -> dict[tuple[int, int], tuple[float, float]]:
    """Charge radii: ``$NUCLR_RADII_CSV`` if set, else nucleardatapy's table, else none (AME backend)."""
    if os.environ.get(RADII_ENV_VAR):
        return read_charge_radii(os.environ[RADII_ENV_VAR])
    if source == "nucleardatapy" or importlib.util.find_spec("nucleardatapy") is not None:
        return read_charge_radii()
    return {}


def _merge_ame(nubase: NubaseTable, mass) -> NubaseTable:
    """NUBASE ground states (half-lives) with the AME table's unrounded masses; every AME nuclide kept."""
    hl = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(nubase.z, nubase.n))}
    idx = np.array([hl.get((int(a), int(b)), -1) for a, b in zip(mass.z, mass.n)])
    has = idx >= 0
    j = np.maximum(idx, 0)
    return NubaseTable(
        year=mass.year, z=mass.z, n=mass.n, symbol=mass.symbol, mass_excess_kev=mass.mass_excess_kev,
        mass_excess_unc_kev=mass.mass_excess_unc_kev, mass_measured=mass.mass_measured,
        half_life_s=np.where(has, nubase.half_life_s[j], np.nan),
        half_life_measured=has & nubase.half_life_measured[j], is_stable=has & nubase.is_stable[j])


def ground_states(year: int = 2020, *, radii: bool = True) -> pd.DataFrame:
    """Table of ground states with derived observables (one row per nuclide, sorted by Z, N).

    Columns: ``z, n, a, symbol, mass_excess_kev, mass_excess_unc_kev, mass_measured``,
    ``binding_energy_kev`` and ``binding_energy_per_nucleon_kev``, ``s_n_kev, s_p_kev, s_2n_kev,
    s_2p_kev, q_alpha_kev, q_beta_minus_kev, q_ec_kev, q_beta_minus_n_kev`` each with
    ``<stem>_measured`` and ``<stem>_unc_kev``, ``charge_radius_fm`` (+ ``_unc_fm``, ``_measured``;
    Angeli 2013, only with ``radii=True``), ``log10_half_life_s`` (NaN for stable nuclei, bounds and
    particle-unstable states), ``half_life_measured``, ``is_stable``. A copy is returned.

    Backend: the NUBASE files shipped by ``nucleardatapy`` (CC BY-NC-ND), or, when the environment
    variable ``NUCLR_AME_DIR`` names a folder holding the published AME/NUBASE files (``mass.mas20``
    + ``nubase_1.mas20``, or ``mass16.txt`` + ``nubase2016.txt``; directly or in ``ame2020/``,
    ``ame2016/``), those files: unrounded AME masses and NUBASE half-lives. See ``frame.attrs["source"]``.
    """
    if year not in NUBASE_YEARS:
        raise ValueError(f"NUBASE year must be one of {NUBASE_YEARS}, got {year!r}")
    return _ground_states_cached(year, radii, data_source()).copy()


def lookup(frame: pd.DataFrame, z: object, n: object) -> pd.Series:
    """Row of (Z, N) in a ground-state table; a clear error when it is not there."""
    zi, ni = check_nucleus(z, n)
    hit = frame[(frame["z"] == zi) & (frame["n"] == ni)]
    if hit.empty:
        zmax, nmax = int(frame["z"].max()), int(frame["n"].max())
        raise NuclideError(
            f"nucleus Z={zi}, N={ni} is not in the table ({len(frame)} nuclides, Z 0-{zmax}, N 0-{nmax})"
        )
    return hit.iloc[0]


def is_extrapolation(z: object, n: object, measured: set[tuple[int, int]]) -> bool:
    """True when (Z, N) is neither measured nor has a measured nearest neighbour (Z+-1 or N+-1)."""
    zi, ni = check_nucleus(z, n)
    if (zi, ni) in measured:
        return False
    return not any((zi + dz, ni + dn) in measured for dz, dn in ((1, 0), (-1, 0), (0, 1), (0, -1)))
