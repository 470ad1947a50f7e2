"""End-to-end runs of the trigger story and the reproduction entry point (slow: real training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monotonenorm._reproduce import reproduce


@pytest.mark.slow
def test_reproduce_without_data_runs_the_trigger_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONOTONENORM_DATA", str(tmp_path / "no-data-here"))
    section = reproduce(tmp_path / "out", quick=True, seed=0, device="cpu", quiet=True)
    assert section.startswith("## monotonenorm: ")
    assert "not found" in section  # the tabular part says why it was skipped
    assert "(monotonenorm/trigger.png)" in section
    assert (tmp_path / "out" / "trigger.json").is_file() and (tmp_path / "out" / "run.json").is_file()
    import json

    result = json.loads((tmp_path / "out" / "trigger.json").read_text())
    mono = result["efficiency"]["monotone (monotonenorm)"]
    taus = result["lifetimes_ps"]
    # a monotone score and a stochastically larger signal: efficiency cannot drop with the lifetime
    assert mono[taus.index(20.0)] >= mono[taus.index(1.5)]
    assert result["violation_fraction"]["monotone (monotonenorm)"] == 0.0
    assert result["certified_monotone_model"] is True
