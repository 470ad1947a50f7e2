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
    assert len(task.test) == 2 * 30 and len(task.train_queries) == 2 * 20
    train_prompts = {q.prompt for q in task.train_queries}
    for q in task.test:
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
    fwd = [q for q in task.test + task.train_queries if q.direction == "forward"]
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
    queries = task.test + task.train_queries
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
