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


def test_tiny_diagram_shapes_and_codes():
    cfg = ToyConfig(steps=60, rng_order="sweep", width=16)
    dia = phase_diagram(cfg, x_name="weight_decay_dec", x_values=[0, 5], y_name="eta_dec",
                        y_values=[1e-3, 1e-2], seeds=[1, 2])
    assert dia.step_train.shape == (2, 2, 2)
    assert set(np.unique(dia.phases)) <= {0, 1, 2, 3}
    assert sum(dia.phase_counts().values()) == 8
