"""PAST as a Hugging Face `transformers` model: `PastConfig` (a `PretrainedConfig`) and
`PastForMaskedLM` (a `PreTrainedModel`), so a trained PAST saves and loads with
`save_pretrained` / `from_pretrained` (safetensors), offline, and through the Auto classes.

Importing this module imports `transformers` and registers the classes with `AutoConfig`,
`AutoModel` and `AutoModelForMaskedLM` (model type "factorization-curse-past")::

    from factorization_curse.hf import PastForMaskedLM, export_run
    export_run("runs/r-mlmu/checkpoint", "runs/r-mlmu/hf")   # a `run` checkpoint -> HF directory
    model = PastForMaskedLM.from_pretrained("runs/r-mlmu/hf")  # or AutoModel.from_pretrained
    logits = model(input_ids, visible=visible).logits          # visible: (B, T) or (B, T, T) bool
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import MaskedLMOutput

from factorization_curse._models import PAST, ModelConfig

MODEL_TYPE = "factorization-curse-past"


class PastConfig(PretrainedConfig):
    """Configuration of a PAST encoder-decoder (the fields of `ModelConfig`, family "past")."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        vocab_size: int = 128,
        max_len: int = 32,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        mlp_ratio: int = 4,
        rope_base: float = 10000.0,
        decoder_positions: bool = False,
        pad_token_id: int = 0,
        bos_token_id: int = 2,
        eos_token_id: int = 3,
        mask_token_id: int = 1,
        **kwargs: object,
    ) -> None:
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.mlp_ratio = mlp_ratio
        self.rope_base = rope_base
        self.decoder_positions = decoder_positions
        self.mask_token_id = mask_token_id
        # the LM head is the embedding matrix itself (no separate weight to tie)
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         **kwargs)

    def to_model_config(self) -> ModelConfig:
        """The package's `ModelConfig` of this configuration."""
        return ModelConfig(family="past", vocab_size=self.vocab_size, max_len=self.max_len, d_model=self.d_model,
                           n_heads=self.n_heads, n_layers=self.n_layers, mlp_ratio=self.mlp_ratio,
                           rope_base=self.rope_base, decoder_positions=self.decoder_positions,
                           pad_id=self.pad_token_id, bos_id=self.bos_token_id, eos_id=self.eos_token_id,
                           mask_id=self.mask_token_id)

    @classmethod
    def from_model_config(cls, cfg: ModelConfig) -> PastConfig:
        """A `PastConfig` from the package's `ModelConfig` (family must be "past")."""
        if cfg.family != "past":
            raise ValueError(f"PastConfig describes PAST models, not family {cfg.family!r}")
        return cls(vocab_size=cfg.vocab_size, max_len=cfg.max_len, d_model=cfg.d_model, n_heads=cfg.n_heads,
                   n_layers=cfg.n_layers, mlp_ratio=cfg.mlp_ratio, rope_base=cfg.rope_base,
                   decoder_positions=cfg.decoder_positions, pad_token_id=cfg.pad_id, bos_token_id=cfg.bos_id,
                   eos_token_id=cfg.eos_id, mask_token_id=cfg.mask_id)


class PastForMaskedLM(PreTrainedModel):
    """PAST behind the `transformers` model API: `forward(input_ids, visible=None,
    attention_mask=None, labels=None)` returns a `MaskedLMOutput` whose logits[:, i] predict token i.

    `visible` (B, T) or (B, T, T) bool says which positions each query may read (hidden tokens are
    removed from attention; [BOS] at position 0 is always readable). Without it, every position
    where `attention_mask` is 1 (default: every position) is visible. `labels` (B, T) with -100 at
    unscored positions gives the mean cross-entropy as `loss`.
    """

    config_class = PastConfig
    base_model_prefix = "past"
    main_input_name = "input_ids"

    def __init__(self, config: PastConfig) -> None:
        super().__init__(config)
        self.past = PAST(config.to_model_config())
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            PAST._init(module)
        elif isinstance(module, PAST):
            torch.nn.init.normal_(module.dec_in, std=0.02)

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.past.wte

    def set_input_embeddings(self, value: torch.nn.Embedding) -> None:
        self.past.wte = value

    def forward(
        self,
        input_ids: torch.Tensor,
        visible: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: object,
    ) -> MaskedLMOutput:
        if visible is None:
            visible = (attention_mask.bool() if attention_mask is not None
                       else torch.ones_like(input_ids, dtype=torch.bool))
        logits = self.past(input_ids, visible)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits)

    @classmethod
    def from_past(cls, model: PAST) -> PastForMaskedLM:
        """Wrap a trained `PAST` module (its weights are copied)."""
        wrapped = cls(PastConfig.from_model_config(model.cfg))
        wrapped.past.load_state_dict(model.state_dict())
        return wrapped

    def to_past(self) -> PAST:
        """The wrapped `PAST` module (shares this model's parameters)."""
        return self.past


def register_auto_classes() -> None:
    """Register PAST with AutoConfig, AutoModel and AutoModelForMaskedLM (done on import)."""
    AutoConfig.register(MODEL_TYPE, PastConfig, exist_ok=True)
    AutoModel.register(PastConfig, PastForMaskedLM, exist_ok=True)
    AutoModelForMaskedLM.register(PastConfig, PastForMaskedLM, exist_ok=True)


def export_run(checkpoint: str | Path, out: str | Path) -> Path:
    """Convert a `run` checkpoint folder (model.safetensors, model.json, tokenizer.json) into a
    Hugging Face directory (config.json, model.safetensors, tokenizer files) at `out`."""
    from safetensors.torch import load_model

    from factorization_curse._data import BOS, EOS, MASK, PAD, UNK

    checkpoint, out = Path(checkpoint), Path(out)
    meta_path = checkpoint / "model.json"
    if not meta_path.is_file():
        raise ValueError(f"{checkpoint}: not a factorization-curse checkpoint (no model.json)")
    meta = json.loads(meta_path.read_text())
    cfg = ModelConfig(**meta["model"])
    if cfg.family != "past":
        raise ValueError(f"{checkpoint}: a {cfg.family!r} model; only PAST checkpoints convert "
                         "(GPT-2/BERT baselines are transformers models already)")
    past = PAST(cfg)
    load_model(past, str(checkpoint / "model.safetensors"))
    model = PastForMaskedLM.from_past(past)
    model.config.factorization_curse_run = meta.get("run")
    model.save_pretrained(out)
    tok_file = checkpoint / "tokenizer.json"
    if tok_file.is_file():
        tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_file), pad_token=PAD, mask_token=MASK,
                                      bos_token=BOS, eos_token=EOS, unk_token=UNK)
        tok.save_pretrained(out)
    return out


register_auto_classes()

__all__ = ["PastConfig", "PastForMaskedLM", "export_run", "register_auto_classes"]
