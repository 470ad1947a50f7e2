"""0.2 certificate fixes: activation constants, mode preservation, GroupSort dims, spectral kind, radius."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lipschitz_core import (
    GroupSort,
    LipschitzLinear,
    certified_radius,
    estimate_lipschitz,
    lipschitz_bound,
    lipschitz_mlp,
)

# Every activation lipschitz_bound accepts, with unusual and negative parameters.
ACTIVATIONS = [
    nn.ReLU(),
    nn.ReLU6(),
    nn.Tanh(),
    nn.Sigmoid(),
    nn.Hardsigmoid(),
    nn.Hardtanh(),
    nn.Hardtanh(-0.3, 2.5),
    nn.ELU(),
    nn.ELU(alpha=-2.0),
    nn.ELU(alpha=0.3),
    nn.ELU(alpha=3.0),
    nn.CELU(alpha=0.5),
    nn.CELU(alpha=2.0),
    nn.SELU(),
    nn.LeakyReLU(),
    nn.LeakyReLU(-3.0),
    nn.LeakyReLU(1.7),
    nn.RReLU(-2.5, 0.5).eval(),
    nn.LogSigmoid(),
    nn.Softsign(),
    nn.Tanhshrink(),
    nn.Softshrink(0.7),
    nn.Hardswish(),
    nn.GELU(),
    nn.GELU(approximate="tanh"),
    nn.SiLU(),
    nn.Mish(),
]


def _max_slope(module: nn.Module) -> float:
    """Oracle: max |f'| on a dense float64 grid (autograd) plus finite-difference slopes (catches kinks)."""
    x = torch.linspace(-30.0, 30.0, 120_001, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(module(x).sum(), x)
    with torch.no_grad():
        y = module(x)
        secant = ((y[1:] - y[:-1]) / (x[1:] - x[:-1])).abs().max()
    return max(float(grad.abs().max()), float(secant))


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda m: repr(m))
def test_activation_constant_is_the_max_slope(activation: nn.Module) -> None:
    torch.manual_seed(0)
    layer = LipschitzLinear(1, 1, kind="two", lipschitz_const=1.0, bias=False)
    with torch.no_grad():
        layer.weight_orig.fill_(1.0)
    constant = lipschitz_bound(nn.Sequential(layer, activation), "two") / lipschitz_bound(
        layer, "two"
    )
    slope = _max_slope(activation)
    assert constant >= slope * (
        1 - 1e-9
    )  # a certificate: never below the true slope (float64 secants: 1e-10 noise)
    assert (
        constant <= slope * (1 + 1e-4) + 1e-12
    )  # and tight (closed form, or rounded in the 5th digit)


def test_elu_with_negative_alpha_is_bounded_by_abs_alpha() -> None:
    # the example: ELU(alpha=-2) has slope 2 near 0-, certified as 1 in 0.1
    model = nn.Sequential(
        LipschitzLinear(1, 1, kind="two", bias=False, always_norm=True), nn.ELU(alpha=-2.0)
    )
    assert lipschitz_bound(model, "two") >= 2.0 * (1 - 1e-6)
    x = torch.tensor([[-1e-4], [0.0]])
    w = float(model[0].weight.detach())
    fx = model(x).detach()
    assert abs(float(fx[0] - fx[1])) / (1e-4 * abs(w)) > 1.99


def test_prelu_uses_its_current_slopes() -> None:
    prelu = nn.PReLU(num_parameters=1, init=-4.0).double()
    assert lipschitz_bound(nn.Sequential(prelu), "two") == pytest.approx(4.0)
    assert _max_slope(prelu) == pytest.approx(4.0, rel=1e-6)


@pytest.mark.parametrize(
    "activation",
    [
        nn.CELU(alpha=-1.0),
        nn.Softplus(),
        nn.Softplus(beta=-2.0),
        nn.Hardshrink(),
        nn.Threshold(0.1, 20.0),
    ],
)
def test_activations_without_a_finite_constant_are_refused(activation: nn.Module) -> None:
    with pytest.raises(TypeError):
        lipschitz_bound(nn.Sequential(activation), "two")


