"""The GPU campaign: run every package's registered paper-scale jobs concurrently on one GPU.

GPU time comes in short windows, so paper-scale runs are declared ahead of time, each package in
``packages/<name>/campaign.toml``::

    [[job]]
    name = "nuclr-paper-scale"
    command = ["-m", "nuclr", "train", "--device", "{device}", "--out", "{out}"]
    smoke = ["-m", "nuclr", "train", "--quick", "--device", "cpu", "--out", "{out}"]
    minutes = 7.0          # expected wall minutes on the GPU
    gpu_memory_gb = 8.0
    payload = "record.json"                            # relative to {out}; written progressively
    record = "packages/nuclr/results/gpu_paper_scale.json"

The runner needs only the standard library and the machine's own ``python3``: jobs run as
``python3 <command>`` with every ``packages/*/src`` on ``PYTHONPATH`` (the GPU machine has no uv
and nothing installed). Jobs start together while their declared GPU memory fits, each within the
campaign's wall-clock budget (default 9 minutes) and 1.5x its own expected minutes; a job past its
time gets SIGTERM, then SIGKILL 20 s later. Every job's record is written whatever happens: ok,
failed or timeout, with the payload the job had written so far (partial curves are kept) and the
tail of its log. One status line per job is printed every ``--status-every`` seconds.

    python3 tools/gpu_campaign.py --list
    python3 tools/gpu_campaign.py                       # on the GPU machine: records into packages/*/results/
    python3 tools/gpu_campaign.py --smoke --out /tmp/r  # every job at its tiny size on the CPU (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import ROOT, RecordError, atomic_write_text, read_payload, write_record  # noqa: E402

GRACE_SECONDS = 20.0
REQUIRED = {"name": str, "command": list, "smoke": list, "minutes": (int, float), "gpu_memory_gb": (int, float), "payload": str, "record": str}


class CampaignError(ValueError):
    """A job declaration that cannot be run."""


@dataclass
class Job:
    """One registered job, as declared in a package's campaign.toml."""

    name: str
    package: str
    command: list[str]
    smoke: list[str]
    minutes: float
    gpu_memory_gb: float
    payload: str
    record: str
    source: str
    # filled while running
    process: subprocess.Popen | None = field(default=None, repr=False)
    out: Path | None = None
    started: float | None = None
    deadline: float | None = None
    terminated_at: float | None = None
    status: str = "pending"


