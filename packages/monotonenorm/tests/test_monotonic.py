"""MonotonicWrapper / MonotonicLayer: the guarantee, the refusal, and the empirical checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import lipschitz_core
import monotonenorm as mn


def _exact_g(per_layer: float, depth: int = 3, width: int = 8, n_in: int = 3) -> nn.Sequential:
    """g whose normalized weights sit exactly at their constraint (always_norm)."""
    layers: list[nn.Module] = []
    widths = [n_in] + [width] * (depth - 1) + [1]
    for i in range(depth):
        layers.append(
            mn.LipschitzLinear(
                widths[i],
                widths[i + 1],
                lipschitz_const=per_layer,
                kind="one-inf" if i == 0 else "inf",
                always_norm=True,
            )
        )
        if i < depth - 1:
            layers.append(mn.GroupSort(group_size=2))
    return nn.Sequential(*layers)


def test_refuses_g_whose_bound_exceeds_lambda_and_names_both_numbers() -> None:
    torch.manual_seed(0)
    g = _exact_g(per_layer=1.3, depth=3)
    bound = lipschitz_core.lipschitz_bound(g, "one-inf")
    assert 1.3**3 * (1 - 1e-4) <= bound <= 1.3**3  # c (1 - delta) per layer: delta ~ 1e-5 of rounding room
    with pytest.raises(ValueError) as info:
        mn.MonotonicWrapper(g, [1, 0, -1], lipschitz_const=2.0)
    message = str(info.value)
    assert f"{bound:.7g}" in message and "lipschitz_const=2" in message
    ok = mn.MonotonicWrapper(g, [1, 0, -1], lipschitz_const=1.3**3)  # exactly the product: accepted
    assert ok.check_certificate() == pytest.approx(bound)


def test_refuses_g_that_training_could_push_past_lambda() -> None:
    # Current weights are small (bound < lambda) but the layer constants allow 4 > 3: issue #11.
    torch.manual_seed(1)
    g = nn.Sequential(
        mn.LipschitzLinear(2, 4, lipschitz_const=2.0),
        mn.GroupSort(2),
        mn.LipschitzLinear(4, 1, kind="inf", lipschitz_const=2.0),
    )
    with torch.no_grad():
        g[0].weight.mul_(1e-3)
    assert lipschitz_core.lipschitz_bound(g, "one-inf") < 3.0
    with pytest.raises(
        ValueError, match=r"allow a certified l1->linf bound of 3.999\d*.*lipschitz_const=3"
    ):
        mn.MonotonicWrapper(g, [1, 0], 3.0)


def test_plain_linear_g_is_refused_unless_opted_in() -> None:
    g = nn.Sequential(mn.LipschitzLinear(2, 4, kind="one-inf"), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        g[2].weight.mul_(1e-3)  # its current bound is small: still refused, training could grow it
    with pytest.raises(ValueError, match=r"not norm-constrained \(2 \(Linear\)\)"):
        mn.MonotonicWrapper(g, [1, 1], 1.0)
    wrapped = mn.MonotonicWrapper(g, [1, 1], 1.0, certify_current_weights_only=True)
    report = mn.verify_monotonic(wrapped, torch.randn(50, 2))
    assert report.certified is True and "weights at check time only" in report.certificate


def test_issue_counterexample_decreasing_function_is_not_certified() -> None:
    # g = Linear(1, 1) with weight -1.000009 and lambda = 1: f(x) = -0.000009 x decreases.
    g = nn.Linear(1, 1)
    with torch.no_grad():
        g.weight.fill_(-1.000009)
        g.bias.zero_()
    f_at = lambda x: float(g(torch.tensor([[x]])).detach() + x)  # noqa: E731 (what the wrapper would compute)
    assert f_at(1000.0) < f_at(0.0)  # the oracle: it really decreases
    with pytest.raises(ValueError, match="not norm-constrained"):
        mn.MonotonicWrapper(g, [1], 1.0)
    with pytest.raises(ValueError, match="bound is 1.000009"):
        mn.MonotonicWrapper(g, [1], 1.0, certify_current_weights_only=True)
    ok = mn.MonotonicWrapper(g, [1], 1.000009 * (1 + 1e-6), certify_current_weights_only=True)
    with torch.no_grad():
        ok.lipschitz_const.fill_(
            1.0
        )  # the buffer edited after construction: verify re-checks exactly
    report = mn.verify_monotonic(ok, torch.linspace(0, 1000, 11)[:, None])
    assert report.certified is False and report.n_violations > 0


def test_plain_linear_g_is_checked_on_its_current_weights() -> None:
    g = nn.Linear(2, 1)
    with torch.no_grad():
        g.weight.copy_(torch.tensor([[0.5, -3.0]]))
    with pytest.raises(ValueError, match="bound is 3"):
        mn.MonotonicWrapper(g, [1, 1], 1.0, certify_current_weights_only=True)
    wrapped = mn.MonotonicWrapper(g, [1, 1], 3.0, certify_current_weights_only=True)
    with torch.no_grad():
        g.weight.mul_(2.0)  # e.g. after training an unconstrained g
    with pytest.raises(ValueError, match="bound is 6"):
        wrapped.check_certificate()
    assert mn.verify_monotonic(wrapped, torch.randn(50, 2)).certified is False


@pytest.mark.parametrize(
    ("constraints", "match"),
    [
        (None, "required"),
        ([1, 0], "3 input features"),
        ([1, 2, 0], "only -1, 0 and"),
        ({5: 1}, "out of range"),
        ({0: 0.5}, "signs must be"),
        ("110", "sequence of signs"),
        (2.0, "number"),
    ],
)
def test_constraint_errors_are_clear(constraints: object, match: str) -> None:
    g = mn.LipschitzLinear(3, 1, kind="one-inf")
    with pytest.raises(ValueError, match=match):
        mn.MonotonicWrapper(g, constraints)


def test_constraints_as_mapping_equal_list() -> None:
    g = mn.LipschitzLinear(4, 1, kind="one-inf")
    a = mn.MonotonicWrapper(g, {0: 1, 3: -1})
    b = mn.MonotonicWrapper(g, [1, 0, 0, -1])
    assert torch.equal(a.monotonic_constraints, b.monotonic_constraints)
    x = torch.randn(5, 4)
    torch.testing.assert_close(a(x), b(x))


def test_wrong_input_width_is_an_error() -> None:
    net = mn.monotonic_mlp(3, [1, 0, 0])
    with pytest.raises(ValueError, match="3 features"):
        net(torch.randn(2, 4))


def test_constrained_partials_lie_in_0_2lambda_and_free_in_pm_lambda() -> None:
    torch.manual_seed(2)
    lam = 1.7
    net = mn.monotonic_mlp(3, [1, -1, 0], width=16, lipschitz_const=lam)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(20.0)  # push every layer to its norm limit
    x = torch.randn(10_000, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x).sum(), x)
    bound = net.certified_bound()
    assert bound <= lam * (1 + 1e-5)
    assert grad[:, 0].min() >= -1e-5 and grad[:, 0].max() <= 2 * lam + 1e-5
    assert (-grad[:, 1]).min() >= -1e-5 and (-grad[:, 1]).max() <= 2 * lam + 1e-5
    assert grad[:, 2].abs().max() <= bound * (1 + 1e-5)
    # the certificate is an upper bound of the empirical (adversarially searched) Lipschitz constant of g
    empirical = lipschitz_core.estimate_lipschitz(net.nn, x.detach()[:256], "one-inf", steps=5)
    assert empirical <= bound * (1 + 1e-5)


def test_adversarial_training_cannot_break_monotonicity_but_breaks_an_mlp() -> None:
    """Train both nets to be as *decreasing* as possible in x0; only the MLP obeys."""
    torch.manual_seed(3)
    x = torch.randn(512, 2)
    mono = mn.monotonic_mlp(2, [1, 0], width=16)
    mlp = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    for net in (mono, mlp):
        opt = torch.optim.Adam(net.parameters(), lr=3e-2)
        for _ in range(100):
            loss = ((net(x).squeeze(1) - (-3.0 * x[:, 0])) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    good = mn.verify_monotonic(mono, x)
    bad = mn.verify_monotonic(mlp, x, [1, 0])
    assert good.ok and good.certified is True and good.n_violations == 0
    assert good.n_gradient_checks == 512 and good.n_pair_checks > 1000
    assert not bad.ok and bad.certified is False and bad.pair_violation_fraction > 0.5


@settings(max_examples=15, deadline=None)
@given(
    signs=st.lists(st.sampled_from([-1, 0, 1]), min_size=1, max_size=5),
    depth=st.integers(1, 3),
    lam=st.floats(0.1, 5.0),
    seed=st.integers(0, 10_000),
)
def test_random_monotonic_mlps_are_certified_and_have_no_violations(
    signs: list[int], depth: int, lam: float, seed: int
) -> None:
    torch.manual_seed(seed)
    net = mn.monotonic_mlp(len(signs), signs, width=8, depth=depth, lipschitz_const=lam)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10.0)
    report = mn.verify_monotonic(net, torch.randn(64, len(signs)) * 3, n_pairs=300, seed=seed)
    assert report.certified is True
    assert report.n_violations == 0


def test_per_output_constraints() -> None:
    g = nn.Sequential(
        mn.LipschitzLinear(2, 8, kind="one-inf"),
        mn.GroupSort(4),
        mn.LipschitzLinear(8, 2, kind="inf"),
    )
    constraints = [[1, -1], [0, 1]]
    net = mn.MonotonicWrapper(g, constraints)
    report = mn.verify_monotonic(net, torch.randn(100, 2) * 2)
    assert report.certified is True and report.n_violations == 0
    assert report.n_gradient_checks == 100 * 3  # three constrained (input, output) pairs


def test_stacked_monotonic_layers_are_certified() -> None:
    torch.manual_seed(4)
    net = nn.Sequential(
        mn.MonotonicLayer(3, 8, monotonic_constraints=[1, -1, 0]),
        mn.GroupSort(group_size=2),
        mn.MonotonicLayer(8, 1, monotonic_constraints=[1] * 8),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10.0)
    report = mn.verify_monotonic(net, torch.randn(200, 3) * 2, [1, -1, 0])
    assert report.certified is True and report.n_violations == 0
    # a free hidden unit in the second layer breaks the proof, and the analysis says so
    last = mn.MonotonicLayer(8, 1, monotonic_constraints=[1] * 7 + [0])
    with torch.no_grad():
        last.weight[0, 7] = -0.5  # the free hidden unit enters with a negative weight
    loose = nn.Sequential(net[0], net[1], last)
    assert mn.certify_monotonic(loose, [1, -1, 0])[0] is False


def test_monotonic_layer_partials_in_0_lambda() -> None:
    torch.manual_seed(5)
    layer = mn.MonotonicLayer(4, 3, lipschitz_const=2.0, monotonic_constraints=[1, -1, 0, 1])
    with torch.no_grad():
        layer.weight.mul_(50.0)
    jac = layer.effective_weight()  # [out, in], exact for a linear layer
    assert jac[:, 0].min() >= 0 and jac[:, 0].max() <= 2.0 + 1e-6
    assert (-jac[:, 1]).min() >= 0 and (-jac[:, 1]).max() <= 2.0 + 1e-6
    assert jac[:, 2].abs().max() <= 1.0 + 1e-6
    x = torch.randn(6, 4)
    torch.testing.assert_close(layer(x), x @ jac.T + layer.bias / 2)


@pytest.mark.parametrize(
    ("transform", "low", "high"),
    [
        (nn.ELU(), -1.0, math.inf),
        (nn.ReLU(), 0.0, math.inf),
        (nn.Sigmoid(), 0.0, 1.0),
        (nn.Tanh(), -1.0, 1.0),
    ],
)
def test_monotone_output_transform_after_the_residual(
    transform: nn.Module, low: float, high: float
) -> None:
    torch.manual_seed(6)
    model = nn.Sequential(mn.monotonic_mlp(2, [1, -1]), transform)
    x = torch.randn(500, 2) * 4
    y = model(x)
    assert y.min() >= low and y.max() <= high
    report = mn.verify_monotonic(model, x, [1, -1])
    assert report.certified is True and report.n_violations == 0


def test_non_monotone_transform_is_not_certified() -> None:
    model = nn.Sequential(mn.monotonic_mlp(2, [1, 0]), nn.SiLU())
    certified, detail, _, _ = mn.certify_monotonic(model, [1, 0])
    assert certified is None and "SiLU" in detail
    # a transform *before* the residual is inside g: fine, if it is bounded
    g = nn.Sequential(
        mn.LipschitzLinear(2, 4, kind="one-inf"), nn.ELU(), mn.LipschitzLinear(4, 1, kind="inf")
    )
    assert mn.verify_monotonic(mn.MonotonicWrapper(g, [1, 0]), torch.randn(50, 2)).certified is True


def test_torch_softplus_is_refused_it_jumps_down_at_its_threshold() -> None:
    # torch's Softplus returns x once beta * x > threshold: just above 20 it is *smaller* than
    # just below (log1p(exp(20)) = 20 + 2.06e-9), so it is neither Lipschitz nor monotone.
    sp = nn.Softplus()
    below, above = (
        sp(torch.tensor([20.0 - 1e-10], dtype=torch.float64)),
        sp(torch.tensor([20.0 + 1e-10], dtype=torch.float64)),
    )
    assert float(above) < float(below)
    g = nn.Sequential(
        mn.LipschitzLinear(2, 4, kind="one-inf"),
        nn.Softplus(),
        mn.LipschitzLinear(4, 1, kind="inf"),
    )
    with pytest.raises(ValueError, match="Softplus"):
        mn.MonotonicWrapper(g, [1, 0])
    certified, detail, _, _ = mn.certify_monotonic(
        nn.Sequential(mn.monotonic_mlp(2, [1, 0]), nn.Softplus()), [1, 0]
    )
    assert certified is None and "Softplus" in detail


def test_verify_monotonic_on_plain_functions() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    good = mn.verify_monotonic(lambda a: a[:, 0] - np.exp(a[:, 1]), X, [1, -1])
    assert (
        good.ok
        and good.certified is None
        and good.n_violations == 0
        and good.n_gradient_checks == 0
    )
    bad = mn.verify_monotonic(lambda a: a[:, 0] - a[:, 1] ** 2, X, {1: -1})
    assert not bad.ok and 0.3 < bad.pair_violation_fraction < 0.7  # violated where x1 < 0
    with pytest.raises(ValueError, match="NaN"):
        mn.verify_monotonic(lambda a: a[:, 0], np.array([[np.nan, 1.0]]), [1, 0])
