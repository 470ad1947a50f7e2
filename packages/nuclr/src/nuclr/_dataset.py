"""Long-format multi-task dataset: one row per (nucleus, task) with a measured target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nuclr._physics import read_theory_table, semf_binding_kev

if TYPE_CHECKING:
    import pandas as pd

# task name -> (column in the ground-state table, column of its "measured" flag, unit)
TASK_COLUMNS: dict[str, tuple[str, str, str]] = {
    "binding": ("binding_energy_kev", "binding_energy_measured", "keV"),
    "s_n": ("s_n_kev", "s_n_measured", "keV"),
    "s_p": ("s_p_kev", "s_p_measured", "keV"),
    "s_2n": ("s_2n_kev", "s_2n_measured", "keV"),
    "s_2p": ("s_2p_kev", "s_2p_measured", "keV"),
    "q_alpha": ("q_alpha_kev", "q_alpha_measured", "keV"),
    "q_beta_minus": ("q_beta_minus_kev", "q_beta_minus_measured", "keV"),
    "q_ec": ("q_ec_kev", "q_ec_measured", "keV"),
    "q_beta_minus_n": ("q_beta_minus_n_kev", "q_beta_minus_n_measured", "keV"),
    "charge_radius": ("charge_radius_fm", "charge_radius_measured", "fm"),
    "log10_half_life": ("log10_half_life_s", "half_life_measured", "log10 s"),
}
DEFAULT_TASKS = (
    "binding", "s_n", "s_p", "s_2n", "s_2p", "q_alpha", "q_beta_minus", "q_ec", "q_beta_minus_n", "charge_radius",
)


# Which atomic masses a task's target is computed from: (dZ, dN, coefficient) on the mass excesses
# Delta(Z + dZ, N + dN), plus a constant (keV). Charge radius and half-life use no mass.
_MASS_TASK_COLUMN = {task: col for task, (col, _, unit) in TASK_COLUMNS.items() if unit == "keV"}


def mass_formula(task: str) -> tuple[tuple[tuple[int, int, float], ...], float]:
    """Mass-excess terms ``((dZ, dN, coef), ...)`` and constant (keV) of a task's target.

    ``binding`` is ``B = Z Delta_H + N Delta_n - Delta(Z, N)``, written here as the single term
    ``(0, 0, -1)`` with a constant that depends on (Z, N) (see :func:`mass_terms_constant_kev`).
    Tasks that use no mass (charge radius, half-life) return ``((), 0.0)``.
    """
    from nuclr._data import _DERIVED

    if task not in TASK_COLUMNS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASK_COLUMNS)}")
    if task == "binding":
        return ((0, 0, -1.0),), 0.0
    col = _MASS_TASK_COLUMN.get(task)
    if col is None:
        return (), 0.0
    terms, const = _DERIVED[col]
    return tuple((int(a), int(b), float(c)) for a, b, c in terms), float(const)


def mass_partners(task: str) -> tuple[tuple[int, int], ...]:
    """Offsets (dZ, dN) of every nucleus whose mass enters the task's target (empty: no mass)."""
    return tuple((dz, dn) for dz, dn, _ in mass_formula(task)[0])


