"""Render README result tables from committed records, or check that they are rendered.

A README region between markers is rewritten from the record it names (the path is relative to
the repository root; ``table=NAME`` renders one table of the record, default all)::

    <!-- results: packages/nuclr/results/kfold.json table=main -->
    ... (rendered: the table, then one line of provenance) ...
    <!-- /results -->

``--check`` changes nothing and exits 1 when a region differs from what its record renders, when a
marker names a missing or malformed record, or when a table under a "Measured results" heading
stands outside markers (every number in such a table must come from a record). Usage::

    uv run python tools/render_results.py            # rewrite every README
    uv run python tools/render_results.py --check    # CI
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import ROOT, RecordError, atomic_write_text, validate_payload  # noqa: E402

START = re.compile(r"^<!-- results: (?P<path>\S+)(?: table=(?P<table>\S+))? -->\s*$")
END = "<!-- /results -->"
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.*)$")
MEASURED = re.compile(r"measured results", re.IGNORECASE)


def readmes(root: Path = ROOT) -> list[Path]:
    """The READMEs that may carry result tables: the top one, each package's and tools/'."""
    found = [root / "README.md", *sorted(root.glob("packages/*/README.md")), *sorted(root.glob("tools/**/README.md"))]
    return [path for path in found if path.is_file()]


def _cell(value: object, fmt: str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and fmt:
        return format(value, fmt)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_table(table: dict) -> str:
    """One markdown table (with its caption, if any) from a record's table entry."""
    formats = table.get("formats", {})
    columns = table["columns"]
    lines = []
    if table.get("caption"):
        lines += [f"*{table['caption']}*", ""]
    lines.append("| " + " | ".join(str(c) for c in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in table["rows"]:
        lines.append("| " + " | ".join(_cell(v, formats.get(c)) for c, v in zip(columns, row, strict=True)) + " |")
    return "\n".join(lines)


def _machine_text(machine: dict | None) -> str:
    if not machine:
        return "machine not recorded"
    parts = [str(machine.get("cpu", "?")), f"{machine.get('cores', '?')} cores"]
    if machine.get("torch_threads"):
        parts.append(f"{machine['torch_threads']} torch threads")
    parts.append(machine["gpu"] if machine.get("gpu") else "no GPU")
    return ", ".join(parts)


def provenance(record: dict, rel_path: str) -> str:
    """The line under each rendered region that says where its numbers come from."""
    if record.get("status") == "historical":
        return f"_Not regenerated: {record.get('note', 'measured by an earlier version')} (record `{rel_path}`, dated {record.get('date', '?')})._"
    commit = (record.get("commit") or "unknown")[:10]
    if record.get("dirty"):
        commit += " + uncommitted changes"
    seeds = record.get("seeds")
    seeds_text = "seeds " + ", ".join(str(s) for s in seeds) if seeds else "no seed"
    status = record.get("status", "ok")
    status_text = "" if status == "ok" else f" · status **{status}**"
    date = str(record.get("date", "?"))[:10]
    return (
        f"_Record [`{rel_path}`]({{link}}) · `{record.get('command', '?')}` · commit {commit} · {date} · "
        f"{_machine_text(record.get('machine'))} · {seeds_text}{status_text}_"
    )


def load_record(rel_path: str) -> dict:
    path = ROOT / rel_path
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"record {rel_path} does not exist") from None
    except json.JSONDecodeError as err:
        raise RecordError(f"record {rel_path} is not valid JSON ({err})") from None
    validate_payload(record, rel_path)
    return record


def render_region(rel_path: str, table_name: str | None, readme: Path) -> str:
    """The text between the markers: the record's table(s), then its provenance line."""
    record = load_record(rel_path)
    tables = record.get("tables", [])
    if table_name is not None:
        tables = [t for t in tables if t.get("name") == table_name]
        if not tables:
            names = [t.get("name") for t in record.get("tables", [])]
            raise RecordError(f"record {rel_path} has no table {table_name!r} (it has {names})")
    if not tables:
        raise RecordError(f"record {rel_path} has no tables to render")
    link = Path(*([".."] * (len(readme.parent.relative_to(ROOT).parts)))) / rel_path if readme.parent != ROOT else Path(rel_path)
    body = "\n\n".join(render_table(t) for t in tables)
    return body + "\n\n" + provenance(record, rel_path).replace("{link}", link.as_posix())


def process(text: str, readme: Path) -> tuple[str, list[str]]:
    """Return the README with every region re-rendered, and the problems found."""
    lines = text.split("\n")
    out: list[str] = []
    problems: list[str] = []
    name = readme.relative_to(ROOT).as_posix()
    measured_level: int | None = None
    in_code = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else HEADING.match(line)
        if heading:
            level = len(heading["hashes"])
            if measured_level is not None and level <= measured_level:
                measured_level = None
            if MEASURED.search(heading["title"]):
                measured_level = level
        start = None if in_code else START.match(line.strip())
        if start:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END), None)
            if end is None:
                problems.append(f"{name}:{i + 1}: results marker without {END}")
                out.append(line)
                i += 1
                continue
            try:
                region = render_region(start["path"], start["table"], readme)
            except RecordError as err:
                problems.append(f"{name}:{i + 1}: {err}")
                region = "\n".join(lines[i + 1 : end])
            out += [line, region, lines[end]]
            i = end + 1
            continue
        if measured_level is not None and not in_code and line.lstrip().startswith("|"):
            problems.append(f"{name}:{i + 1}: table under 'Measured results' without a results marker")
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                out.append(lines[i])
                i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a README is not as its records render")
    parser.add_argument("readme", nargs="*", type=Path, help="READMEs to process (default: every README)")
    args = parser.parse_args(argv)
    files = [p.resolve() for p in args.readme] or readmes()
    failed = False
    for readme in files:
        text = readme.read_text()
        rendered, problems = process(text, readme)
        for problem in problems:
            print(problem, file=sys.stderr)
        failed |= bool(problems)
        if rendered != text:
            if args.check:
                print(f"{readme.relative_to(ROOT)}: rendered tables differ from the README text (run tools/render_results.py)", file=sys.stderr)
                failed = True
            else:
                atomic_write_text(readme, rendered)
                print(f"rendered {readme.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
