import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from factorization_curse import (
    PAST,
    ModelConfig,
    Vocab,
    encode_sequences,
    entity_reverse,
    get_objective,
    objective_loss,
    token_reverse,
    training_sequences,
)
from factorization_curse._objectives import (
    causal_visibility,
    mask_positions,
    permutation_visibility,
)
from factorization_curse._tasks import relationship_task

segments = st.lists(
    st.tuples(st.lists(st.sampled_from(list("abcdefg")), min_size=1, max_size=4).map(tuple), st.booleans()),
    min_size=1,
    max_size=6,
)


def _words(segs):
    return [w for ws, _ in segs for w in ws]


@given(segments)
def test_token_reverse_is_an_involution(segs):
    once = token_reverse(segs)
    assert _words(once) == _words(segs)[::-1]
    assert _words(token_reverse(once)) == _words(segs)


@given(segments)
def test_entity_reverse_keeps_entities_in_order(segs):
    rev = entity_reverse(segs, delimiters=False)
    assert _words(entity_reverse(rev, delimiters=False)) == _words(segs)
    assert [ws for ws, e in rev if e] == [ws for ws, e in segs if e][::-1]
    delim = entity_reverse(segs, delimiters=True)
    n_ent = sum(e for _, e in segs)
    assert _words(delim).count("<e>") == n_ent and len(_words(delim)) == len(_words(segs)) + 2 * n_ent


def test_entity_reverse_without_delimiters_looks_like_a_forward_statement():
    # the ablation's failure mode: reversed "A => B => C" is just another chain "C => B => A"
    task = relationship_task(n_chains=5, seed=0)
    rev = training_sequences(task, "entity-nodelim")
    first = task.words(task.train[0])
    a, b, c = first[:2], first[3:5], first[6:8]
    assert c + ["=>"] + b + ["=>"] + a in rev


def test_vocab_roundtrip_and_padding():
    seqs = [["x", "y", ":", "z"], ["z", "x"]]
    vocab = Vocab.train(seqs)
    ids = encode_sequences(vocab, seqs, 7)
    assert ids.shape == (2, 7)
    assert ids[0, 0] == vocab.bos_id and ids[0, 5] == vocab.eos_id and ids[0, 6] == vocab.pad_id
    assert vocab.decode_ids(ids[0, 1:5].tolist()) == seqs[0]
    with pytest.raises(ValueError, match="exceeds the length"):
        encode_sequences(vocab, seqs, 4)


def test_visibilities():
    t = 6
    assert torch.equal(causal_visibility(t, "cpu"), torch.tril(torch.ones(t, t, dtype=torch.bool), -1))
    vis = permutation_visibility(50, t, torch.Generator().manual_seed(0))
    assert not vis.diagonal(dim1=1, dim2=2).any()
    # a strict total order: row sums are a permutation of 0..T-1 with [BOS] first (0 keys)
    sums = vis.sum(-1).sort(-1).values
    assert torch.equal(sums, torch.arange(t).expand(50, t))
    assert (vis.sum(-1)[:, 0] == 0).all() and vis[:, 1:, 0].all()
    # transitivity: j before i and k before j => k before i
    two_step = (vis.float() @ vis.float()) > 0
    assert not (two_step & ~vis).any()


def test_mask_positions_rate_and_minimum():
    g = torch.Generator().manual_seed(0)
    h = mask_positions(torch.zeros(100), 10, g)
    assert (h.sum(1) == 1).all() and not h[:, 0].any()
    h = mask_positions(torch.full((4000,), 0.3), 11, g)
    assert abs(h[:, 1:].float().mean().item() - 0.3) < 0.01


def _tiny_past(t=8, v=20):
    torch.manual_seed(0)
    return PAST(ModelConfig(family="past", vocab_size=v, max_len=t, d_model=32, n_heads=4, n_layers=2)).eval()