def load_jobs(files: list[Path] | None = None) -> list[Job]:
    """Every job of every ``packages/*/campaign.toml`` (or of ``files``), validated."""
    files = files if files is not None else sorted(ROOT.glob("packages/*/campaign.toml"))
    jobs: list[Job] = []
    for path in files:
        try:
            declared = tomllib.loads(path.read_text()).get("job", [])
        except tomllib.TOMLDecodeError as err:
            raise CampaignError(f"{path}: not valid TOML ({err})") from None
        package = path.parent.name
        for index, entry in enumerate(declared):
            where = f"{path}: job {index}"
            for key, kind in REQUIRED.items():
                if key not in entry:
                    raise CampaignError(f"{where}: missing '{key}'")
                if not isinstance(entry[key], kind) or isinstance(entry[key], bool):
                    raise CampaignError(f"{where}: '{key}' has the wrong type ({type(entry[key]).__name__})")
            unknown = set(entry) - set(REQUIRED)
            if unknown:
                raise CampaignError(f"{where}: unknown keys {sorted(unknown)}")
            if entry["minutes"] <= 0 or entry["gpu_memory_gb"] < 0:
                raise CampaignError(f"{where}: minutes must be > 0 and gpu_memory_gb >= 0")
            if not all(isinstance(a, str) for a in entry["command"] + entry["smoke"]):
                raise CampaignError(f"{where}: command and smoke are lists of strings")
            jobs.append(Job(package=package, source=str(path), **{k: entry[k] for k in REQUIRED}))
    names = [job.name for job in jobs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CampaignError(f"job names used twice: {duplicated}")
    return jobs


def _pythonpath() -> str:
    sources = [str(p) for p in sorted(ROOT.glob("packages/*/src"))]
    if os.environ.get("PYTHONPATH"):
        sources.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(sources)


def _signal_group(job: Job, sig: int) -> None:
    """Signal the job's whole process group; a group already gone is not an error."""
    assert job.process is not None
    try:
        os.killpg(job.process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _argv(job: Job, smoke: bool, device: str) -> list[str]:
    template = job.smoke if smoke else job.command
    assert job.out is not None
    return [sys.executable, *(a.replace("{out}", str(job.out)).replace("{device}", device) for a in template)]


def _log_tail(job: Job, lines: int = 40) -> list[str]:
    try:
        return (job.out / "log.txt").read_text(errors="replace").splitlines()[-lines:]
    except (OSError, TypeError):
        return []


def _last_line(job: Job) -> str:
    tail = [line for line in _log_tail(job, 5) if line.strip()]
    text = tail[-1].strip() if tail else ""
    return text[-100:]


def _finish(job: Job, *, smoke: bool, device: str, records_dir: Path | None, campaign_command: str, records_root: Path = ROOT) -> Path:
    """Write the job's record, whatever its status; return its path."""
    assert job.out is not None and job.started is not None
    seconds = time.monotonic() - job.started
    code = job.process.returncode if job.process else None
    try:
        payload = read_payload(job.out / job.payload)
        payload_problem = None
    except RecordError as err:
        payload, payload_problem = {"experiment": job.name, "tables": [], "metrics": {}}, str(err)
    if job.status == "running":
        job.status = "ok" if code == 0 and payload_problem is None else "failed"
    payload = dict(payload)
    payload["job"] = {
        "name": job.name,
        "mode": "smoke" if smoke else "gpu",
        "device": device,
        "expected_minutes": job.minutes,
        "gpu_memory_gb": job.gpu_memory_gb,
        "returncode": code,
        "payload_problem": payload_problem,
        "campaign_command": campaign_command,
        "log_tail": _log_tail(job),
    }
    target = (records_dir / f"{job.name}.json") if records_dir else records_root / job.record
    command = ["python3", *_argv(job, smoke, device)[1:]]
    write_record(target, payload, command=command, package=job.package, status=job.status, seconds=seconds)
    return target


def run_campaign(
    jobs: list[Job],
    *,
    smoke: bool = False,
    device: str = "cuda",
    budget_minutes: float = 9.0,
    memory_gb: float = 130.0,
    max_concurrent: int = 8,
    work_dir: Path,
    records_dir: Path | None = None,
    status_every: float = 30.0,
    campaign_command: str = "",
    records_root: Path = ROOT,
) -> dict[str, str]:
    """Run ``jobs`` concurrently within the budget; return each job's final status."""
    start = time.monotonic()
    campaign_deadline = start + budget_minutes * 60
    pending = list(jobs)
    running: list[Job] = []
    finished: dict[str, str] = {}
    last_status = start
    threads = max(1, (os.cpu_count() or 2) // max(1, min(len(jobs), max_concurrent)))

    def say(text: str) -> None:
        print(f"[{time.monotonic() - start:6.0f} s] {text}", flush=True)

    for job in jobs:
        if not smoke and job.gpu_memory_gb > memory_gb:
            raise CampaignError(f"job {job.name} declares {job.gpu_memory_gb} GB, more than the {memory_gb} GB available")
    while pending or running:
        now = time.monotonic()
        used = sum(j.gpu_memory_gb for j in running)
        while pending and len(running) < max_concurrent and (smoke or used + pending[0].gpu_memory_gb <= memory_gb) and now < campaign_deadline:
            job = pending.pop(0)
            job.out = work_dir / job.name
            job.out.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ, PYTHONPATH=_pythonpath(), PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads), LAB_CAMPAIGN="smoke" if smoke else "gpu")
            log = open(job.out / "log.txt", "w")  # noqa: SIM115 - closed when the job ends
            job.process = subprocess.Popen(_argv(job, smoke, device), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            job.started = now
            job.deadline = min(campaign_deadline, now + 1.5 * job.minutes * 60) if not smoke else campaign_deadline
            job.status = "running"
            running.append(job)
            used += job.gpu_memory_gb
            say(f"{job.name}: started ({job.minutes:g} min expected, {job.gpu_memory_gb:g} GB)")
        if not running and pending and now >= campaign_deadline:
            for job in pending:
                job.status = "timeout"
                job.out = work_dir / job.name
                job.out.mkdir(parents=True, exist_ok=True)
                job.started = now
                target = _finish(job, smoke=smoke, device=device, records_dir=records_dir, campaign_command=campaign_command, records_root=records_root)
                finished[job.name] = job.status
                say(f"{job.name}: not started, the budget ran out (record {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target})")
            pending.clear()
            break
        for job in list(running):
            assert job.process is not None and job.deadline is not None
            if job.process.poll() is not None:
                running.remove(job)
                _signal_group(job, signal.SIGKILL)  # workers the job leaves behind must not hold the GPU
                target = _finish(job, smoke=smoke, device=device, records_dir=records_dir, campaign_command=campaign_command, records_root=records_root)
                finished[job.name] = job.status
                say(f"{job.name}: {job.status} (exit {job.process.returncode}) after {time.monotonic() - job.started:.0f} s -> {target}")
                if job.status != "ok":
                    for line in _log_tail(job, 8):
                        print(f"    | {line}", flush=True)
            elif now >= job.deadline and job.terminated_at is None:
                job.status = "timeout"
                job.terminated_at = now
                _signal_group(job, signal.SIGTERM)
                say(f"{job.name}: out of time, SIGTERM")
            elif job.terminated_at is not None and now >= job.terminated_at + GRACE_SECONDS:
                _signal_group(job, signal.SIGKILL)
        if now - last_status >= status_every and running:
            last_status = now
            for job in running:
                say(f"{job.name}: running {(now - job.started) / 60:.1f}/{job.minutes:g} min | {_last_line(job)}")
        time.sleep(0.2)
    return finished


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the registered jobs and exit")
    parser.add_argument("--smoke", action="store_true", help="run every job's tiny smoke command on the CPU")
    parser.add_argument("--only", action="append", default=None, help="a job name or package name to run (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="write records here (<job>.json) instead of each job's record path; required with --smoke")
    parser.add_argument("--records-root", type=Path, default=ROOT, help="write each record at this folder / its declared path (to carry them back from a GPU machine)")
    parser.add_argument("--work", type=Path, default=None, help="job output folders (default: <out>/work, or /tmp/gpu_campaign)")
    parser.add_argument("--budget-minutes", type=float, default=None, help="wall-clock budget for the whole campaign (default 9; 5 with --smoke)")
    parser.add_argument("--memory-gb", type=float, default=130.0, help="GPU memory the jobs may declare together")
    parser.add_argument("--max-concurrent", type=int, default=None, help="jobs at once (default 8 on the GPU, 2 with --smoke)")
    parser.add_argument("--device", default=None, help="device passed to jobs as {device} (default cuda; cpu with --smoke)")
    parser.add_argument("--status-every", type=float, default=30.0, help="seconds between status lines")
    args = parser.parse_args(argv)

    try:
        jobs = load_jobs()
    except CampaignError as err:
        parser.error(str(err))
    if args.only:
        known = {j.name for j in jobs} | {j.package for j in jobs}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            parser.error(f"unknown job or package {unknown}; registered jobs: {[j.name for j in jobs]}")
        jobs = [j for j in jobs if j.name in args.only or j.package in args.only]
    if args.list:
        for job in jobs:
            print(f"{job.name:36s} {job.package:22s} {job.minutes:5.1f} min {job.gpu_memory_gb:6.1f} GB -> {job.record}")
        return 0
    if args.smoke and args.out is None:
        parser.error("--smoke needs --out DIR: smoke records never overwrite the committed ones")
    if not jobs:
        print("no jobs registered")
        return 0
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        if not os.access(args.out, os.W_OK):
            parser.error(f"--out {args.out} is not writable")
    work = args.work or ((args.out / "work") if args.out else Path("/tmp/gpu_campaign"))
    work.mkdir(parents=True, exist_ok=True)
    device = args.device or ("cpu" if args.smoke else "cuda")
    if not args.smoke and device.startswith("cuda"):
        try:
            import torch  # noqa: PLC0415 - only to refuse a GPU campaign without a GPU, before any job starts
        except ImportError:
            parser.error("torch is not importable with this python3: cannot run GPU jobs")
        if not torch.cuda.is_available():
            parser.error("no CUDA device visible: run with --smoke (CPU) or on the GPU machine")
    budget = args.budget_minutes if args.budget_minutes is not None else (5.0 if args.smoke else 9.0)
    statuses = run_campaign(
        jobs,
        smoke=args.smoke,
        device=device,
        budget_minutes=budget,
        memory_gb=args.memory_gb,
        max_concurrent=args.max_concurrent or (2 if args.smoke else 8),
        work_dir=work,
        records_dir=args.out,
        status_every=args.status_every,
        records_root=args.records_root,
        campaign_command=" ".join(["python3", "tools/gpu_campaign.py", *(argv if argv is not None else sys.argv[1:])]),
    )
    summary = {"statuses": statuses, "budget_minutes": budget, "smoke": args.smoke}
    if args.out is not None:
        atomic_write_text(args.out / "campaign.json", json.dumps(summary, indent=2) + "\n")
    bad = {n: s for n, s in statuses.items() if s != "ok"}
    print(f"campaign done: {len(statuses) - len(bad)} ok, {len(bad)} not ok {bad if bad else ''}".rstrip())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
