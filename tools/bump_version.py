"""Bump one package's version, add a CHANGELOG heading and print the tag to create.

    python tools/bump_version.py lipschitz-core minor   # 0.1.0 -> 0.2.0, tag lipschitz-core-v0.2.0

Uses ``uv version --package X --bump PART --frozen`` (no lock, no sync), then prepends
``## A.B.C`` to ``packages/X/CHANGELOG.md``. Creating the tag is left to the releaser.
"""

from __future__ import annotations

import argparse
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("major", "minor", "patch", "alpha", "beta", "rc", "post", "dev", "stable")


def package_dir(name: str) -> Path:
    for pyproject in (ROOT / "packages").glob("*/pyproject.toml"):
        if tomllib.loads(pyproject.read_text())["project"]["name"] == name:
            return pyproject.parent
    raise SystemExit(f"unknown package {name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package")
    parser.add_argument("part", choices=PARTS)
    parser.add_argument("--dry-run", action="store_true", help="show the new version without writing")
    args = parser.parse_args(argv)
    folder = package_dir(args.package)
    cmd = ["uv", "version", "--package", args.package, "--bump", args.part, "--frozen", "--short"]
    if args.dry_run:
        cmd.append("--dry-run")
    new = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    if not args.dry_run:
        changelog = folder / "CHANGELOG.md"
        text = changelog.read_text() if changelog.exists() else "# Changelog\n"
        head, _, rest = text.partition("\n")
        changelog.write_text(f"{head}\n\n## {new}\n\n- (describe the change)\n{rest}")
    print(f"{args.package} -> {new}; tag: {args.package}-v{new}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
