"""The S3 / matrix-product toy: the group table against sympy, the group RQI against closed
forms, and the batched trainer against an independent per-run port of the authors' notebook."""

import numpy as np
import pytest
import torch

from grokking_theory._group import (
    S3Config,
    S3Run,
    group_quadruples,
    group_rqi,
    permutation_matrices,
    s3_elements,
    s3_table,
    train_s3,
)


def test_table_is_sympy_composition_and_non_abelian():
    combinatorics = pytest.importorskip("sympy.combinatorics")
    el = s3_elements()
    idx = {p: i for i, p in enumerate(el)}
    perms = [combinatorics.Permutation(list(p)) for p in el]
    # sympy's p*q applies p first, then q: the notebook's perm_b[perm_a]
    want = np.array([[idx[tuple((perms[a] * perms[b]).array_form)] for b in range(6)] for a in range(6)])
    t = s3_table()
    assert (t == want).all()
    assert (t != t.T).any()  # S3 is not abelian: the toy differs from addition
    assert len(group_quadruples()) == 90  # 6 products x C(6, 2) pairs of pairs


def test_group_rqi_closed_forms():
    p = permutation_matrices()
    assert group_rqi(p) == 1.0  # a faithful representation realizes every a.b = c.d
    assert group_rqi(p.reshape(6, 9) * 7.3) == 1.0  # scale-free
    sign = np.array([np.linalg.det(m) for m in p])  # the sign representation (not faithful)
    assert group_rqi(sign[:, None, None] * np.eye(3)) == 1.0
    swapped = p[[1, 0, 2, 3, 4, 5]]  # two elements' matrices exchanged: no longer a representation
    assert group_rqi(swapped) < 0.8
    assert group_rqi(np.random.default_rng(0).normal(size=(6, 9))) < 0.1
    with pytest.raises(ValueError, match="all zeros"):
        group_rqi(np.zeros((6, 9)))
    with pytest.raises(ValueError, match="NaN"):
        group_rqi(np.full((6, 9), np.nan))


def _notebook_port(seed: int, eta_dec: float, wd: float, steps: int) -> tuple[int, int]:
    """Independent per-run port of Figure5d_permutation.ipynb (init scale 1, no L1): nn.Module
    decoder, torch.optim.AdamW, the per-step np.random.choice permutation, python-loop evaluation."""
    from torch import nn

    el = s3_elements()
    idx = {p: i for i, p in enumerate(el)}
    np.random.seed(seed)
    torch.manual_seed(seed)
    templates = torch.tensor(np.random.normal(0, 1, size=(6, 30)), dtype=torch.float)
    pairs = [(a, b) for a in range(6) for b in range(6)]
    label = np.array([idx[tuple(np.array(el[b])[np.array(el[a])])] for a, b in pairs])
    train_id = np.random.choice(36, 24, replace=False)
    test_id = np.array(sorted(set(range(36)) - set(train_id.tolist())))

    def net(d_in: int, d_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(d_in, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(), nn.Linear(200, d_out))

    net(1, 9)  # the unused encoder
    dec = net(9, 30)
    latent = nn.Parameter(torch.rand(6, 9) - 0.5)
    o1 = torch.optim.AdamW([latent], lr=1e-3, weight_decay=0.0)
    o2 = torch.optim.AdamW(dec.parameters(), lr=eta_dec, weight_decay=wd)
    ids = torch.tensor(pairs)

    def out(rows: np.ndarray) -> torch.Tensor:
        x = ids[torch.as_tensor(rows)]
        return dec((latent[x[:, 0]].view(-1, 3, 3) @ latent[x[:, 1]].view(-1, 3, 3)).view(-1, 9))

    def acc(rows: np.ndarray) -> float:
        pred = ((out(rows)[:, None] - templates[None]) ** 2).sum(2).argmin(1).numpy()
        return float((pred == label[rows]).mean())

    step_tr = step_te = -1
    for step in range(steps):
        o1.zero_grad()
        o2.zero_grad()
        choice = np.random.choice(np.arange(24), 24, replace=False)
        loss = torch.mean((out(train_id[choice]) - templates[label[train_id[choice]]]) ** 2)
        loss.backward()
        o1.step()
        o2.step()
        with torch.no_grad():
            if step_tr < 0 and acc(train_id) >= 0.9:
                step_tr = step
            if step_te < 0 and acc(test_id) >= 0.9:
                step_te = step
    return step_tr, step_te


def test_batched_s3_matches_authors_check_value():
    # data_perm_r.h5, (decoder lr 1e-4, wd 0), seed 0: train 214, test 401 (shared/data README)
    res = train_s3(S3Config(steps=405), [S3Run(0, 1e-4, 0.0)])
    assert abs(int(res["step_train"][0]) - 214) <= 2 and abs(int(res["step_test"][0]) - 401) <= 2


@pytest.mark.slow
def test_batched_s3_matches_notebook_port():
    res = train_s3(S3Config(steps=420), [S3Run(1, 1e-4, 0.0)])
    port_tr, port_te = _notebook_port(1, 1e-4, 0.0, 420)
    assert abs(int(res["step_train"][0]) - port_tr) <= 2
    assert int(res["step_test"][0]) == port_te == -1  # seed 1 memorizes in both


def test_s3_config_and_runs_refuse_bad_values():
    with pytest.raises(ValueError, match="train_num"):
        S3Config(train_num=36)
    with pytest.raises(ValueError, match="l1"):
        S3Config(l1=-1.0)
    with pytest.raises(ValueError, match="decoder lr"):
        train_s3(S3Config(steps=5), [S3Run(0, 0.0, 0.0)])
