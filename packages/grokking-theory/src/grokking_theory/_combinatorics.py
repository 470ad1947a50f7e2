"""Pure combinatorics of the addition toy: samples, parallelograms, ideal and predicted accuracy.

Sample k is the unordered pair ``(i, j)``, ``i <= j``, in the official order (i outer, j inner).
A parallelogram is a pair of samples with the same sum; it becomes the linear equation
``E_i + E_j - E_m - E_n = 0`` (one row of the matrix ``A``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

NULL_TOL = 1e-8  # the official eigenvalue threshold for "zero" eigenvalues of A^T A


def check_p(p: int) -> int:
    if not isinstance(p, int | np.integer) or isinstance(p, bool) or p < 3:
        raise ValueError(f"p must be an integer >= 3 (number of symbols), got {p!r}")
    return int(p)


@lru_cache(maxsize=64)
def _pairs(p: int) -> np.ndarray:
    out = [(i, j) for i in range(p) for j in range(i, p)]
    arr = np.array(out, dtype=np.int64)
    arr.setflags(write=False)
    return arr


def sample_pairs(p: int) -> np.ndarray:
    """All unordered pairs ``(i, j)``, ``i <= j``; shape ``(p(p+1)/2, 2)``, official order."""
    return _pairs(check_p(p))


@lru_cache(maxsize=64)
def _parallelograms(p: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = _pairs(p)
    sums = pairs.sum(1)
    first, second = [], []
    n = len(pairs)
    for a in range(n):
        for b in range(a + 1, n):
            if sums[a] == sums[b]:
                first.append(a)
                second.append(b)
    idx = np.stack([np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)], 1)
    A = np.zeros((len(idx), p), dtype=np.int64)
    rows = np.arange(len(idx))
    for col, sign in ((0, 1), (1, -1)):
        np.add.at(A, (rows, pairs[idx[:, col], 0]), sign)
        np.add.at(A, (rows, pairs[idx[:, col], 1]), sign)
    idx.setflags(write=False)
    A.setflags(write=False)
    return idx, A


def parallelogram_samples(p: int) -> np.ndarray:
    """P0 as sample-index pairs ``(a, b)``, ``a < b``, same sum; shape ``(|P0|, 2)`` (70 for p=10)."""
    return _parallelograms(check_p(p))[0]


def equation_matrix(p: int) -> np.ndarray:
    """The matrix A: one row ``e_i + e_j - e_m - e_n`` per parallelogram of P0; shape ``(|P0|, p)``."""
    return _parallelograms(check_p(p))[1]


@lru_cache(maxsize=64)
def _rqi_quads(p: int, start: int) -> np.ndarray:
    quads = [
        (i, n, j, m)
        for i in range(start, p)
        for j in range(i + 1, p)
        for m in range(j, p)
        for n in range(m + 1, p)
        if i + n == j + m
    ]
    arr = np.array(quads, dtype=np.int64).reshape(-1, 4)
    arr.setflags(write=False)
    return arr


def rqi_quadruples(p: int, *, start: int = 0) -> np.ndarray:
    """Ideal parallelograms ``(i, n, j, m)`` with ``i < j <= m < n`` and ``i + n = j + m``.

    ``start=0`` is the paper's definition (70 for p = 10); ``start=1`` is the older sweep
    notebook's variant (50 for p = 10).
    """
    return _rqi_quads(check_p(p), int(start))


def check_train_ids(p: int, train_ids: np.ndarray) -> np.ndarray:
    n = len(sample_pairs(p))
    ids = np.asarray(train_ids, dtype=np.int64).reshape(-1)
    if ids.size == 0:
        raise ValueError("the training set is empty; expected at least one sample index")
    if ids.min() < 0 or ids.max() >= n:
        raise ValueError(f"training sample indices must lie in [0, {n}) for p={p}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("training sample indices must be distinct")
    return ids


def train_num_from_fraction(p: int, fraction: float) -> int:
    """Number of training samples for a training fraction in (0, 1] (at least 1)."""
    if not (0.0 < float(fraction) <= 1.0):
        raise ValueError(f"train fraction must lie in (0, 1], got {fraction!r}")
    n = len(sample_pairs(p))
    return max(1, int(round(float(fraction) * n)))


def train_mask(p: int, train_ids: np.ndarray) -> np.ndarray:
    ids = check_train_ids(p, train_ids)
    mask = np.zeros(len(sample_pairs(p)), dtype=bool)
    mask[ids] = True
    return mask


def nullity(rows: np.ndarray, p: int) -> int:
    """Dimension of the null space of ``rows^T rows`` (eigenvalues < 1e-8, as the official code)."""
    if len(rows) == 0:
        return p
    gram = rows.T.astype(np.float64) @ rows.astype(np.float64)
    return int(np.sum(np.linalg.eigvalsh(gram) < NULL_TOL))


def third_eigenvalue(rows: np.ndarray, p: int) -> float:
    """lambda_3 of ``rows^T rows`` (lambda_1 = lambda_2 = 0: translation and scale)."""
    if len(rows) == 0:
        return 0.0
    gram = rows.T.astype(np.float64) @ rows.astype(np.float64)
    return float(np.linalg.eigvalsh(gram)[2])


def _dbar(p: int, mask: np.ndarray, para_ok: np.ndarray) -> np.ndarray:
    """Samples answerable ideally: train samples plus test samples sharing a valid parallelogram
    with a train sample."""
    idx = parallelogram_samples(p)[para_ok]
    a, b = idx[:, 0], idx[:, 1]
    good = mask.copy()
    good[a[mask[b]]] = True
    good[b[mask[a]]] = True
    return good


def train_parallelograms(p: int, train_ids: np.ndarray) -> np.ndarray:
    """Boolean mask over P0: parallelograms whose two samples are both in the training set (P0(D))."""
    mask = train_mask(p, train_ids)
    idx = parallelogram_samples(p)
    return mask[idx[:, 0]] & mask[idx[:, 1]]


def implied_parallelograms(p: int, in_set: np.ndarray) -> np.ndarray:
    """Closure P(D): every parallelogram of P0 linearly dependent on the rows in ``in_set``."""
    A = equation_matrix(p).astype(np.float64)
    rows = A[in_set]
    if len(rows) == 0:
        return in_set.copy()
    w, v = np.linalg.eigh(rows.T @ rows)
    null_basis = v[:, w < NULL_TOL]
    if null_basis.shape[1] == 0:
        return np.ones(len(A), dtype=bool)
    # a row is dependent on `rows` iff it is orthogonal to their null space
    resid = np.abs(A @ null_basis).max(axis=1)
    return in_set | (resid < 1e-6)


def ideal_accuracy(p: int, train_ids: np.ndarray) -> dict[str, float | int]:
    """The paper's ideal accuracy (no training) and the nullity of A_{P0(D)}^T A_{P0(D)}.

    ``nullity == 2`` means the linear representation is the only one (up to translation/scale).
    """
    mask = train_mask(p, train_ids)
    p0d = train_parallelograms(p, train_ids)
    pd = implied_parallelograms(p, p0d)
    good = _dbar(p, mask, pd)
    n_train, n = int(mask.sum()), len(mask)
    return {
        "nullity": nullity(equation_matrix(p)[p0d], p),
        "ideal_acc": float(good.sum() / n),
        "ideal_test_acc": float((good.sum() - n_train) / (n - n_train)) if n > n_train else 1.0,
        "n_train_parallelograms": int(p0d.sum()),
        "n_implied_parallelograms": int(pd.sum()),
    }


def standardize(embedding: np.ndarray) -> np.ndarray:
    """z-score per dimension with the unbiased std (torch's default), as the official RQI."""
    e = np.asarray(embedding, dtype=np.float64)
    if e.ndim == 1:
        e = e[:, None]
    if e.ndim != 2 or len(e) < 2:
        raise ValueError(f"an embedding must be (p, dim) with p >= 2 rows, got shape {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError("the embedding holds NaN or inf values")
    std = e.std(0, ddof=1, keepdims=True)
    flat = np.flatnonzero(std[0] <= 1e-12 * max(1.0, float(np.abs(e).max())))
    if len(flat):
        raise ValueError(
            f"degenerate embedding: dimension(s) {flat.tolist()} take the same value for every symbol "
            "(zero spread), so it cannot be z-scored and RQI is undefined"
        )
    return (e - e.mean(0, keepdims=True)) / std


def realized_parallelograms(p: int, embedding: np.ndarray, *, tol: float = 0.01) -> np.ndarray:
    """Boolean mask over P0: parallelograms realized by the (z-scored) embedding."""
    e = standardize(embedding)
    pairs = sample_pairs(p)
    idx = parallelogram_samples(p)
    s = e[pairs[:, 0]] + e[pairs[:, 1]]
    d = s[idx[:, 0]] - s[idx[:, 1]]
    return (d**2).mean(1) < tol


def predicted_accuracy(
    p: int, train_ids: np.ndarray, embedding: np.ndarray, *, tol: float = 0.01
) -> dict[str, float]:
    """Acc^: accuracy predicted from the parallelograms present in a learned embedding."""
    mask = train_mask(p, train_ids)
    good = _dbar(p, mask, realized_parallelograms(p, embedding, tol=tol))
    n_train, n = int(mask.sum()), len(mask)
    return {
        "pred_acc": float(good.sum() / n),
        "pred_test_acc": float((good.sum() - n_train) / (n - n_train)) if n > n_train else 1.0,
    }


def rqi(embedding: np.ndarray, p: int | None = None, *, tol: float = 0.01, start: int = 0) -> float:
    """Representation Quality Index: fraction of the ideal parallelograms closed to within ``tol``
    (mean over dimensions of the squared residual) on the z-scored embedding."""
    e = standardize(embedding)
    p = check_p(len(e) if p is None else p)
    if len(e) != p:
        raise ValueError(f"embedding has {len(e)} rows, expected p={p}")
    q = rqi_quadruples(p, start=start)
    d = e[q[:, 0]] + e[q[:, 1]] - e[q[:, 2]] - e[q[:, 3]]
    return float(((d**2).mean(1) < tol).sum() / len(q))