def test_past_ar_visibility_hides_the_future():
    m, t = _tiny_past(), 8
    ids = torch.randint(5, 20, (3, t))
    vis = causal_visibility(t, "cpu").expand(3, t, t)
    base = m(ids, vis)
    for i in range(1, t):
        other = ids.clone()
        other[:, i:] = torch.randint(5, 20, (3, t - i))
        out = m(other, vis)
        assert torch.allclose(out[:, : i + 1], base[:, : i + 1], atol=1e-5)  # token i predicted from < i
        if i + 1 < t:
            assert not torch.allclose(out[:, i + 1 :], base[:, i + 1 :], atol=1e-5)


def test_past_permutation_visibility_hides_later_ranks():
    m, t = _tiny_past(), 8
    ids = torch.randint(5, 20, (1, t))
    vis = permutation_visibility(1, t, torch.Generator().manual_seed(3))
    base = m(ids, vis)
    order = vis[0].sum(-1).argsort()  # positions by rank
    for r in range(1, t):
        changed = order[r:]  # positions ranked r and later
        other = ids.clone()
        other[0, changed] = (ids[0, changed] - 5 + 1) % 15 + 5
        out = m(other, vis)
        for pos in order[: r + 1]:
            assert torch.allclose(out[0, pos], base[0, pos], atol=1e-5)


@pytest.mark.parametrize("family", ["past", "bert"])
def test_masked_models_ignore_hidden_tokens(family):
    torch.manual_seed(0)
    from factorization_curse import build_model

    m = build_model(ModelConfig(family=family, vocab_size=20, max_len=8, d_model=32, n_heads=4)).eval()
    ids = torch.randint(5, 20, (2, 8))
    visible = torch.tensor([[1, 1, 0, 1, 0, 0, 1, 1]] * 2, dtype=torch.bool)
    other = torch.where(visible, ids, torch.randint(5, 20, ids.shape))
    assert not torch.equal(other, ids)
    assert torch.allclose(m(ids, visible), m(other, visible), atol=1e-5)
    assert not torch.allclose(m(ids, visible), m(ids, torch.ones_like(visible)), atol=1e-5)


def test_gpt2_shifted_outputs_are_causal():
    torch.manual_seed(0)
    from factorization_curse import build_model

    m = build_model(ModelConfig(family="gpt2", vocab_size=20, max_len=8, d_model=32, n_heads=4)).eval()
    ids = torch.randint(5, 20, (2, 8))
    other = ids.clone()
    other[:, 4:] = (ids[:, 4:] - 4) % 15 + 5
    a, b = m(ids), m(other)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5) and not torch.allclose(a[:, 5:], b[:, 5:])


class _Uniform(torch.nn.Module):
    """Uniform logits: every masked token costs exactly log V."""

    def __init__(self, v):
        super().__init__()
        self.v = v
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, ids, visible=None):
        return torch.zeros(*ids.shape, self.v) + self.p


@pytest.mark.parametrize("weighting", ["token-mean", "sequence-mean", "elbo"])
def test_mlm_u_loss_weightings_are_unbiased_on_a_uniform_model(weighting):
    v, t = 17, 12
    ids = torch.randint(5, v, (20000, t))
    loss = objective_loss(
        _Uniform(v), "past", get_objective("mlm-u"), ids, torch.Generator().manual_seed(0),
        pad_id=0, loss_weighting=weighting,
    )
    # token/sequence means are exactly log V; the ELBO weight n_hidden / (r (T-1)) has mean 1,
    # so its batch mean is log V within sampling error (std of the mean ~0.005 here)
    tol = 1e-5 if weighting != "elbo" else 0.03
    assert abs(loss.item() / math.log(v) - 1) < tol


