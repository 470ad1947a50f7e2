"""Sweeps that survive being killed: one atomically written file per finished cell, resume by
config hash, sharding across processes or cluster array jobs, and a merge of the shards.

Layout of a sweep folder::

    sweep.json            what the sweep is (kind, grid, base config, seeds, lag): the same in every shard
    cells/<key>.json      one finished cell: its config hash and its results (written tmp + rename)
    phase_diagram.json    the assembled diagram, once every cell is present (or after ``merge``)

A cell's hash is the SHA-256 of its full run configuration (base config with the cell's values
filled in), so ``--resume`` reruns a cell whose config changed (another budget, another seed) and
skips it only when the stored result is for exactly the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grokking_theory._io import write_json


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of a JSON-serialisable config, key order independent."""
    text = json.dumps(config, sort_keys=True, default=float, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_out_dir(path: Path | str, flag: str = "--out") -> Path:
    """Create ``path`` (with parents) and prove it writable with a probe file, before any work.

    Raises ``ValueError`` naming the flag and the folder (a path through a file, a read-only or
    permission-denied location) instead of a traceback after hours of training.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"{flag} {path} is not a writable folder: {reason}") from None
    return path


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N (K as in a 0-based array-job index); None -> (0, 1)."""
    if text is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"--shard must look like K/N (e.g. 0/4), got {text!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard K/N needs N >= 1 and 0 <= K < N, got {text!r}")
    return k, n


def parse_seeds(text: str) -> list[int]:
    """``"58,59,60"`` -> [58, 59, 60]; a clear error for anything that is not a list of integers."""
    parts = [s.strip() for s in text.split(",")]
    if not any(parts):
        raise ValueError("--seeds is empty: give comma-separated integers, e.g. 58,59,60")
    seeds = []
    for s in parts:
        if not s:
            continue
        try:
            seeds.append(int(s))
        except ValueError:
            raise ValueError(f"--seeds must be comma-separated integers, got {text!r} ({s!r} is not one)") from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds lists a seed twice: {text!r}")
    return seeds


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep: its file key, its config hash and its position/values."""

    key: str
    hash: str
    index: int
    values: dict[str, Any]


class SweepStore:
    """The on-disk state of one sweep folder (see the module docstring)."""

    def __init__(self, out: Path | str, meta: dict[str, Any]) -> None:
        self.out = Path(out)
        self.meta = meta
        self.cells_dir = self.out / "cells"

    def start(self) -> None:
        """Write ``sweep.json``; refuse a folder that holds a different sweep."""
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        path = self.out / "sweep.json"
        if path.exists():
            old = read_json(path)
            if config_hash(old.get("grid", {})) != config_hash(self.meta.get("grid", {})):
                raise ValueError(
                    f"{self.out} holds a different sweep (its sweep.json has another grid); "
                    "use a new --out folder"
                )
        write_json(path, self.meta)

    def done(self, cells: Sequence[Cell]) -> dict[str, dict[str, Any]]:
        """Finished cells among ``cells`` whose stored hash equals the expected one."""
        found = {}
        for c in cells:
            rec = load_cell(self.cells_dir / f"{c.key}.json")
            if rec is not None and rec.get("hash") == c.hash:
                found[c.key] = rec
        return found

    def write(self, cell: Cell, result: dict[str, Any]) -> None:
        """Write one finished cell atomically."""
        write_json(self.cells_dir / f"{cell.key}.json", {"hash": cell.hash, **cell.values, **result})


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def load_cell(path: Path) -> dict[str, Any] | None:
    """A cell file, or None if absent or unreadable (a half-written file is never renamed into place)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def collect_cells(folders: Sequence[Path], cells: Sequence[Cell]) -> tuple[dict[str, dict], list[Cell]]:
    """Finished cells found in any of ``folders`` (matching hash) and the cells still missing."""
    found: dict[str, dict] = {}
    for folder in folders:
        found.update({k: v for k, v in SweepStore(folder, {}).done(cells).items() if k not in found})
    return found, [c for c in cells if c.key not in found]


class CellWriter:
    """Picklable ``on_finish(index, result)`` callback: maps a batch index to its cell and writes it.

    ``after`` (optional, in-process only) runs after a write, e.g. to refresh a progress payload,
    at most once every ``min_interval`` seconds (the caller refreshes once more at the end).
    """

    def __init__(self, out: Path, meta: dict[str, Any], cells: Sequence[Cell],
                 after: Callable[[], None] | None = None, min_interval: float = 5.0) -> None:
        self.out, self.meta, self.cells, self.after = Path(out), meta, list(cells), after
        self.min_interval, self._last = min_interval, float("-inf")

    def __call__(self, index: int, result: dict[str, Any]) -> None:
        SweepStore(self.out, self.meta).write(self.cells[index], result)
        now = time.monotonic()
        if self.after is not None and now - self._last >= self.min_interval:
            self._last = now
            self.after()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "after": None}  # closures stay in the parent process
