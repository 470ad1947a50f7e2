"""Code blocks in the READMEs run as written (the original package's README example was wrong)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# READMEs whose ```python blocks are self-contained and fast; each block runs in a fresh namespace.
READMES = ["packages/lipschitz-core/README.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


CASES = [(readme, i, block) for readme in READMES for i, block in enumerate(python_blocks(ROOT / readme))]


def test_every_listed_readme_has_examples():
    for readme in READMES:
        assert python_blocks(ROOT / readme), f"{readme} has no ```python block"


@pytest.mark.parametrize(("readme", "index", "code"), CASES, ids=[f"{r}#{i}" for r, i, _ in CASES])
def test_readme_example_runs(readme, index, code):
    exec(compile(code, f"{readme}[block {index}]", "exec"), {"__name__": "__readme__"})
