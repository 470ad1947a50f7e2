import json

import pytest

from factorization_curse import (
    bios_task,
    country_facts,
    facts_task,
    load_facts,
    relationship_task,
    retrieval_task,
    star_graph_task,
)


def _train_texts(task):
    return {" ".join(task.words(s)) for s in task.train}


def test_retrieval_pairs_queries_and_split():
    task = retrieval_task(n_pairs=50, entity_len=3, n_symbols=20, train_query_fraction=0.4, seed=3)
    statements = [task.words(s) for s in task.train[:50]]
    keys = [tuple(w[:3]) for w in statements]
    values = [tuple(w[4:]) for w in statements]
    assert len(set(keys + values)) == 100  # all entities distinct
    assert all(len(set(k)) == 3 for k in keys)  # unique tokens inside an entity
    pair = dict(zip(keys, values))
    assert len(task.train_queries) == 2 * 20 and len(task.validation) == 2 * 8
    assert len(task.test) == 2 * 22
    train_prompts = {q.prompt for q in task.train_queries}
    val_prompts = {q.prompt for q in task.validation}
    assert not val_prompts & train_prompts
    for q in task.test:
        assert q.prompt not in val_prompts
        assert q.prompt not in train_prompts
        if q.direction == "forward":
            assert pair[q.prompt[1:-1]] == q.answer
        else:
            assert pair[q.answer] == q.prompt[1:-1]
    # training queries are in the training sequences, test queries are not
    texts = _train_texts(task)
    assert all(" ".join(q.prompt + q.answer) in texts for q in task.train_queries)
    assert not any(" ".join(q.prompt + q.answer) in texts for q in task.test)


def test_generators_are_seeded():
    a, b = retrieval_task(seed=1), retrieval_task(seed=1)
    c = retrieval_task(seed=2)
    assert a.test == b.test and a.train == b.train
    assert a.train != c.train


def test_relationship_distractor_is_the_symmetric_answer():
    task = relationship_task(n_chains=20, seed=0)
    chains = {}
    for s in task.train[:20]:
        w = task.words(s)
        chains[tuple(w[3:5])] = (tuple(w[:2]), tuple(w[6:8]))
    for q in task.test:
        a, c = chains[q.prompt[:2]]
        if q.direction == "forward":
            assert (q.answer, q.distractor) == (c, a)
        else:
            assert (q.answer, q.distractor) == (a, c)


def test_bios_names_and_dates_unique_and_stated():
    task = bios_task(n_people=60, bios_per_person=2, seed=0)
    fwd = [q for q in task.test + task.validation + task.train_queries if q.direction == "forward"]
    names = [q.prompt[2:5] for q in fwd]
    dates = [q.answer for q in fwd]
    assert len(set(names)) == len(names) == 60 and len(set(dates)) == 60
    texts = " || ".join(_train_texts(task))
    for q in fwd:  # each person's birth date is stated next to the name in a biography
        assert " ".join(q.answer) in texts and " ".join(q.prompt[2:5]) in texts
    assert all(len(q.answer) == 4 and q.answer[2] == "," for q in fwd)


@pytest.mark.parametrize("degree,path_len", [(2, 5), (3, 4)])
def test_star_graph_paths_are_valid(degree, path_len):
    task = star_graph_task(degree, path_len, n_nodes=30, n_train=50, n_test=20, seed=0)
    for q in task.test:
        prefix = list(q.prompt)
        sep = prefix.index("/")
        edge_words = prefix[:sep]
        edges = {(edge_words[i], edge_words[i + 1]) for i in range(0, len(edge_words), 3)}
        assert len(edges) == degree * (path_len - 1)
        source, goal = prefix[sep + 1], prefix[sep + 2]
        assert q.answer[0] == source and q.answer[-1] == goal and len(q.answer) == path_len
        assert all((u, v) in edges for u, v in zip(q.answer, q.answer[1:]))
        assert sum(u == source for u, _ in edges) == degree


def test_star_graph_rejects_too_few_nodes():
    with pytest.raises(ValueError, match="needs 9 distinct nodes"):
        star_graph_task(2, 5, n_nodes=8)


def _write(tmp_path, lines):
    p = tmp_path / "facts.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_load_facts_and_questions(tmp_path):
    rows = [{"subject": f"Person {i}", "relation": "lives in", "object": f"Town {i}"} for i in range(6)]
    rows.append({"subject": "Person 0", "relation": "works at", "object": "Mill"})
    rows.append({"subject": "Person 1", "relation": "works at", "object": "Mill"})  # ambiguous bwd
    p = _write(tmp_path, [json.dumps(r) for r in rows[:3]] + [""] + [json.dumps(r) for r in rows[3:]])
    facts = load_facts(p)
    assert len(facts) == 8
    task = facts_task(facts, train_query_fraction=0.5, seed=0)
    assert len(task.train) >= 8
    queries = task.test + task.validation + task.train_queries
    # "works at Mill" has two subjects: no backward question for those facts
    assert not any(q.direction == "backward" and "Mill" in q.prompt for q in queries)
    assert any(q.direction == "forward" and q.answer == ("Mill",) for q in queries)
    fwd = next(q for q in queries if q.direction == "forward" and q.answer == ("Town", "2"))
    assert fwd.prompt == ("what", "is", "the", "lives", "in", "of", "Person", "2", "?")


