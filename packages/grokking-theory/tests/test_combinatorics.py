import copy
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grokking_theory import (
    equation_matrix,
    ideal_accuracy,
    predicted_accuracy,
    rqi,
    rqi_quadruples,
    sample_pairs,
    train_num_from_fraction,
)
from grokking_theory._combinatorics import nullity


def reference_ideal(p, train_id):
    """Direct port of the official Task-1 loop (sets of pairs, eigen-nullity per candidate)."""
    D0 = [(i, j) for i in range(p) for j in range(i, p)]
    n = len(D0)
    P0 = []
    for i in range(n):
        for j in range(i + 1, n):
            if sum(D0[i]) == sum(D0[j]):
                P0.append({D0[i], D0[j]})
    A = []
    for s in P0:
        (i, j), (m, k) = list(s)
        x = np.zeros(p)
        x[i] += 1
        x[j] += 1
        x[m] -= 1
        x[k] -= 1
        A.append(x)
    A = np.array(A)
    train = set(int(t) for t in train_id)
    P0D = [k for k in range(len(P0)) if all(D0.index(pair) in train for pair in P0[k])]
    null = np.sum(np.linalg.eigh(A[P0D].T @ A[P0D])[0] < 1e-8) if P0D else p
    PD = list(P0D)
    for k in set(range(len(P0))) - set(P0D):
        aug = copy.deepcopy(P0D) + [k]
        if np.sum(np.linalg.eigh(A[aug].T @ A[aug])[0] < 1e-8) == null:
            PD.append(k)
    PDs = [P0[k] for k in PD]
    test = [k for k in range(n) if k not in train]
    dbar = len(train) + sum(
        any({D0[t], D0[r]} in PDs for r in train) for t in test
    )
    return int(null), (dbar - len(train)) / len(test)


def test_counts_match_the_paper():
    assert len(sample_pairs(10)) == 55
    table = {6: 13, 10: 70, 15: 252, 20: 615, 30: 2135}
    for p, count in table.items():
        assert len(equation_matrix(p)) == count
    assert len(rqi_quadruples(10)) == 70
    assert len(rqi_quadruples(10, start=1)) == 50


def test_equation_rows_annihilate_linear_embeddings_and_nullity_is_two():
    for p in (3, 6, 10, 17):
        A = equation_matrix(p)
        assert (A.sum(1) == 0).all()
        assert (A @ np.arange(p) == 0).all()
        if p > 3:
            assert nullity(A, p) == 2


@pytest.mark.parametrize("seed", range(6))
def test_ideal_accuracy_matches_official_algorithm(seed):
    rng = np.random.RandomState(seed)
    n = [12, 18, 22, 25, 30, 45][seed]
    train = rng.choice(55, n, replace=False)
    null, ideal_test = reference_ideal(10, train)
    ours = ideal_accuracy(10, train)
    assert ours["nullity"] == null
    assert ours["ideal_test_acc"] == pytest.approx(ideal_test)


def test_predicted_accuracy_of_linear_embedding_is_ideal_with_full_structure():
    rng = np.random.RandomState(3)
    train = rng.choice(55, 40, replace=False)
    lin = np.arange(10.0)
    pred = predicted_accuracy(10, train, lin)
    # a linear embedding realizes every parallelogram, so a test pair is predicted whenever some
    # training pair has the same sum
    pairs = sample_pairs(10)
    sums_train = set(pairs[train].sum(1))
    test = np.setdiff1d(np.arange(55), train)
    expect = np.mean([pairs[t].sum() in sums_train for t in test])
    assert pred["pred_test_acc"] == pytest.approx(expect)
    scrambled = predicted_accuracy(10, train, np.array([0, 7, 1, 9, 3, 8, 2, 6, 4, 5.0]))
    assert scrambled["pred_test_acc"] < pred["pred_test_acc"]


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.01, 100),
    shift=st.floats(-50, 50),
    noise=st.floats(0, 1e-4),
)
def test_rqi_affine_invariant_and_one_on_lines(scale, shift, noise):
    rng = np.random.default_rng(0)
    e = np.arange(10.0)[:, None] * scale + shift + noise * scale * rng.standard_normal((10, 1))
    assert rqi(e) == 1.0


def test_rqi_of_random_embedding_is_low_and_matches_bruteforce():
    rng = np.random.default_rng(1)
    e = rng.standard_normal((10, 3))
    z = (e - e.mean(0)) / e.std(0, ddof=1)
    count = total = 0
    for i, j, m, n in itertools.product(range(10), repeat=4):
        if i < j <= m < n and i + n == j + m:
            total += 1
            count += ((z[i] + z[n] - z[j] - z[m]) ** 2).mean() < 0.01
    assert total == 70
    assert rqi(e) == pytest.approx(count / 70)
    assert rqi(e) < 0.5


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="p must be"):
        sample_pairs(2)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        train_num_from_fraction(10, 0.0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        train_num_from_fraction(10, 1.2)
    with pytest.raises(ValueError, match="empty"):
        ideal_accuracy(10, np.array([], dtype=int))
    with pytest.raises(ValueError, match="rows"):
        rqi(np.arange(5.0), 10)
