"""Physics baselines: the theory mass tables shipped by nucleardatapy and a fitted semi-empirical formula."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from nuclr._data import (
    MASS_EXCESS_HYDROGEN_KEV,
    MASS_EXCESS_NEUTRON_KEV,
    _package_data,
    derive_observables,
)

# name -> (file in nucleardatapy data/nuclei/masses/Theory, column of the mass excess in MeV,
#          column of the charge radius in fm or None). FRDM2012 and HFB-31 are not shipped.
THEORY_TABLES: dict[str, tuple[str, int, int | None]] = {
    "FRDM1995": ("1995-FRDM.txt", 2, None),
    "DZ1995": ("1995-DZ.txt", 2, None),
    "KTUY05": ("2005-KTUY.txt", 2, None),
    "HFB14": ("2007-HFB14.txt", 2, None),
    "HFB24": ("2013-HFB24.txt", 2, None),
    "HFB26": ("2013-HFB26.txt", 2, None),
    "WS3": ("2011-WS3.txt", 2, None),
    "BSkG1": ("2021-BSkG1.txt", 3, 12),
    "BSkG2": ("2022-BSkG2.txt", 3, 12),
    "BSkG3": ("2023-BSkG3.txt", 3, 14),
    "BSkG4": ("2025-BSkG4.txt", 3, 14),
}
DEFAULT_THEORY = ("FRDM1995", "DZ1995", "HFB26", "WS3", "BSkG3")


@dataclass(frozen=True)
class TheoryTable:
    """A theory table as numpy columns: mass excess in keV and derived observables."""

    name: str
    z: np.ndarray
    n: np.ndarray
    mass_excess_kev: np.ndarray
    charge_radius_fm: np.ndarray
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def observables(self) -> dict[str, np.ndarray]:
        """Binding energy, S and Q values of the table's own masses (keV); computed once."""
        if "obs" not in self._cache:
            self._cache["obs"] = derive_observables(self.z, self.n, self.mass_excess_kev)
        return self._cache["obs"]

    def lookup(self, z: np.ndarray, n: np.ndarray, column: str) -> np.ndarray:
        """Values of ``column`` (an observable or ``charge_radius_fm``) at (z, n); NaN if absent."""
        values = self.charge_radius_fm if column == "charge_radius_fm" else self.observables()[column]
        if "index" not in self._cache:
            self._cache["index"] = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(self.z, self.n))}
        index = self._cache["index"]
        pos = np.array([index.get((int(a), int(b)), -1) for a, b in zip(z, n)], dtype=np.int64)
        out = np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)
        return out.astype(np.float64)


@lru_cache(maxsize=32)
def read_theory_table(name: str) -> TheoryTable:
    """Read one of :data:`THEORY_TABLES` from nucleardatapy's files (CR line endings handled; cached)."""
    if name not in THEORY_TABLES:
        raise ValueError(f"unknown theory table {name!r}; expected one of {sorted(THEORY_TABLES)}")
    fname, mcol, rcol = THEORY_TABLES[name]
    path = _package_data("masses", "Theory", fname)
    text = path.read_bytes().decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    z, n, m, r = [], [], [], []
    for lineno, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            z.append(int(fields[0]))
            n.append(int(fields[1]))
            m.append(float(fields[mcol]) * 1000.0)
            rv = float(fields[rcol]) if rcol is not None and fields[rcol] not in ("-", "") else np.nan
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{path}:{lineno}: cannot parse Z, N, mass excess from {line!r}") from exc
        r.append(rv if 0.5 < rv < 7.0 else np.nan)
    if not z:
        raise ValueError(f"{path}: empty theory table")
    return TheoryTable(name, np.array(z), np.array(n), np.array(m), np.array(r))


def semf_features(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Liquid-drop terms (volume, surface, Coulomb, asymmetry, pairing) in units where coef = MeV."""
    z = np.asarray(z, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    a = z + n
    pairing = np.where((z % 2 == 0) & (n % 2 == 0), 1.0, np.where((z % 2 == 1) & (n % 2 == 1), -1.0, 0.0))
    return np.stack(
        [a, -(a ** (2 / 3)), -z * (z - 1) / a ** (1 / 3), -((n - z) ** 2) / a, pairing / np.sqrt(a)],
        axis=1,
    )


SEMF_TERMS = ("volume", "surface", "coulomb", "asymmetry", "pairing")
# Coefficients (MeV) used by the NuCLR code for its binding_semf target (not fitted here).
SEMF_NUCLR_COEFFICIENTS = np.array([15.75, 17.8, 0.711, 23.7, 11.18])


def semf_binding_kev(z: np.ndarray, n: np.ndarray, coefficients: np.ndarray = SEMF_NUCLR_COEFFICIENTS) -> np.ndarray:
    """Semi-empirical binding energy B(Z, N) in keV for the given coefficients (MeV)."""
    return semf_features(z, n) @ np.asarray(coefficients, dtype=np.float64) * 1000.0


@dataclass(frozen=True)
class SemfFit:
    """Least-squares semi-empirical mass formula (five coefficients in MeV)."""

    coefficients: np.ndarray

    @classmethod
    def fit(cls, z: np.ndarray, n: np.ndarray, binding_energy_kev: np.ndarray) -> SemfFit:
        y = np.asarray(binding_energy_kev, dtype=np.float64) / 1000.0
        if not np.all(np.isfinite(y)):
            raise ValueError("SEMF fit: binding energies contain NaN or inf")
        coef, *_ = np.linalg.lstsq(semf_features(z, n), y, rcond=None)
        return cls(coef)

    def binding_energy_kev(self, z: np.ndarray, n: np.ndarray) -> np.ndarray:
        return semf_binding_kev(z, n, self.coefficients)

    def mass_excess_kev(self, z: np.ndarray, n: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        n = np.asarray(n)
        return z * MASS_EXCESS_HYDROGEN_KEV + n * MASS_EXCESS_NEUTRON_KEV - self.binding_energy_kev(z, n)


def semf_grid_observables(semf: SemfFit, z: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """Observables of the SEMF at (z, n), computed on a grid that contains every partner nucleus."""
    z = np.asarray(z)
    n = np.asarray(n)
    zz, nn = np.meshgrid(np.arange(0, z.max() + 3), np.arange(0, n.max() + 3), indexing="ij")
    zz, nn = zz.ravel(), nn.ravel()
    keep = zz + nn > 0
    zz, nn = zz[keep], nn[keep]
    obs = derive_observables(zz, nn, semf.mass_excess_kev(zz, nn))
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(zz, nn))}
    pos = np.array([index[(int(a), int(b))] for a, b in zip(z, n)])
    return {k: v[pos] for k, v in obs.items()}
