"""App. G: mini-batch size and initialization scale in the faithful and the batched trainers."""

import numpy as np
import pytest

from grokking_theory import RunSpec, ToyConfig, train_batched, train_toy
from grokking_theory._phases import grid, sweep_cells, sweep_meta
from grokking_theory._sweep import config_hash


@pytest.mark.parametrize("change", [{"batch_size": 8}, {"init_scale_nn": 3.0}, {"init_scale_reprs": 0.2}])
def test_batched_minibatch_and_init_scale_follow_the_faithful_trainer(change):
    cfg = ToyConfig(steps=150, eta_dec=1e-3, **change)
    faithful = train_toy(cfg)
    # the setting comes from the run's spec, not the shared base config (a sweep varies it per run)
    batched = train_batched(ToyConfig(steps=150, eta_dec=1e-3), [RunSpec.from_config(cfg)], early_stop=False)
    np.testing.assert_allclose(batched.final_reprs[0], faithful.reprs[-1], atol=2e-4)
    # and the setting matters: the default (full batch, unit init) run ends elsewhere
    plain = train_toy(ToyConfig(steps=150, eta_dec=1e-3))
    assert np.abs(plain.reprs[-1] - faithful.reprs[-1]).max() > 1e-2


def test_minibatches_are_train_add_draws():
    # train_add draws choice(train_num, batch_size) after the initial state from the same numpy stream
    from grokking_theory import initial_state

    cfg = ToyConfig(batch_size=5, steps=1)
    ini = initial_state(cfg)
    rs = ini.numpy_rng
    first = ini.train_ids[rs.choice(np.arange(cfg.train_num), 5, replace=False)]
    from grokking_theory._batched import _batch_mask

    mask, sizes = _batch_mask([initial_state(cfg)], [5], [0], cfg.n_samples, cfg.train_num, "cpu")
    assert sorted(np.flatnonzero(mask[0].numpy())) == sorted(first.tolist())
    assert float(sizes[0]) == 5.0


def test_app_g_grids_and_old_hashes():
    g = grid("batch-size")
    assert g.x_name == "batch_size" and max(g.x_values) == 45 and g.y_name == "eta_dec"
    base = ToyConfig(rng_order="sweep", steps=2000)
    cells, specs = sweep_cells(base, "batch_size", [4.0, 45.0], "eta_dec", [1e-4], [58])
    assert specs[0].batch_size == 4 and isinstance(specs[0].batch_size, int)
    assert cells[0].hash != cells[1].hash
    # full-batch cells keep the hashes of sweeps written before batch_size existed (0.2.0's main)
    old, _ = sweep_cells(base, "weight_decay_dec", [0.0, 3.0], "eta_dec", [1e-4], [58])
    assert [c.hash for c in old] == ["c610c35df56fc4b9", "f1a51fc604d9c533"]
    meta = sweep_meta(base, "weight_decay_dec", [0.0, 3.0], "eta_dec", [1e-4], [58], 1000.0)
    assert config_hash(meta["grid"]) == "7647a3dbcdc08741"
    with pytest.raises(ValueError, match="integers"):
        sweep_cells(base, "batch_size", [4.5], "eta_dec", [1e-4], [58])
    with pytest.raises(ValueError, match="batch_size"):
        ToyConfig(batch_size=46)
    with pytest.raises(ValueError, match="exceeds"):
        train_batched(ToyConfig(train_num=20, steps=2), [RunSpec(batch_size=30)])


def test_gpu_runs_whole_seeds_one_batch_after_another():
    # 0.2's GPU job ran 3 seeds x 176 cells as one batch and, stopped at 420 s, held no cell of
    # seed 59; on a GPU the seeds now form batches in --seeds order
    from grokking_theory._cli import _device_batches

    cells, _ = sweep_cells(ToyConfig(rng_order="sweep"), "weight_decay_dec", [0.0, 1.0], "eta_dec", [1e-4], [60, 58])
    todo = cells[1:]  # one of seed 60's cells already finished
    gpu = _device_batches(todo, [60, 58], "cuda:0")
    assert [[c.values["seed"] for c in g] for g in gpu] == [[60], [58, 58]]
    assert _device_batches(todo, [60, 58], "cpu") == [todo]
