"""The crossover benchmark's references and caps, and "auto" against the committed measurements."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from emd_lipschitz._bench import Payload, crossover, problem, resolvable_k
from emd_lipschitz._exact import auto_method

RESULTS = Path(__file__).resolve().parents[1] / "results"
# the bench's method names -> emd()'s methods
METHOD = {"POT exact": "exact", "POT Sinkhorn": "sinkhorn", "NEEMo critic": "neural"}


def _lp_w1(x, a, y, b) -> float:
    """W1 as a float64 linear program (scipy HiGHS) on costs from direct differences."""
    n, m = len(a), len(b)
    cost = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    rows = np.zeros((n + m, n * m))
    for i in range(n):
        rows[i, i * m : (i + 1) * m] = 1
    for j in range(m):
        rows[n + j, j::m] = 1
    res = linprog(cost.ravel(), A_eq=rows, b_eq=np.r_[a, b], bounds=(0, None), method="highs")
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("kind", ["translation", "dilation"])
def test_closed_form_references_equal_an_independent_linear_program(kind):
    x, a, y, b, closed = problem(kind, 15, seed=3)
    assert closed == pytest.approx(_lp_w1(x, a, y, b), rel=1e-9)


def test_a_method_is_not_started_where_its_first_setting_would_overrun_the_cell_cap(tmp_path):
    payload = Payload(tmp_path, {}, [0])
    crossover(payload, [40, 4000], exact_cap=10_000, sinkhorn_cap=0, tensorized_cap=0, critic_cap=0, critic_steps=[1], device="cpu",
              seed=0, quiet=True, deadline=math.inf, problems=("translation",), online_cap=0, repeats=1, cell_seconds=1e-3)
    data = json.loads((tmp_path / "record.json").read_text())
    rows = {(r[1], r[2]) for r in data["tables"][0]["rows"]}
    assert (40, "POT exact") in rows and (4000, "POT exact") not in rows  # 4000 points would take seconds, not 1 ms
    assert data["metrics"]["crossover_skipped"][0][:3] == ["translation", 4000, "POT exact"]


def test_resolvable_k_merges_centres_closer_than_the_distance():
    centres = np.array([[0.0, 0.0], [0.2, 0.0], [0.4, 0.0], [3.0, 3.0]])
    assert resolvable_k(centres, 0.3) == 2 and resolvable_k(centres, 0.1) == 4


# the CPU crossover records (one run up to 1000 points per cloud; exact + critic at 10^4 and 3 x 10^4; the critic at 10^5)
CROSSOVER_RECORDS = {"bench_cpu_small.json": "crossover_small_winner", "bench_cpu_10k.json": "crossover_10k_winner",
                     "bench_cpu_100k.json": "crossover_100k_winner"}


def test_auto_follows_the_measured_crossover():
    """At every size of the committed CPU crossover, "auto" picks the method that reached 1 % first;
    where none reached it, the only method that fits in memory there (the critic)."""
    checked = set()
    for name, table in CROSSOVER_RECORDS.items():
        record = json.loads((RESULTS / name).read_text())
        winners = next(t for t in record["tables"] if t["name"] == table)
        for _kind, n, target, fastest, _seconds, methods in winners["rows"]:
            if target != "1.0%":
                continue
            chosen, _ = auto_method(n, n)
            if fastest == "none reached":
                assert "POT exact" not in methods and chosen == "neural", (n, methods)
            else:
                assert chosen == METHOD[fastest], (n, fastest, chosen)
            checked.add(n)
    assert {100, 1000, 10_000} <= checked  # the sizes where exact ran


def test_auto_uses_exact_at_ten_thousand_points_per_cloud():
    # measured: 10^4 x 10^4 exact (800 MB of cost) was the only method to reach 1 %; 0.1's cap (5e7) sent it to the critic
    assert auto_method(10_000, 10_000)[0] == "exact"
    assert auto_method(30_000, 30_000)[0] == "neural"