def test_celu_negative_alpha_slope_really_is_unbounded() -> None:
    x = torch.tensor([-10.0, -20.0, -40.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(nn.CELU(alpha=-1.0)(x).sum(), x)
    assert float(grad.abs().max()) > 1e16


def test_bound_keeps_every_submodule_mode() -> None:
    model = nn.Sequential(
        LipschitzLinear(3, 4, kind="two"),
        nn.ReLU(),
        nn.Sequential(LipschitzLinear(4, 4, kind="two")),
        LipschitzLinear(4, 1, kind="two"),
    )
    model.train()
    model[2].eval()  # e.g. a frozen block inside a training model
    modes = [m.training for m in model.modules()]
    lipschitz_bound(model, "two")
    estimate_lipschitz(model, torch.randn(4, 3), "two", steps=2)
    assert [m.training for m in model.modules()] == modes


def test_groupsort_over_a_non_feature_dim_is_refused() -> None:
    model = nn.Sequential(
        LipschitzLinear(4, 4, kind="two"), GroupSort(2, dim=0), LipschitzLinear(4, 1, kind="two")
    )
    x = torch.randn(4, 4)
    # it mixes samples: the output of one row depends on the other rows
    y_all = model(x)
    y_one = model(torch.cat([x[:1], x[1:] + 10.0]))
    assert not torch.allclose(y_all[0], y_one[0])
    with pytest.raises(TypeError, match="GroupSort"):
        lipschitz_bound(model, "two")


def _spectral_net() -> nn.Sequential:
    return nn.Sequential(
        LipschitzLinear(32, 128, kind="two"),
        GroupSort(2),
        LipschitzLinear(128, 128, kind="two"),
        GroupSort(2),
        LipschitzLinear(128, 1, kind="two"),
    )


def test_spectral_training_never_exceeds_the_constant_and_train_equals_eval() -> None:
    # 0.1 trained with one power-iteration step (an underestimate): input gradients reached 1.2
    torch.manual_seed(0)
    model = _spectral_net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    x = torch.randn(256, 32)
    y = (x[:, :1] * 5).sin() * 10  # steep target: pushes every layer against its constraint
    worst = 0.0
    for _ in range(30):
        model.train()
        xg = x.double().requires_grad_(True)
        (grad,) = torch.autograd.grad(model.double()(xg).sum(), xg)
        worst = max(worst, float(grad.norm(dim=1).max()))
        assert lipschitz_bound(model, "two") <= 1.0  # the weights the step trains with, exactly
        model.float()
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert worst <= 1.0 + 1e-9  # float64 gradients of a function whose layers are all <= 1
    assert worst > 0.5  # the constraint is active (not a vacuous test)
    out_train = model.train()(x)
    out_eval = model.eval()(x)
    torch.testing.assert_close(out_train, out_eval, rtol=0, atol=0)


def test_eval_caches_the_normalized_weight_until_the_parameter_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    layer = LipschitzLinear(64, 64, kind="two").eval()
    calls = []
    original = layer.constraint.forward
    monkeypatch.setattr(layer.constraint, "forward", lambda w: calls.append(1) or original(w))
    x = torch.randn(8, 64)
    with torch.no_grad():
        first = layer(x)
        for _ in range(5):
            torch.testing.assert_close(layer(x), first, rtol=0, atol=0)
    assert len(calls) == 1
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.train()
    layer(x).sum().backward()  # graph-tracking forward: computed fresh
    opt.step()  # bumps weight_orig's version
    layer.eval()
    with torch.no_grad():
        after = layer(x)
    assert len(calls) == 3 and not torch.allclose(after, first)


def test_weight_is_the_effective_weight_and_weight_orig_the_raw_parameter() -> None:
    torch.manual_seed(0)
    layer = LipschitzLinear(8, 4, kind="inf", lipschitz_const=0.5)
    assert isinstance(layer, nn.Linear)
    assert [name for name, _ in layer.named_parameters()] == ["weight_orig", "bias"]
    assert set(layer.state_dict()) == {"weight_orig", "bias"}
    raw = layer.weight_orig.detach()
    assert float(raw.abs().sum(1).max()) > 0.5  # the constraint binds
    eff = layer.weight
    assert float(eff.detach().double().abs().sum(1).max()) <= 0.5
    torch.testing.assert_close(
        eff.detach(),
        raw / (raw.double().abs().sum(1).max() / (0.5 * (1 - 1e-6))).float(),
        rtol=1e-5,
        atol=0,
    )
    x = torch.randn(3, 8)
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, eff, layer.bias))
    eff.sum().backward()  # the effective weight carries the gradient to the raw parameter
    assert layer.weight_orig.grad is not None


def test_old_checkpoints_and_in_place_writes_still_work() -> None:
    torch.manual_seed(0)
    layer = LipschitzLinear(6, 3, kind="two-inf")
    w = torch.randn(3, 6)
    w = w / w.norm(dim=1, keepdim=True) * 0.9  # inside the ball
    layer.load_state_dict({"weight": w, "bias": torch.zeros(3)})  # a 0.1 state_dict
    torch.testing.assert_close(layer.weight_orig.detach(), w)
    w2 = w.flip(0)
    with torch.no_grad():
        layer.weight.copy_(w2)  # e.g. emd-lipschitz copies normalized weights in like this
    torch.testing.assert_close(layer(torch.eye(6)).detach(), w2.T)
    layer.weight = w  # assignment writes the raw parameter
    torch.testing.assert_close(layer.weight_orig.detach(), w)
    for move in (lambda m: m.double(), lambda m: m.cpu(), lambda m: m.state_dict()["weight_orig"], lambda m: __import__("copy").deepcopy(m)):
        # emd-lipschitz's pattern: copy into .weight, then move / save / copy the layer
        with torch.no_grad():
            layer.weight.copy_(w2.to(layer.weight_orig.dtype))
        moved = move(layer)
        raw = moved if isinstance(moved, torch.Tensor) else moved.weight_orig
        torch.testing.assert_close(raw.detach().float(), w2)
        with torch.no_grad():
            layer.weight_orig.copy_(w.to(layer.weight_orig.dtype))


