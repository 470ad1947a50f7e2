"""Seeded task generators: every task is a list of training sequences plus held-out queries.

A training sequence is a list of segments ``(words, is_entity)`` so that reversal can be done
per token (the whole word list reversed) or per entity (segment order reversed, words inside an
entity kept in order). A query is a prompt (words) whose completion is the answer (words); its
``direction`` is "forward" (the order the facts were stated in) or "backward" (the reverse).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

Segment = tuple[tuple[str, ...], bool]

TASKS = ("retrieval", "relationship", "bios", "star-graph", "countries")


@dataclass(frozen=True)
class Query:
    prompt: tuple[str, ...]
    answer: tuple[str, ...]
    direction: str  # "forward" | "backward"
    # the answer a symmetric (wrong) inference would give; relationship task only
    distractor: tuple[str, ...] | None = None


@dataclass
class TaskData:
    name: str
    train: list[list[Segment]]
    test: list[Query]
    # queries whose prompt+answer are also in `train` (to measure fitting, not generalization)
    train_queries: list[Query] = field(default_factory=list)
    description: str = ""

    def words(self, segments: list[Segment]) -> list[str]:
        return [w for ws, _ in segments for w in ws]

    def corpus(self) -> list[list[str]]:
        """Every word sequence the tokenizer must cover (train sequences and all queries)."""
        out = [self.words(s) for s in self.train]
        out += [list(q.prompt + q.answer) for q in self.test + self.train_queries]
        return out


def _ent(words: tuple[str, ...] | list[str]) -> Segment:
    return (tuple(words), True)


def _lit(*words: str) -> Segment:
    return (tuple(words), False)


def _query_segments(q: Query, answer_is_entity: bool = True) -> list[Segment]:
    return [(q.prompt, False), (q.answer, answer_is_entity)]


def _unique_entities(rng: random.Random, n: int, length: int, symbols: list[str]) -> list[tuple[str, ...]]:
    """n distinct entities, each `length` distinct symbols."""
    if length > len(symbols):
        raise ValueError(f"entity length {length} exceeds the {len(symbols)} available symbols")
    seen: set[tuple[str, ...]] = set()
    out: list[tuple[str, ...]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(
                f"cannot draw {n} distinct entities of length {length} from {len(symbols)} symbols"
            )
        e = tuple(rng.sample(symbols, length))
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def _split(rng: random.Random, n: int, train_fraction: float) -> tuple[list[int], list[int]]:
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_query_fraction must be in (0, 1), got {train_fraction}")
    idx = list(range(n))
    rng.shuffle(idx)
    k = max(1, min(n - 1, round(train_fraction * n)))
    return sorted(idx[:k]), sorted(idx[k:])


def retrieval_task(
    n_pairs: int = 200,
    entity_len: int = 2,
    n_symbols: int = 60,
    train_query_fraction: float = 0.5,
    seed: int = 0,
) -> TaskData:
    """Key <-> value retrieval ([FC] sec. 3.1): `k : v` statements; `F k : v` / `B v : k` queries.

    All pairs are stated; forward and backward queries of a `train_query_fraction` of the pairs
    are trained on, the other pairs' queries are the test set.
    """
    rng = random.Random(seed)
    symbols = [f"s{i}" for i in range(n_symbols)]
    ents = _unique_entities(rng, 2 * n_pairs, entity_len, symbols)
    keys, values = ents[:n_pairs], ents[n_pairs:]
    train: list[list[Segment]] = [[_ent(k), _lit(":"), _ent(v)] for k, v in zip(keys, values)]
    tr, te = _split(rng, n_pairs, train_query_fraction)

    def queries(i: int) -> list[Query]:
        return [
            Query(("F", *keys[i], ":"), values[i], "forward"),
            Query(("B", *values[i], ":"), keys[i], "backward"),
        ]

    train_q = [q for i in tr for q in queries(i)]
    train += [[_lit(q.prompt[0]), _ent(q.prompt[1:-1]), _lit(":"), _ent(q.answer)] for q in train_q]
    return TaskData(
        "retrieval",
        train,
        [q for i in te for q in queries(i)],
        train_q,
        f"{n_pairs} key-value pairs of {entity_len} symbols; queries of {len(tr)} pairs trained",
    )


def relationship_task(
    n_chains: int = 200,
    entity_len: int = 2,
    n_symbols: int = 60,
    train_query_fraction: float = 0.5,
    seed: int = 0,
) -> TaskData:
    """`A => B => C` chains; forward `B => ?` -> C, backward `B <= ?` -> A ([FC] sec. 3.1).

    The wrong, symmetric answer (A for the forward query, C for the backward one) is recorded as
    the query's distractor to measure the incorrect-inference rate.
    """
    rng = random.Random(seed)
    symbols = [f"s{i}" for i in range(n_symbols)]
    ents = _unique_entities(rng, 3 * n_chains, entity_len, symbols)
    chains = [(ents[3 * i], ents[3 * i + 1], ents[3 * i + 2]) for i in range(n_chains)]
    train: list[list[Segment]] = [
        [_ent(a), _lit("=>"), _ent(b), _lit("=>"), _ent(c)] for a, b, c in chains
    ]
    tr, te = _split(rng, n_chains, train_query_fraction)

    def queries(i: int) -> list[Query]:
        a, b, c = chains[i]
        return [
            Query((*b, "=>", "?"), c, "forward", distractor=a),
            Query((*b, "<=", "?"), a, "backward", distractor=c),
        ]

    train_q = [q for i in tr for q in queries(i)]
    train += [[_ent(q.prompt[:-2]), _lit(*q.prompt[-2:]), _ent(q.answer)] for q in train_q]
    return TaskData(
        "relationship",
        train,
        [q for i in te for q in queries(i)],
        train_q,
        f"{n_chains} chains A => B => C, entities of {entity_len} symbols",
    )


# --- BioS-style biographies -------------------------------------------------------------------
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_ONSETS = "b c d f g h j k l m n p r s t v w z br cr dr fl gr kl pr st tr".split()
_VOWELS = "a e i o u ai ea io ou".split()
_CODAS = ["", "n", "r", "l", "s", "th", "m", "nd", "x"]


def _pseudo_words(rng: random.Random, n: int, syllables: int) -> list[str]:
    """n distinct pronounceable capitalized pseudo-words (self-generated, no copied name lists)."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        w = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
        ).capitalize()
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


