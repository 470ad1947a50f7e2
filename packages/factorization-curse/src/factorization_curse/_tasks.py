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
VALIDATION_FRACTION = 0.15


@dataclass(frozen=True)
class Query:
    """A held-out or trained question: prompt words, answer words, direction, optional distractor."""

    prompt: tuple[str, ...]
    answer: tuple[str, ...]
    direction: str  # "forward" | "backward"
    # the answer a symmetric (wrong) inference would give; relationship task only
    distractor: tuple[str, ...] | None = None


@dataclass
class TaskData:
    """A task: training sequences (segment lists) and query sets.

    `validation` and `test` hold queries of disjoint held-out items: learning curves and every
    choice of hyperparameters use `validation`; `test` is scored once, at the end.
    `scored_context` False (star graph) means only the last segment of each training sequence
    (the answer) is a loss target; the earlier segments are context.
    """

    name: str
    train: list[list[Segment]]
    test: list[Query]
    # queries whose prompt+answer are also in `train` (to measure fitting, not generalization)
    train_queries: list[Query] = field(default_factory=list)
    description: str = ""
    validation: list[Query] = field(default_factory=list)
    scored_context: bool = True

    def words(self, segments: list[Segment]) -> list[str]:
        return [w for ws, _ in segments for w in ws]

    def corpus(self) -> list[list[str]]:
        """Every word sequence the tokenizer must cover (train sequences and all queries)."""
        out = [self.words(s) for s in self.train]
        out += [list(q.prompt + q.answer) for q in self.test + self.validation + self.train_queries]
        return out

    def context_lengths(self) -> list[int] | None:
        """Per training sequence, the number of leading words that are context, not loss targets
        (None when every word is a target)."""
        if self.scored_context:
            return None
        return [sum(len(ws) for ws, _ in s[:-1]) for s in self.train]


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


