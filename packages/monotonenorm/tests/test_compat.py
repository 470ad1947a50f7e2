"""Compatibility with the authors' monotonicnetworks 1.5.1: same maths, same signatures, README examples."""

from __future__ import annotations

import monotonicnetworks as lmn
import pytest
import torch
from torch import nn

import monotonenorm as mn
from lipschitz_core import norm_slack

KINDS = ["one", "inf", "one-inf", "two-inf"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vectorwise", [True, False])
@pytest.mark.parametrize("always_norm", [True, False])
@pytest.mark.parametrize("max_norm", [None, 0.7, 2.5])
def test_direct_norm_matches_reference(
    kind: str, vectorwise: bool, always_norm: bool, max_norm: float | None
) -> None:
    torch.manual_seed(0)
    ref = nn.Linear(7, 5)
    ours = nn.Linear(7, 5)
    ours.load_state_dict(ref.state_dict())
    with torch.no_grad():
        ref.weight.mul_(3.0)  # make the constraint bind for some vectors
        ours.weight.mul_(3.0)
    lmn.direct_norm(
        ref, kind=kind, always_norm=always_norm, max_norm=max_norm, vectorwise=vectorwise
    )
    mn.direct_norm(
        ours, kind=kind, always_norm=always_norm, max_norm=max_norm, vectorwise=vectorwise
    )
    # ours normalizes to c * (1 - delta) (rounding room for the exact certificate), theirs to c
    slack = 2 * norm_slack(ours.weight, kind) * (max_norm or 1.0)
    torch.testing.assert_close(ours.weight, ref.weight, atol=1e-6 + slack, rtol=0)
    x = torch.randn(11, 7)
    torch.testing.assert_close(
        ours(x), ref(x), atol=1e-6 + slack * float(x.abs().sum(1).max()), rtol=0
    )


def test_direct_norm_defaults_match_reference() -> None:
    torch.manual_seed(1)
    ref, ours = nn.Linear(4, 3), nn.Linear(4, 3)
    ours.load_state_dict(ref.state_dict())
    with torch.no_grad():
        ref.weight.mul_(5.0)
        ours.weight.mul_(5.0)
    lmn.direct_norm(ref)  # defaults: kind="one", vectorwise=True, max_norm 1
    mn.direct_norm(ours)
    slack = 2 * norm_slack(ours.weight, "one")  # ours: 1 - delta, theirs: 1
    torch.testing.assert_close(ours.weight, ref.weight, atol=1e-6 + slack, rtol=0)
    assert ours.weight.double().abs().sum(0).max() <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_lipschitz_linear_matches_reference(kind: str) -> None:
    torch.manual_seed(2)
    ref = lmn.LipschitzLinear(6, 4, True, 0.8, kind)
    ours = mn.LipschitzLinear(6, 4, True, 0.8, kind)
    with torch.no_grad():
        ours.weight.copy_(ref.parametrizations.weight.original * 4)
        ref.parametrizations.weight.original.mul_(4)
        ours.bias.copy_(ref.bias)
    slack = 2 * norm_slack(ours.weight, kind) * 0.8  # ours: c (1 - delta), theirs: c
    torch.testing.assert_close(ours.normalized_weight(), ref.weight, atol=1e-6 + slack, rtol=0)
    x = torch.randn(9, 6)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6 + slack * float(x.abs().sum(1).max()), rtol=0)


def test_lipschitz_linear_default_kind_is_one_inf() -> None:
    assert mn.LipschitzLinear(3, 2).kind == "one-inf"
    assert mn.LipschitzLinear(3, 2).vectorwise is True


@pytest.mark.parametrize("n_groups", [1, 2, 4, 8])
def test_groupsort_counts_groups_like_reference(n_groups: int) -> None:
    x = torch.randn(5, 8)
    torch.testing.assert_close(mn.GroupSort(n_groups)(x), lmn.GroupSort(n_groups)(x))
    torch.testing.assert_close(mn.GroupSort(n_groups, 1)(x), lmn.GroupSort(n_groups, 1)(x))


def test_groupsort_edge_cases() -> None:
    assert mn.GroupSort(2)(torch.empty(0, 4)).shape == (0, 4)  # empty batches pass (PR #3)
    with pytest.raises(ValueError, match="divisible"):
        mn.GroupSort(3)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="n_groups"):
        mn.GroupSort()
    x = torch.tensor([[3.0, 1.0, 0.0, 2.0]])
    assert mn.GroupSort(group_size=2)(x).tolist() == [[1.0, 3.0, 0.0, 2.0]]
    assert mn.GroupSort(1)(x).tolist() == [[0.0, 1.0, 2.0, 3.0]]


def test_readme_usage_example() -> None:
    linear_by_norming = mn.direct_norm(nn.Linear(10, 10), kind="one-inf")
    linear_native = mn.LipschitzLinear(10, 10, kind="one-inf")
    assert linear_by_norming.weight.abs().max() <= 1 + 1e-6
    assert linear_native.normalized_weight().abs().max() <= 1 + 1e-6


