"""Hugging Face interop: PAST as a PreTrainedModel, and fine-tuning local checkpoints (tiny
random-init models built from configs in the test; nothing downloads)."""

import json
import warnings

import pytest
import torch

pytest.importorskip("transformers")

from factorization_curse import PAST, ModelConfig  # noqa: E402
from factorization_curse._cli import main  # noqa: E402
from factorization_curse._finetune import (  # noqa: E402
    FinetuneConfig,
    _additive,
    _special_ids,
    build_tiny_checkpoint,
    finetune,
    finetune_loss,
    load_pretrained,
)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _facts(tmp_path, n=16):
    p = tmp_path / "kb.jsonl"
    p.write_text("\n".join(json.dumps({"subject": f"person{i}", "relation": "lives in",
                                       "object": f"town{i} east"}) for i in range(n)) + "\n")
    return p


def _fixed_loss(model, kind, objective, tok, facts, seed=123):
    """The loss on every training sequence with fixed masks (comparable before/after training)."""
    from factorization_curse._data import training_sequences
    from factorization_curse._finetune import _encode
    from factorization_curse._tasks import facts_task, load_facts

    tokens = _special_ids(tok, kind)
    seqs = [[tokens.start, *_encode(tok, " ".join(s)), tokens.end]
            for s in training_sequences(facts_task(load_facts(facts)))]
    t = max(map(len, seqs))
    ids = torch.full((len(seqs), t), tokens.pad)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    with torch.no_grad():
        return finetune_loss(model, kind, objective, ids, torch.tensor([len(s) for s in seqs]),
                             torch.Generator().manual_seed(seed), tokens).item()


# ---------------------------------------------------------------- PAST as a PreTrainedModel


def test_past_save_pretrained_round_trip_gives_identical_logits(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    from factorization_curse.hf import PastConfig, PastForMaskedLM

    torch.manual_seed(0)
    past = PAST(ModelConfig(vocab_size=40, max_len=12, d_model=32, n_heads=4, n_layers=1, decoder_positions=True))
    model = PastForMaskedLM.from_past(past).eval()
    ids = torch.randint(0, 40, (3, 12))
    vis2 = torch.rand(3, 12) < 0.6
    vis3 = torch.rand(3, 12, 12) < 0.5
    ref2, ref3 = past(ids, vis2), past(ids, vis3)
    model.save_pretrained(tmp_path / "hf")
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path / "hf", local_files_only=True).model_type == PastConfig.model_type
    fresh = PastForMaskedLM(PastConfig.from_model_config(past.cfg)).eval()
    assert not torch.equal(fresh(ids, visible=vis2).logits, ref2)  # loading must matter
    for cls in (PastForMaskedLM, AutoModel, AutoModelForMaskedLM):
        loaded = cls.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
        assert isinstance(loaded, PastForMaskedLM)
        assert torch.equal(loaded(ids, visible=vis2).logits, ref2)
        assert torch.equal(loaded(ids, visible=vis3).logits, ref3)
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    out = loaded(ids, visible=vis2, labels=labels)
    oracle = torch.nn.functional.cross_entropy(ref2[:, 3].double(), ids[:, 3])
    assert abs(out.loss.item() - oracle.item()) < 1e-5


