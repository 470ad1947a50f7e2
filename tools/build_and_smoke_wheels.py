"""Install each built wheel (with the lipschitz-core wheel it needs) into a fresh venv outside
the workspace, import it, and run its console scripts' ``--help``.

    uv build --all-packages --no-sources -o dist && python tools/build_and_smoke_wheels.py dist

Catches files missing from a wheel, undeclared dependencies and broken entry points, which the
workspace's editable installs hide.
"""

from __future__ import annotations

import argparse
import configparser
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def wheel_info(wheel: Path) -> tuple[str, str, list[str], bool]:
    """(distribution name, import name, console scripts, needs lipschitz-core) from the wheel's metadata."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta_name).decode()
        ep_name = meta_name.replace("METADATA", "entry_points.txt")
        scripts: list[str] = []
        if ep_name in names:
            parser = configparser.ConfigParser()
            parser.read_string(zf.read(ep_name).decode())
            if parser.has_section("console_scripts"):
                scripts = list(parser["console_scripts"])
        top = sorted({n.split("/")[0] for n in names if n.endswith("/__init__.py") and n.count("/") == 1})
    dist = next(line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Name:"))
    needs_core = any(line.startswith("Requires-Dist: lipschitz-core") for line in metadata.splitlines())
    return dist, top[0], scripts, needs_core


def run(cmd: list[str], cwd: Path) -> None:
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def smoke(wheel: Path, core_wheel: Path | None, workdir: Path) -> None:
    dist, module, scripts, needs_core = wheel_info(wheel)
    venv = workdir / f"venv-{dist}"
    run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], workdir)
    python = venv / "bin" / "python"
    to_install = [str(wheel)]
    if needs_core and dist != "lipschitz-core":
        if core_wheel is None:
            raise SystemExit(f"{dist} needs lipschitz-core but no lipschitz-core wheel was built")
        to_install.append(str(core_wheel))
    run(["uv", "pip", "install", "-q", "--python", str(python), *to_install], workdir)
    # -I: isolated mode, so nothing from the workspace (cwd, PYTHONPATH) can leak in.
    run([str(python), "-I", "-c", f"import {module}, sys; print({module}.__name__, {module}.__version__); assert 'site-packages' in {module}.__file__"], workdir)
    for script in scripts:
        run([str(venv / "bin" / script), "--help"], workdir)
    print(f"ok: {dist} ({module}); scripts: {scripts or 'none'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dist", type=Path, help="folder with the built wheels")
    args = parser.parse_args(argv)
    wheels = sorted(args.dist.resolve().glob("*.whl"))
    if not wheels:
        raise SystemExit(f"no wheels in {args.dist}")
    core = next((w for w in wheels if w.name.startswith("lipschitz_core-")), None)
    with tempfile.TemporaryDirectory(prefix="wheel-smoke-") as tmp:
        for wheel in wheels:
            smoke(wheel, core, Path(tmp))
    print(f"all {len(wheels)} wheels installed, imported and --help'd outside the workspace")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
