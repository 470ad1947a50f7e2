"""The dependency rule of the workspace, checked by walking every import in the source trees.

- ``lipschitz_core`` imports no sibling package.
- A paper package imports ``lipschitz_core`` at most, never another paper package.
Anything that needs two paper packages lives in ``tests/`` or ``tools/``.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

CORE = "lipschitz_core"


def module_names(packages_dir: Path) -> dict[str, Path]:
    """Top-level import name -> its source folder, for every package in ``packages_dir``."""
    found = {}
    for pyproject in sorted(packages_dir.glob("*/pyproject.toml")):
        tomllib.loads(pyproject.read_text())  # must parse
        for init in sorted((pyproject.parent / "src").glob("*/__init__.py")):
            found[init.parent.name] = init.parent
    return found


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value.split(".")[0])
    return names


def violations(packages_dir: Path) -> list[str]:
    modules = module_names(packages_dir)
    problems = []
    for owner, folder in modules.items():
        allowed = {owner} if owner == CORE else {owner, CORE}
        for source in sorted(folder.rglob("*.py")):
            for name in sorted(imported_modules(source) & set(modules) - allowed):
                problems.append(f"{source.relative_to(packages_dir)}: {owner} imports {name}")
    return problems