def test_export_run_checkpoint_to_hf_directory(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from factorization_curse._cli import main as cli
    from factorization_curse.hf import export_run

    run = tmp_path / "run"
    assert cli(["run", "--task", "retrieval", "--objective", "mlm-u", "--out", str(run), "--set", "steps=2",
                "--set", "d_model=16", "--set", "n_layers=1", "--set", "n_items=12", "--device", "cpu",
                "--quiet", "--quick"]) == 0
    out = export_run(run / "checkpoint", tmp_path / "hf")
    model = AutoModel.from_pretrained(out, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    from factorization_curse._train import load_checkpoint

    meta = json.loads((run / "checkpoint" / "model.json").read_text())
    past = load_checkpoint(PAST(ModelConfig(**meta["model"])), run / "checkpoint").eval()
    ids = torch.tensor([[tok.bos_token_id, *tok.convert_tokens_to_ids(["[MASK]", "[EOS]"])]])
    vis = torch.tensor([[True, False, True]])
    assert torch.equal(model(ids, visible=vis).logits, past(ids, vis))
    with pytest.raises(ValueError, match="no model.json"):
        export_run(tmp_path, tmp_path / "x")


# ---------------------------------------------------------------- fine-tuning local checkpoints


def test_finetune_refuses_a_path_that_is_not_a_model_directory(tmp_path, capsys):
    facts = _facts(tmp_path)
    assert main(["finetune", "--model", str(tmp_path / "nope"), "--facts", str(facts)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("factorization-curse: error: --model") and "not a local directory" in err
    assert len(err.splitlines()) == 1
    assert main(["finetune", "--model", str(tmp_path), "--facts", str(facts)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_causal_mlmu_mask_removes_hidden_tokens_from_attention(tmp_path):
    facts = _facts(tmp_path)
    path = build_tiny_checkpoint(tmp_path / "llama", facts, "llama", d_model=32, n_layers=2)
    model, _, kind = load_pretrained(FinetuneConfig(model=str(path), facts=str(facts)))
    model.eval()
    ids = torch.randint(5, 30, (2, 9))
    visible = torch.ones(2, 9, dtype=torch.bool)
    visible[:, [3, 6]] = False
    changed = ids.clone()
    changed[:, [3, 6]] = (changed[:, [3, 6]] + 7) % 30
    mask = _additive(visible, 9, model.dtype)
    a = model(input_ids=ids, attention_mask=mask).logits
    b = model(input_ids=changed, attention_mask=mask).logits
    keep = [0, 1, 2, 4, 5, 7, 8]  # the hidden positions' own outputs read their own inputs
    assert torch.allclose(a[:, keep], b[:, keep], atol=1e-6)
    # and attention is bidirectional: a later visible token changes an earlier position's output
    later = ids.clone()
    later[:, 8] = (later[:, 8] + 1) % 30
    assert not torch.allclose(model(input_ids=later, attention_mask=mask).logits[:, 1], a[:, 1])


def test_finetune_lora_causal_trains_only_adapters_and_they_reload(tmp_path, monkeypatch):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import factorization_curse._finetune as ft

    facts = _facts(tmp_path)
    path = build_tiny_checkpoint(tmp_path / "llama", facts, "llama", d_model=64, n_layers=1)
    original = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).state_dict()
    captured = []
    real_add_lora = ft.add_lora
    monkeypatch.setattr(ft, "add_lora", lambda m, c: captured.append(real_add_lora(m, c)) or captured[-1])
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, attn_implementation="sdpa")
    before = _fixed_loss(base, "causal", "mlm-u", tok, facts)
    cfg = FinetuneConfig(model=str(path), facts=str(facts), objective="mlm-u", lora=True, lora_rank=8,
                         lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                         steps=60, batch_size=16, lr=2e-2, warmup_fraction=0.1, eval_every=30)
    m = finetune(cfg, tmp_path / "out", device="cpu", quiet=True)
    trained = captured[0]
    trainable = {n for n, p in trained.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert m["n_trainable_parameters"] == sum(p.numel() for n, p in trained.named_parameters() if n in trainable)
    assert m["n_trainable_parameters"] < m["n_parameters"] / 5
    # base weights untouched, adapters moved away from their zero init
    base_now = trained.get_base_model().state_dict()
    for name, value in original.items():
        key = name if name in base_now else name.replace(".weight", ".base_layer.weight")
        assert torch.equal(base_now[key], value), name
    assert any(p.abs().sum() > 0 for n, p in trained.named_parameters() if "lora_B" in n)
    # adapters save and load: base + adapter reproduces the trained model
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        reloaded = peft.PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(path, local_files_only=True, attn_implementation="sdpa"),
            tmp_path / "out" / "adapter").eval()
    trained.eval()
    after = _fixed_loss(reloaded, "causal", "mlm-u", tok, facts)
    assert after == pytest.approx(_fixed_loss(trained, "causal", "mlm-u", tok, facts), abs=1e-5)
    # a frozen random LM head limits what rank-8 adapters can fit in 60 steps: about -10 %
    assert after < 0.95 * before, (before, after)
    # the evaluation ran: accuracies in [0, 1] on the held-out questions, learning curve recorded
    assert m["n_test_forward"] > 0 and m["n_test_backward"] > 0
    for key in ("forward_accuracy", "backward_accuracy", "val_forward_accuracy", "train_query_forward_accuracy"):
        assert 0.0 <= m[key] <= 1.0
    assert [h["step"] for h in m["history"] if "val_forward_accuracy" in h] == [30, 60]


def test_finetune_masked_lm_with_mlmu_and_ar_refused(tmp_path, capsys):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    facts = _facts(tmp_path)
    path = build_tiny_checkpoint(tmp_path / "bert", facts, "bert", d_model=32, n_layers=1)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert AutoModelForMaskedLM.from_pretrained(path, local_files_only=True).config.vocab_size == len(tok)
    before = _fixed_loss(AutoModelForMaskedLM.from_pretrained(path, local_files_only=True), "masked", "mlm-u",
                         tok, facts)
    cfg = FinetuneConfig(model=str(path), facts=str(facts), objective="mlm-u", steps=30, batch_size=16, lr=3e-3,
                         warmup_fraction=0.1)
    m = finetune(cfg, tmp_path / "out", device="cpu", quiet=True)
    assert m["kind"] == "masked" and m["n_trainable_parameters"] == m["n_parameters"]
    after = _fixed_loss(AutoModelForMaskedLM.from_pretrained(tmp_path / "out" / "model", local_files_only=True),
                        "masked", "mlm-u", tok, facts)
    assert after < 0.8 * before, (before, after)
    assert 0.0 <= m["forward_accuracy"] <= 1.0 and 0.0 <= m["backward_accuracy"] <= 1.0
    assert main(["finetune", "--model", str(path), "--facts", str(facts), "--objective", "ar", "--steps", "1",
                 "--out", str(tmp_path / "ar"), "--device", "cpu", "--quiet"]) == 2
    assert "needs a causal LM" in capsys.readouterr().err


def test_finetune_cli_compares_objectives_and_writes_a_record(tmp_path, capsys):
    facts = _facts(tmp_path, 12)
    path = build_tiny_checkpoint(tmp_path / "gpt2", facts, "gpt2", d_model=32, n_layers=1)
    out = tmp_path / "ft"
    assert main(["finetune", "--model", str(path), "--facts", str(facts), "--objective", "ar", "mlm-u",
                 "--steps", "4", "--batch-size", "8", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    rec = json.loads((out / "record.json").read_text())
    assert [r[0] for r in rec["tables"][0]["rows"]] == ["ar", "mlm-u"]
    assert set(rec["metrics"]) == {"ar", "mlm-u"} and rec["seeds"] == [0]
    for o in ("ar", "mlm-u"):
        assert (out / o / "model" / "model.safetensors").is_file()
        preds = json.loads((out / o / "predictions.json").read_text())
        assert len(preds) == rec["metrics"][o]["n_test_forward"] + rec["metrics"][o]["n_test_backward"]
    printed = capsys.readouterr().out
    assert "ar: test forward" in printed and "mlm-u: test forward" in printed