@pytest.mark.parametrize(
    "bad,message",
    [
        ("{not json", r"facts.jsonl:3: not valid JSON"),
        ('["a", "b"]', r"facts.jsonl:3: expected a JSON object"),
        ('{"subject": "a", "relation": "r"}', r"facts.jsonl:3: missing key 'object'"),
        ('{"subject": "a", "relation": "r", "object": 5}', r"facts.jsonl:3: 'object' must be a non-empty"),
        ('{"subject": " ", "relation": "r", "object": "b"}', r"facts.jsonl:3: 'subject' must be a non-empty"),
    ],
)
def test_load_facts_errors_name_the_line(tmp_path, bad, message):
    good = json.dumps({"subject": "a", "relation": "r", "object": "b"})
    p = _write(tmp_path, [good, good, bad])
    with pytest.raises(ValueError, match=message):
        load_facts(p)


def test_load_facts_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_facts(tmp_path / "nope.jsonl")


def test_country_facts_from_pycountry():
    facts = country_facts()
    assert len(facts) >= 240
    codes = [f.object for f in facts]
    assert len(set(codes)) == len(codes) and all(len(c) == 3 and c.isupper() for c in codes)
    assert any(f.subject == "France" and f.object == "FRA" for f in facts)
    with pytest.raises(ValueError, match="unknown country relation"):
        country_facts(("capital",))


@pytest.mark.parametrize("make", [
    lambda: retrieval_task(n_pairs=60, seed=1),
    lambda: relationship_task(n_chains=60, seed=1),
    lambda: bios_task(n_people=60, seed=1),
    lambda: star_graph_task(2, 5, n_nodes=30, n_train=50, n_test=20, seed=1),
])
def test_every_task_has_a_validation_split_disjoint_from_test(make):
    task = make()
    assert task.validation and task.test
    items = lambda qs: {q.prompt for q in qs} | {q.answer for q in qs}  # noqa: E731
    assert not items(task.validation) & items(task.test) or task.name == "star-graph"
    assert not {q.prompt for q in task.validation} & {q.prompt for q in task.test}
    texts = _train_texts(task)  # validation questions are never trained
    assert not any(" ".join(q.prompt + q.answer) in texts for q in task.validation)


def test_too_few_items_for_a_test_split_is_refused():
    with pytest.raises(ValueError, match="leave no held-out test queries"):
        retrieval_task(n_pairs=2)


def test_star_graph_scores_the_path_only():
    task = star_graph_task(2, 5, n_nodes=30, n_train=10, n_test=4, seed=0)
    ctx = task.context_lengths()
    assert not task.scored_context and len(ctx) == len(task.train)
    for segs, n in zip(task.train, ctx):
        words = task.words(segs)
        assert words[n - 1] == "=" and len(words) - n == 5  # the path of 5 nodes follows the context


def test_facts_templates_per_relation_and_per_fact(tmp_path):
    lines = [
        {"relation": "was born in", "forward_question": "where was {subject} born ?",
         "backward_question": "who was born in {object} ?"},
        {"subject": "Ada Lovelace", "relation": "was born in", "object": "London"},
        {"subject": "Marie Curie", "relation": "was born in", "object": "Warsaw"},
        {"subject": "Alan Turing", "relation": "was born in", "object": "Maida Vale"},
        {"subject": "Kurt Godel", "relation": "studied at", "object": "Vienna",
         "forward_question": "where did {subject} study ?", "backward_question": "who studied at {object} ?"},
    ]
    p = _write(tmp_path, [json.dumps(x) for x in lines])
    facts = load_facts(p)
    assert len(facts) == 4
    task = facts_task(facts, train_query_fraction=0.25, validation_fraction=0.25, seed=0)
    prompts = {" ".join(q.prompt) for q in task.test + task.validation + task.train_queries}
    assert "where was Marie Curie born ?" in prompts and "who was born in Maida Vale ?" in prompts
    assert "where did Kurt Godel study ?" in prompts
    assert not any("what is the" in x for x in prompts)


@pytest.mark.parametrize("bad,message", [
    ('{"relation": "r", "forward_question": "what of it ?"}', "must contain {subject} exactly once"),
    ('{"subject": "a", "relation": "r", "object": "b", "backward_question": "{subject} {object}"}',
     "must contain {object} exactly once and not {subject}"),
    ('{"subject": "a", "relation": "r", "object": "b", "color": "red"}', "unknown key"),
])
def test_bad_templates_name_the_line(tmp_path, bad, message):
    good = json.dumps({"subject": "a", "relation": "r", "object": "b"})
    p = _write(tmp_path, [good, good, bad])
    with pytest.raises(ValueError, match=f"facts.jsonl:3: .*{message}"):
        load_facts(p)


def test_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "bom.jsonl"
    rows = [json.dumps({"subject": f"S{i}", "relation": "r", "object": f"O{i}"}) for i in range(3)]
    p.write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode())
    assert [f.subject for f in load_facts(p)] == ["S0", "S1", "S2"]
