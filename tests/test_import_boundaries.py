from pathlib import Path

from boundaries import module_names, violations

ROOT = Path(__file__).resolve().parents[1]


def test_workspace_respects_dependency_direction():
    assert "lipschitz_core" in module_names(ROOT / "packages")
    assert violations(ROOT / "packages") == []


def _fake_package(root: Path, dist: str, module: str, source: str) -> None:
    folder = root / dist / "src" / module
    folder.mkdir(parents=True)
    (root / dist / "pyproject.toml").write_text(f'[project]\nname = "{dist}"\nversion = "0.1.0"\n')
    (folder / "__init__.py").write_text(source)


def test_checker_catches_each_kind_of_violation(tmp_path):
    _fake_package(tmp_path, "lipschitz-core", "lipschitz_core", "import paper_a\n")
    _fake_package(tmp_path, "paper-a", "paper_a", "from lipschitz_core import x\nfrom paper_b.sub import y\n")
    _fake_package(tmp_path, "paper-b", "paper_b", "import importlib\nimportlib.import_module('paper_a.z')\n")
    _fake_package(tmp_path, "paper-c", "paper_c", "import lipschitz_core\nimport torch\n")
    found = violations(tmp_path)
    assert found == [
        "lipschitz-core/src/lipschitz_core/__init__.py: lipschitz_core imports paper_a",
        "paper-a/src/paper_a/__init__.py: paper_a imports paper_b",
        "paper-b/src/paper_b/__init__.py: paper_b imports paper_a",
    ]