def binding_formula(task: str, z: np.ndarray, n: np.ndarray) -> tuple[list[tuple[int, int, float]], np.ndarray]:
    """The task's target as ``K(Z, N) + sum_i c_i B(Z + dZ_i, N + dN_i)`` (binding energies, keV).

    Returns the terms ``[(dZ, dN, c), ...]`` and the constant ``K`` per row; obtained by
    substituting ``Delta = Z Delta_H + N Delta_n - B`` into :func:`mass_formula`.
    """
    from nuclr._data import MASS_EXCESS_HYDROGEN_KEV, MASS_EXCESS_NEUTRON_KEV

    z = np.asarray(z, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if task == "binding":
        return [(0, 0, 1.0)], np.zeros(z.shape)
    terms, const = mass_formula(task)
    k = np.full(z.shape, const)
    for dz, dn, c in terms:
        k += c * ((z + dz) * MASS_EXCESS_HYDROGEN_KEV + (n + dn) * MASS_EXCESS_NEUTRON_KEV)
    return [(dz, dn, -c) for dz, dn, c in terms], k


def check_tasks(tasks: tuple[str, ...]) -> tuple[str, ...]:
    """Validate task names: distinct, non-empty, each a key of ``TASK_COLUMNS``."""
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in TASK_COLUMNS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be distinct names from {list(TASK_COLUMNS)}, got {list(tasks)}")
    return tasks


@dataclass
class TaskRows:
    """Rows (z, n, task index, physical target) plus the offset a physics prior contributes.

    The network learns ``target_internal = (value - prior) / scale_per_row``: for binding the prior
    is the semi-empirical formula (NuCLR coefficients) or a theory table and the row scale is A
    (a per-nucleon residual); other tasks use a theory table's value in residual mode, else 0.
    """

    z: np.ndarray
    n: np.ndarray
    task: np.ndarray
    value: np.ndarray
    prior: np.ndarray
    per_row_scale: np.ndarray
    tasks: tuple[str, ...]
    nucleus_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.z.size)

    @property
    def internal(self) -> np.ndarray:
        return (self.value - self.prior) / self.per_row_scale

    def subset(self, mask: np.ndarray) -> TaskRows:
        return TaskRows(self.z[mask], self.n[mask], self.task[mask], self.value[mask], self.prior[mask],
                        self.per_row_scale[mask], self.tasks, self.nucleus_id[mask])


def priors(
    z: np.ndarray, n: np.ndarray, task_names: list[str], residual_table: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(prior, per-row scale) of each (z, n, task) row."""
    z = np.asarray(z)
    n = np.asarray(n)
    prior = np.zeros(z.size)
    scale = np.ones(z.size)
    names = np.asarray(task_names)
    is_b = names == "binding"
    scale[is_b] = (z + n)[is_b]
    if residual_table is None:
        prior[is_b] = semf_binding_kev(z[is_b], n[is_b])
        return prior, scale
    table = read_theory_table(residual_table)
    for task in set(task_names):
        col = TASK_COLUMNS[task][0]
        sel = names == task
        if task in ("charge_radius", "log10_half_life"):
            continue
        vals = table.lookup(z[sel], n[sel], col)
        prior[sel] = vals
    return prior, scale


def build_rows(
    frame: pd.DataFrame,
    tasks: tuple[str, ...],
    *,
    min_z: int = 8,
    min_n: int = 8,
    measured_only: bool = True,
    residual_table: str | None = None,
) -> TaskRows:
    """All (nucleus, task) rows of ``frame`` with a finite (and, by default, measured) target.

    Nuclei enter when Z >= min_z and N >= min_n and their mass is measured (or any mass with
    ``measured_only=False``, which also admits ``#`` targets). In residual mode rows whose theory
    value is missing are dropped.
    """
    tasks = check_tasks(tasks)
    keep = (frame["z"] >= min_z) & (frame["n"] >= min_n)
    if measured_only:
        keep &= frame["mass_measured"]
    sub = frame[keep]
    zs, ns, ts, vs = [], [], [], []
    for k, task in enumerate(tasks):
        col, flag, _ = TASK_COLUMNS[task]
        if col not in sub:
            raise ValueError(f"task {task!r} needs column {col!r}, which the table lacks")
        ok = np.isfinite(sub[col].to_numpy(dtype=float))
        if measured_only:
            ok &= sub[flag].to_numpy(dtype=bool)
        zs.append(sub["z"].to_numpy()[ok])
        ns.append(sub["n"].to_numpy()[ok])
        ts.append(np.full(ok.sum(), k))
        vs.append(sub[col].to_numpy(dtype=float)[ok])
    z = np.concatenate(zs).astype(np.int64)
    n = np.concatenate(ns).astype(np.int64)
    t = np.concatenate(ts).astype(np.int64)
    v = np.concatenate(vs)
    prior, scale = priors(z, n, [tasks[i] for i in t], residual_table)
    good = np.isfinite(prior)
    nucleus_id = z * 1000 + n
    rows = TaskRows(z, n, t, v, prior, scale, tasks, nucleus_id)
    return rows.subset(good)