_BIRTH = [
    ("{name} was born on {date} .", "date"),
    ("{name} came into this world on {date} .", "date"),
    ("The birthday of {name} is {date} .", "date"),
]
_FACTS = {
    "city": ["{p} was born in {x} .", "{p} spent early years in {x} .", "{p} hails from {x} ."],
    "university": ["{p} studied at {x} .", "{p} graduated from {x} .", "{p} attended {x} ."],
    "major": ["{p} majored in {x} .", "{p} focused on {x} studies .", "{p} earned a degree in {x} ."],
    "company": ["{p} worked for {x} .", "{p} was employed at {x} .", "{p} had a career at {x} ."],
    "work_city": ["{p} worked in {x} .", "{p} was based in {x} .", "{p} lived and worked in {x} ."],
}


def _fill(template: str, slots: dict[str, tuple[str, ...]]) -> list[Segment]:
    """Template words -> segments; `{slot}` placeholders become entity segments."""
    segs: list[Segment] = []
    buf: list[str] = []
    for w in template.split():
        if w.startswith("{") and w.endswith("}"):
            if buf:
                segs.append((tuple(buf), False))
                buf = []
            segs.append((slots[w[1:-1]], True))
        else:
            buf.append(w)
    if buf:
        segs.append((tuple(buf), False))
    return segs


