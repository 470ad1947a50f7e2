"""Code blocks in the READMEs run as written (the original monotonic package's README example was
wrong). Blocks of one README run top to bottom in one namespace, as a reader would run them."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# READMEs whose ```python blocks are self-contained. entity-diffusion's and factorization-curse's
# examples read user files or run for minutes, so their CLIs are exercised by their own tests.
FAST = ["packages/lipschitz-core/README.md", "packages/nuclr/README.md"]
SLOW = ["packages/monotonenorm/README.md", "packages/emd-lipschitz/README.md", "packages/grokking-theory/README.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def run_readme(readme: str) -> None:
    namespace = {"__name__": "__readme__"}
    for index, block in enumerate(python_blocks(ROOT / readme)):
        exec(compile(block, f"{readme}[block {index}]", "exec"), namespace)


def test_every_listed_readme_has_examples():
    for readme in FAST + SLOW:
        assert python_blocks(ROOT / readme), f"{readme} has no ```python block"


@pytest.mark.parametrize("readme", FAST)
def test_readme_examples_run(readme):
    run_readme(readme)


@pytest.mark.slow
@pytest.mark.parametrize("readme", SLOW)
def test_slow_readme_examples_run(readme):
    run_readme(readme)