def test_readme_monotonic_wrapper_example() -> None:
    torch.manual_seed(3)
    lip_nn = nn.Sequential(
        mn.LipschitzLinear(2, 32, kind="one-inf"),
        mn.GroupSort(2),
        mn.LipschitzLinear(32, 2, kind="inf"),
    )
    monotonic_nn = mn.MonotonicWrapper(lip_nn, monotonic_constraints=[1, 0])
    out = monotonic_nn(torch.randn(16, 2))
    assert out.shape == (16, 2)
    report = mn.verify_monotonic(monotonic_nn, torch.randn(300, 2))
    assert report.certified is True and report.n_violations == 0


def test_readme_wrapper_example_with_points() -> None:
    lip_nn = nn.Sequential(
        mn.LipschitzLinear(2, 32, kind="one-inf"),
        mn.GroupSort(2),
        mn.LipschitzLinear(32, 1, kind="inf"),
    )
    monotonic_nn = mn.MonotonicWrapper(lip_nn, monotonic_constraints=[1, 1])
    x = torch.tensor([[1.0, 2], [2, 1], [2, 2], [3, 4], [4, 3], [4, 4]])
    out = monotonic_nn(x).squeeze(1)
    # (2,2) dominates (1,2) and (2,1); (4,4) dominates (3,4) and (4,3)
    assert out[2] >= out[0] and out[2] >= out[1] and out[5] >= out[3] and out[5] >= out[4]


def test_readme_monotonic_layer_example_is_caught_and_transposed_form_works() -> None:
    # The original README's constraints are written [out, in]; the layer expects [in, out].
    with pytest.raises(ValueError, match="transpose"):
        mn.MonotonicLayer(2, 3, monotonic_constraints=[[1, 0], [0, 1], [1, -1]])
    with pytest.raises(ValueError):
        lmn.MonotonicLayer(2, 3, monotonic_constraints=[[1, 0], [0, 1], [1, -1]])
    constraints = [[1, 0, 1], [0, 1, -1]]
    layer = mn.MonotonicLayer(2, 3, monotonic_constraints=constraints)
    report = mn.verify_monotonic(nn.Sequential(layer), torch.randn(200, 2) * 3, constraints)
    assert report.certified is True and report.n_violations == 0


def test_monotonic_layer_matches_reference_forward() -> None:
    torch.manual_seed(4)
    ref = lmn.MonotonicLayer(3, 2, True, 1.5, [1, 0, -1])
    ours = mn.MonotonicLayer(3, 2, True, 1.5, [1, 0, -1])
    with torch.no_grad():
        ours.weight.copy_(ref.parametrizations.weight.original)
        ours.bias.copy_(ref.bias)
    x = torch.randn(10, 3)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)


def test_wrapper_matches_reference_forward_and_state_names() -> None:
    torch.manual_seed(5)
    ref_g = nn.Sequential(
        lmn.LipschitzLinear(3, 8, kind="one-inf"),
        lmn.GroupSort(4),
        lmn.LipschitzLinear(8, 1, kind="inf"),
    )
    our_g = nn.Sequential(
        mn.LipschitzLinear(3, 8, kind="one-inf"),
        mn.GroupSort(4),
        mn.LipschitzLinear(8, 1, kind="inf"),
    )
    for r, o in ((ref_g[0], our_g[0]), (ref_g[2], our_g[2])):
        with torch.no_grad():
            o.weight.copy_(r.parametrizations.weight.original)
            o.bias.copy_(r.bias)
    ref = lmn.MonotonicWrapper(ref_g, 1.0, [1, -1, 0])
    ours = mn.MonotonicWrapper(our_g, 1.0, [1, -1, 0])  # the original positional order
    x = torch.randn(20, 3)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
    assert {"lipschitz_const", "monotonic_constraints"} <= set(ours.state_dict())


def test_wrapper_refuses_what_it_cannot_certify() -> None:
    # lipschitz-core does not know the reference package's GroupSort: refuse loudly, never guess.
    g = nn.Sequential(
        lmn.LipschitzLinear(2, 8, kind="one-inf"),
        lmn.GroupSort(4),
        lmn.LipschitzLinear(8, 1, kind="inf"),
    )
    with pytest.raises(ValueError, match="not norm-constrained"):
        mn.MonotonicWrapper(
            g, [1, 0], 1.0
        )  # their parametrization is not one lipschitz-core can read
    with pytest.raises(ValueError, match="cannot certify g"):
        mn.MonotonicWrapper(g, [1, 0], 1.0, certify_current_weights_only=True)


def test_sigmanet_is_deprecated_and_accepts_old_keyword() -> None:
    g = mn.LipschitzLinear(3, 1, kind="one-inf")
    with pytest.deprecated_call():
        net = mn.SigmaNet(g, sigma=1.0, monotone_constraints=[1, 0, 0])
    assert net.monotonic_constraints.flatten().tolist() == [1, 0, 0]
    with pytest.deprecated_call(), pytest.raises(ValueError, match="required"):
        mn.SigmaNet(g, 1.0)
