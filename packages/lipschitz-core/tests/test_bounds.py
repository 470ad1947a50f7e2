import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from lipschitz_core import (
    KINDS,
    GroupSort,
    LipschitzLinear,
    direct_norm,
    estimate_lipschitz,
    lipschitz_bound,
    lipschitz_mlp,
)

P = {
    "one": (1, 1),
    "inf": (np.inf, np.inf),
    "one-inf": (1, np.inf),
    "two-inf": (2, np.inf),
    "two": (2, 2),
}


def empirical_pair_ratio(model: nn.Module, norm: str, n: int = 4000, seed: int = 0) -> float:
    """max ||f(x)-f(y)||_q / ||x-y||_p over random close pairs: a brute-force lower bound."""
    g = torch.Generator().manual_seed(seed)
    in_features = next(
        m for m in model.modules() if isinstance(m, (nn.Linear, LipschitzLinear))
    ).in_features
    x = torch.randn(n, in_features, generator=g, dtype=torch.float64)
    y = x + 1e-3 * torch.randn(n, in_features, generator=g, dtype=torch.float64)
    with torch.no_grad():
        num = torch.linalg.vector_norm(model(x) - model(y), ord=P[norm][1], dim=1)
    den = torch.linalg.vector_norm(x - y, ord=P[norm][0], dim=1)
    return float((num / den).max())


@pytest.mark.parametrize("norm", KINDS)
@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("always_norm", [False, True])
def test_estimate_le_bound_le_requested(norm, depth, always_norm):
    torch.manual_seed(depth)
    c = 2.5
    model = (
        lipschitz_mlp(6, 16, 3, depth, lipschitz_const=c, norm=norm, always_norm=always_norm)
        .double()
        .eval()
    )
    bound = lipschitz_bound(model, norm)
    estimate = estimate_lipschitz(model, torch.randn(32, 6, dtype=torch.float64), norm, steps=20)
    brute = empirical_pair_ratio(model, norm)
    assert 0 < estimate <= bound * (1 + 1e-9)
    assert brute <= bound * (1 + 1e-6)
    assert bound <= c * (1 + 1e-9)
    if always_norm and depth == 1 and norm in ("one-inf", "two-inf", "inf"):
        # one layer, linf output: the estimate searches every output direction and is exact
        assert estimate == pytest.approx(bound, rel=1e-6)


@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
    norm=st.sampled_from(KINDS),
    seed=st.integers(0, 1000),
)
def test_bound_never_violated_for_mixed_kinds(kinds, norm, seed):
    # Arbitrary kind sequences (the bound must pay for norm changes between layers).
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = 4
    for i, kind in enumerate(kinds):
        out = 2 if i == len(kinds) - 1 else width
        layers.append(
            LipschitzLinear(
                width if i else 5, out, kind=kind, lipschitz_const=1.3, always_norm=True
            )
        )
        if i < len(kinds) - 1:
            layers.append(GroupSort(2))
    model = nn.Sequential(*layers).double().eval()
    assert empirical_pair_ratio(model, norm, n=500, seed=seed) <= lipschitz_bound(model, norm) * (
        1 + 1e-6
    )


def test_plain_linear_bound_is_its_operator_norm():
    torch.manual_seed(0)
    layer = nn.Linear(5, 4)
    w = layer.weight.detach().double().numpy()
    assert lipschitz_bound(nn.Sequential(layer), "two") == pytest.approx(
        np.linalg.svd(w, compute_uv=False)[0], rel=1e-9
    )
    assert lipschitz_bound(layer, "inf") == pytest.approx(np.abs(w).sum(1).max(), rel=1e-9)


def test_direct_norm_module_bounded():
    torch.manual_seed(0)
    model = nn.Sequential(
        direct_norm(nn.Linear(5, 8), kind="one-inf", max_norm=0.5),
        nn.ReLU(),
        direct_norm(nn.Linear(8, 1), kind="inf", max_norm=2.0),
    )
    assert lipschitz_bound(model, "one-inf") <= 1.0 + 1e-7


def test_activation_constants_compose():
    torch.manual_seed(0)
    model = nn.Sequential(
        LipschitzLinear(3, 4, kind="two", always_norm=True),
        nn.Sigmoid(),
        LipschitzLinear(4, 1, kind="two", always_norm=True),
    )
    # Gram-iteration bound (>= sigma) and the rounding slack: at most 0.25, within 1e-5 of it
    assert 0.25 * (1 - 1e-5) <= lipschitz_bound(model, "two") <= 0.25


def test_unsupported_layer_is_an_error_not_a_guess():
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3), nn.Linear(3, 1))
    with pytest.raises(TypeError, match="LayerNorm"):
        lipschitz_bound(model, "two")
    with pytest.raises(ValueError, match="valid kinds"):
        lipschitz_bound(model, "l2")


def test_custom_certificate_hook():
    class Scale(nn.Module):
        def forward(self, x):
            return 3 * x

        def lipschitz_certificate(self, p_in):
            return 3.0, p_in

    model = nn.Sequential(LipschitzLinear(2, 2, kind="two", always_norm=True), Scale())
    assert 3.0 * (1 - 1e-5) <= lipschitz_bound(model, "two") <= 3.0


def test_norm_switch_costs_sqrt_dim():
    # An inf->inf layer fed from an l2 input: ||x||_inf <= ||x||_2, free; an l1 output from linf costs dim.
    layer = LipschitzLinear(4, 4, kind="inf", always_norm=True)
    assert 1.0 * (1 - 1e-5) <= lipschitz_bound(layer, "two-inf") <= 1.0  # c minus the rounding slack
    assert 4.0 * (1 - 1e-5) <= lipschitz_bound(layer, "one") <= 4.0


def test_estimate_rejects_bad_input():
    model = lipschitz_mlp(2, 4, 1, 2, lipschitz_const=1.0, norm="two")
    with pytest.raises(ValueError, match="NaN"):
        estimate_lipschitz(model, torch.tensor([[math.nan, 0.0]]), "two")
    with pytest.raises(ValueError, match="shape"):
        estimate_lipschitz(model, torch.zeros(0, 2), "two")


def test_builder_validates():
    with pytest.raises(ValueError, match="divisible"):
        lipschitz_mlp(2, 5, 1, 3, lipschitz_const=1.0, norm="two")
    with pytest.raises(ValueError, match="depth"):
        lipschitz_mlp(2, 4, 1, 0, lipschitz_const=1.0, norm="two")
    kinds = [
        m.kind
        for m in lipschitz_mlp(2, 4, 1, 3, lipschitz_const=1.0, norm="one-inf")
        if isinstance(m, LipschitzLinear)
    ]
    assert kinds == ["one-inf", "inf", "inf"]
