"""Behavioural parity with the authors' package (monotonicnetworks 1.5.1) for the kinds both have."""

import monotonicnetworks as mn
import pytest
import torch
from torch import nn

from lipschitz_core import GroupSort, direct_norm, norm_slack


@pytest.mark.parametrize("kind", ["one", "inf", "one-inf", "two-inf"])
@pytest.mark.parametrize("vectorwise", [True, False])
@pytest.mark.parametrize("always_norm", [True, False])
@pytest.mark.parametrize("max_norm", [0.5, 1.0, 3.0])
def test_direct_norm_parity(kind, vectorwise, always_norm, max_norm):
    torch.manual_seed(0)
    ours, theirs = nn.Linear(7, 5), nn.Linear(7, 5)
    theirs.load_state_dict(ours.state_dict())
    direct_norm(ours, kind=kind, always_norm=always_norm, max_norm=max_norm, vectorwise=vectorwise)
    mn.direct_norm(
        theirs, kind=kind, always_norm=always_norm, max_norm=max_norm, vectorwise=vectorwise
    )
    x = torch.randn(16, 7)
    # ours normalizes to max_norm * (1 - delta), delta = a few ulps (float slack for the exact
    # certificate); theirs to max_norm: the outputs differ by at most delta * max_norm * ||x||_1
    delta = norm_slack(ours.parametrizations.weight.original, kind)
    slack = 2 * delta * max_norm * float(x.abs().sum(1).max())
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6 + slack)
    ours(x).sum().backward()
    theirs(x).sum().backward()
    ours_grad, theirs_grad = (
        ours.parametrizations.weight.original.grad,
        theirs.parametrizations.weight.original.grad,
    )
    if kind == "one-inf" and vectorwise and always_norm:
        # W -> c * sign(W): the true gradient is 0; both libraries leave float cancellation noise
        assert float(ours_grad.abs().max()) < 1e-3 and float(theirs_grad.abs().max()) < 1e-3
    else:
        torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_groups", [1, 2, 4, 8])
def test_groupsort_n_groups_parity(n_groups):
    x = torch.randn(10, 8)
    torch.testing.assert_close(GroupSort(n_groups=n_groups)(x), mn.GroupSort(n_groups)(x))
