import json
import math

import pytest
import torch

from factorization_curse import (
    PAST,
    ModelConfig,
    Query,
    TrainConfig,
    decode,
    get_objective,
    load_checkpoint,
    save_checkpoint,
    score,
    train,
)
from factorization_curse._train import lr_factor

PAD, EOS = 0, 3


class _Oracle(torch.nn.Module):
    """Predicts a fixed target sequence per row; confidence grows from right to left, so
    confidence-ordered unmasking reveals positions in reverse order."""

    def __init__(self, targets, v=12):
        super().__init__()
        self.targets, self.v = targets, v
        self.calls = 0

    def forward(self, ids, visible=None):
        self.calls += 1
        b, t = ids.shape
        logits = torch.zeros(b, t, self.v)
        scale = torch.arange(t, 0, -1, dtype=torch.float)  # position 0 most confident
        scale = scale.flip(0)  # last position most confident
        logits.scatter_(2, self.targets[:, :t, None], scale[None, :, None].expand(b, t, 1) + 1.0)
        return logits


def test_decode_l2r_and_confidence_recover_the_oracle_answer():
    targets = torch.tensor([[2, 5, 6, 7, 8, EOS, PAD, PAD], [2, 5, 9, 10, EOS, PAD, PAD, PAD]])
    prompts = [[2, 5], [2, 5, 9]]
    for family, order in (("past", "l2r"), ("past", "confidence"), ("bert", "confidence")):
        m = _Oracle(targets)
        out = decode(m, family, prompts, 8, pad_id=PAD, eos_id=EOS, order=order)
        assert out == [[6, 7, 8], [10]], (family, order)
    # l2r stops as soon as every row has emitted EOS: 4 forwards for the longest answer
    m = _Oracle(targets)
    decode(m, "past", prompts, 8, pad_id=PAD, eos_id=EOS, order="l2r")
    assert m.calls == 4


def test_decode_rejects_bad_requests():
    m = _Oracle(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="needs a masked model"):
        decode(m, "gpt2", [[2]], 4, pad_id=PAD, eos_id=EOS, order="confidence")
    with pytest.raises(ValueError, match="leaves no room"):
        decode(m, "past", [[2, 5, 5, 5]], 4, pad_id=PAD, eos_id=EOS)
    with pytest.raises(ValueError, match="unknown decode order"):
        decode(m, "past", [[2]], 4, pad_id=PAD, eos_id=EOS, order="random")


def test_score_exact_token_and_incorrect_inference():
    qs = [
        Query(("B", "=>", "?"), ("c", "c2"), "forward", distractor=("a", "a2")),
        Query(("B", "=>", "?"), ("d", "d2"), "forward", distractor=("e", "e2")),
        Query(("B", "<=", "?"), ("a", "a2"), "backward", distractor=("c", "c2")),
    ]
    preds = [["c", "c2"], ["d", "x"], ["c", "c2"]]
    s = score(qs, preds)
    assert s["forward_accuracy"] == 0.5 and s["forward_token_accuracy"] == 0.75
    assert s["backward_accuracy"] == 0.0 and s["backward_incorrect_inference"] == 1.0
    assert s["incorrect_inference"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="3 queries but 2 predictions"):
        score(qs, preds[:2])


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(steps=100, warmup_fraction=0.1, min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    mid = 10 + 45
    assert lr_factor(mid, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(100, cfg) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        TrainConfig(steps=0)


def _past(v=16, t=6):
    torch.manual_seed(0)
    return PAST(ModelConfig(family="past", vocab_size=v, max_len=t, d_model=32, n_heads=4, n_layers=1))


def test_training_fits_a_tiny_dataset_and_checkpoint_roundtrips(tmp_path):
    data = torch.tensor([[2, 5, 6, 7, 3, 0], [2, 8, 9, 10, 3, 0], [2, 11, 12, 13, 3, 0]])
    m = _past()
    hist = train(m, "past", get_objective("ar"), data, TrainConfig(steps=150, batch_size=3, lr=3e-3),
                 pad_id=0, progress=False)
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]
    save_checkpoint(m, tmp_path / "ck", {"note": "x"})
    assert json.loads((tmp_path / "ck" / "model.json").read_text()) == {"note": "x"}
    m2 = load_checkpoint(_past(), tmp_path / "ck")
    vis = torch.ones(3, 6, dtype=torch.bool)
    assert torch.equal(m.eval()(data, vis), m2.eval()(data, vis))


class _NaN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, ids, visible=None):
        return torch.full((*ids.shape, 8), float("nan")) + self.w


