"""Word-level tokenizer (Hugging Face `tokenizers`) trained on a task's corpus, and reversal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from factorization_curse._tasks import Segment, TaskData

PAD, MASK, BOS, EOS, UNK = "[PAD]", "[MASK]", "[BOS]", "[EOS]", "[UNK]"
SPECIALS = (PAD, MASK, BOS, EOS, UNK)
ENTITY_OPEN, ENTITY_CLOSE = "<e>", "</e>"


def token_reverse(segments: list[Segment]) -> list[Segment]:
    """Reverse word order completely (multi-word entities come out reversed too)."""
    words = [w for ws, _ in segments for w in ws]
    return [(tuple(reversed(words)), False)]


def entity_reverse(segments: list[Segment], delimiters: bool = True) -> list[Segment]:
    """Reverse segment order, keeping the words inside each entity in order.

    With `delimiters`, each entity of the reversed sequence is wrapped in `<e> ... </e>` so the
    model can tell reversed from original statements ([FC] Table 7 needs them).
    """
    out: list[Segment] = []
    for ws, is_entity in reversed(segments):
        if is_entity:
            out.append(((ENTITY_OPEN, *ws, ENTITY_CLOSE) if delimiters else ws, True))
        else:
            out.append((tuple(reversed(ws)), False))
    return out


@dataclass
class Vocab:
    """Thin wrapper around a trained `tokenizers.Tokenizer` (word-level, whitespace split)."""

    tokenizer: object

    @classmethod
    def train(cls, corpus: list[list[str]]) -> Vocab:
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit
        from tokenizers.trainers import WordLevelTrainer

        tok = Tokenizer(WordLevel(unk_token=UNK))
        tok.pre_tokenizer = WhitespaceSplit()
        trainer = WordLevelTrainer(special_tokens=list(SPECIALS), min_frequency=1, show_progress=False)
        extra = [[ENTITY_OPEN, ENTITY_CLOSE]]
        tok.train_from_iterator((" ".join(ws) for ws in list(corpus) + extra), trainer=trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    def save(self, path: str | Path) -> None:
        self.tokenizer.save(str(path))

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    def id(self, token: str) -> int:
        i = self.tokenizer.token_to_id(token)
        if i is None:
            raise KeyError(f"token {token!r} not in the vocabulary")
        return i

    @property
    def pad_id(self) -> int:
        return self.id(PAD)

    @property
    def mask_id(self) -> int:
        return self.id(MASK)

    @property
    def bos_id(self) -> int:
        return self.id(BOS)

    @property
    def eos_id(self) -> int:
        return self.id(EOS)

    def encode_words(self, words: list[str] | tuple[str, ...]) -> list[int]:
        if not words:
            return []
        ids = self.tokenizer.encode(list(words), is_pretokenized=True).ids
        if len(ids) != len(words):
            raise ValueError(f"tokenizer split pre-split words {list(words)[:8]}...")
        return ids

    def decode_ids(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.id_to_token(int(i)) for i in ids]


def encode_sequences(vocab: Vocab, sequences: list[list[str]], length: int) -> torch.Tensor:
    """[BOS] words [EOS] [PAD]... as a LongTensor (n, length)."""
    out = torch.full((len(sequences), length), vocab.pad_id, dtype=torch.long)
    for i, ws in enumerate(sequences):
        ids = [vocab.bos_id, *vocab.encode_words(ws), vocab.eos_id]
        if len(ids) > length:
            raise ValueError(f"sequence of {len(ids)} tokens exceeds the length {length}")
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def target_mask(ids: torch.Tensor, pad_id: int, context_lengths: list[int] | None = None) -> torch.Tensor:
    """(N, T) bool: the positions a training loss may score.

    Every word and the closing [EOS]; never [BOS] (position 0) nor padding. With
    `context_lengths`, the first `context_lengths[i]` words of row i are context, not targets
    (the star graph's prefix).
    """
    targets = ids != pad_id
    targets[:, 0] = False
    if context_lengths is not None:
        if len(context_lengths) != ids.shape[0]:
            raise ValueError(f"{len(context_lengths)} context lengths for {ids.shape[0]} sequences")
        pos = torch.arange(ids.shape[1])[None, :]
        targets &= pos > torch.tensor(context_lengths)[:, None]
    return targets


REVERSAL = {"none", "token", "entity", "entity-nodelim"}


def training_sequences(task: TaskData, reversal: str = "none") -> list[list[str]]:
    """The task's training sequences, plus their reversed copies when `reversal` != none."""
    if reversal not in REVERSAL:
        raise ValueError(f"unknown reversal {reversal!r}; valid: {sorted(REVERSAL)}")
    if reversal != "none" and not task.scored_context:
        raise ValueError(f"task {task.name!r} scores only its answers; reversed copies are not defined")
    seqs = [task.words(s) for s in task.train]
    if reversal == "token":
        seqs += [task.words(token_reverse(s)) for s in task.train]
    elif reversal in ("entity", "entity-nodelim"):
        seqs += [task.words(entity_reverse(s, reversal == "entity")) for s in task.train]
    return seqs
