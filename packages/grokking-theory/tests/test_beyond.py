"""Modular-addition transformer and the digits large-init experiment (small configs)."""

import json

import numpy as np
import pytest
import torch

from grokking_theory import (
    DigitsConfig,
    ModAddConfig,
    digits_grokking,
    embedding_pca,
    participation_ratio,
    ring_score,
    train_digits,
    train_modular_addition,
)
from grokking_theory._cli import main
from grokking_theory._modadd import ModAddTransformer, modadd_data

TINY = ModAddConfig(p=7, train_fraction=0.5, d_model=32, n_layers=1, n_heads=2, d_mlp=64, steps=150,
                    eval_every=10, embed_lr=3e-3, decoder_lr=3e-3, decoder_wd=0.1)


def test_participation_ratio_of_known_covariance():
    rng = np.random.default_rng(0)
    # covariance diag(4, 1, 1, 0): PR = (6)^2 / (16 + 1 + 1) = 2
    pts = rng.standard_normal((200_000, 4)) * np.array([2.0, 1.0, 1.0, 0.0])
    assert participation_ratio(pts) == pytest.approx(2.0, rel=0.02)
    iso = rng.standard_normal((200_000, 5))
    assert participation_ratio(iso) == pytest.approx(5.0, rel=0.02)


def test_pca_fractions_sum_to_one_and_rank_one():
    rng = np.random.default_rng(1)
    line = np.outer(rng.standard_normal(50), [1.0, 2.0, -1.0])
    frac, coords = embedding_pca(line)
    assert frac.sum() == pytest.approx(1.0) and frac[0] == pytest.approx(1.0)
    assert coords.shape == (50, 3)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_ring_score_perfect_ring_vs_random(k):
    p = 17
    ang = 2 * np.pi * k * np.arange(p) / p + 0.3
    ring = np.stack([np.cos(ang), -np.sin(ang)], 1) * 2.5 + 1.0  # reflected, shifted, scaled
    r = ring_score(ring)
    assert r["ring_k"] == min(k, p - k) and r["circularity"] == pytest.approx(1.0)
    assert r["radius_cv"] == pytest.approx(0.0, abs=1e-9)
    rnd = ring_score(np.random.default_rng(k).standard_normal((p, 2)), null_perms=100)
    assert rnd["circularity"] < 0.75 and rnd["circularity_null_p95"] < 0.9


def test_modadd_data_and_model_shapes():
    x, y, mask = modadd_data(7, 0.5, seed=0)  # the paper's sequence [a, b]: no operation token
    assert x.shape == (49, 2) and y.shape == (49,) and int(mask.sum()) == 24
    assert torch.equal(y, (x[:, 0] + x[:, 1]) % 7)
    xo, _, mo = modadd_data(7, 0.5, seed=0, op_token=True)
    assert xo.shape == (49, 3) and bool((xo[:, 2] == 7).all()) and torch.equal(mo, mask)
    assert torch.equal(mask, modadd_data(7, 0.5, seed=0)[2])
    assert not torch.equal(mask, modadd_data(7, 0.5, seed=1)[2])
    torch.manual_seed(0)
    assert ModAddTransformer(TINY)(x).shape == (49, 7)


def test_modadd_fits_train_and_is_deterministic():
    a = train_modular_addition(TINY)
    m = a["metrics"]
    assert m["final_train_acc"] == 1.0 and m["step_train_acc"] is not None
    assert len(a["curves"]["effective_dim"]) == len(a["curves"]["step"]) == TINY.steps // TINY.eval_every + 1
    # PCA and ring recomputed independently from the trained embedding (scikit-learn PCA; a
    # brute-force scan of k and both orientations)
    from sklearn.decomposition import PCA

    emb = a["model"].embed.weight.detach().numpy()[: TINY.p]
    pca = PCA().fit(emb)
    assert m["top2_variance_fraction"] == pytest.approx(pca.explained_variance_ratio_[:2].sum(), rel=1e-6)
    xy = pca.transform(emb)[:, :2]
    ang = np.arctan2(xy[:, 1] - xy[:, 1].mean(), xy[:, 0] - xy[:, 0].mean())
    best = max((abs(np.exp(1j * (sgn * ang - 2 * np.pi * k * np.arange(7) / 7)).mean()), min(k, 7 - k))
               for k in range(1, 7) for sgn in (1, -1))
    assert m["circularity"] == pytest.approx(best[0], rel=1e-6) and m["ring_k"] == best[1]
    b = train_modular_addition(TINY)
    assert a["curves"]["test_acc"] == b["curves"]["test_acc"]
    assert a["embedding_top2"] == b["embedding_top2"]
    c = train_modular_addition(TINY.replace(seed=1, steps=20))
    assert c["curves"]["train_loss"] != a["curves"]["train_loss"][: len(c["curves"]["train_loss"])]


