"""One tiny end-to-end run of each console-script command, and its error path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emd_lipschitz import exact_emd
from emd_lipschitz._cli import main


def _write(path, x, w=None, event=None):
    lines = ["x,y" + (",weight" if w is not None else "") + (",event" if event is not None else "")]
    for i, (px, py) in enumerate(x):
        row = f"{px},{py}" + (f",{w[i]}" if w is not None else "") + (f",{event[i]}" if event is not None else "")
        lines.append(row)
    path.write_text("\n".join(lines) + "\n")


def test_estimate_fit_and_cluster_from_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 2)), rng.normal(size=(15, 2)) + 1
    w = rng.uniform(size=12)
    _write(tmp_path / "a.csv", x, w / w.sum())
    _write(tmp_path / "b.csv", y)
    assert main(["estimate", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--quick", "--out", str(tmp_path / "est")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["emd"] == pytest.approx(exact_emd(x, w / w.sum(), y, None), rel=1e-3)
    record = json.loads((tmp_path / "est" / "run.json").read_text())
    assert record["seed"] == 0 and "torch" in record["versions"] and record["argv"]

    t = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    ring = np.stack([0.3 * np.cos(t), 0.3 * np.sin(t)], 1)
    events = np.concatenate([ring, ring + 1.0])
    _write(tmp_path / "ev.csv", events, event=[0] * 30 + [1] * 30)
    assert main(["fit", str(tmp_path / "ev.csv"), "--shape", "ring", "--n", "40", "--mode", "exact", "--steps", "20", "--quiet"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert [e["event"] for e in fitted["events"]] == ["0", "1"]
    assert fitted["events"][1]["params"]["cx"] > fitted["events"][0]["params"]["cx"]

    blobs = np.concatenate([c + rng.normal(0, 0.05, (8, 2)) for c in ([0, 0], [2, 0])])
    _write(tmp_path / "cl.csv", blobs)
    assert main(["cluster", str(tmp_path / "cl.csv"), "--ks", "1,2,3", "--mode", "exact", "--steps", "20", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["events"][0]["k"] == 2


def test_bad_csv_is_reported_with_file_and_line(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("x,y\n0,1\n0,oops\n")
    (tmp_path / "ok.csv").write_text("x,y\n0,1\n")
    assert main(["estimate", str(tmp_path / "bad.csv"), str(tmp_path / "ok.csv")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, line 3, column 'y'" in err