def test_lipschitz_mlp_exposes_vectorwise_and_per_layer_kinds() -> None:
    model = lipschitz_mlp(
        np.int64(3),
        np.int64(8),
        1,
        3,
        lipschitz_const=np.float32(2.0),
        norm="two-inf",
        vectorwise=True,
        kinds=["two-inf", "inf", "inf"],
    )
    layers = [m for m in model if isinstance(m, LipschitzLinear)]
    assert [m.kind for m in layers] == ["two-inf", "inf", "inf"] and all(
        m.vectorwise for m in layers
    )
    assert lipschitz_bound(model, "two-inf") <= 2.0
    with pytest.raises(ValueError, match="one kind per layer"):
        lipschitz_mlp(3, 8, 1, 3, lipschitz_const=1.0, norm="two", kinds=["two"])


def _pgd(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    radius: torch.Tensor,
    norm: str,
    steps: int = 60,
) -> torch.Tensor:
    """Projected gradient attack on the margin, inside per-sample balls of ``radius``."""
    delta = torch.zeros_like(x, requires_grad=True)
    step = (radius / 8.0)[:, None]
    for _ in range(steps):
        logits = model(x + delta)
        true = logits.gather(1, labels[:, None])
        other = logits.masked_fill(
            nn.functional.one_hot(labels, logits.shape[1]).bool(), -math.inf
        ).amax(1, keepdim=True)
        (grad,) = torch.autograd.grad((other - true).sum(), delta)
        with torch.no_grad():
            if norm == "two":
                delta += step * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                scale = (radius[:, None] / delta.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(
                    max=1.0
                )
                delta *= scale
            else:  # inf
                delta += step * grad.sign()
                delta.copy_(torch.maximum(torch.minimum(delta, radius[:, None]), -radius[:, None]))
    return (x + delta).detach()


@pytest.mark.parametrize("norm", ["two", "inf"])
def test_attacks_inside_the_certified_radius_never_flip_a_prediction(norm: str) -> None:
    torch.manual_seed(0)
    centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = torch.arange(3).repeat_interleave(100)
    x = centers[labels] + 0.6 * torch.randn(300, 2)
    model = lipschitz_mlp(2, 32, 3, 3, lipschitz_const=4.0, norm=norm).double()
    x = x.double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    radius = certified_radius(model, x, norm)
    assert radius.shape == (300,) and bool((radius > 0).all())
    adv = _pgd(model, x, pred, radius * (1 - 1e-6), norm)
    with torch.no_grad():
        assert torch.equal(model(adv).argmax(1), pred)
    # positive control: the same attack with 3x the radius flips some predictions
    adv_far = _pgd(model, x, pred, radius * 3.0, norm)
    with torch.no_grad():
        assert int((model(adv_far).argmax(1) != pred).sum()) > 0


def test_certified_radius_binary_and_bad_input() -> None:
    model = nn.Sequential(LipschitzLinear(2, 1, kind="two", bias=False))
    with torch.no_grad():
        model[0].weight_orig.copy_(
            torch.tensor([[0.6, 0.8]])
        )  # unit norm: distance to the boundary
    x = torch.tensor([[3.0, 4.0], [-0.6, -0.8]])
    torch.testing.assert_close(
        certified_radius(model, x, "two"),
        torch.tensor([5.0, 1.0], dtype=torch.float64),
        rtol=1e-6,
        atol=0,
    )
    with pytest.raises(ValueError, match="NaN"):
        certified_radius(model, torch.tensor([[math.nan, 0.0]]))


def test_direct_norm_layers_cache_their_eval_weight_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from lipschitz_core import direct_norm, find_constraint

    torch.manual_seed(0)
    layer = direct_norm(nn.Linear(32, 32), kind="two").eval()
    constraint = find_constraint(layer)
    calls = []
    original = constraint._normalize
    monkeypatch.setattr(constraint, "_normalize", lambda w: calls.append(1) or original(w))
    x = torch.randn(4, 32)
    with torch.no_grad():
        first = layer(x)
        for _ in range(4):
            torch.testing.assert_close(layer(x), first, rtol=0, atol=0)
    assert len(calls) == 1
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(2.0)  # a changed parameter is normalized afresh
        layer(x)
    assert len(calls) == 2
    with torch.no_grad():
        layer.weight.mul_(0.0)  # an edit of the returned (effective) tensor must not poison the cache
        assert float(layer(x).abs().sum()) > 0
    assert len(calls) == 3
    layer(x).sum().backward()  # with a graph to build: no cache, and gradients flow
    assert layer.parametrizations.weight.original.grad is not None and len(calls) == 4
