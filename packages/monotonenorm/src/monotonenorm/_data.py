"""Loaders for the papers' tabular benchmarks (COMPAS, Heart, AutoMPG) from a data folder.

Nothing is downloaded: pass the folder that holds ``compas_scores_two_years.csv``,
``heart_train.csv``/``heart_test.csv`` and ``auto-mpg.csv`` (in this workspace
``../shared/data/monotonic``). Only the standard library's csv module is used.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TabularDataset:
    """Raw (unscaled) features, the published split, and the monotone specification."""

    name: str
    task: str  # "binary" or "regression"
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    monotonic_constraints: tuple[int, ...]
    train_index: np.ndarray | None  # the papers' fixed split, or None (random split per seed)
    test_index: np.ndarray | None
    n_numeric: int  # the first n_numeric columns are numeric; the rest are one-hot


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; pass the folder holding the monotonic benchmark CSVs (e.g. ../shared/data/monotonic)"
        )
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"{path} is empty")
    return rows[0], rows[1:]


def _column(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        raise ValueError(f"{path}: expected a column {name!r}, found {header[:12]}...")
    return header.index(name)  # first occurrence (the COMPAS file repeats some names)


def _number(text: str, path: Path, row: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: row {row + 2}, column {column!r}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}: row {row + 2}, column {column!r}: non-finite value {text!r}")
    return value


def load_compas(folder: str | Path) -> TabularDataset:
    """COMPAS two-year recidivism with the ProPublica filter (6,172 rows) and the papers' split.

    Features: priors_count, juv_fel_count, juv_misd_count, juv_other_count (all +), age, then
    race (6) and sex (2) one-hot = 13. Split: rows shuffled by ``np.random.seed(78712)``, first
    80 % train (4,937), rest test (1,235), as in Liu et al. 2020 and the LMN code.
    """
    path = Path(folder) / "compas_scores_two_years.csv"
    header, rows = _read(path)
    col = {n: _column(header, n, path) for n in (
        "days_b_screening_arrest", "is_recid", "c_charge_degree", "score_text", "priors_count",
        "juv_fel_count", "juv_misd_count", "juv_other_count", "age", "race", "sex", "two_year_recid")}
    races = ["African-American", "Hispanic", "Asian", "Caucasian", "Native American", "Other"]
    sexes = ["Male", "Female"]
    X, y = [], []
    for i, r in enumerate(rows):
        days = r[col["days_b_screening_arrest"]]
        if days == "" or abs(float(days)) > 30 or r[col["is_recid"]] == "-1":
            continue
        if r[col["c_charge_degree"]] == "O" or r[col["score_text"]] == "N/A":
            continue
        numeric = [_number(r[col[n]], path, i, n) for n in ("priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count", "age")]
        race, sex = r[col["race"]], r[col["sex"]]
        if race not in races or sex not in sexes:
            raise ValueError(f"{path}: row {i + 2}: unexpected race {race!r} or sex {sex!r}")
        onehot = [float(race == v) for v in races] + [float(sex == v) for v in sexes]
        X.append(numeric + onehot)
        y.append(int(_number(r[col["two_year_recid"]], path, i, "two_year_recid")))
    X_arr, y_arr = np.asarray(X), np.asarray(y)
    order = np.arange(len(y_arr))
    np.random.RandomState(78712).shuffle(order)  # the legacy global-seed shuffle of the original code
    n_train = int(len(order) * 0.8)
    names = ("priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count", "age") + tuple(
        f"race={v}" for v in races) + tuple(f"sex={v}" for v in sexes)
    return TabularDataset("COMPAS", "binary", X_arr, y_arr, names, (1, 1, 1, 1) + (0,) * 9, order[:n_train], order[n_train:], 5)


def load_heart(folder: str | Path) -> TabularDataset:
    """UCI Heart (Cleveland) with the COMET/LMN split (242 train / 61 test); trestbps and chol increasing."""
    X_parts, y_parts, sizes = [], [], []
    names: tuple[str, ...] = ()
    for split in ("train", "test"):
        path = Path(folder) / f"heart_{split}.csv"
        header, rows = _read(path)
        names = tuple(header[1:-1])
        if header[-1] != "target" or "trestbps" not in names or "chol" not in names:
            raise ValueError(f"{path}: expected columns index, ..., trestbps, chol, ..., target; got {header}")
        values = np.array([[_number(v, path, i, header[j + 1]) for j, v in enumerate(r[1:])] for i, r in enumerate(rows)])
        X_parts.append(values[:, :-1])
        y_parts.append(values[:, -1].astype(int))
        sizes.append(len(values))
    X, y = np.vstack(X_parts), np.concatenate(y_parts)
    constraints = tuple(1 if n in ("trestbps", "chol") else 0 for n in names)
    idx = np.arange(len(y))
    return TabularDataset("Heart", "binary", X, y, names, constraints, idx[: sizes[0]], idx[sizes[0]:], X.shape[1])


def load_auto_mpg(folder: str | Path) -> TabularDataset:
    """Auto MPG (392 rows after dropping unknown horsepower); mpg decreasing in displacement, horsepower, weight.

    No fixed split: the LMN code draws a random 80/20 split per seed.
    """
    path = Path(folder) / "auto-mpg.csv"
    header, rows = _read(path)
    names = ("cylinders", "displacement", "horsepower", "weight", "acceleration", "model year", "origin")
    cols = [_column(header, n, path) for n in names]
    target = _column(header, "mpg", path)
    X, y = [], []
    for i, r in enumerate(rows):
        if r[cols[2]] == "?":
            continue
        X.append([_number(r[c], path, i, n) for c, n in zip(cols, names)])
        y.append(_number(r[target], path, i, "mpg"))
    return TabularDataset("AutoMPG", "regression", np.asarray(X), np.asarray(y), names, (0, -1, -1, -1, 0, 0, 0), None, None, 7)


LOADERS = {"compas": load_compas, "heart": load_heart, "autompg": load_auto_mpg}