def test_modadd_config_errors():
    with pytest.raises(ValueError, match="p must be"):
        ModAddConfig(p=2)
    with pytest.raises(ValueError, match="divisible"):
        ModAddConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="train_fraction"):
        ModAddConfig(train_fraction=1.0)


def _blobs(n_per=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, 8)) * 3
    y = np.repeat(np.arange(3), n_per)
    x = centres[y] + rng.standard_normal((len(y), 8)) * 0.3
    return x[::2], y[::2], x[1::2], y[1::2]


def test_digits_mlp_init_scale_and_fit():
    data = _blobs()
    cfg = DigitsConfig(width=32, depth=3, steps=200, eval_every=10, weight_decay=0.0, lr=1e-2)
    small = train_digits(cfg.replace(alpha=1.0), data=data)
    big = train_digits(cfg.replace(alpha=5.0), data=data)
    assert big["metrics"]["weight_norm_init"] == pytest.approx(5 * small["metrics"]["weight_norm_init"], rel=1e-5)
    assert small["metrics"]["final_train_acc"] == 1.0 and small["metrics"]["n_train"] == 30
    again = train_digits(cfg.replace(alpha=1.0), data=data)
    assert again["curves"]["train_loss"] == small["curves"]["train_loss"]
    res = digits_grokking(cfg, alphas=(3.0, 1.0), data=data)
    assert set(res["metrics"]) == {"alpha=3", "alpha=1"}


def test_digits_config_errors():
    with pytest.raises(ValueError, match="loss"):
        DigitsConfig(loss="hinge")
    with pytest.raises(ValueError, match="n_train"):
        DigitsConfig(n_train=3)


def test_digits_real_data_split():
    from grokking_theory._digits import load_digits_split

    xtr, ytr, xte, yte = load_digits_split(200, seed=0)
    assert xtr.shape == (200, 64) and len(xte) == 1797 - 200 and xtr.max() <= 1.0
    assert np.array_equal(ytr, load_digits_split(200, seed=0)[1])


