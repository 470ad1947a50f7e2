"""Run records: config + argv + versions + seed, atomic JSON, safetensors checkpoints."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> Path:
    atomic_write_text(path, json.dumps(data, indent=2, default=_default) + "\n")
    return path


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("grokking-theory", "torch", "numpy", "lipschitz-core"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_run_record(out: Path, *, config: dict[str, Any], seed: int, device: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
    write_json(out / "run.json", {"argv": sys.argv, "seed": seed, "device": device, "versions": versions()})


def save_checkpoint(path: Path, tensors: dict[str, Any], metadata: dict[str, Any]) -> Path:
    """safetensors file (tensors) with the JSON metadata inside and beside it; written atomically."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"config": json.dumps(metadata)})
    os.replace(tmp, path)
    write_json(path.with_suffix(".json"), metadata)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    if not Path(path).exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return load_file(str(path))


def progress_bar(iterable: Any = None, *, enabled: bool, desc: str, total: int | None = None) -> Any:
    """tqdm on a terminal only: ``disable=None`` turns it off when stderr is not a tty, so piped
    output never fills a log with carriage-return frames. With ``enabled`` and a pipe, one line
    goes to stderr when the stage starts instead."""
    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        print(f"[grokking-theory] {desc} ...", file=sys.stderr, flush=True)
    return tqdm(iterable, total=total, desc=desc, leave=False, disable=None if enabled else True)
