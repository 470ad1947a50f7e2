"""tools/records.py, tools/render_results.py and tools/gpu_campaign.py: records, rendering, campaign."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import gpu_campaign  # noqa: E402
import records  # noqa: E402
import render_results  # noqa: E402

PAYLOAD = {
    "experiment": "demo",
    "seeds": [0, 1],
    "config": {"width": 8},
    "metrics": {"rms": 1.5},
    "tables": [
        {"name": "main", "columns": ["model", "rms (keV)"], "rows": [["ours", 312.44], ["baseline", 400.0]], "formats": {"rms (keV)": ".1f"}},
        {"name": "extra", "columns": ["n"], "rows": [[3]]},
    ],
}


def test_record_carries_provenance_and_refuses_bad_payloads(tmp_path):
    record = records.write_record(tmp_path / "r.json", PAYLOAD, command=["nuclr", "evaluate", "--seed", "0"], package="nuclr")
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk == record
    assert record["command"] == "nuclr evaluate --seed 0"
    assert record["commit"] == subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert record["versions"]["lipschitz-core"] and record["machine"]["cores"] >= 1
    assert record["metrics"] == {"rms": 1.5} and record["status"] == "ok"
    with pytest.raises(records.RecordError, match="has 1 cells, columns has 2"):
        records.make_record({"tables": [{"columns": ["a", "b"], "rows": [[1]]}]})
    with pytest.raises(records.RecordError, match="unknown columns"):
        records.make_record({"tables": [{"columns": ["a"], "rows": [[1]], "formats": {"b": ".1f"}}]})
    with pytest.raises(records.RecordError, match="status"):
        records.make_record(PAYLOAD, status="great")
    # NaN never passes silently into JSON as a bare NaN token
    text = json.dumps(records.make_record({"metrics": {"x": float("nan")}}))
    assert "NaN" not in text.replace("'nan'", "") and "nan" in text


def test_records_run_wraps_a_command(tmp_path):
    payload = tmp_path / "p.json"
    script = f"import json; json.dump({PAYLOAD!r}, open({str(payload)!r}, 'w'))"
    out = subprocess.run([sys.executable, "tools/records.py", "run", "--record", str(tmp_path / "rec.json"), "--payload", str(payload), "--", sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "rec.json").read_text())
    assert record["status"] == "ok" and record["metrics"] == PAYLOAD["metrics"] and " -c " in record["command"]
    missing = subprocess.run([sys.executable, "tools/records.py", "run", "--record", str(tmp_path / "x.json"), "--payload", str(tmp_path / "none.json"), "--", sys.executable, "-c", "pass"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "wrote no payload" in missing.stderr and not (tmp_path / "x.json").exists()


def _fake_repo(tmp_path, monkeypatch):
    monkeypatch.setattr(render_results, "ROOT", tmp_path)
    (tmp_path / "packages/demo/results").mkdir(parents=True)
    records.write_record(tmp_path / "packages/demo/results/demo.json", PAYLOAD, command="demo run", package="demo")
    return tmp_path / "packages/demo/README.md"


def test_render_fills_regions_and_check_catches_drift(tmp_path, monkeypatch):
    readme = _fake_repo(tmp_path, monkeypatch)
    readme.write_text("# demo\n\n## Measured results\n\n<!-- results: packages/demo/results/demo.json table=main -->\n<!-- /results -->\n\nProse.\n")
    rendered, problems = render_results.process(readme.read_text(), readme)
    assert problems == []
    assert "| ours | 312.4 |" in rendered and "| baseline | 400.0 |" in rendered
    assert "| 3 |" not in rendered  # table=main renders only that table
    assert "`demo run`" in rendered and "seeds 0, 1" in rendered and "(../../packages/demo/results/demo.json)" in rendered
    again, _ = render_results.process(rendered, readme)
    assert again == rendered  # idempotent: --check passes on a rendered README
    edited = rendered.replace("312.4", "299.0")
    fixed, _ = render_results.process(edited, readme)
    assert fixed == rendered  # a hand-edited number is overwritten by the record's


def test_check_flags_unmarked_tables_missing_records_and_unknown_tables(tmp_path, monkeypatch):
    readme = _fake_repo(tmp_path, monkeypatch)
    text = textwrap.dedent("""\
        # demo

        | not measured | fine |
        |---|---|

        ## Measured results

        ```
        | a table inside code | is not a table |
        ```

        | hand | typed |
        |---|---|
        | 1 | 2 |

        <!-- results: packages/demo/results/nope.json -->
        <!-- /results -->

        <!-- results: packages/demo/results/demo.json table=absent -->
        <!-- /results -->

        ## Later section

        | other | table |
        |---|---|
        """)
    _, problems = render_results.process(text, readme)
    assert len(problems) == 3, problems
    assert "README.md:12: table under 'Measured results' without a results marker" in problems[0]
    assert "nope.json does not exist" in problems[1]
    assert "no table 'absent'" in problems[2]


def test_every_readme_is_rendered_from_its_records():
    out = subprocess.run([sys.executable, "tools/render_results.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def _jobs_file(tmp_path, body: str) -> Path:
    path = tmp_path / "packages" / "demo" / "campaign.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


WRITE = "import json,sys,time; o=sys.argv[1]; json.dump({{'experiment': 'x', 'metrics': {{'step': {step}}}, 'tables': []}}, open(o + '/record.json', 'w')); {rest}"


def test_campaign_writes_a_record_for_every_outcome(tmp_path):
    path = _jobs_file(tmp_path, f"""
        [[job]]
        name = "demo-ok"
        command = ["-c", "{WRITE.format(step=10, rest='pass')}", "{{out}}"]
        smoke = ["-c", "{WRITE.format(step=1, rest='pass')}", "{{out}}"]
        minutes = 0.5
        gpu_memory_gb = 1
        payload = "record.json"
        record = "unused.json"

        [[job]]
        name = "demo-fails"
        command = ["-c", "raise SystemExit('boom: bad config')"]
        smoke = ["-c", "raise SystemExit('boom: bad config')"]
        minutes = 0.5
        gpu_memory_gb = 1
        payload = "record.json"
        record = "unused.json"

        [[job]]
        name = "demo-slow"
        command = ["-c", "{WRITE.format(step=5, rest='time.sleep(600)')}", "{{out}}"]
        smoke = ["-c", "{WRITE.format(step=5, rest='time.sleep(600)')}", "{{out}}"]
        minutes = 0.5
        gpu_memory_gb = 1
        payload = "record.json"
        record = "unused.json"
        """)
    jobs = gpu_campaign.load_jobs([path])
    assert [j.package for j in jobs] == ["demo"] * 3
    out = tmp_path / "records"
    statuses = gpu_campaign.run_campaign(jobs, smoke=True, device="cpu", budget_minutes=0.08, work_dir=tmp_path / "work", records_dir=out, status_every=1, max_concurrent=3)
    assert statuses == {"demo-ok": "ok", "demo-fails": "failed", "demo-slow": "timeout"}
    ok, failed, slow = (json.loads((out / f"{n}.json").read_text()) for n in ("demo-ok", "demo-fails", "demo-slow"))
    assert ok["metrics"] == {"step": 1} and ok["job"]["mode"] == "smoke"
    assert failed["status"] == "failed" and any("boom: bad config" in line for line in failed["job"]["log_tail"])
    assert slow["status"] == "timeout" and slow["metrics"] == {"step": 5}  # the partial payload is kept


def test_campaign_ends_workers_a_finished_job_leaves_behind(tmp_path):
    pid_file = tmp_path / "child.pid"
    leader = (
        "import json,subprocess,sys; o=sys.argv[1]; "
        "c=subprocess.Popen([sys.executable,'-c','import time; time.sleep(600)']); "
        f"open({str(pid_file)!r},'w').write(str(c.pid)); "
        "json.dump({'experiment':'x','tables':[]}, open(o+'/record.json','w'))"
    )
    path = _jobs_file(tmp_path, f"""
        [[job]]
        name = "demo-leaves-child"
        command = ["-c", "{leader}", "{{out}}"]
        smoke = ["-c", "{leader}", "{{out}}"]
        minutes = 0.5
        gpu_memory_gb = 1
        payload = "record.json"
        record = "unused.json"
        """)
    statuses = gpu_campaign.run_campaign(gpu_campaign.load_jobs([path]), smoke=True, device="cpu", budget_minutes=0.5, work_dir=tmp_path / "work", records_dir=tmp_path / "rec", status_every=60)
    assert statuses == {"demo-leaves-child": "ok"}
    child = int(pid_file.read_text())
    import os
    import time

    for _ in range(50):  # the SIGKILL is delivered asynchronously; the child is reaped by init
        try:
            os.kill(child, 0)
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().split()[2] == "Z":
                    break
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"worker {child} outlived its finished job")


def test_campaign_refuses_bad_declarations(tmp_path):
    path = _jobs_file(tmp_path, """
        [[job]]
        name = "x"
        command = "not a list"
        smoke = []
        minutes = 1
        gpu_memory_gb = 1
        payload = "p"
        record = "r"
        """)
    with pytest.raises(gpu_campaign.CampaignError, match="'command' has the wrong type"):
        gpu_campaign.load_jobs([path])


def test_registered_jobs_are_valid_and_smoke_needs_out():
    jobs = gpu_campaign.load_jobs()
    for job in jobs:
        assert job.record.startswith(f"packages/{job.package}/results/"), job
        assert "{out}" in " ".join(job.smoke) and "{out}" in " ".join(job.command), job
    out = subprocess.run([sys.executable, "tools/gpu_campaign.py", "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--smoke needs --out" in out.stderr