def _split(
    rng: random.Random, n: int, train_fraction: float, validation_fraction: float = VALIDATION_FRACTION
) -> tuple[list[int], list[int], list[int]]:
    """Item indices for trained queries, validation queries and test queries (disjoint)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_query_fraction must be in (0, 1), got {train_fraction}")
    if not 0.0 <= validation_fraction < 1.0 or train_fraction + validation_fraction >= 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1 - train_query_fraction), got {validation_fraction}")
    idx = list(range(n))
    rng.shuffle(idx)
    k = max(1, round(train_fraction * n))
    v = max(1, round(validation_fraction * n)) if validation_fraction > 0 else 0
    if n - k - v < 1:
        raise ValueError(
            f"{n} items leave no held-out test queries (train_query_fraction={train_fraction}, "
            f"validation_fraction={validation_fraction}); use n_items >= {k + v + 1}"
        )
    return sorted(idx[:k]), sorted(idx[k : k + v]), sorted(idx[k + v :])


def retrieval_task(
    n_pairs: int = 200,
    entity_len: int = 2,
    n_symbols: int = 60,
    train_query_fraction: float = 0.5,
    seed: int = 0,
    validation_fraction: float = VALIDATION_FRACTION,
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
    tr, va, te = _split(rng, n_pairs, train_query_fraction, validation_fraction)

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
        f"{n_pairs} key-value pairs of {entity_len} symbol(s); queries of {len(tr)} pairs trained, "
        f"{len(va)} validation, {len(te)} test",
        [q for i in va for q in queries(i)],
    )


def relationship_task(
    n_chains: int = 200,
    entity_len: int = 2,
    n_symbols: int = 60,
    train_query_fraction: float = 0.5,
    seed: int = 0,
    validation_fraction: float = VALIDATION_FRACTION,
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
    tr, va, te = _split(rng, n_chains, train_query_fraction, validation_fraction)

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
        f"{n_chains} chains A => B => C, entities of {entity_len} symbol(s); {len(tr)} trained, "
        f"{len(va)} validation, {len(te)} test",
        [q for i in va for q in queries(i)],
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
    validation_fraction: float = VALIDATION_FRACTION,
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
    tr, va, te = _split(rng, n_people, train_query_fraction, validation_fraction)

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
        f"{n_people} people x {bios_per_person} biographies; QA of {len(tr)} people trained, "
        f"{len(va)} validation, {len(te)} test",
        [q for i in va for q in queries(i)],
    )


def star_graph_task(
    degree: int = 2,
    path_len: int = 5,
    n_nodes: int = 50,
    n_train: int = 2000,
    n_test: int = 200,
    seed: int = 0,
    n_validation: int | None = None,
) -> TaskData:
    """Star graphs G(degree, path_len, n_nodes) after Bachmann & Nagarajan (2024).

    A source node has `degree` arms of `path_len - 1` further nodes; the goal is the end of one
    arm. Sequence: shuffled edges `u v |`, then `/ source goal =`, then the path source..goal.
    The query is the prefix through `=`; the answer is the path (forward direction only; this task
    has no backward query). As in Bachmann & Nagarajan, only the path is a loss target (the
    prefix is context: `scored_context` is False). Their graph counts are 200,000 training and
    20,000 test graphs of G(2, 5, 50). `n_validation` graphs (default `n_test // 2`) are held out
    for learning curves, disjoint from the test graphs.
    """
    rng = random.Random(seed)
    need = 1 + degree * (path_len - 1)
    if need > n_nodes:
        raise ValueError(f"G({degree},{path_len}) needs {need} distinct nodes, n_nodes={n_nodes}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"star graph needs n_train >= 1 and n_test >= 1, got {n_train}, {n_test}")
    n_val = max(1, n_test // 2) if n_validation is None else n_validation

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
    while len(items) < n_train + n_val + n_test:
        p, a = graph()
        if p in seen:
            continue
        seen.add(p)
        items.append((p, a))
    train_items = items[:n_train]
    val_items = items[n_train : n_train + n_val]
    test_items = items[n_train + n_val :]
    train = [[(p[:-4], False), (p[-4:], False), (a, True)] for p, a in train_items]
    test = [Query(p, a, "forward") for p, a in test_items]
    train_q = [Query(p, a, "forward") for p, a in train_items[: min(200, n_train)]]
    return TaskData(
        "star-graph",
        train,
        test,
        train_q,
        f"G({degree},{path_len},{n_nodes}): {n_train} train / {n_val} validation / {n_test} test "
        "graphs; loss on the path only",
        [Query(p, a, "forward") for p, a in val_items],
        scored_context=False,
    )


# --- bring your own knowledge ------------------------------------------------------------------
def _split_words(text: str) -> tuple[str, ...]:
    from tokenizers.pre_tokenizers import Whitespace

    return tuple(w for w, _ in Whitespace().pre_tokenize_str(text))


@dataclass(frozen=True)
class Fact:
    """One (subject, relation, object) fact, with optional question templates.

    `forward_question` must contain `{subject}` (answer: the object), `backward_question` must
    contain `{object}` (answer: the subject). Without them the noun-relation defaults
    `what is the RELATION of {subject} ?` and `whose RELATION is {object} ?` are used.
    """

    subject: str
    relation: str
    object: str
    forward_question: str | None = None
    backward_question: str | None = None


TEMPLATE_KEYS = {"forward_question": "{subject}", "backward_question": "{object}"}


def _check_template(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    need = TEMPLATE_KEYS[key]
    other = "{object}" if need == "{subject}" else "{subject}"
    if value.count(need) != 1 or other in value:
        raise ValueError(f"{where}: {key!r} must contain {need} exactly once and not {other}, got {value!r}")
    return value.strip()


def load_facts(path: str | Path) -> list[Fact]:
    """Read a JSON-lines file of `{"subject": ..., "relation": ..., "object": ...}` objects.

    A fact may carry its own `forward_question` / `backward_question` templates. A line with a
    `relation` and templates but no subject/object sets the templates of every fact with that
    relation (e.g. `{"relation": "was born in", "forward_question": "where was {subject} born ?",
    "backward_question": "who was born in {object} ?"}`). A UTF-8 byte-order mark is accepted;
    blank lines are skipped. Any other problem raises ValueError naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"facts file {path} does not exist")
    raw: list[tuple[str, dict]] = []
    relation_templates: dict[str, dict[str, str]] = {}
    with path.open(encoding="utf-8-sig") as fh:
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
            unknown = sorted(set(obj) - {"subject", "relation", "object", *TEMPLATE_KEYS})
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {unknown}; valid: subject, relation, object, "
                                 "forward_question, backward_question")
            templates = {k: _check_template(where, k, obj[k]) for k in TEMPLATE_KEYS if k in obj}
            if "subject" not in obj and "object" not in obj and "relation" in obj and templates:
                rel = obj["relation"]
                if not isinstance(rel, str) or not rel.strip():
                    raise ValueError(f"{where}: 'relation' must be a non-empty string, got {rel!r}")
                relation_templates.setdefault(rel.strip(), {}).update(templates)
                continue
            for key in ("subject", "relation", "object"):
                if key not in obj:
                    raise ValueError(f"{where}: missing key {key!r} (need subject, relation, object)")
                value = obj[key]
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
            raw.append((where, {k: obj[k].strip() for k in ("subject", "relation", "object")} | templates))
    facts = []
    for _, d in raw:
        t = {**relation_templates.get(d["relation"], {}), **{k: d[k] for k in TEMPLATE_KEYS if k in d}}
        facts.append(Fact(d["subject"], d["relation"], d["object"], t.get("forward_question"),
                          t.get("backward_question")))
    if len(facts) < 3:
        raise ValueError(f"{path}: need at least 3 facts (trained, validation and test questions), "
                         f"found {len(facts)}")
    return facts


