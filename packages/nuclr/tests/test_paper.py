"""The time-boxed training of the GPU campaign jobs (``nuclr paper`` / ``nuclr control``)."""

import time

import numpy as np
import pytest

from nuclr import data
from nuclr._paper import SMOKE_CONFIG, time_boxed_train
from nuclr._train import _lr_factor_progress, train
from nuclr.model import NuCLR, TrainConfig, build_rows


def _rows():
    t = data.ground_states(2020, radii=False)
    t = t[(t.z >= 20) & (t.z <= 30)]
    return build_rows(t, ("binding", "s_n"))


def test_time_boxed_training_fills_its_window_after_a_slow_start(monkeypatch):
    """On the GPU the first steps are slow (CUDA start-up, contention). 0.2 timed 30 steps that
    included that start-up, planned ~120 epochs per fold from them and stopped after ~40 % of its
    window. The run must use (nearly) the whole window and still end inside it."""
    original = NuCLR.forward
    slow = {"left": 1}

    def forward(self, *args):
        if slow["left"]:
            slow["left"] -= 1
            time.sleep(1.5)  # start-up cost paid once per process, like CUDA initialisation
        return original(self, *args)

    rows = _rows()
    cfg = TrainConfig(tasks=rows.tasks, width=8, depth=1, batch_size=64, epochs=1_000_000)
    train(rows, cfg, stop_after=1)  # imports (torch's optimizer pulls in torch._dynamo) done before timing
    monkeypatch.setattr(NuCLR, "forward", forward)
    window = 4.0
    t0 = time.time()
    meta: dict = {}
    model, used = time_boxed_train(rows, cfg, seed=0, device="cpu", stop_at_epoch_s=t0 + window, meta=meta)
    spent = time.time() - t0
    assert spent >= 0.85 * window, (spent, meta)
    assert spent <= window + 2.0, (spent, meta)  # ends at the deadline (slack for a loaded CI machine)
    assert used.epochs == max(1, round(model.steps / meta["steps_per_epoch"]))
    assert meta["epochs_reached"] > 0 and meta["steps"] == model.steps


def test_time_fraction_schedule():
    assert _lr_factor_progress(0.0, 0.1, 0.01) == pytest.approx(1e-3)
    assert _lr_factor_progress(0.05, 0.1, 0.01) == pytest.approx(0.5)
    assert _lr_factor_progress(0.1, 0.1, 0.01) == pytest.approx(1.0)
    assert _lr_factor_progress(0.55, 0.1, 0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert _lr_factor_progress(1.0, 0.1, 0.01) == pytest.approx(0.01)
    f = [_lr_factor_progress(p, 0.02, 0.001) for p in np.linspace(0.02, 1, 50)]
    assert all(a >= b for a, b in zip(f, f[1:]))


def test_bad_or_passed_deadline_and_the_epoch_cap():
    rows = _rows()
    cfg = TrainConfig(tasks=rows.tasks, width=8, depth=1, epochs=2)
    with pytest.raises(ValueError, match="deadline"):
        train(rows, cfg, deadline=float("nan"))
    assert train(rows, cfg, deadline=time.time() - 1.0).steps == 1  # set-up ate the window: one step, no crash
    m = train(rows, cfg, deadline=time.time() + 60.0)  # the cap (2 epochs) ends it long before the deadline
    assert m.steps == 2 * -(-len(rows) // cfg.batch_size)


def test_paper_smoke_config_is_small():
    assert SMOKE_CONFIG.width <= 32 and SMOKE_CONFIG.depth <= 2
