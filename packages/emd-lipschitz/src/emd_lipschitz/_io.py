"""CSV loading with validation, run records (config + argv + versions + seed), atomic writes."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
from dataclasses import asdict, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

WEIGHT_COLUMNS = ("weight", "w", "pt", "energy", "e")


def read_cloud_csv(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``x,y[,weight][,event]`` columns (header required) -> {event id: (points [n, 2], weights [n])}.

    Without a weight column every point weighs 1/n; without an event column the file is one event "0".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise ValueError(f"{path}: empty file; expected a header with columns x,y and optionally weight, event")
        fields = [f.strip().lower() for f in reader.fieldnames]
        if "x" not in fields or "y" not in fields:
            raise ValueError(f"{path}: header {reader.fieldnames} lacks the columns 'x' and 'y' (expected x,y[,weight][,event])")
        weight_col = next((c for c in WEIGHT_COLUMNS if c in fields), None)
        groups: dict[str, list[tuple[float, float, float]]] = {}
        for line, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): v for k, v in raw.items() if k is not None}
            values = []
            for col in ("x", "y") + ((weight_col,) if weight_col else ()):
                try:
                    v = float(row[col])
                except (TypeError, ValueError):
                    raise ValueError(f"{path}, line {line}, column {col!r}: {row.get(col)!r} is not a number") from None
                if not math.isfinite(v):
                    raise ValueError(f"{path}, line {line}, column {col!r}: {v} is not finite")
                values.append(v)
            w = values[2] if weight_col else math.nan
            if weight_col and w < 0:
                raise ValueError(f"{path}, line {line}, column {weight_col!r}: negative weight {w}")
            groups.setdefault(str(row.get("event", "0")).strip(), []).append((values[0], values[1], w))
    if not groups:
        raise ValueError(f"{path}: no data rows")
    out = {}
    for key, rows in groups.items():
        arr = np.array(rows, dtype=np.float64)
        weights = arr[:, 2] if weight_col else np.full(len(arr), 1.0 / len(arr))
        if weights.sum() <= 0:
            raise ValueError(f"{path}: event {key!r} has zero total weight")
        out[key] = (arr[:, :2], weights)
    return out


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("emd-lipschitz", "lipschitz-core", "torch", "numpy", "pot"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonable(obj: object) -> object:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_run_record(out_dir: Path, *, config: object, seed: int, extra: dict | None = None) -> None:
    """``run.json``: config, command line, package versions and seed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": _jsonable(config), "argv": sys.argv, "versions": versions(), "seed": seed, **(_jsonable(extra or {}))}
    atomic_write_text(out_dir / "run.json", json.dumps(record, indent=2))


def write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(_jsonable(data), indent=2))
