"""The documentation site's inputs: every public name has a docstring; links are rewritten."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_docs  # noqa: E402


def test_every_public_name_has_a_docstring():
    missing = [name for _, module, _ in build_docs.packages() for name in build_docs.missing_docstrings(module)]
    assert missing == []


def test_missing_docstring_is_caught(tmp_path, monkeypatch):
    (tmp_path / "demo_docs_mod.py").write_text('__all__ = ["f", "g", "C"]\ndef f():\n    """Documented."""\ndef g():\n    pass\nclass C:\n    pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert build_docs.missing_docstrings("demo_docs_mod") == ["demo_docs_mod.g", "demo_docs_mod.C"]


def test_readme_links_point_at_pages_and_copied_files(tmp_path):
    readme = ROOT / "packages" / "nuclr" / "README.md"
    pages = {readme: "nuclr/index.md", ROOT / "README.md": "index.md"}
    page_dir = tmp_path / "nuclr"
    page_dir.mkdir()
    text = "[top](../../README.md#two-commands) [pp](pyproject.toml) [web](https://example.org) [gone](no/such/file.json) ![fig](missing.png)"
    out = build_docs._rewrite_links(text, readme, page_dir, tmp_path, pages)
    assert "[top](../index.md#two-commands)" in out
    assert "[pp](../files/packages/nuclr/pyproject.toml)" in out and (tmp_path / "files/packages/nuclr/pyproject.toml").is_file()
    assert "(https://example.org)" in out and "(no/such/file.json)" in out and "(missing.png)" in out
