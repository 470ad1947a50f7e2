"""The scripts in tools/ that CI and people run."""

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_test_each_package_lists_every_package_isolated():
    result = run("tools/test_each_package.py", "--dry-run")
    assert result.returncode == 0, result.stderr
    packages = sorted((ROOT / "packages").glob("*/pyproject.toml"))
    lines = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert len(lines) == len(packages)
    for line in lines:
        assert "--isolated --group dev python -m pytest packages/" in line


def test_test_each_package_rejects_unknown_package():
    result = run("tools/test_each_package.py", "--package", "no-such-package", "--dry-run")
    assert result.returncode != 0 and "unknown package" in result.stderr


def test_reproduce_discovers_lipschitz_core_through_entry_points():
    assert "lipschitz-core" in {ep.name for ep in entry_points(group="lipschitz_lab.reproduce")}
    result = run("tools/reproduce.py", "--list")
    assert result.returncode == 0 and "lipschitz-core" in result.stdout.split()
    bad = run("tools/reproduce.py", "--package", "nope")
    assert bad.returncode == 2 and "unknown package" in bad.stderr


def test_bump_version_dry_run_does_not_write():
    import tomllib

    before = (ROOT / "packages/lipschitz-core/pyproject.toml").read_text()
    major, minor, _ = (int(x) for x in tomllib.loads(before)["project"]["version"].split("."))
    result = run("tools/bump_version.py", "lipschitz-core", "minor", "--dry-run")
    assert result.returncode == 0, result.stderr
    expected = f"{major}.{minor + 1}.0"
    assert f"lipschitz-core -> {expected}; tag: lipschitz-core-v{expected}" in result.stdout
    assert (ROOT / "packages/lipschitz-core/pyproject.toml").read_text() == before


def test_smoke_script_reads_wheel_metadata(tmp_path):
    import zipfile

    sys.path.insert(0, str(ROOT / "tools"))
    from build_and_smoke_wheels import wheel_info

    wheel = tmp_path / "demo_pkg-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo_pkg/__init__.py", "")
        zf.writestr("demo_pkg-0.1.0.dist-info/METADATA", "Name: demo-pkg\nRequires-Dist: lipschitz-core<0.2,>=0.1\n")
        zf.writestr("demo_pkg-0.1.0.dist-info/entry_points.txt", "[console_scripts]\ndemo = demo_pkg:main\n")
    assert wheel_info(wheel) == ("demo-pkg", "demo_pkg", ["demo"], True)
