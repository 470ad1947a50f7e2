"""Build the documentation site: one page per package from its README, plus an API reference.

The API reference is rendered from the docstrings by mkdocstrings (members as each package's
``__all__`` lists them). The build is strict: a broken link or reference, a docstring griffe
cannot parse, or a public name (in ``__all__``) without a docstring fails it. Usage::

    uv run python tools/build_docs.py            # builds site/ ; open site/index.html
    uv run python tools/build_docs.py --serve    # live preview on http://127.0.0.1:8000

Pages are generated into ``build/docs-src/`` (ignored by git): the READMEs stay the one source.
Links from a README to repository files (records, figures, scripts) are copied along, so the
site is self-contained; a link to a file that does not exist fails the build.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!!)\]\((?P<target>[^)\s]+)\)|!\[(?P<alt>[^\]]*)\]\((?P<image>[^)\s]+)\)")


def packages() -> list[tuple[str, str, Path]]:
    """(dist name, import name, package dir) for every workspace package, top README order."""
    found = []
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        modules = [p.name for p in (pyproject.parent / "src").iterdir() if (p / "__init__.py").exists()]
        found.append((name, modules[0], pyproject.parent))
    return sorted(found, key=lambda t: (t[0] not in ("lipschitz-core", "monotonenorm"), t[0] != "lipschitz-core", t[0]))


def missing_docstrings(module_name: str) -> list[str]:
    """Public names (``__all__``) of ``module_name`` that have no docstring of their own."""
    module = importlib.import_module(module_name)
    missing = []
    for name in getattr(module, "__all__", []):
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj) or callable(obj) and not isinstance(obj, type):
            doc = obj.__doc__ if inspect.isclass(obj) else inspect.getdoc(obj)
            if not (doc or "").strip():
                missing.append(f"{module_name}.{name}")
    return missing


def _rewrite_links(text: str, readme: Path, page_dir: Path, src: Path, pages: dict[Path, str]) -> str:
    """Point README links at the generated pages, or at copies of the repository files they name."""

    def fix(target: str) -> str:
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return target
        path_part, _, anchor = target.partition("#")
        resolved = (readme.parent / path_part).resolve()
        depth = "../" * len(page_dir.relative_to(src).parts)
        if resolved in pages:
            new = depth + pages[resolved]
        elif resolved.is_relative_to(ROOT) and resolved.is_file():
            rel = resolved.relative_to(ROOT)
            copy = src / "files" / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(resolved, copy)
            new = depth + "files/" + rel.as_posix()
        else:
            return target  # a broken link stays broken, so the strict build names it
        return new + (f"#{anchor}" if anchor else "")

    def sub(match: re.Match) -> str:
        if match["target"] is not None:
            return f"]({fix(match['target'])})"
        return f"![{match['alt']}]({fix(match['image'])})"

    return LINK.sub(sub, text)


def generate(src: Path) -> Path:
    """Write the mkdocs project (config and pages) into ``src``; return the config path."""
    if src.exists():
        shutil.rmtree(src)
    docs = src / "docs"
    docs.mkdir(parents=True)
    found = packages()
    pages = {ROOT / "README.md": "index.md"}
    pages.update({pkg_dir / "README.md": f"{name}/index.md" for name, _, pkg_dir in found})
    for readme, page in pages.items():
        out = docs / page
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_rewrite_links(readme.read_text(), readme, out.parent, docs, pages))
    nav = ["  - Home: index.md"]
    for name, module, _ in found:
        (docs / name / "api.md").write_text(
            f"# `{module}` API reference\n\nEvery public name of `{module}` (its `__all__`), from the docstrings.\n\n"
            f"::: {module}\n"
        )
        nav += [f"  - {name}:", f"    - Overview: {name}/index.md", f"    - API reference: {name}/api.md"]
    paths = ", ".join(f'"{(pkg_dir / "src").as_posix()}"' for _, _, pkg_dir in found)
    config = src / "mkdocs.yml"
    config.write_text(
        "site_name: lipschitz-lab\n"
        f"docs_dir: docs\nsite_dir: {(ROOT / 'site').as_posix()}\n"
        "theme:\n  name: material\n"
        "validation:\n  omitted_files: warn\n  absolute_links: warn\n  unrecognized_links: warn\n  anchors: info\n"
        "markdown_extensions:\n  - admonition\n  - tables\n  - toc:\n      permalink: true\n"
        "plugins:\n  - search\n  - mkdocstrings:\n      default_handler: python\n      handlers:\n        python:\n"
        f"          paths: [{paths}]\n"
        "          options:\n"
        "            docstring_style: google\n"
        "            show_root_heading: true\n"
        "            show_submodules: false\n"
        "            members_order: source\n"
        "            filters: public\n"
        "            show_if_no_docstring: true\n"
        "            show_signature_annotations: true\n"
        "            separate_signature: true\n"
        "nav:\n" + "\n".join(nav) + "\n"
    )
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve a live preview instead of building")
    parser.add_argument("--src", type=Path, default=ROOT / "build" / "docs-src", help="where the generated pages go")
    args = parser.parse_args(argv)
    missing = [name for _, module, _ in packages() for name in missing_docstrings(module)]
    if missing:
        print("public names without a docstring:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    config = generate(args.src)
    command = [sys.executable, "-m", "mkdocs", "serve" if args.serve else "build", "--strict", "-f", str(config)]
    if not args.serve:
        command.append("--quiet")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # material's end-of-life banner is not a build problem
    code = subprocess.call(command, cwd=ROOT, env=env)
    if code == 0 and not args.serve:
        print(f"built {ROOT / 'site' / 'index.html'}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
