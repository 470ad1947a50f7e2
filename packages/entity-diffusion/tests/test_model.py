"""The mathematics: ELBO weight and masking distribution, GMM head, key encodings, sampler order."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from entity_diffusion import (
    KBFormer,
    ModelConfig,
    Schema,
    UnmaskingSampler,
    diffusion_loss,
    draw_mask,
    elbo_weight,
    empty_batch,
    gmm_log_prob,
    gmm_mean,
    masked_nll,
    sample_gmm,
)
from entity_diffusion._diffusion import MAX_PI

TINY = ModelConfig(d_model=16, n_heads=2, n_layers=1, n_mixtures=3, n_frequencies=4)


def _table(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({
        "a.x": x, "a.y": x + rng.normal(size=n), "b.c": rng.choice(["p", "q", "r"], n),
        "b.d": rng.choice(["u", "v"], n), "name": [f"w{i % 7}z" for i in range(n)],
    })


def _model(frame: pd.DataFrame, **kw) -> tuple[Schema, KBFormer]:
    torch.manual_seed(0)
    schema = Schema.infer(frame, max_categories=5, overrides={"name": "text"} if "name" in frame else None)
    return schema, KBFormer(schema, ModelConfig(**{**TINY.to_dict(), **kw}))


def test_elbo_weight_closed_form() -> None:
    pi = torch.tensor([0.25, 0.5, 0.9])
    n = torch.tensor([1, 2, 7])
    d = torch.tensor([4, 4, 8])
    expected = [(1 - 1 / 4) / 0.75 * 4 / 2, (1 - 2 / 4) / 0.5 * 4 / 3, (1 - 7 / 8) / (1 - 0.9) * 8 / 8]
    torch.testing.assert_close(elbo_weight(pi, n, d), torch.tensor(expected))


def test_mask_draw_counts_extra_property_and_missing() -> None:
    g = torch.Generator().manual_seed(0)
    present = torch.rand(4000, 6, generator=g) > 0.2
    present[0] = False  # an empty entity is never kept
    draw = draw_mask(present, g)
    assert not bool((draw.masked & ~present).any()), "a missing property was drawn into the loss mask"
    kept = draw.keep
    assert not bool(kept[0])
    torch.testing.assert_close(draw.masked[kept].sum(1), draw.n_masked[kept] + 1)
    assert bool((draw.n_masked[~kept] == draw.n_present[~kept]).all())
    assert float(draw.pi.max()) <= MAX_PI + 1e-6


def test_masked_count_is_uniform_because_pi_is_uniform() -> None:
    # N | pi ~ Binomial(D, pi), pi ~ U(0,1)  =>  P(N = k) = 1 / (D + 1) for k = 0..D
    g = torch.Generator().manual_seed(1)
    d = 5
    draw = draw_mask(torch.ones(60000, d, dtype=torch.bool), g)
    freq = torch.bincount(draw.n_masked, minlength=d + 1).double() / 60000
    torch.testing.assert_close(freq, torch.full((d + 1,), 1 / (d + 1), dtype=torch.float64), atol=0.01, rtol=0)


def test_gmm_single_unit_component_is_mse() -> None:
    x = torch.tensor([0.3, -1.2, 2.0])
    mu = torch.tensor([[0.1], [0.5], [1.0]], requires_grad=True)
    sigma = torch.ones(3, 1)
    logw = torch.zeros(3, 1)
    (-gmm_log_prob(x, mu, sigma, logw)).sum().backward()
    torch.testing.assert_close(mu.grad[:, 0], mu.detach()[:, 0] - x)
    nll = -gmm_log_prob(x, mu.detach(), sigma, logw)
    torch.testing.assert_close(nll, 0.5 * (x - mu.detach()[:, 0]) ** 2 + 0.5 * math.log(2 * math.pi))


def test_gmm_gradcheck_and_mixture_mean() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, generator=g, dtype=torch.float64)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    sigma = (torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    logw = torch.log_softmax(torch.randn(4, 3, generator=g, dtype=torch.float64), -1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: gmm_log_prob(x, a, b, c), (mu, sigma, logw))
    w = logw.detach().exp()
    torch.testing.assert_close(gmm_mean(mu.detach(), logw.detach()), (w * mu.detach()).sum(-1))
    # the density integrates to one
    grid = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    dens = gmm_log_prob(grid, mu.detach()[0], sigma.detach()[0], logw.detach()[0]).exp()
    assert abs(float(torch.trapezoid(dens, grid)) - 1) < 1e-6


def test_gmm_sampling_matches_mixture_moments_and_zero_temperature() -> None:
    mu = torch.tensor([[-2.0, 3.0]]).expand(200000, 2)
    sigma = torch.tensor([[0.5, 1.0]]).expand(200000, 2)
    logw = torch.log(torch.tensor([[0.3, 0.7]])).expand(200000, 2)
    s = sample_gmm(mu, sigma, logw, 1.0, torch.Generator().manual_seed(3))
    mean = 0.3 * -2 + 0.7 * 3
    var = 0.3 * (0.25 + 4) + 0.7 * (1 + 9) - mean**2
    assert abs(float(s.mean()) - mean) < 0.02 and abs(float(s.var()) - var) < 0.05
    torch.testing.assert_close(sample_gmm(mu[:2], sigma[:2], logw[:2], 0.0, None), torch.full((2,), mean))


def test_key_paths_share_word_embeddings() -> None:
    frame = pd.DataFrame({"phone.launch.year": [1.0, 2.0], "phone.launch.month": [1.0, 2.0], "launch": [3.0, 4.0]})
    _, model = _model(frame)
    enc = model.key_encoder()
    assert enc.shape == (3, TINY.d_model)
    assert model.key_encoder.words.num_embeddings == len({"phone", "launch", "year", "month"}) + 1
    # the encoding depends on the path only: a second encoder with the same weights and the same
    # path in another position gives the same vector
    from entity_diffusion import KeyPathEncoder

    other = KeyPathEncoder([("launch",), ("phone", "launch", "year")], TINY.d_model)
    other.words.weight.data = model.key_encoder.words.weight.data[
        [0, *[model.key_encoder.word_index[w] for w in sorted(other.word_index, key=other.word_index.get)]]
    ]
    other.rnn.load_state_dict(model.key_encoder.rnn.state_dict())
    names = [p.path for p in Schema.infer(frame).properties]
    torch.testing.assert_close(other()[1], enc[names.index(("phone", "launch", "year"))])
    torch.testing.assert_close(other()[0], enc[names.index(("launch",))])
    assert not torch.allclose(enc[0], enc[1])


@pytest.mark.parametrize("attend_masked", [False, True])
def test_masked_values_never_leak(attend_masked: bool) -> None:
    frame = _table()
    schema, model = _model(frame, attend_masked=attend_masked)
    model.eval()
    batch = schema.encode(frame)
    visible = batch.present.clone()
    visible[:, 0] = False  # mask a.x
    visible[:, 2] = False  # mask b.c
    base = model(batch, visible)
    changed = batch.clone()
    changed.num[:, 0] += 5.0
    changed.cat[:, 0] = (changed.cat[:, 0] + 1) % 3
    torch.testing.assert_close(model(changed, visible), base)
    # while a visible value does change the outputs
    changed.num[:, 1] += 5.0
    assert not torch.allclose(model(changed, visible), base)


def test_missing_properties_never_enter_the_loss() -> None:
    frame = _table()
    frame.loc[::2, "a.x"] = np.nan
    schema, model = _model(frame)
    batch = schema.encode(frame)
    g = torch.Generator().manual_seed(4)
    draw = draw_mask(batch.present, g)
    nll = masked_nll(model, batch, draw)
    assert bool((nll[~batch.present] == 0).all())
    # the placeholder value of a missing property does not change the loss
    loss_a = diffusion_loss(model, batch, generator=torch.Generator().manual_seed(5))
    other = batch.clone()
    other.num[~batch.present[:, 0], 0] = 3.0
    loss_b = diffusion_loss(model, other, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(loss_a, loss_b)


def test_loss_weightings_differ_and_backpropagate() -> None:
    frame = _table()
    schema, model = _model(frame)
    batch = schema.encode(frame)
    elbo = diffusion_loss(model, batch, weighting="elbo", generator=torch.Generator().manual_seed(6))
    plain = diffusion_loss(model, batch, weighting="masked-mean", generator=torch.Generator().manual_seed(6))
    assert torch.isfinite(elbo) and not torch.allclose(elbo, plain)
    elbo.backward()
    assert all(p.grad is not None for p in model.text_modules.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="weighting"):
        diffusion_loss(model, batch, weighting="mse")


class _Recorder(torch.nn.Module):
    """Wraps a model and records how many properties were visible at each call."""

    def __init__(self, inner: KBFormer) -> None:
        super().__init__()
        self.inner = inner
        self.visible: list[torch.Tensor] = []
        self.text_lengths = inner.text_lengths
        self.n_num, self.n_cat, self.n_props = inner.n_num, inner.n_cat, inner.n_props

    def forward(self, batch, visible):
        self.visible.append(visible.clone())
        return self.inner(batch, visible)

    def sample_into(self, *args, **kwargs):
        return self.inner.sample_into(*args, **kwargs)


def test_sampler_unmasks_leaps_per_call_in_uniform_order() -> None:
    frame = _table()
    schema, model = _model(frame)
    model.eval()
    d = len(schema)
    rec = _Recorder(model)
    out = UnmaskingSampler(leaps=1)(rec, empty_batch(model, 3), torch.zeros(3, d, dtype=torch.bool),
                                    generator=torch.Generator().manual_seed(0))
    counts = [int(v.sum(1).unique().item()) for v in rec.visible]
    assert counts == list(range(d)), "leaps=1 must reveal exactly one property per call"
    assert bool(out.present.all())
    rec.visible.clear()
    UnmaskingSampler(leaps=2)(rec, empty_batch(model, 3), torch.zeros(3, d, dtype=torch.bool))
    assert [int(v.sum(1).max()) for v in rec.visible] == [0, 2, 4]
    # order uniform: the first property revealed is each of the D with frequency ~ 1/D
    ranks = UnmaskingSampler().unmasking_ranks(torch.zeros(30000, d, dtype=torch.bool), torch.Generator().manual_seed(1))
    first = torch.bincount((ranks == 0).float().argmax(1), minlength=d).double() / 30000
    torch.testing.assert_close(first, torch.full((d,), 1 / d, dtype=torch.float64), atol=0.012, rtol=0)


def test_completion_keeps_known_values() -> None:
    frame = _table()
    schema, model = _model(frame)
    model.eval()
    batch = schema.encode(frame)
    known = batch.present.clone()
    known[:, [0, 3]] = False
    out = UnmaskingSampler(leaps=1)(model, batch, known, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.num[:, 1], batch.num[:, 1])
    torch.testing.assert_close(out.cat[:, 0], batch.cat[:, 0])
    torch.testing.assert_close(out.text[0], batch.text[0])
    assert not torch.allclose(out.num[:, 0], batch.num[:, 0])
    with pytest.raises(ValueError, match="leaps"):
        UnmaskingSampler(leaps=0)
