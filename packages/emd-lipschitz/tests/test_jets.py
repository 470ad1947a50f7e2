"""emd_lipschitz.jets against reference values computed by EnergyFlow 1.4 (fixture made by
tools/bench/emd_energyflow_parity.py in a separate numpy<2 environment; see its docstring)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from emd_lipschitz import jets

FIXTURE = json.loads((Path(__file__).parent / "data" / "energyflow_parity.json").read_text())


def _cases():
    for p, case in enumerate(FIXTURE["cases"]):
        for v in case["values"]:
            yield pytest.param(case, v, id=f"pair{p}-R{v['R']}-b{v['beta']}-n{int(v['norm'])}-p{int(v['periodic_phi'])}")


@pytest.mark.parametrize(("case", "ref"), list(_cases()))
def test_emd_matches_energyflow(case, ref):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small R on purpose: parity includes R = 0.4
        value = jets.emd(np.array(case["ev0"]), np.array(case["ev1"]), R=ref["R"], beta=ref["beta"], norm=ref["norm"],
                         periodic_phi=ref["periodic_phi"])
    assert value == pytest.approx(ref["emd"], rel=1e-8, abs=1e-12)


def test_fixture_covers_unequal_totals_and_extra_columns():
    case = FIXTURE["cases"][1]
    ev0, ev1 = np.array(case["ev0"]), np.array(case["ev1"])
    assert ev0.shape[1] == 4  # a mass column that gdim=2 ignores
    assert abs(ev0[:, 0].sum() - ev1[:, 0].sum()) > 1.0


def test_flow_matches_energyflow():
    case, ref = FIXTURE["cases"][0], FIXTURE["flow"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value, flow = jets.emd(np.array(case["ev0"]), np.array(case["ev1"]), R=ref["R"], return_flow=True)
    expected = np.array(ref["flow"])
    assert value == pytest.approx(ref["emd"], rel=1e-8)
    assert flow.shape == expected.shape
    # the optimal flow need not be unique; its cost and its marginals are
    assert flow.sum(0) == pytest.approx(expected.sum(0), rel=1e-9, abs=1e-9)
    assert flow.sum(1) == pytest.approx(expected.sum(1), rel=1e-9, abs=1e-9)


def test_emds_symmetric_and_cross_match_energyflow():
    events = [np.array(e) for e in FIXTURE["emds"]["events"]]
    sym = FIXTURE["emds"]["symmetric"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = jets.emds(events, R=sym["R"], beta=sym["beta"], n_jobs=2, progress=False)
        cross = FIXTURE["emds"]["cross"]
        got_cross = jets.emds(events[:2], events[2:], R=cross["R"], beta=cross["beta"], norm=True, periodic_phi=True, progress=False)
    np.testing.assert_allclose(got, np.array(sym["emds"]), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got_cross, np.array(cross["emds"]), rtol=1e-8, atol=1e-12)


def test_small_radius_warns():
    ev = np.array([[1.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    with pytest.warns(UserWarning, match="half the largest pairwise distance"):
        jets.emd(ev, ev[:1], R=1.0)


def test_bad_events_are_refused():
    ev = np.array([[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="columns"):
        jets.emd(ev[:, :2], ev, R=1.0)
    with pytest.raises(ValueError, match="complex"):
        jets.emd(ev.astype(complex), ev, R=1.0)
    with pytest.raises(ValueError, match="R must be"):
        jets.emd(ev, ev, R=-1.0)


def test_emds_progress_into_a_pipe_is_plain_lines_not_carriage_return_frames(capfd):
    # 0.2.0 passed progress=True to tqdm with disable=False: bar frames with "\r" went into piped logs
    rng = np.random.default_rng(5)
    events = [np.c_[rng.uniform(1, 5, 6), rng.normal(0, 0.2, 6), rng.normal(0, 0.2, 6)] for _ in range(6)]
    jets.emds(events, R=1.0, progress=True)
    err = capfd.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("emds")]
    assert 1 <= len(lines) <= 10 and lines[-1].endswith("15/15")