def bios_task(
    n_people: int = 200,
    bios_per_person: int = 2,
    train_query_fraction: float = 0.5,
    seed: int = 0,
) -> TaskData:
    """BioS-style biographies (after Allen-Zhu & Li's bioS; own templates and pseudo-names).

    Each person has a unique three-word name, a unique birth date ("Month D , YYYY"), a birth
    city, university, major, employer and work city. Each biography states the birth date first
    and the other facts in shuffled order with random templates. Forward: name -> birth date;
    backward: birth date -> name. QA of `train_query_fraction` of the people are trained.
    """
    rng = random.Random(seed)
    firsts = _pseudo_words(rng, 40, 2)
    middles = _pseudo_words(rng, 30, 1)
    lasts = _pseudo_words(rng, 60, 2)
    cities = [(w, "City") for w in _pseudo_words(rng, 30, 2)]
    unis = [("University", "of", w) for w in _pseudo_words(rng, 20, 2)]
    majors = [(w,) for w in ("Physics Chemistry Biology History Music Law Medicine Economics "
                             "Philosophy Mathematics Linguistics Geology").split()]
    companies = [(w, "Corp") for w in _pseudo_words(rng, 30, 2)]
    if n_people > len(firsts) * len(middles) * len(lasts):
        raise ValueError(f"n_people={n_people} exceeds the number of distinct names")
    names: set[tuple[str, ...]] = set()
    dates: set[tuple[str, ...]] = set()
    people = []
    while len(people) < n_people:
        name = (rng.choice(firsts), rng.choice(middles), rng.choice(lasts))
        date = (rng.choice(_MONTHS), str(rng.randint(1, 28)), ",", str(rng.randint(1900, 1999)))
        if name in names or date in dates:
            continue
        names.add(name)
        dates.add(date)
        people.append(
            {
                "name": name,
                "date": date,
                "city": rng.choice(cities),
                "university": rng.choice(unis),
                "major": rng.choice(majors),
                "company": rng.choice(companies),
                "work_city": rng.choice(cities),
            }
        )
    train: list[list[Segment]] = []
    for i, p in enumerate(people):
        pronoun = ("He",) if i % 2 == 0 else ("She",)
        for _ in range(bios_per_person):
            segs = _fill(rng.choice(_BIRTH)[0], {"name": p["name"], "date": p["date"]})
            keys = list(_FACTS)
            rng.shuffle(keys)
            for k in keys:
                segs += _fill(rng.choice(_FACTS[k]), {"p": pronoun, "x": p[k]})
            train.append(segs)
    tr, te = _split(rng, n_people, train_query_fraction)

    def queries(i: int) -> list[Query]:
        p = people[i]
        return [
            Query(("When", "was", *p["name"], "born", "?"), p["date"], "forward"),
            Query(("Who", "was", "born", "on", *p["date"], "?"), p["name"], "backward"),
        ]

    train_q = [q for i in tr for q in queries(i)]
    train += [_query_segments(q) for q in train_q]
    return TaskData(
        "bios",
        train,
        [q for i in te for q in queries(i)],
        train_q,
        f"{n_people} people x {bios_per_person} biographies; QA of {len(tr)} people trained",
    )


def star_graph_task(
    degree: int = 2,
    path_len: int = 5,
    n_nodes: int = 20,
    n_train: int = 2000,
    n_test: int = 200,
    seed: int = 0,
) -> TaskData:
    """Star graphs G(degree, path_len, n_nodes) after Bachmann & Nagarajan (2024).

    A source node has `degree` arms of `path_len - 1` further nodes; the goal is the end of one
    arm. Sequence: shuffled edges `u v |`, then `/ source goal =`, then the path source..goal.
    The query is the prefix through `=`; the answer is the path (forward direction only; this task
    has no backward query).
    """
    rng = random.Random(seed)
    need = 1 + degree * (path_len - 1)
    if need > n_nodes:
        raise ValueError(f"G({degree},{path_len}) needs {need} distinct nodes, n_nodes={n_nodes}")

    def graph() -> tuple[tuple[str, ...], tuple[str, ...]]:
        nodes = rng.sample(range(n_nodes), need)
        source = nodes[0]
        arms = [nodes[1 + a * (path_len - 1) : 1 + (a + 1) * (path_len - 1)] for a in range(degree)]
        edges = []
        for arm in arms:
            prev = source
            for v in arm:
                edges.append((prev, v))
                prev = v
        rng.shuffle(edges)
        goal_arm = rng.randrange(degree)
        path = [source, *arms[goal_arm]]
        prefix = [w for u, v in edges for w in (str(u), str(v), "|")]
        prefix += ["/", str(source), str(path[-1]), "="]
        return tuple(prefix), tuple(str(v) for v in path)

    seen: set[tuple[str, ...]] = set()
    items = []
    while len(items) < n_train + n_test:
        p, a = graph()
        if p in seen:
            continue
        seen.add(p)
        items.append((p, a))
    train_items, test_items = items[:n_train], items[n_train:]
    train = [[(p[:-4], False), (p[-4:], False), (a, True)] for p, a in train_items]
    test = [Query(p, a, "forward") for p, a in test_items]
    train_q = [Query(p, a, "forward") for p, a in train_items[: min(200, n_train)]]
    return TaskData(
        "star-graph",
        train,
        test,
        train_q,
        f"G({degree},{path_len},{n_nodes}): {n_train} train / {n_test} test graphs",
    )


