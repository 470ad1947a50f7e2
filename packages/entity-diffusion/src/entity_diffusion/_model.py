"""KBFormer: per-property encoders, hierarchical key encodings, an entity transformer, decoders.

One token per leaf property. Token = value encoding (or a learned mask embedding when the value
is masked or missing) + key-path encoding (shared word embeddings -> 1-layer RNN, last state).
The entity transformer sees every token; masked/missing tokens are, by default, not attended to
(their slots only query). Each slot's output is decoded by its property's own decoder: a
Gaussian mixture for numbers, a softmax for categories, a small autoregressive transformer for text.

Properties of one type have disjoint parameters, stored as stacked tensors so that all numerical
(or categorical) properties run in one batched einsum instead of a Python loop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from entity_diffusion._schema import BOS, EOS, N_SPECIAL, PAD, Encoded, Schema

_NEG = -1e9  # finite "minus infinity": padded category logits, never produces NaN


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. Defaults are small enough for a laptop CPU."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2  # entity transformer
    field_layers: int = 1  # residual blocks in each property encoder and decoder
    d_ff_mult: int = 2
    n_mixtures: int = 16  # Gaussian-mixture components per numerical property
    n_frequencies: int = 16  # periodic embedding frequencies per numerical property
    frequency_scale: float = 1.0  # std of the initial frequencies
    text_layers: int = 1  # text encoder and decoder layers
    dropout: float = 0.0
    attend_masked: bool = False  # paper: masked properties are not attended to

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class GroupedLinear(nn.Module):
    """G independent linear maps applied to (B, G, in) -> (B, G, out)."""

    def __init__(self, groups: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(groups, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bgi,gio->bgo", x, self.weight) + self.bias


class GroupedResBlock(nn.Module):
    """Linear -> GLU -> Linear -> GLU -> LayerNorm(x + r), one parameter set per group (post-LN)."""

    def __init__(self, groups: int, d: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.up = GroupedLinear(groups, d, 2 * d_ff)
        self.down = GroupedLinear(groups, d_ff, 2 * d)
        self.norm_weight = nn.Parameter(torch.ones(groups, d))
        self.norm_bias = nn.Parameter(torch.zeros(groups, d))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.glu(self.down(F.glu(self.up(x), dim=-1)), dim=-1)
        y = F.layer_norm(x + self.dropout(r), x.shape[-1:])
        return y * self.norm_weight + self.norm_bias


def _blocks(groups: int, cfg: ModelConfig) -> nn.Sequential:
    d = cfg.d_model
    return nn.Sequential(*[GroupedResBlock(groups, d, cfg.d_ff_mult * d, cfg.dropout) for _ in range(cfg.field_layers)])


class PeriodicEmbedding(nn.Module):
    """x -> [sin(2 pi f x), cos(2 pi f x)] with learnable frequencies f, one set per property."""

    def __init__(self, groups: int, n_frequencies: int, scale: float) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(groups, n_frequencies) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, G) -> (B, G, 2F)
        angle = 2 * math.pi * x[..., None] * self.frequencies
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class KeyPathEncoder(nn.Module):
    """Key path words -> shared embeddings -> 1-layer RNN; the last hidden state encodes the path.

    Identical paths get identical encodings; paths sharing a prefix share the RNN's early states.
    """

    def __init__(self, paths: list[tuple[str, ...]], d: int) -> None:
        super().__init__()
        words = sorted({w for p in paths for w in p})
        self.word_index = {w: i + 1 for i, w in enumerate(words)}  # 0 = padding
        longest = max((len(p) for p in paths), default=1)
        ids = torch.zeros(len(paths), longest, dtype=torch.long)
        for i, p in enumerate(paths):
            ids[i, : len(p)] = torch.tensor([self.word_index[w] for w in p])
        self.register_buffer("path_ids", ids, persistent=False)
        self.register_buffer("path_lengths", torch.tensor([len(p) for p in paths]), persistent=False)
        self.words = nn.Embedding(len(words) + 1, d)
        self.rnn = nn.RNN(d, d, num_layers=1, batch_first=True)

    def forward(self) -> torch.Tensor:  # (D, d)
        out, _ = self.rnn(self.words(self.path_ids))
        return out[torch.arange(out.shape[0], device=out.device), self.path_lengths - 1]


def _sinusoid(length: int, d: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return table


class TextModule(nn.Module):
    """Character-level text property: transformer encoder (first-token output) and a causal
    transformer decoder whose memory is the property's entity-transformer slot; tied embeddings."""

    def __init__(self, vocab_size: int, max_tokens: int, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.embedding = nn.Embedding(vocab_size, d)
        self.register_buffer("positions", _sinusoid(max_tokens, d), persistent=False)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.d_ff_mult * d, cfg.dropout, batch_first=True, norm_first=True),
            cfg.text_layers, enable_nested_tensor=False,
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, cfg.n_heads, cfg.d_ff_mult * d, cfg.dropout, batch_first=True, norm_first=True),
            cfg.text_layers,
        )
        self.norm = nn.LayerNorm(d)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens) + self.positions[: tokens.shape[1]]

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, d)
        return self.encoder(self.embed(tokens), src_key_padding_mask=tokens == PAD)[:, 0]

    def logits(self, prefix: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, L, V) for each position of ``prefix`` given memory (B, d)."""
        length = prefix.shape[1]
        causal = torch.triu(torch.full((length, length), float("-inf"), device=prefix.device), 1)
        h = self.decoder(self.embed(prefix), memory[:, None, :], tgt_mask=causal)
        return self.norm(h) @ self.embedding.weight.T

    def log_prob(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Sum of token log-probabilities of each string (BOS excluded, EOS included)."""
        logits = self.logits(tokens[:, :-1], memory)
        target = tokens[:, 1:]
        logp = torch.gather(F.log_softmax(logits, -1), -1, target[..., None])[..., 0]
        return (logp * (target != PAD)).sum(-1)

    @torch.no_grad()
    def generate(self, memory: torch.Tensor, length: int, temperature: float,
                 generator: torch.Generator | None) -> torch.Tensor:
        b = memory.shape[0]
        tokens = torch.full((b, length), PAD, dtype=torch.long, device=memory.device)
        tokens[:, 0] = BOS
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for t in range(1, length):
            logits = self.logits(tokens[:, :t], memory)[:, -1]
            logits[:, [PAD, BOS]] = _NEG
            if t == length - 1:
                nxt = torch.full((b,), EOS, dtype=torch.long, device=memory.device)
            elif temperature <= 0:
                nxt = logits.argmax(-1)
            else:
                probs = F.softmax(logits / temperature, -1)
                nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            tokens[:, t] = nxt
            done |= nxt == EOS
            if bool(done.all()):
                break
        return tokens


