"""The main job: run every installed package's reproduction and write results/REPORT.md.

Packages register a callable in the ``lipschitz_lab.reproduce`` entry-point group:

    reproduce(out_dir: pathlib.Path, *, quick: bool, seed: int, device: str, quiet: bool) -> str

It writes its figures (PNG) and JSON into ``out_dir`` (``results/<dist-name>/``) and returns a
markdown section (starting with a ``## `` heading) whose figure links are relative to
``results/``. A package whose section publishes numbers also writes a result payload
``out_dir/record.json`` (see tools/records.py); with ``--record`` it is stamped with its
provenance into the committed record ``packages/<dist-name>/results/reproduce_{quick,full}.json``,
which the package README's tables are rendered from. Usage::

    uv run tools/reproduce.py --quick            # every package, ~2 minutes each on 2 cores
    uv run tools/reproduce.py --package nuclr    # one package, full size
    uv run tools/reproduce.py --quick --record   # also write the committed records
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib.metadata import entry_points, version
from pathlib import Path

GROUP = "lipschitz_lab.reproduce"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from records import RecordError, read_payload, write_record  # noqa: E402


def discover() -> dict[str, object]:
    """Entry points of the group, keyed by distribution name, in name order."""
    found = {}
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "lipschitz-core", kv[0])))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small, honest versions of each headline experiment")
    parser.add_argument("--package", action="append", default=None, help="run only this package (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed passed to every package")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--list", action="store_true", help="list the discovered packages and exit")
    parser.add_argument("--record", action="store_true", help="stamp each package's record.json into packages/<name>/results/reproduce_<mode>.json")
    args = parser.parse_args(argv)

    available = discover()
    if args.list:
        for name in available:
            print(name)
        return 0
    selected = args.package or list(available)
    unknown = [name for name in selected if name not in available]
    if unknown:
        parser.error(f"unknown package(s) {unknown}; installed reproductions: {list(available)}")

    args.out.mkdir(parents=True, exist_ok=True)
    sections: list[str] = []
    summary: dict[str, dict[str, object]] = {}
    failures = 0
    for index, name in enumerate(selected, 1):
        print(f"[{index}/{len(selected)}] {name} ({'quick' if args.quick else 'full'}) ...", flush=True)
        start = time.perf_counter()
        out_dir = args.out / name
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "record.json").unlink(missing_ok=True)  # never stamp a payload left by an earlier run
        try:
            function = available[name].load()
            section = function(out_dir, quick=args.quick, seed=args.seed, device=args.device, quiet=args.quiet)
            status = "ok"
        except Exception:  # one package failing must not lose the others' sections
            failures += 1
            status = "failed"
            section = f"## {name}\n\nThe reproduction failed:\n\n```\n{traceback.format_exc()}\n```\n"
            print(section, file=sys.stderr)
        seconds = time.perf_counter() - start
        print(f"    {status} in {seconds:.1f} s", flush=True)
        if args.record:
            target = ROOT / "packages" / name / "results" / f"reproduce_{'quick' if args.quick else 'full'}.json"
            try:
                payload = read_payload(out_dir / "record.json")
            except RecordError as err:
                print(f"    no record for {name}: {err}", flush=True)
            else:
                command = ["tools/reproduce.py", *(argv if argv is not None else sys.argv[1:])]
                write_record(target, payload, command=command, package=name, status=status, seconds=seconds)
                print(f"    record {target.relative_to(ROOT)}", flush=True)
        sections.append(section.rstrip() + f"\n\n_{name} {version(name)}: {status}, {seconds:.0f} s._\n")
        summary[name] = {"status": status, "seconds": round(seconds, 1), "version": version(name)}

    header = (
        "# lipschitz-lab reproduction report\n\n"
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n"
        f"- command: `{' '.join(['tools/reproduce.py', *(argv if argv is not None else sys.argv[1:])])}`\n"
        f"- mode: {'quick' if args.quick else 'full'}, seed {args.seed}\n\n"
    )
    _atomic_write(args.out / "REPORT.md", header + "\n".join(sections))
    _atomic_write(args.out / "summary.json", json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'REPORT.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