def _question(template: str | None, default: str, slot: str, value: str) -> tuple[str, ...]:
    return _split_words((template or default).replace(slot, value))


def facts_task(
    facts: list[Fact],
    train_query_fraction: float = 0.5,
    seed: int = 0,
    name: str = "facts",
    validation_fraction: float = VALIDATION_FRACTION,
) -> TaskData:
    """Statements `subject relation object .`; forward question (default `what is the <relation>
    of <subject> ?`) -> object, backward question (default `whose <relation> is <object> ?`) ->
    subject; a fact's or its relation's templates replace the defaults.

    Every fact is stated; the questions of a `train_query_fraction` of the facts are trained,
    those of a `validation_fraction` are the validation set, the rest the test set.
    Facts whose backward question is ambiguous (same relation and object, different subjects)
    keep their statements but get no backward query (likewise forward).
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
            prompt = _question(f.forward_question, f"what is the {f.relation} of {{subject}} ?",
                               "{subject}", f.subject)
            qs.append(Query(prompt, o, "forward"))
        if len(by_ro[(f.relation, f.object)]) == 1:
            prompt = _question(f.backward_question, f"whose {f.relation} is {{object}} ?", "{object}", f.object)
            qs.append(Query(prompt, s, "backward"))
        items.append(qs)
    tr, va, te = _split(rng, len(facts), train_query_fraction, validation_fraction)
    train_q = [q for i in tr for q in items[i]]
    train += [_query_segments(q) for q in train_q]
    return TaskData(
        name,
        train,
        [q for i in te for q in items[i]],
        train_q,
        f"{len(facts)} facts; questions of {len(tr)} facts trained, {len(va)} validation, {len(te)} test",
        [q for i in va for q in items[i]],
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


def countries_task(
    train_query_fraction: float = 0.5, seed: int = 0, validation_fraction: float = VALIDATION_FRACTION
) -> TaskData:
    """ISO 3166-1 countries (name <-> alpha-3 code) through the facts pipeline."""
    return facts_task(country_facts(), train_query_fraction, seed, name="countries",
                      validation_fraction=validation_fraction)