class KBFormer(nn.Module):
    """The denoiser p_theta(x_masked | x_visible) over the properties of a schema."""

    def __init__(self, schema: Schema, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        cfg = config
        d = cfg.d_model
        self.n_num, self.n_cat, self.n_text = len(schema.numerical), len(schema.categorical), len(schema.text)
        self.n_props = len(schema)
        if self.n_props == 0:
            raise ValueError("the schema has no property")
        self.key_encoder = KeyPathEncoder([p.path for p in schema.properties], d)
        self.mask_embedding = nn.Parameter(torch.randn(self.n_props, d) * 0.02)
        self.global_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)  # always visible: no empty attention
        if self.n_num:
            self.num_embed = PeriodicEmbedding(self.n_num, cfg.n_frequencies, cfg.frequency_scale)
            self.num_in = GroupedLinear(self.n_num, 2 * cfg.n_frequencies, d)
            self.num_encoder = _blocks(self.n_num, cfg)
            self.num_decoder = _blocks(self.n_num, cfg)
            self.num_out = GroupedLinear(self.n_num, d, 3 * cfg.n_mixtures)
        if self.n_cat:
            sizes = [p.n_categories for p in schema.categorical]
            offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)
            self.register_buffer("cat_offsets", offsets, persistent=False)
            max_c = max(sizes)
            valid = torch.arange(max_c)[None, :] < torch.tensor(sizes)[:, None]
            self.register_buffer("cat_valid", valid, persistent=False)  # (Dc, Cmax)
            self.cat_embed = nn.Embedding(sum(sizes), d)
            self.cat_encoder = _blocks(self.n_cat, cfg)
            self.cat_decoder = _blocks(self.n_cat, cfg)
            self.cat_out = GroupedLinear(self.n_cat, d, max_c)
        self.text_modules = nn.ModuleList(
            TextModule(len(p.vocab or []) + N_SPECIAL, p.max_len + 2, cfg) for p in schema.text
        )
        self.text_lengths = [p.max_len + 2 for p in schema.text]
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.d_ff_mult * d, cfg.dropout, batch_first=True, norm_first=True),
            cfg.n_layers, enable_nested_tensor=False,
        )
        self.out_norm = nn.LayerNorm(d)

    # ------------------------------------------------------------------------------- encoder
    def value_encodings(self, batch: Encoded) -> torch.Tensor:
        parts = []
        if self.n_num:
            parts.append(self.num_encoder(self.num_in(self.num_embed(batch.num))))
        if self.n_cat:
            parts.append(self.cat_encoder(self.cat_embed(batch.cat + self.cat_offsets)))
        if self.n_text:
            parts.append(torch.stack([m.encode(t) for m, t in zip(self.text_modules, batch.text)], 1))
        return torch.cat(parts, 1)

    def forward(self, batch: Encoded, visible: torch.Tensor) -> torch.Tensor:
        """Slot outputs (B, D, d). ``visible[:, j]`` False = property j masked (or missing)."""
        values = self.value_encodings(batch)
        tokens = torch.where(visible[..., None], values, self.mask_embedding) + self.key_encoder()
        tokens = torch.cat([self.global_token.expand(len(batch), -1, -1), tokens], 1)
        hidden_mask = None
        if not self.config.attend_masked:
            always = torch.zeros(len(batch), 1, dtype=torch.bool, device=visible.device)
            hidden_mask = torch.cat([always, ~visible], 1)
        out = self.transformer(tokens, src_key_padding_mask=hidden_mask)
        return self.out_norm(out[:, 1:])

    # ------------------------------------------------------------------------------- decoders
    def gmm(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture means, standard deviations and log-weights, each (B, Dn, K)."""
        raw = self.num_out(self.num_decoder(hidden[:, : self.n_num]))
        mu, raw_sigma, logits = raw.chunk(3, dim=-1)
        return mu, F.softplus(raw_sigma) + 1e-4, F.log_softmax(logits, -1)

    def category_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, Dc, Cmax) with padding classes of smaller properties at -1e9."""
        h = hidden[:, self.n_num : self.n_num + self.n_cat]
        logits = self.cat_out(self.cat_decoder(h))
        return logits.masked_fill(~self.cat_valid, _NEG)

    def log_prob(self, hidden: torch.Tensor, batch: Encoded) -> torch.Tensor:
        """log p(true value of property j | visible) for every slot, (B, D).

        Numerical: Gaussian-mixture log-density in transformed units; categorical: log-softmax;
        text: sum of token log-probabilities. Entries of missing properties are meaningless
        (their inputs are placeholders) and must be masked by the caller.
        """
        parts = []
        if self.n_num:
            mu, sigma, logw = self.gmm(hidden)
            parts.append(gmm_log_prob(batch.num, mu, sigma, logw))
        if self.n_cat:
            logp = F.log_softmax(self.category_logits(hidden), -1)
            parts.append(torch.gather(logp, -1, batch.cat[..., None])[..., 0])
        if self.n_text:
            start = self.n_num + self.n_cat
            parts.append(torch.stack(
                [m.log_prob(t, hidden[:, start + k]) for k, (m, t) in enumerate(zip(self.text_modules, batch.text))], 1
            ))
        return torch.cat(parts, 1)

    @torch.no_grad()
    def sample_into(self, hidden: torch.Tensor, batch: Encoded, which: torch.Tensor, *,
                    temperature: float = 1.0, generator: torch.Generator | None = None) -> Encoded:
        """Write samples for the properties where ``which`` is True into a copy of ``batch``.

        temperature 0 gives point estimates: the mixture mean for numbers, the most probable
        category, greedy text.
        """
        out = batch.clone()
        if self.n_num and bool(which[:, : self.n_num].any()):
            mu, sigma, logw = self.gmm(hidden)
            value = sample_gmm(mu, sigma, logw, temperature, generator)
            out.num = torch.where(which[:, : self.n_num], value, out.num)
        if self.n_cat and bool(which[:, self.n_num : self.n_num + self.n_cat].any()):
            logits = self.category_logits(hidden)
            if temperature <= 0:
                value = logits.argmax(-1)
            else:
                flat = F.softmax(logits / temperature, -1).reshape(-1, logits.shape[-1])
                value = torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:2])
            out.cat = torch.where(which[:, self.n_num : self.n_num + self.n_cat], value, out.cat)
        start = self.n_num + self.n_cat
        for k, module in enumerate(self.text_modules):
            rows = which[:, start + k].nonzero()[:, 0]
            if len(rows):
                generated = module.generate(hidden[rows, start + k], self.text_lengths[k], temperature, generator)
                out.text[k] = out.text[k].clone()
                out.text[k][rows] = generated
        return out


def gmm_log_prob(x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
    """log sum_k w_k N(x | mu_k, sigma_k^2), broadcasting x (...,) against (..., K)."""
    z = (x[..., None] - mu) / sigma
    comp = -0.5 * z**2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(logw + comp, -1)


def gmm_mean(mu: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
    """Mixture mean sum_k w_k mu_k: the point prediction."""
    return (logw.exp() * mu).sum(-1)


def sample_gmm(mu: torch.Tensor, sigma: torch.Tensor, logw: torch.Tensor, temperature: float,
               generator: torch.Generator | None) -> torch.Tensor:
    """Sample at temperature T: w' = softmax(log w / T), k ~ w', x ~ N(mu_k, (T sigma_k)^2);
    T = 0 returns the mixture mean."""
    if temperature <= 0:
        return gmm_mean(mu, logw)
    probs = F.softmax(logw / temperature, -1)
    k = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).reshape(probs.shape[:-1])
    m = torch.gather(mu, -1, k[..., None])[..., 0]
    s = torch.gather(sigma, -1, k[..., None])[..., 0]
    noise = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
    return m + temperature * s * noise

