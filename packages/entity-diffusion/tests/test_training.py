"""Trainer: EMA warm-up, held-out ELBO, best-checkpoint selection and early stopping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from entity_diffusion import EntityDiffusion, KBFormer, KBFormerConfig, Schema, held_out_loss, train

SMALL = KBFormerConfig(steps=150, batch_size=64, lr=3e-3, val_fraction=0.0).updated(
    d_model=16, n_heads=2, n_layers=1, n_mixtures=4, n_frequencies=4)


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 2 * x + 0.3 * rng.normal(size=n), "z": np.sin(2 * x) + 0.2 * rng.normal(size=n),
                         "c": np.where(x + 0.3 * rng.normal(size=n) > 0, "hi", "lo")})


def _fit_and_compare(config: KBFormerConfig) -> tuple[float, float]:
    train_frame, fresh = _table(400, 0), _table(300, 1)
    schema = Schema.infer(train_frame)
    torch.manual_seed(0)
    model = KBFormer(schema, config.model)
    history = train(model, schema.encode(train_frame), config, generator=torch.Generator().manual_seed(0))
    fresh_encoded = schema.encode(fresh)
    ema_loss = held_out_loss(model, fresh_encoded, repeats=20, seed=7)
    live = KBFormer(schema, config.model)
    live.load_state_dict({**model.state_dict(), **history.final_live_state})
    live_loss = held_out_loss(live, fresh_encoded, repeats=20, seed=7)
    return ema_loss, live_loss


def test_ema_weights_are_not_worse_than_live_after_a_short_fit() -> None:
    ema_loss, live_loss = _fit_and_compare(SMALL)
    # measured 2.619 vs 2.609: equal within the 2 % the mask-draw noise of this estimate allows
    assert ema_loss <= live_loss + 0.02 * abs(live_loss), (ema_loss, live_loss)
    # without the warm-up (0.1's behaviour: decay 0.995 from the random init) 47 % of the
    # sampling weights after 150 steps are still the initialisation, and it shows
    ema_old, live_old = _fit_and_compare(SMALL.updated(ema_warmup=False))
    assert ema_old > live_old + 0.2 * abs(live_old), (ema_old, live_old)


def test_ema_decay_warms_up() -> None:
    from entity_diffusion._api import _ema_decay

    cfg = KBFormerConfig(ema_decay=0.995)
    assert _ema_decay(cfg, 0) == pytest.approx(0.1)
    assert _ema_decay(cfg, 90) == pytest.approx(91 / 100)
    assert _ema_decay(cfg, 10**6) == 0.995


def test_validation_split_best_checkpoint_and_early_stopping() -> None:
    frame = _table(400, 2)
    # a large learning rate that never decays much: the held-out ELBO stops improving early
    config = SMALL.updated(steps=3000, lr=3e-2, val_fraction=0.2, eval_every=10, patience=3)
    model = EntityDiffusion(config, random_state=0).fit(frame)
    h = model.history_
    assert model.n_validation_rows_ == 80 and model.n_fit_rows_ == 320
    assert h.stopped_early and h.steps_run < 3000
    assert len(h.val_loss) == len(h.val_steps) >= config.patience + 1
    best = int(np.argmin(h.val_loss))
    assert h.best_step == h.val_steps[best]
    # no improvement over the last `patience` evaluations, and the kept weights are the best ones
    assert all(v >= h.val_loss[best] for v in h.val_loss[best + 1:]) and len(h.val_loss) - 1 - best == 3
    held = model.schema_.encode(frame.iloc[np.random.default_rng(0).permutation(400)[:80]])
    assert held_out_loss(model.model_, held, seed=config.val_seed, repeats=config.val_repeats) == pytest.approx(
        h.val_loss[best], rel=1e-5)


def test_explicit_validation_data_and_no_split_for_tiny_tables() -> None:
    frame = _table(60, 3)
    model = EntityDiffusion(SMALL.updated(steps=20, val_fraction=0.1, eval_every=10), random_state=0).fit(frame)
    assert model.n_validation_rows_ == 0 and model.history_.val_loss == []  # 6 rows < min_val_rows
    model = EntityDiffusion(SMALL.updated(steps=20, eval_every=10), random_state=0).fit(
        frame, validation_data=_table(30, 4))
    assert model.history_.val_steps == [10, 20] and np.isfinite(model.history_.val_loss_live)


def test_learning_rate_decays_to_zero_within_the_time_cap() -> None:
    """A fit cut by ``max_seconds`` must still anneal: the GPU nuclear job capped 20,000 planned
    steps at 55 s, stopped near step 250 and never decayed its learning rate (lr at 99 % of peak)."""
    frame = _table(200, 0)
    schema = Schema.infer(frame)
    torch.manual_seed(0)
    model = KBFormer(schema, SMALL.model)
    config = KBFormerConfig(steps=1_000_000, batch_size=32, lr=3e-3, val_fraction=0.0, max_seconds=1.5).updated(
        d_model=8, n_heads=2, n_layers=1, n_mixtures=2, n_frequencies=2)
    model = KBFormer(schema, config.model)
    history = train(model, schema.encode(frame), config, generator=torch.Generator().manual_seed(0))
    assert history.stopped_by_time and history.steps_run < 1_000_000
    assert history.final_lr <= 0.1 * config.lr, history.final_lr
