"""WikiReversal from a small hand-written GenWiki-format sample (the real data is not bundled)."""

import json

import pytest

from factorization_curse._wiki import (
    load_genwiki,
    questions,
    relation_words,
    reversal_triples,
    wikireversal_task,
)

SAMPLE = [
    {"text": "<ENT_0> was born in <ENT_1> and studied in <ENT_2> .",
     "entities": ["Ada Lovelace", "London", "Cambridge"],
     "graph": [["Ada Lovelace", "birthPlace", "London"], ["Ada Lovelace", "almaMater", "Cambridge"]]},
    {"text": "Born in <ENT_1> , <ENT_0> became a physicist .",  # object before subject: dropped
     "entities": ["Marie Curie", "Warsaw"], "graph": [["Marie Curie", "birthPlace", "Warsaw"]]},
    {"text": "<ENT_0> , a mathematician from <ENT_1> , died in <ENT_2> .",
     "entities": ["Kurt Godel", "Brno", "Princeton"],
     "graph": [["Kurt Godel", "birthPlace", "Brno"], ["Kurt Godel", "deathPlace", "Princeton"],
               ["Kurt Godel", "spouse", "Adele Nimbursky"]]},  # object not in the passage: dropped
    {"text": "<ENT_0> was born in <ENT_1> .", "entities": ["Alan Turing", "Maida Vale"],
     "graph": [["Alan Turing", "birthPlace", "Maida Vale"]]},
    {"text": "<ENT_0> was born in <ENT_1> .", "entities": ["Emmy Noether", "Erlangen"],
     "graph": [["Emmy Noether", "birthPlace", "Erlangen"]]},
    {"text": "<ENT_0> was born in <ENT_1> .", "entities": ["Max Noether", "Erlangen"],  # (r, o) not unique
     "graph": [["Max Noether", "birthPlace", "Erlangen"]]},
    {"text": "<ENT_0> was born in <ENT_1> .", "entities": ["John von Neumann", "Budapest"],
     "graph": [["John von Neumann", "birthPlace", "Budapest"]]},
    {"text": "<ENT_0> was born in <ENT_1> .", "entities": ["Paul Erdos", "Pest"],
     "graph": [["Paul Erdos", "birthPlace", "Pest"]]},
]


@pytest.fixture
def genwiki(tmp_path):
    d = tmp_path / "genwiki" / "train" / "full"
    d.mkdir(parents=True)
    (d / "part_0.json").write_text(json.dumps(SAMPLE[:4]))
    (d / "part_1.json").write_text(json.dumps(SAMPLE[4:]))
    return tmp_path / "genwiki"


def test_loader_fills_entities_and_marks_them(genwiki):
    ps = load_genwiki(genwiki)
    assert len(ps) == len(SAMPLE)
    assert ps[0].text == "Ada Lovelace was born in London and studied in Cambridge ."
    assert [ws for ws, ent in ps[0].segments if ent] == [("Ada", "Lovelace"), ("London",), ("Cambridge",)]
    assert ps[2].triples[1] == ("Kurt Godel", "deathPlace", "Princeton")


def test_algorithm_1_filters(genwiki):
    ps = load_genwiki(genwiki)
    kept = {(s, r, o) for _, s, r, o in reversal_triples(ps, min_relation_count=1)}
    assert ("Ada Lovelace", "birthPlace", "London") in kept
    assert ("Kurt Godel", "deathPlace", "Princeton") in kept
    assert not any(s == "Marie Curie" for s, _, _ in kept)  # object precedes subject
    assert not any(o == "Adele Nimbursky" for _, _, o in kept)  # not in the passage
    assert not any(o == "Erlangen" for _, _, o in kept)  # two subjects born in Erlangen
    # min_relation_count drops rare relations (almaMater, deathPlace occur once)
    kept3 = {r for _, _, r, _ in reversal_triples(ps, min_relation_count=3)}
    assert kept3 == {"birthPlace"}


def test_questions_read_well_and_task_splits(genwiki):
    f, b = questions("Ada Lovelace", "birthPlace", "London")
    assert " ".join(f.prompt) == "where was Ada Lovelace born ?" and f.answer == ("London",)
    assert " ".join(b.prompt) == "who was born in London ?" and b.answer == ("Ada", "Lovelace")
    assert relation_words("almaMater") == "alma mater"
    task = wikireversal_task(load_genwiki(genwiki), min_relation_count=1, train_query_fraction=0.5,
                             validation_fraction=0.2)
    assert task.test and task.validation and task.train_queries
    assert not {q.prompt for q in task.test} & {q.prompt for q in task.validation}
    texts = {" ".join(task.words(s)) for s in task.train}
    assert "Ada Lovelace was born in London and studied in Cambridge ." in texts  # passages are trained


def test_bad_records_name_the_file_and_record(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps([SAMPLE[0], {"text": "<ENT_3> x", "entities": ["a"], "graph": []}]))
    with pytest.raises(ValueError, match=r"bad.json\[1\]: <ENT_3> has no entity"):
        load_genwiki(p)
    with pytest.raises(FileNotFoundError, match="not bundled"):
        load_genwiki(tmp_path / "missing")


def test_wikireversal_runs_from_the_cli(genwiki, tmp_path):
    from factorization_curse._cli import main

    out = tmp_path / "wiki"
    assert main(["run", "--task", "wikireversal", "--data", str(genwiki), "--quick", "--device", "cpu", "--quiet",
                 "--set", "steps=5", "--set", "d_model=32", "--set", "n_layers=1", "--set", "train_query_fraction=0.5",
                 "--set", "validation_fraction=0.2", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "wikireversal" and m["n_test_forward"] >= 1
