"""The normalized weight's operator norm, computed independently in float64 with NumPy."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from lipschitz_core import (
    KINDS,
    LipschitzLinear,
    OperatorNormConstraint,
    direct_norm,
    operator_norm,
)


def numpy_operator_norm(w: np.ndarray, kind: str) -> float:
    """Reference operator norms, written from the definitions, not from the package."""
    if kind == "one":
        return float(np.linalg.norm(w, ord=1))  # max column abs sum
    if kind == "inf":
        return float(np.linalg.norm(w, ord=np.inf))  # max row abs sum
    if kind == "one-inf":
        return float(np.abs(w).max())
    if kind == "two-inf":
        return float(np.sqrt((w**2).sum(axis=1)).max())
    if kind == "two":
        return float(np.linalg.svd(w, compute_uv=False)[0])
    raise AssertionError(kind)


shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))
scales = st.floats(1e-3, 1e3)
constants = st.floats(0.05, 20.0)


@given(
    shape=shapes, scale=scales, c=constants, kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16)
)
def test_normalized_norm_at_most_c(shape, scale, c, kind, seed):
    g = torch.Generator().manual_seed(seed)
    layer = LipschitzLinear(shape[1], shape[0], kind=kind, lipschitz_const=c).double().eval()
    with torch.no_grad():
        layer.weight.copy_(scale * torch.randn(shape, generator=g, dtype=torch.float64))
    w = layer.normalized_weight().detach().numpy()
    raw = layer.weight_orig.detach().numpy()
    assert numpy_operator_norm(w, kind) <= c
    if numpy_operator_norm(raw, kind) <= c:
        np.testing.assert_allclose(w, raw)  # only shrinks: a weight inside the ball is unchanged


@given(
    shape=shapes, scale=scales, c=constants, kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16)
)
def test_always_norm_equals_c(shape, scale, c, kind, seed):
    g = torch.Generator().manual_seed(seed)
    layer = (
        LipschitzLinear(shape[1], shape[0], kind=kind, lipschitz_const=c, always_norm=True)
        .double()
        .eval()
    )
    with torch.no_grad():
        layer.weight.copy_(scale * torch.randn(shape, generator=g, dtype=torch.float64))
    w = layer.normalized_weight().detach().numpy()
    assert numpy_operator_norm(w, kind) <= c
    # the Gram-iteration bound (8 steps) sits a hair above sigma_1; the other norms are exact
    assert numpy_operator_norm(w, kind) == pytest.approx(c, rel=1e-6 if kind == "two" else 1e-9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vectorwise", [False, True])
@pytest.mark.parametrize("shape", [(5, 3), (64, 64), (300, 500)])
def test_float32_normalized_norm_is_at_most_c_exactly(kind, vectorwise, shape):
    # Rounding the rescaled float32 weight could push its norm an ulp over c; the certificate
    # compares in float64 with no tolerance, so the normalization must leave room for it.
    if vectorwise and kind == "two":
        pytest.skip("vectorwise is not defined for the spectral norm")
    rng = np.random.default_rng(hash((kind, vectorwise, shape)) % 2**32)
    for trial in range(8 if shape[0] * shape[1] < 10**5 else 2):
        c = float(rng.choice([1.0, 0.3, 1.3 ** (1 / 3), 7.0]))
        layer = LipschitzLinear(
            shape[1],
            shape[0],
            kind=kind,
            lipschitz_const=c,
            always_norm=True,
            vectorwise=vectorwise,
        )
        with torch.no_grad():
            layer.weight_orig.copy_(
                torch.as_tensor(rng.normal(size=shape) * 10.0 ** rng.uniform(-2, 2))
            )
        for mode in (layer.train(), layer.eval()):
            w = mode.normalized_weight().detach().double().numpy()
            assert numpy_operator_norm(w, kind) <= c, (trial, c)


@given(
    shape=shapes,
    c=constants,
    kind=st.sampled_from(["one", "inf", "one-inf", "two-inf"]),
    seed=st.integers(0, 2**16),
)
def test_vectorwise_bounds_operator_norm(shape, c, kind, seed):
    g = torch.Generator().manual_seed(seed)
    layer = LipschitzLinear(
        shape[1], shape[0], kind=kind, lipschitz_const=c, vectorwise=True, always_norm=True
    ).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(shape, generator=g, dtype=torch.float64))
    w = layer.normalized_weight().detach().numpy()
    assert numpy_operator_norm(w, kind) == pytest.approx(c, rel=1e-9)


def test_spectral_kind_is_the_same_function_in_training_and_eval():
    torch.manual_seed(0)
    layer = LipschitzLinear(30, 20, kind="two", lipschitz_const=1.0).double()
    with torch.no_grad():
        layer.weight_orig.mul_(10)
    x = torch.randn(5, 30, dtype=torch.float64)
    train_out = layer.train()(x)
    eval_out = layer.eval()(x)
    torch.testing.assert_close(train_out, eval_out, rtol=0, atol=0)
    sigma = numpy_operator_norm(layer.normalized_weight().detach().numpy(), "two")
    assert sigma <= 1.0
    assert sigma >= 0.99  # the Gram bound after 8 steps is tight on a random 20x30 matrix


@pytest.mark.parametrize("kind", KINDS)
def test_operator_norm_matches_definition_by_search(kind):
    # ||W||_{p->q} = max ||Wx||_q / ||x||_p; a search over many x must never exceed it, and gets close.
    p_in, p_out = {
        "one": (1, 1),
        "inf": (np.inf, np.inf),
        "one-inf": (1, np.inf),
        "two-inf": (2, np.inf),
        "two": (2, 2),
    }[kind]
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    xs = rng.normal(size=(20000, 3))
    xs = np.concatenate([xs, np.eye(3), -np.eye(3), np.sign(xs[:100])])
    ratios = np.linalg.norm(xs @ w.T, ord=p_out, axis=1) / np.linalg.norm(xs, ord=p_in, axis=1)
    exact = float(operator_norm(torch.tensor(w), kind))
    assert ratios.max() <= exact * (1 + 1e-12)
    assert ratios.max() >= 0.97 * exact


def test_direct_norm_matches_layer():
    torch.manual_seed(1)
    for kind in KINDS:
        plain = nn.Linear(6, 5)
        layer = LipschitzLinear(6, 5, kind=kind, lipschitz_const=0.7).eval()
        with torch.no_grad():
            layer.weight.copy_(plain.weight)
            layer.bias.copy_(plain.bias)
        direct_norm(plain, kind=kind, max_norm=0.7).eval()
        x = torch.randn(8, 6)
        torch.testing.assert_close(plain(x), layer(x))


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "1", True])
def test_bad_constant_rejected(bad):
    with pytest.raises(ValueError, match="lipschitz_const"):
        LipschitzLinear(2, 2, kind="inf", lipschitz_const=bad)


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match="'one', 'inf', 'one-inf', 'two-inf', 'two'"):
        LipschitzLinear(2, 2, kind="spectral")
    with pytest.raises(ValueError, match="valid kinds"):
        direct_norm(nn.Linear(2, 2), kind="l2")


def test_kind_is_required():
    with pytest.raises(TypeError):
        LipschitzLinear(2, 2)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("poison", [math.nan, math.inf])
def test_non_finite_weight_raises(kind, poison):
    layer = LipschitzLinear(3, 3, kind=kind).eval()
    with torch.no_grad():
        layer.weight[0, 0] = poison
    with pytest.raises(FloatingPointError, match="non-finite weight"):
        layer(torch.ones(1, 3))


def test_vectorwise_two_rejected():
    with pytest.raises(ValueError, match="vectorwise"):
        OperatorNormConstraint("two", 1.0, vectorwise=True, shape=(2, 2))


def test_all_zero_weight_stays_finite_with_always_norm():
    layer = LipschitzLinear(3, 2, kind="inf", always_norm=True)
    with torch.no_grad():
        layer.weight.zero_()
    assert torch.isfinite(layer(torch.ones(1, 3))).all()


@pytest.mark.parametrize("n_iterations", [1, 2, 4, 8, 12])
def test_gram_bound_is_an_upper_bound_and_converges(n_iterations):
    from lipschitz_core import gram_spectral_bound

    rng = np.random.default_rng(n_iterations)
    for shape in ((30, 20), (20, 30), (64, 64), (1, 7)):
        w = rng.normal(size=shape)
        exact = np.linalg.svd(w, compute_uv=False)[0]
        bound = float(gram_spectral_bound(torch.tensor(w), n_iterations))
        assert bound >= exact * (1 - 1e-14)
        rank = min(shape)
        assert bound <= exact * rank ** (2.0 ** -(n_iterations + 1)) * (1 + 1e-12)


def test_bad_gram_iteration_count():
    with pytest.raises(ValueError, match="n_gram_iterations"):
        OperatorNormConstraint("two", 1.0, shape=(2, 2), n_gram_iterations=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("always_norm", [False, True])
def test_normalize_weight_batched_equals_per_matrix(kind, always_norm):
    from lipschitz_core import normalize_weight

    torch.manual_seed(0)
    batch = torch.randn(4, 5, 3, dtype=torch.float64) * torch.tensor(
        [0.05, 1.0, 3.0, 10.0], dtype=torch.float64
    ).view(4, 1, 1)
    out = normalize_weight(batch, kind, 0.7, always_norm=always_norm)
    for b in range(4):
        layer = (
            LipschitzLinear(3, 5, kind=kind, lipschitz_const=0.7, always_norm=always_norm)
            .double()
            .eval()
        )
        with torch.no_grad():
            layer.weight.copy_(batch[b])
        torch.testing.assert_close(out[b], layer.normalized_weight())
        norm = numpy_operator_norm(out[b].numpy(), kind)
        assert norm <= 0.7
        if always_norm:
            assert norm == pytest.approx(0.7, rel=1e-9)


def test_normalize_weight_rejects_bad_input():
    from lipschitz_core import normalize_weight

    with pytest.raises(ValueError, match="shape"):
        normalize_weight(torch.ones(3), "inf")
    bad = torch.ones(2, 3, 3)
    bad[1, 0, 0] = math.nan
    with pytest.raises(FloatingPointError, match="non-finite"):
        normalize_weight(bad, "inf")