# --- bring your own knowledge ------------------------------------------------------------------
def _split_words(text: str) -> tuple[str, ...]:
    from tokenizers.pre_tokenizers import Whitespace

    return tuple(w for w, _ in Whitespace().pre_tokenize_str(text))


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    object: str


def load_facts(path: str | Path) -> list[Fact]:
    """Read a JSON-lines file of `{"subject": ..., "relation": ..., "object": ...}` objects.

    Blank lines are skipped. Any other problem raises ValueError naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"facts file {path} does not exist")
    facts: list[Fact] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(
                    f"{where}: expected a JSON object with subject, relation, object; "
                    f"got {type(obj).__name__}"
                )
            for key in ("subject", "relation", "object"):
                if key not in obj:
                    raise ValueError(f"{where}: missing key {key!r} (need subject, relation, object)")
                value = obj[key]
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
            facts.append(Fact(obj["subject"].strip(), obj["relation"].strip(), obj["object"].strip()))
    if len(facts) < 2:
        raise ValueError(f"{path}: need at least 2 facts to hold some out, found {len(facts)}")
    return facts


def facts_task(
    facts: list[Fact], train_query_fraction: float = 0.5, seed: int = 0, name: str = "facts"
) -> TaskData:
    """Statements `subject relation object .`, forward `what is the <relation> of <subject> ?`
    -> object, backward `whose <relation> is <object> ?` -> subject.

    Every fact is stated; the questions of a `train_query_fraction` of the facts are trained.
    Facts whose backward question is ambiguous (same relation and object, different subjects)
    keep their statements but get no backward query.
    """
    rng = random.Random(seed)
    by_ro: dict[tuple[str, str], set[str]] = {}
    for f in facts:
        by_ro.setdefault((f.relation, f.object), set()).add(f.subject)
    by_sr: dict[tuple[str, str], set[str]] = {}
    for f in facts:
        by_sr.setdefault((f.subject, f.relation), set()).add(f.object)
    train: list[list[Segment]] = []
    items = []
    for f in facts:
        s, r, o = _split_words(f.subject), _split_words(f.relation), _split_words(f.object)
        train.append([_ent(s), _lit(*r), _ent(o), _lit(".")])
        qs = []
        if len(by_sr[(f.subject, f.relation)]) == 1:
            qs.append(Query(("what", "is", "the", *r, "of", *s, "?"), o, "forward"))
        if len(by_ro[(f.relation, f.object)]) == 1:
            qs.append(Query(("whose", *r, "is", *o, "?"), s, "backward"))
        items.append(qs)
    tr, te = _split(rng, len(facts), train_query_fraction)
    train_q = [q for i in tr for q in items[i]]
    train += [_query_segments(q) for q in train_q]
    return TaskData(
        name,
        train,
        [q for i in te for q in items[i]],
        train_q,
        f"{len(facts)} facts; questions of {len(tr)} facts trained",
    )


def country_facts(relations: tuple[str, ...] = ("alpha-3",)) -> list[Fact]:
    """ISO 3166-1 countries shipped by the `pycountry` package: name <-> alpha-3 (and alpha-2) code."""
    import pycountry

    valid = {"alpha-3": "alpha_3", "alpha-2": "alpha_2"}
    facts = []
    for rel in relations:
        if rel not in valid:
            raise ValueError(f"unknown country relation {rel!r}; valid: {sorted(valid)}")
        for c in pycountry.countries:
            facts.append(Fact(c.name, f"{rel} code", getattr(c, valid[rel])))
    return facts


def countries_task(train_query_fraction: float = 0.5, seed: int = 0) -> TaskData:
    return facts_task(country_facts(), train_query_fraction, seed, name="countries")