def test_cli_modular_addition_tiny(tmp_path, capsys):
    out = tmp_path / "ma"
    argv = ["modular-addition", "--p", "7", "--steps", "40", "--d-model", "32", "--quiet",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("step_train_acc", "step_test_acc", "top2_variance_fraction", "ring_k", "circularity",
                "effective_dim_final", "best_pair_circularity"):
        assert key in m
    assert (out / "modular_addition.png").stat().st_size > 1000 and (out / "model.safetensors").exists()
    assert main(["modular-addition", "--p", "2", "--quiet"]) == 2
    assert "p must be" in capsys.readouterr().err


def test_cli_digits_tiny(tmp_path):
    out = tmp_path / "dg"
    assert main(["digits", "--steps", "20", "--n-train", "100", "--quiet", "--device", "cpu",
                 "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m) == {"alpha=8", "alpha=1"} and (out / "digits.png").stat().st_size > 1000


@pytest.mark.slow
def test_quick_experiments_end_to_end(tmp_path):
    out = tmp_path / "digits"
    assert main(["digits", "--quick", "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    # large init fits later and generalises later than standard init (measured: 720/1120 vs 20/40)
    assert m["alpha=1"]["step_test_acc"] is not None and m["alpha=8"]["step_test_acc"] is not None
    assert m["alpha=8"]["step_test_acc"] > m["alpha=1"]["step_test_acc"]
    assert m["alpha=8"]["final_test_acc"] > 0.9


def test_entropy_dimension_of_known_spectra():
    from grokking_theory._modadd import entropy_dim

    rng = np.random.default_rng(0)
    iso = rng.standard_normal((200_000, 5))
    assert entropy_dim(iso) == pytest.approx(5.0, rel=0.01)
    pts = rng.standard_normal((200_000, 4)) * np.array([2.0, 1.0, 1.0, 0.0])  # spectrum 4, 1, 1, 0
    q = np.array([4, 1, 1]) / 6
    assert entropy_dim(pts) == pytest.approx(np.exp(-(q * np.log(q)).sum()), rel=0.01)
    with pytest.raises(ValueError, match="zero variance"):
        entropy_dim(np.ones((5, 3)))


def _decoder_change(res, init):
    return max((q.detach() - init[n]).abs().max().item() for n, q in res["model"].named_parameters()
               if n != "embed.weight")


def test_embedding_and_decoder_have_separate_optimizers():
    torch.manual_seed(TINY.seed)
    init = {n: q.detach().clone() for n, q in ModAddTransformer(TINY).named_parameters()}
    cfg = TINY.replace(steps=20)
    frozen_embed = train_modular_addition(cfg.replace(embed_lr=1e-12))
    frozen_dec = train_modular_addition(cfg.replace(decoder_lr=1e-12))
    moved = lambda r: (r["model"].embed.weight.detach() - init["embed.weight"]).abs().max().item()  # noqa: E731
    assert moved(frozen_embed) < 1e-9 and _decoder_change(frozen_embed, init) > 1e-3
    assert moved(frozen_dec) > 1e-3 and _decoder_change(frozen_dec, init) < 1e-9
    # embedding weight decay acts on the embedding only: with zero gradient step (lr tiny) nothing
    # moves; with decay and a real lr the embedding norm shrinks faster than without
    decayed = train_modular_addition(cfg.replace(embed_wd=50.0))
    plain = train_modular_addition(cfg)
    assert decayed["model"].embed.weight.norm() < 0.9 * plain["model"].embed.weight.norm()


def test_vmapped_batch_reproduces_single_runs():
    from grokking_theory._modadd_sweep import train_modadd_batched

    cfgs = [TINY.replace(steps=40), TINY.replace(steps=40, seed=3, decoder_lr=1e-2, decoder_wd=2.0, embed_wd=0.5)]
    batch = train_modadd_batched(cfgs)
    for cfg, res in zip(cfgs, batch):
        single = train_modular_addition(cfg)
        assert np.allclose(res["curves"]["train_loss"], single["curves"]["train_loss"], rtol=1e-4, atol=1e-6)
        assert np.allclose(res["curves"]["effective_dim"], single["curves"]["effective_dim"], rtol=1e-4)
        assert res["curves"]["test_acc"] == pytest.approx(single["curves"]["test_acc"], abs=1 / 25)
    with pytest.raises(ValueError, match="may differ only"):
        train_modadd_batched([TINY, TINY.replace(d_model=64)])


def test_dropout_is_active_in_training_only():
    cfg = TINY.replace(dropout=0.5)
    torch.manual_seed(0)
    model = ModAddTransformer(cfg)
    x = modadd_data(7, 0.5, 0)[0]
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))
    with pytest.raises(ValueError, match="dropout"):
        ModAddConfig(dropout=1.0)


def test_transformer_sweep_cli_resumes(tmp_path, capsys):
    out = tmp_path / "ts"
    argv = ["transformer-sweep", "--quick", "--p", "7", "--d-model", "32", "--heads", "2", "--d-mlp", "32",
            "--steps", "30", "--seeds", "0,1", "--axes", "dropout", "--batch", "3", "--quiet", "--device", "cpu",
            "--out", str(out)]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["finished"] == first["cells"] == 4
    rec = json.loads((out / "record.json").read_text())
    assert rec["metrics"]["complete"] and len(rec["tables"][0]["rows"]) == 2
    assert main(argv + ["--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["finished"] == 4
    assert main(argv[:-2] + ["--out", str(tmp_path / "x"), "--seeds", "a"]) == 2


@pytest.mark.slow
def test_transformer_groks_on_modular_addition():
    """The claim: the transformer fits its training pairs long before it generalizes (measured
    with the quick config: train acc >= 0.9 at step 60, test at 2480 single-run, 2640 batched)."""
    from grokking_theory._modadd_sweep import train_modadd_batched

    (res,) = train_modadd_batched([ModAddConfig.quick()], early_stop=True)
    m = res["metrics"]
    assert m["step_train_acc"] is not None and m["step_train_acc"] <= 200
    assert m["step_test_acc"] is not None and m["step_test_acc"] - m["step_train_acc"] >= 1000
    # on the plateau before grokking the test accuracy stays low while train accuracy is 1
    c = res["curves"]
    plateau = [te for s, tr, te in zip(c["step"], c["train_acc"], c["test_acc"]) if 500 <= s <= 1500]
    assert max(plateau) < 0.5


def test_effective_dimension_over_seeds_is_the_mean_of_the_runs(tmp_path, capsys):
    out = tmp_path / "seeds"
    assert main(["transformer-sweep", "--axes", "seeds", "--no-early-stop", "--quick", "--p", "7",
                 "--d-model", "32", "--heads", "2", "--d-mlp", "32", "--steps", "40", "--seeds", "0,1,2",
                 "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    rec = json.loads((out / "record.json").read_text())
    mean = rec["metrics"]["mean_curves"]["y0_x0"]
    runs = [json.loads(p.read_text())["curves"] for p in sorted((out / "cells").glob("*.json"))]
    assert mean["seeds"] == len(runs) == 3
    assert np.allclose(mean["effective_dim"], np.mean([r["effective_dim"] for r in runs], 0))
    # seeds differ, so the runs differ (the mean is not one run repeated)
    assert runs[0]["effective_dim"] != runs[1]["effective_dim"]
