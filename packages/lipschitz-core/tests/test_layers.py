import pytest
import torch
from torch import nn

from lipschitz_core import KINDS, GroupSort, LipschitzLinear, direct_norm


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("always_norm", [False, True])
def test_gradcheck_through_normalization(kind, always_norm):
    torch.manual_seed(0)
    layer = LipschitzLinear(4, 3, kind=kind, lipschitz_const=0.8, always_norm=always_norm).double()
    with torch.no_grad():
        layer.weight_orig.mul_(5)  # outside the ball, so the normalization is active
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    weight = layer.weight_orig

    def f(x, w):
        return torch.nn.functional.linear(x, layer.constraint(w), layer.bias)

    assert torch.autograd.gradcheck(f, (x, weight))


def test_gradcheck_direct_norm_parametrization():
    torch.manual_seed(0)
    layer = direct_norm(nn.Linear(4, 3).double(), kind="two-inf", max_norm=0.5)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_groupsort_is_sorted_permutation_within_groups():
    x = torch.randn(7, 12)
    for size in (1, 2, 3, 4, 12):
        y = GroupSort(size)(x)
        groups_in = x.unflatten(-1, (12 // size, size))
        groups_out = y.unflatten(-1, (12 // size, size))
        torch.testing.assert_close(groups_out, groups_in.sort(dim=-1).values)


def test_groupsort_preserves_gradient_norm():
    torch.manual_seed(0)
    for size in (2, 4):
        x = torch.randn(64, 16, requires_grad=True)
        v = torch.randn(64, 16)
        (grad,) = torch.autograd.grad((GroupSort(size)(x) * v).sum(), x)
        torch.testing.assert_close(grad.norm(dim=1), v.norm(dim=1))


def test_groupsort_arguments():
    assert GroupSort().group_size == 2
    assert GroupSort(n_groups=4)(torch.randn(3, 8)).shape == (3, 8)
    torch.testing.assert_close(
        GroupSort(n_groups=4)(torch.arange(8.0).flip(0)[None]),
        GroupSort(2)(torch.arange(8.0).flip(0)[None]),
    )
    with pytest.raises(ValueError, match="not both"):
        GroupSort(2, n_groups=4)
    with pytest.raises(ValueError, match="divisible"):
        GroupSort(3)(torch.randn(2, 8))
    with pytest.raises(ValueError, match="integer >= 1"):
        GroupSort(0)
    assert GroupSort(2)(torch.randn(0, 8)).shape == (0, 8)  # empty batches pass


def test_groupsort_other_dim():
    x = torch.randn(2, 6, 5)
    y = GroupSort(3, dim=1)(x)
    torch.testing.assert_close(y, GroupSort(3)(x.transpose(1, 2)).transpose(1, 2))


def test_layer_matches_nn_linear_when_inside_ball():
    torch.manual_seed(0)
    layer = LipschitzLinear(8, 4, kind="inf", lipschitz_const=100.0)
    plain = nn.Linear(8, 4)
    plain.load_state_dict({"weight": layer.weight_orig.detach(), "bias": layer.bias.detach()})
    x = torch.randn(3, 8)
    torch.testing.assert_close(layer(x), plain(x))


@pytest.mark.parametrize("kind", ["inf", "one-inf", "two-inf"])  # "one" and "two" stay on autograd
@pytest.mark.parametrize("always_norm", [False, True])
def test_large_weight_path_matches_autograd_path(kind, always_norm, monkeypatch):
    # Large weights take a hand-written backward; it must agree with plain autograd exactly.
    import lipschitz_core._constraint as constraint_module

    torch.manual_seed(0)
    grads, outs = [], []
    for threshold in (10**9, 1):  # autograd path, then the large-weight path
        monkeypatch.setattr(constraint_module, "_LARGE_WEIGHT", threshold)
        torch.manual_seed(1)
        layer = (
            LipschitzLinear(6, 5, kind=kind, lipschitz_const=0.7, always_norm=always_norm)
            .double()
            .train()
        )
        with torch.no_grad():
            layer.weight_orig.mul_(4)
        x = torch.randn(4, 6, dtype=torch.float64)
        out = layer(x)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(layer.weight_orig.grad.clone())
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0], grads[1])


def test_large_weight_gradcheck(monkeypatch):
    import lipschitz_core._constraint as constraint_module

    monkeypatch.setattr(constraint_module, "_LARGE_WEIGHT", 1)
    for kind in ("inf", "one-inf", "two-inf"):
        torch.manual_seed(0)
        layer = LipschitzLinear(4, 3, kind=kind, lipschitz_const=0.8).double()
        with torch.no_grad():
            layer.weight_orig.mul_(5)
        x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
        constraint = layer.constraint
        assert torch.autograd.gradcheck(
            lambda x, w, c=constraint: torch.nn.functional.linear(x, c(w)), (x, layer.weight_orig)
        )