def test_nan_loss_stops_training():
    data = torch.tensor([[2, 5, 6, 3]])
    with pytest.raises(FloatingPointError, match="non-finite loss .* at step 0"):
        train(_NaN(), "past", get_objective("mlm-u"), data, TrainConfig(steps=3, batch_size=1), pad_id=0,
              progress=False)


class _Recorder(_Oracle):
    def forward(self, ids, visible=None):
        self.seen = [*getattr(self, "seen", []), visible.clone()]
        return super().forward(ids, visible)


def test_reveal_order_attention_matches_the_causal_training_mask():
    targets = torch.tensor([[2, 5, 6, 7, 3, 0]])
    m = _Recorder(targets)
    out = decode(m, "past", [[2, 5]], 6, pad_id=PAD, eos_id=EOS, reveal_order_attention=True)
    assert out == [[6, 7]]
    causal = torch.ones(6, 6, dtype=torch.bool).tril(-1)
    for k, vis in enumerate(m.seen):
        known = 2 + k  # prompt + generated so far
        assert vis.shape == (1, 6, 6)
        # the position being predicted reads exactly the known positions, like a causal mask
        assert torch.equal(vis[0, known], causal[known])
        # known positions read only positions known before them
        assert torch.equal(vis[0, :known, :known], causal[:known, :known])


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("objective", ["mlm-u", "plm"])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, objective):
    data = torch.tensor([[2, 5, 6, 7, 3, 0], [2, 8, 9, 10, 3, 0], [2, 11, 12, 13, 3, 0],
                         [2, 7, 6, 5, 3, 0], [2, 12, 9, 3, 0, 0]])
    cfg = TrainConfig(steps=12, batch_size=2, lr=3e-3, eval_every=4)
    obj = get_objective(objective)
    full = _past()
    hist_full = train(full, "past", obj, data, cfg, pad_id=0, progress=False, evaluate=lambda m: {})

    calls = []

    def stop_on_second_eval(m):
        calls.append(1)
        if len(calls) == 2:  # step 8: the state of step 4 is on disk, step 8's is not
            raise _Interrupt
        return {}

    state = tmp_path / "state"
    with pytest.raises(_Interrupt):
        train(_past(), "past", obj, data, cfg, pad_id=0, progress=False, evaluate=stop_on_second_eval,
              state_dir=state)
    assert (state / "state.pt").exists() and not list(state.glob("*.tmp"))
    resumed = _past()
    torch.manual_seed(123)  # the global generator must not matter
    hist = train(resumed, "past", obj, data, cfg, pad_id=0, progress=False, evaluate=lambda m: {},
                 state_dir=state, resume=True)
    assert [h["step"] for h in hist] == [4, 8, 12]
    assert [h["loss"] for h in hist] == pytest.approx([h["loss"] for h in hist_full], rel=1e-6)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_resume_refuses_a_different_training_config(tmp_path):
    data = torch.tensor([[2, 5, 6, 7, 3, 0], [2, 8, 9, 10, 3, 0]])
    train(_past(), "past", get_objective("mlm-u"), data, TrainConfig(steps=4, batch_size=2), pad_id=0,
          progress=False, state_dir=tmp_path)
    with pytest.raises(ValueError, match=r"cannot resume .*'lr': \(0.001, 0.002\)"):
        train(_past(), "past", get_objective("mlm-u"), data, TrainConfig(steps=4, batch_size=2, lr=2e-3),
              pad_id=0, progress=False, state_dir=tmp_path, resume=True)


def test_negative_checkpoint_interval_is_rejected(tmp_path):
    data = torch.tensor([[2, 5, 6, 7, 3, 0]])
    with pytest.raises(ValueError, match="checkpoint_every must be >= 0, got -1"):
        train(_past(), "past", get_objective("ar"), data, TrainConfig(steps=2, batch_size=1), pad_id=0,
              progress=False, state_dir=tmp_path, checkpoint_every=-1)
