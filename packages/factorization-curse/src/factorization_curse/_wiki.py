"""WikiReversal ([FC] sec. 3.2, App. E): questions from GenWiki passages and their DBpedia triples.

GenWiki (Jin et al., COLING 2020; CC-BY-4.0) is NOT bundled and nothing is downloaded: point the
loader at your local copy. Its records (JSON lists, e.g. ``train/full/*.json``) look like::

    {"text": "<ENT_0> was born in <ENT_1> .", "entities": ["Ada Lovelace", "London"],
     "graph": [["Ada Lovelace", "birthPlace", "London"]], "id_long": {...}, "id_short": "..."}

The questions follow the paper's Algorithm 1: keep a triple (e_i, r, e_j) when both entities occur
in the passage with e_i first; keep it only if (e_i, r) and (r, e_j) are unique in the data; drop
relations with fewer than `min_relation_count` triples (500 in the paper); ask forward
F_r(e_i) -> e_j and backward B_r(e_j) -> e_i from per-relation templates.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from factorization_curse._tasks import (
    VALIDATION_FRACTION,
    Query,
    Segment,
    TaskData,
    _split,
    _split_words,
)

_ENT = re.compile(r"<ENT_(\d+)>")


@dataclass(frozen=True)
class Passage:
    """One GenWiki passage: text segments (entity mentions marked) and its triples."""

    segments: tuple[Segment, ...]
    triples: tuple[tuple[str, str, str], ...]
    source: str = ""

    @property
    def text(self) -> str:
        return " ".join(w for ws, _ in self.segments for w in ws)


def _passage(rec: object, where: str) -> Passage:
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object with text, entities, graph; got {type(rec).__name__}")
    for key, typ in (("text", str), ("entities", list), ("graph", list)):
        if not isinstance(rec.get(key), typ):
            raise ValueError(f"{where}: {key!r} must be a {typ.__name__}, got {rec.get(key)!r:.60}")
    ents = rec["entities"]
    segs: list[Segment] = []
    pos = 0
    for m in _ENT.finditer(rec["text"]):
        before = _split_words(rec["text"][pos : m.start()])
        if before:
            segs.append((before, False))
        i = int(m.group(1))
        if i >= len(ents) or not isinstance(ents[i], str):
            raise ValueError(f"{where}: <ENT_{i}> has no entity (only {len(ents)} entities)")
        segs.append((_split_words(ents[i]), True))
        pos = m.end()
    tail = _split_words(rec["text"][pos:])
    if tail:
        segs.append((tail, False))
    triples = []
    for t in rec["graph"]:
        if not (isinstance(t, list) and len(t) == 3 and all(isinstance(x, str) and x.strip() for x in t)):
            raise ValueError(f"{where}: a graph triple must be [subject, relation, object] strings, got {t!r:.80}")
        triples.append((t[0].strip(), t[1].strip(), t[2].strip()))
    return Passage(tuple(segs), tuple(triples), where)


def load_genwiki(path: str | Path, limit: int | None = None) -> list[Passage]:
    """Passages of a GenWiki JSON file (a list of records, or JSON lines) or of every ``*.json``
    file under a directory (sorted). Errors name the file and record."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.json"))
        if not files:
            raise FileNotFoundError(f"no *.json GenWiki files under {path}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"GenWiki path {path} does not exist (the data is not bundled: "
                                "give the path of your local copy)")
    out: list[Passage] = []
    for f in files:
        text = f.read_text(encoding="utf-8-sig")
        try:
            records = json.loads(text)
            if isinstance(records, dict):
                records = [records]
        except json.JSONDecodeError:
            records = []
            for lineno, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{f}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(records, list):
            raise ValueError(f"{f}: expected a JSON list of GenWiki records")
        for i, rec in enumerate(records):
            out.append(_passage(rec, f"{f}[{i}]"))
            if limit is not None and len(out) >= limit:
                return out
    return out


# per-relation question templates for the paper's most frequent relations; others use a default
RELATION_TEMPLATES: dict[str, tuple[str, str]] = {
    "birthPlace": ("where was {subject} born ?", "who was born in {object} ?"),
    "deathPlace": ("where did {subject} die ?", "who died in {object} ?"),
    "birthName": ("what was the birth name of {subject} ?", "who was born with the name {object} ?"),
    "alias": ("what is another name of {subject} ?", "who is also known as {object} ?"),
    "location": ("where is {subject} located ?", "what is located in {object} ?"),
    "writer": ("who wrote {subject} ?", "what did {object} write ?"),
    "city": ("in which city is {subject} ?", "what is in the city of {object} ?"),
    "country": ("in which country is {subject} ?", "what is in the country {object} ?"),
}


def relation_words(relation: str) -> str:
    """DBpedia camelCase relation -> words: "birthPlace" -> "birth place"."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", relation).replace("_", " ").lower()


def questions(subject: str, relation: str, obj: str) -> tuple[Query, Query]:
    """Forward (subject -> object) and backward (object -> subject) question of a triple."""
    rw = relation_words(relation)
    fwd, bwd = RELATION_TEMPLATES.get(relation, (f"what is the {rw} of {{subject}} ?", f"whose {rw} is {{object}} ?"))
    return (Query(_split_words(fwd.replace("{subject}", subject)), _split_words(obj), "forward"),
            Query(_split_words(bwd.replace("{object}", obj)), _split_words(subject), "backward"))


def reversal_triples(passages: list[Passage], min_relation_count: int = 500) -> list[tuple[int, str, str, str]]:
    """(passage index, e_i, r, e_j) kept by Algorithm 1 (see the module docstring)."""
    cands = []
    for k, p in enumerate(passages):
        text = " " + p.text + " "
        for s, r, o in p.triples:
            ts, to = " " + " ".join(_split_words(s)) + " ", " " + " ".join(_split_words(o)) + " "
            i, j = text.find(ts), text.find(to)
            if i >= 0 and j >= 0 and i < j:
                cands.append((k, s, r, o))
    distinct = {(s, r, o) for _, s, r, o in cands}
    sr = Counter((s, r) for s, r, _ in distinct)
    ro = Counter((r, o) for _, r, o in distinct)
    kept = [c for c in cands if sr[(c[1], c[2])] == 1 and ro[(c[2], c[3])] == 1]
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for c in kept:  # the same triple stated in several passages is asked once
        if c[1:] not in seen:
            seen.add(c[1:])
            unique.append(c)
    counts = Counter(r for _, _, r, _ in unique)
    return [c for c in unique if counts[c[2]] >= min_relation_count]


def wikireversal_task(
    passages: list[Passage],
    min_relation_count: int = 500,
    train_query_fraction: float = 0.8,
    seed: int = 0,
    validation_fraction: float = VALIDATION_FRACTION / 2,
) -> TaskData:
    """Every passage is a training sequence; the questions of `train_query_fraction` of the kept
    triples are trained, the rest split into validation and test (disjoint triples). The paper
    trains 80 % of the questions and evaluates on the other 20 %."""
    rng = random.Random(seed)
    kept = reversal_triples(passages, min_relation_count)
    if len(kept) < 3:
        raise ValueError(f"only {len(kept)} triples pass WikiReversal's filters (min_relation_count="
                         f"{min_relation_count}); need >= 3")
    items = [questions(s, r, o) for _, s, r, o in kept]
    tr, va, te = _split(rng, len(items), train_query_fraction, validation_fraction)
    train: list[list[Segment]] = [list(p.segments) for p in passages]
    train_q = [q for i in tr for q in items[i]]
    train += [[(q.prompt, False), (q.answer, True)] for q in train_q]
    rels = Counter(r for _, _, r, _ in kept)
    return TaskData(
        "wikireversal", train, [q for i in te for q in items[i]], train_q,
        f"{len(passages)} GenWiki passages, {len(kept)} triples of {len(rels)} relations; questions of "
        f"{len(tr)} trained, {len(va)} validation, {len(te)} test",
        [q for i in va for q in items[i]],
    )
