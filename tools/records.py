"""Result records: the committed JSON every published number is rendered from.

A *payload* is what an experiment computes (written by the package's command)::

    {"experiment": "kfold", "seeds": [0, 1], "config": {...}, "metrics": {...},
     "tables": [{"name": "main", "caption": "...", "columns": [...], "rows": [[...]],
                 "formats": {"column": ".1f"}}]}

A *record* is a payload stamped with its provenance: the exact command, the git commit (and
whether the tree had uncommitted changes), the date, the machine (CPU, GPU, threads), the
versions of the workspace packages and of the libraries they rest on, a status (ok, failed,
timeout, partial) and the wall time. Records are small; checkpoints and arrays stay out of git.

Use it from Python (tools/bench/*.py, tools/reproduce.py, tools/gpu_campaign.py)::

    from records import write_record
    write_record("packages/nuclr/results/kfold.json", payload, package="nuclr")

or wrap any command that writes a payload file::

    python tools/records.py run --record packages/nuclr/results/kfold.json \\
        --payload /tmp/kfold/record.json -- nuclr evaluate --out /tmp/kfold

It needs nothing but the standard library, so it also runs on the GPU machine (no uv there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "lipschitz-lab/record/1"
STATUSES = ("ok", "partial", "failed", "timeout", "historical")
# Libraries whose version changes a number; recorded when importable metadata has them.
LIBRARIES = ("torch", "numpy", "scipy", "scikit-learn", "pandas", "pot", "geomloss", "transformers", "catboost")


class RecordError(ValueError):
    """A payload or record that cannot be rendered faithfully."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The commit the tree is at and whether it has uncommitted changes.

    Where the tree is a copy without git (a GPU machine), ``LAB_GIT_COMMIT`` names the commit the
    copy was made from; otherwise both are None.
    """
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    if commit is None and os.environ.get("LAB_GIT_COMMIT"):
        return {"commit": os.environ["LAB_GIT_COMMIT"], "dirty": None}
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU model, cores, torch threads, GPU model (when torch sees one), OS and Python."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "gpu": None,
    }
    torch = sys.modules.get("torch")  # never import torch only to describe the machine
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    if info["gpu"] is None and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            info["gpu"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return info


def _pyproject_versions() -> dict[str, str]:
    versions = {}
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if "name" in project and "version" in project:
            versions[project["name"]] = project["version"]
    return versions


def versions() -> dict[str, str]:
    """Workspace package versions (from their pyproject, so it works without installation) and library versions."""
    from importlib.metadata import PackageNotFoundError, version

    found = _pyproject_versions()
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _finite_json(value: Any, where: str) -> Any:
    """NaN or infinity must not pass silently into a record: they become strings that say so."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _finite_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def validate_payload(payload: dict[str, Any], source: str = "payload") -> None:
    """Check the keys render_results relies on; raise RecordError naming what is wrong."""
    if not isinstance(payload, dict):
        raise RecordError(f"{source}: a payload is a JSON object, got {type(payload).__name__}")
    tables = payload.get("tables", [])
    if not isinstance(tables, list):
        raise RecordError(f"{source}: 'tables' must be a list")
    names = set()
    for index, table in enumerate(tables):
        where = f"{source}: tables[{index}]"
        if not isinstance(table, dict) or "columns" not in table or "rows" not in table:
            raise RecordError(f"{where} needs 'columns' and 'rows'")
        name = table.get("name", str(index))
        if name in names:
            raise RecordError(f"{where}: table name {name!r} used twice")
        names.add(name)
        width = len(table["columns"])
        for r, row in enumerate(table["rows"]):
            if not isinstance(row, list) or len(row) != width:
                raise RecordError(f"{where}.rows[{r}] has {len(row) if isinstance(row, list) else '?'} cells, columns has {width}")
        unknown = set(table.get("formats", {})) - set(table["columns"])
        if unknown:
            raise RecordError(f"{where}: formats name unknown columns {sorted(unknown)}")


def make_record(
    payload: dict[str, Any],
    *,
    command: list[str] | str | None = None,
    package: str | None = None,
    status: str = "ok",
    seconds: float | None = None,
) -> dict[str, Any]:
    """Stamp ``payload`` with its provenance; the payload's own keys are kept as they are."""
    if status not in STATUSES:
        raise RecordError(f"status must be one of {STATUSES}, got {status!r}")
    validate_payload(payload)
    if command is None:
        command = [Path(sys.argv[0]).name if sys.argv[0] else "python", *sys.argv[1:]]
    command_text = command if isinstance(command, str) else shlex.join(command)
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "experiment": payload.get("experiment"),
        "package": package,
        "status": status,
        "command": command_text,
        **git_state(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "versions": versions(),
        "seconds": None if seconds is None else round(seconds, 1),
    }
    for key, value in payload.items():
        record.setdefault(key, value)
    record.setdefault("seeds", None)
    record.setdefault("config", None)
    return _finite_json(record, "record")


def write_record(path: str | Path, payload: dict[str, Any], **stamp: Any) -> dict[str, Any]:
    """Make the record (see :func:`make_record`) and write it atomically to ``path``; return it."""
    path = Path(path)
    if not path.is_absolute():
        path = ROOT / path
    record = make_record(payload, **stamp)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    return record


def read_payload(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: the command wrote no payload there") from None
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not valid JSON ({err})") from None
    validate_payload(payload, str(path))
    return payload


def _package_of(record_path: Path) -> str | None:
    parts = record_path.resolve().relative_to(ROOT).parts if record_path.resolve().is_relative_to(ROOT) else ()
    return parts[1] if len(parts) > 2 and parts[0] == "packages" else None


def _cmd_run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("records.py run: error: no command given after --", file=sys.stderr)
        return 2
    start = time.perf_counter()
    code = subprocess.call(command)
    seconds = time.perf_counter() - start
    status = "ok" if code == 0 else "failed"
    try:
        payload = read_payload(args.payload)
    except RecordError as err:
        print(f"records.py run: error: {err}", file=sys.stderr)
        return 2 if code == 0 else code
    record_path = args.record if args.record.is_absolute() else Path.cwd() / args.record
    write_record(record_path, payload, command=command, package=args.package or _package_of(record_path), status=status, seconds=seconds)
    print(f"wrote {args.record} ({status}, {seconds:.0f} s)")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stamp result payloads with their provenance.")
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="run a command, then stamp the payload it wrote into a record")
    run.add_argument("--record", type=Path, required=True, help="the record to write (e.g. packages/X/results/Y.json)")
    run.add_argument("--payload", type=Path, required=True, help="the payload JSON the command writes")
    run.add_argument("--package", default=None, help="package name (default: from the record's path)")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    return _cmd_run(args)


if __name__ == "__main__":
    raise SystemExit(main())
