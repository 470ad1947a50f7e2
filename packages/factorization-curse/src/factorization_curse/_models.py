"""Three model families behind one interface: `model(ids, visible) -> logits` where logits[:, i]
predicts token i and `visible` says which positions may be read.

- "gpt2": Hugging Face `GPT2LMHeadModel` built from a `GPT2Config` (causal; `visible` ignored);
  its outputs are shifted right by one so that position i predicts token i.
- "bert": Hugging Face `BertForMaskedLM` from a `BertConfig`; hidden positions become [MASK].
- "past": the paper's encoder-decoder (App. G; [MAZE] `past.py` as described in the notes):
  a GPT-style pre-LN encoder with RoPE whose keys are restricted to visible positions, and a
  decoder made only of cross-attention + MLP blocks whose input is one learned vector repeated at
  every position, so a position's query differs from another's only through RoPE. Hidden tokens
  are removed from attention (no [MASK] token). `visible` may be (B, T) (the same keys for every
  query) or (B, T, T) (query-specific keys, used by AR and PLM).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

FAMILIES = ("gpt2", "bert", "past")


@dataclass(frozen=True)
class ModelConfig:
    """Size and special-token ids of a model of one family (gpt2, bert or past)."""

    family: str = "past"
    vocab_size: int = 128
    max_len: int = 32
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2  # gpt2/bert layers; past: encoder layers and decoder layers each
    mlp_ratio: int = 4
    rope_base: float = 10000.0
    # PAST only: add a learned absolute position embedding to the decoder input (the paper's
    # decoder gets positions from RoPE alone; this variant learns much faster on small budgets)
    decoder_positions: bool = False
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3
    mask_id: int = 1

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; valid: {list(FAMILIES)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.family == "past" and (self.d_model // self.n_heads) % 2:
            raise ValueError("PAST uses RoPE: d_model / n_heads must be even")


def _rope(x: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary position embedding on (B, H, T, Dh), position = index along T."""
    t, dh = x.shape[-2], x.shape[-1]
    inv = base ** (-torch.arange(0, dh, 2, device=x.device, dtype=torch.float32) / dh)
    ang = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class _Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.h, self.base = cfg.n_heads, cfg.rope_base
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.o = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.h, -1).transpose(1, 2)
        k, v = self.kv(mem).view(b, mem.shape[1], 2, self.h, -1).permute(2, 0, 3, 1, 4)
        q, k = _rope(q, self.base), _rope(k, self.base)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.o(y.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = _Attention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model),
        )

    def forward(self, x: torch.Tensor, mem: torch.Tensor | None, allowed: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h if mem is None else mem, allowed)
        return x + self.mlp(self.ln2(x))


class PAST(nn.Module):
    """Encoder-decoder with a cross-attention-only decoder (see module docstring)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.dec_in = nn.Parameter(torch.randn(cfg.d_model) * 0.02)
        self.dec_pos = nn.Embedding(cfg.max_len, cfg.d_model) if cfg.decoder_positions else None
        self.enc = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.dec = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.ln_enc, self.ln_f = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        b, t = ids.shape
        if visible.dim() == 2:
            allowed = visible[:, None, :].expand(b, t, t)
        elif visible.dim() == 3:
            allowed = visible
        else:
            raise ValueError(f"visible must be (B, T) or (B, T, T), got {tuple(visible.shape)}")
        allowed = allowed.clone()
        allowed[:, :, 0] = True  # [BOS] is always readable: no query ever has an empty key set
        allowed = allowed[:, None]  # broadcast over heads
        x = self.wte(ids)
        for blk in self.enc:
            x = blk(x, None, allowed)
        mem = self.ln_enc(x)
        h = self.dec_in.expand(b, t, -1)
        if self.dec_pos is not None:
            h = h + self.dec_pos.weight[:t]
        for blk in self.dec:
            h = blk(h, mem, allowed)
        return self.ln_f(h) @ self.wte.weight.T


class _HFWrapper(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        import transformers

        transformers.logging.set_verbosity_error()
        if cfg.family == "gpt2":
            hf_cfg = transformers.GPT2Config(
                vocab_size=cfg.vocab_size,
                n_positions=cfg.max_len,
                n_embd=cfg.d_model,
                n_layer=cfg.n_layers,
                n_head=cfg.n_heads,
                n_inner=cfg.mlp_ratio * cfg.d_model,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                bos_token_id=cfg.bos_id,
                eos_token_id=cfg.eos_id,
                pad_token_id=cfg.pad_id,
            )
            self.hf = transformers.GPT2LMHeadModel(hf_cfg)
        else:
            hf_cfg = transformers.BertConfig(
                vocab_size=cfg.vocab_size,
                hidden_size=cfg.d_model,
                num_hidden_layers=cfg.n_layers,
                num_attention_heads=cfg.n_heads,
                intermediate_size=cfg.mlp_ratio * cfg.d_model,
                max_position_embeddings=cfg.max_len,
                hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0,
                type_vocab_size=1,
                pad_token_id=cfg.pad_id,
            )
            self.hf = transformers.BertForMaskedLM(hf_cfg)

    def forward(self, ids: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.family == "gpt2":
            # causal: position i's output predicts token i+1; shift so out[:, i] predicts token i
            logits = self.hf(input_ids=ids).logits
            return torch.cat((logits[:, :1], logits[:, :-1]), dim=1)
        if visible is None:
            raise ValueError("the bert family needs `visible` (B, T) to know where to put [MASK]")
        if visible.dim() != 2:
            raise ValueError("the bert family only supports a (B, T) visibility (masking), not (B, T, T)")
        masked = torch.where(visible, ids, torch.full_like(ids, self.cfg.mask_id))
        masked[:, 0] = ids[:, 0]
        return self.hf(input_ids=masked, attention_mask=torch.ones_like(ids)).logits


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model of `cfg.family` (no weights are downloaded)."""
    return PAST(cfg) if cfg.family == "past" else _HFWrapper(cfg)


def model_config_dict(cfg: ModelConfig) -> dict:
    return asdict(cfg)


def count_parameters(model: nn.Module) -> int:
    seen = set()
    n = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n