def test_unknown_objective_lists_valid_ones():
    with pytest.raises(ValueError, match="valid objectives: ar, ar-reverse-token"):
        get_objective("mlm-50")


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 9))
def test_plm_and_ar_losses_finite(t):
    m = _tiny_past(t=t)
    ids = torch.randint(5, 20, (4, t))
    for name in ("plm", "ar", "mlm-u", "mlm-15"):
        loss = objective_loss(m, "past", get_objective(name), ids, torch.Generator().manual_seed(t), pad_id=0)
        assert torch.isfinite(loss)


# --- 0.2: padding is out of every loss; star graph scores the path only ------------------------
class _PadOracle(torch.nn.Module):
    """Certain of the true token at every content position, certain of a wrong one at padding."""

    def __init__(self, vocab: int, pad_id: int) -> None:
        super().__init__()
        self.vocab, self.pad_id = vocab, pad_id
        self.seen: list[torch.Tensor] = []

    def forward(self, ids, visible=None):
        if visible is not None:
            self.seen.append(visible)
        logits = torch.full((*ids.shape, self.vocab), -20.0)
        wrong = (ids + 1) % self.vocab
        target = torch.where(ids == self.pad_id, wrong, ids)
        logits.scatter_(-1, target[..., None], 20.0)
        return logits


@pytest.mark.parametrize("name", ["ar", "plm", "mlm-15", "mlm-u"])
def test_padding_is_never_in_the_loss(name):
    pad = 0
    ids = torch.tensor([[2, 5, 6, 7, 3, 0, 0, 0], [2, 5, 3, 0, 0, 0, 0, 0]] * 8)
    model = _PadOracle(10, pad)
    for seed in range(5):
        loss = objective_loss(model, "past", get_objective(name), ids, torch.Generator().manual_seed(seed),
                              pad_id=pad)
        assert loss.item() < 1e-6, f"{name}: padding scored (loss {loss.item():.3f})"
    # PAST never reads a padded position
    for vis in model.seen:
        v = vis if vis.dim() == 3 else vis[:, None, :]
        assert not (v & (ids == pad)[:, None, :]).any()


@pytest.mark.parametrize("name", ["ar", "plm", "mlm-u"])
def test_targets_restrict_the_loss_to_the_answer(name):
    ids = torch.tensor([[2, 5, 6, 7, 8, 3]] * 16)
    targets = torch.zeros_like(ids, dtype=torch.bool)
    targets[:, 4:] = True  # only "8 [EOS]" is scored (the star graph's path)

    class WrongOnContext(_PadOracle):
        def forward(self, ids, visible=None):
            logits = super().forward(ids, visible)
            logits[:, 1:4] = logits[:, 1:4].roll(1, dims=-1)  # certain and wrong on the context
            return logits

    model = WrongOnContext(10, 0)
    loss = objective_loss(model, "past", get_objective(name), ids, torch.Generator().manual_seed(0),
                          pad_id=0, targets=targets)
    assert loss.item() < 1e-6
    if name == "mlm-u":  # the context is never hidden
        for vis in model.seen:
            assert vis[:, 1:4].all()


def test_target_mask_excludes_bos_padding_and_context():
    from factorization_curse._data import target_mask

    ids = torch.tensor([[2, 5, 6, 3, 0], [2, 5, 6, 7, 3]])
    t = target_mask(ids, 0, [1, 2])
    assert t.tolist() == [[False, False, True, True, False], [False, False, False, True, True]]


def test_baselines_match_past_parameter_count():
    from factorization_curse import RunConfig, build_model
    from factorization_curse._models import ModelConfig, count_parameters

    counts = {}
    for fam, obj in (("past", "ar"), ("gpt2", "ar"), ("bert", "mlm-15")):
        rc = RunConfig(objective=obj, family=fam, d_model=128, n_layers=2)
        counts[fam] = count_parameters(build_model(ModelConfig(family=fam, vocab_size=300, max_len=24, d_model=128,
                                                               n_layers=rc.model_layers)))
    for fam in ("gpt2", "bert"):
        assert abs(counts[fam] / counts["past"] - 1) < 0.1, counts
