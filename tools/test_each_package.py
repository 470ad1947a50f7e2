"""Run each package's tests in an environment holding only that package, its declared
dependencies and the dev group, so an undeclared dependency fails here instead of at a user's.

    python tools/test_each_package.py [--package NAME ...] [-- extra pytest args]

Runs ``uv run --package X --isolated --group dev python -m pytest packages/X/tests`` per package.
pytest's exit code 5 (no tests collected) counts as a failure: every package must have tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def packages() -> list[tuple[str, Path]]:
    found = []
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        found.append((name, pyproject.parent))
    return found


def command(name: str, folder: Path, extra: list[str]) -> list[str]:
    return ["uv", "run", "--package", name, "--isolated", "--group", "dev", "python", "-m", "pytest", str(folder.relative_to(ROOT) / "tests"), "-q", *extra]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", action="append", default=None, help="only this package (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = parser.parse_args(argv)
    selected = [(n, f) for n, f in packages() if args.package is None or n in args.package]
    if args.package and len(selected) != len(args.package):
        parser.error(f"unknown package in {args.package}; known: {[n for n, _ in packages()]}")
    results = {}
    for name, folder in selected:
        cmd = command(name, folder, extra)
        print("+ " + " ".join(cmd), flush=True)
        if args.dry_run:
            continue
        start = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT)
        results[name] = (code, time.perf_counter() - start)
    for name, (code, seconds) in results.items():
        status = "ok" if code == 0 else ("NO TESTS (exit 5)" if code == 5 else f"FAILED (exit {code})")
        print(f"{name:24s} {status:20s} {seconds:6.1f} s")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
