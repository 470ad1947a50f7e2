import numpy as np
import pytest

from grokking_theory._config import ToyConfig
from grokking_theory._phases import (
    COMPREHENSION,
    CONFUSION,
    GROKKING,
    MEMORIZATION,
    classify_phase,
    from_budget_encoding,
    phase_diagram,
    truncate_budget,
)


def test_table1_rule():
    tr = np.array([100, 100, 100, -1, 100, 500])
    te = np.array([900, 1100, -1, -1, 1099, 1500])
    expect = [COMPREHENSION, GROKKING, MEMORIZATION, CONFUSION, COMPREHENSION, GROKKING]
    assert classify_phase(tr, te).tolist() == expect
    assert classify_phase(tr, te, lag=50).tolist()[0] == GROKKING


def test_budget_encodings():
    s = np.array([99999.0, 854.0, 67035.0])
    assert from_budget_encoding(s, 100000).tolist() == [-1, 854, 67035]
    assert truncate_budget(np.array([-1, 854, 67035]), 10000).tolist() == [-1, 854, -1]


def test_empty_or_bad_sweeps_raise():
    cfg = ToyConfig(steps=10)
    with pytest.raises(ValueError, match="empty"):
        phase_diagram(cfg, x_name="eta_dec", x_values=[], y_name="weight_decay_dec", y_values=[1.0])
    with pytest.raises(ValueError, match="cannot sweep"):
        phase_diagram(cfg, x_name="width", x_values=[1], y_name="eta_dec", y_values=[1e-3])
    with pytest.raises(ValueError, match="different"):
        phase_diagram(cfg, x_name="eta_dec", x_values=[1], y_name="eta_dec", y_values=[1e-3])


def test_tiny_diagram_cells_are_the_runs_they_name():
    from grokking_theory import train_toy

    cfg = ToyConfig(steps=300, rng_order="sweep", width=32, eta_reprs=1e-2)
    dia = phase_diagram(cfg, x_name="weight_decay_dec", x_values=[0], y_name="eta_dec",
                        y_values=[3e-3, 1e-2], seeds=[58, 3], lag=100)
    assert dia.step_train.shape == (2, 2, 1)
    names = {0: "comprehension", 1: "grokking", 2: "memorization", 3: "confusion"}
    for (si, yi, xi), code in np.ndenumerate(dia.phases):
        # Table 1 by hand on the cell's steps; the seed-58 cells also against the faithful
        # single-run trainer (same seed, lr, wd), so a cell holds the run it names
        tr, te = int(dia.step_train[si, yi, xi]), int(dia.step_test[si, yi, xi])
        if dia.seeds[si] == 58:
            run = train_toy(cfg.replace(seed=58, eta_dec=dia.y_values[yi], weight_decay_dec=dia.x_values[xi]))
            assert abs(tr - (-1 if run.step_train is None else run.step_train)) <= 2
            assert abs(te - (-1 if run.step_test is None else run.step_test)) <= 2
        hand = ("confusion" if tr < 0 else "memorization" if te < 0
                else "grokking" if te - tr >= 100 else "comprehension")
        assert names[int(code)] == hand
    assert dia.phase_counts() == {n: int((dia.phases == k).sum()) for k, n in names.items()}
    assert len(set(dia.phases.flatten().tolist())) >= 3  # the cells chosen do not all share a phase
