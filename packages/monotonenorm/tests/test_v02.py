"""0.2: migration from monotonicnetworks checkpoints, multiclass semantics, estimator parameters."""

from __future__ import annotations

import monotonicnetworks as lmn
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from torch import nn

import lipschitz_core
import monotonenorm as mn


def _train_a_bit(model: nn.Module, n_in: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, n_in, generator=g)
    y = (x * torch.linspace(-2, 2, n_in)).sum(1, keepdim=True).sin()
    opt = torch.optim.Adam(model.parameters(), lr=5e-2)
    for _ in range(30):
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_loads_a_monotonicnetworks_wrapper_checkpoint_with_identical_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    lam, per_layer = 2.0, 2.0**0.5
    theirs = lmn.MonotonicWrapper(
        nn.Sequential(
            lmn.LipschitzLinear(3, 8, kind="one-inf", lipschitz_const=per_layer),
            lmn.GroupSort(4),
            lmn.LipschitzLinear(8, 1, kind="inf", lipschitz_const=per_layer),
        ),
        lipschitz_const=lam,
        monotonic_constraints=[1, 0, -1],
    )
    _train_a_bit(theirs, 3, seed=1)  # trained weights, many of them outside the ball
    path = tmp_path / "theirs.pt"
    torch.save(theirs.state_dict(), path)

    ours = mn.MonotonicWrapper(
        nn.Sequential(
            mn.LipschitzLinear(3, 8, True, per_layer, "one-inf"), mn.GroupSort(4), mn.LipschitzLinear(8, 1, True, per_layer, "inf")
        ),
        [1, 0, -1],
        lam,
    )
    with pytest.raises(RuntimeError):  # the keys differ: a plain load_state_dict refuses
        ours.load_state_dict(torch.load(path, weights_only=True))
    mn.load_monotonicnetworks_state_dict(ours, path)
    x = torch.randn(500, 3) * 3
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    slack = 4 * lipschitz_core.norm_slack(ours.nn[0].weight_orig, "inf") * lam * float(x.abs().sum(1).max())
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6 + slack)
    assert isinstance(ours.nn[0], nn.Linear)  # like theirs
    rel = 2 * lipschitz_core.norm_slack(ours.nn[0].weight_orig, "one-inf")  # ours: c (1 - delta), theirs: c
    torch.testing.assert_close(ours.nn[0].weight, theirs.nn[0].weight, rtol=rel, atol=1e-6)
    assert mn.verify_monotonic(ours, x).certified is True


def test_loads_monotonic_layer_and_direct_norm_checkpoints() -> None:
    torch.manual_seed(3)
    theirs = nn.Sequential(
        lmn.MonotonicLayer(2, 4, lipschitz_const=1.0, monotonic_constraints=[1, -1]),
        lmn.direct_norm(nn.Linear(4, 1), kind="inf", max_norm=1.0),
    )
    with torch.no_grad():
        theirs[0].parametrizations.weight.original.mul_(3)
        theirs[1].parametrizations.weight.original.mul_(3)
    ours = nn.Sequential(
        mn.MonotonicLayer(2, 4, lipschitz_const=1.0, monotonic_constraints=[1, -1]),
        mn.direct_norm(nn.Linear(4, 1), kind="inf", max_norm=1.0),
    )
    mn.load_monotonicnetworks_state_dict(ours, theirs.state_dict())
    x = torch.randn(50, 2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_checkpoint_with_other_constants_or_constraints_is_refused() -> None:
    theirs = lmn.MonotonicWrapper(lmn.LipschitzLinear(2, 1, kind="one-inf", lipschitz_const=0.5), 1.0, [1, 0])
    other_const = mn.MonotonicWrapper(mn.LipschitzLinear(2, 1, True, 0.25, "one-inf"), [1, 0], 1.0)
    with pytest.raises(ValueError, match="trained with 0.5"):
        mn.load_monotonicnetworks_state_dict(other_const, theirs.state_dict())
    other_signs = mn.MonotonicWrapper(mn.LipschitzLinear(2, 1, True, 0.5, "one-inf"), [1, 1], 1.0)
    with pytest.raises(ValueError, match="constraints"):
        mn.load_monotonicnetworks_state_dict(other_signs, theirs.state_dict())


def _three_class_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 3))
    score = np.column_stack([X[:, 0] + X[:, 1], X[:, 0] - X[:, 1], -2 * X[:, 0] + 0.5 * X[:, 2]])
    y = (score + rng.gumbel(size=score.shape)).argmax(1)
    return X, y


def test_multiclass_needs_a_per_class_matrix_and_verify_checks_predict_proba() -> None:
    X, y = _three_class_data()
    with pytest.raises(ValueError, match=r"\[n_features, n_classes\]"):
        mn.MonotonicClassifier([1, 0, 0], max_epochs=2).fit(X, y)
    # feature 0: logits of classes 0 and 1 increase, class 2 decreases -> only P(2) is implied
    logit_c = np.array([[1, 1, -1], [1, -1, 0], [0, 0, 0]])
    clf = mn.MonotonicClassifier(logit_c, max_epochs=40, random_state=0, lipschitz_const=2.0).fit(X, y)
    np.testing.assert_array_equal(clf.probability_constraints_, [[0, 0, -1], [0, 0, 0], [0, 0, 0]])
    report = mn.verify_monotonic(clf, X)
    assert report.certified_output == "predict_proba"
    assert report.certified is True and report.n_violations == 0
    # asking predict_proba to follow the logit matrix: not implied, and really violated
    wrong = mn.verify_monotonic(clf, X, logit_c)
    assert wrong.certified is False and "not implied" in wrong.certificate
    assert wrong.n_violations > 0
    # the network itself (logits) is certified against the logit matrix
    assert mn.verify_monotonic(clf.module_, (X - clf.x_mean_) / clf.x_scale_, logit_c).certified is True


def test_binary_classifier_report_is_about_probabilities() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=300) > 0).astype(int)
    clf = mn.MonotonicClassifier([1, -1], max_epochs=20, random_state=0).fit(X, y)
    report = mn.verify_monotonic(clf, X)
    assert report.certified_output == "predict_proba" and report.certified is True and report.n_violations == 0
    np.testing.assert_array_equal(clf.probability_constraints_, [[-1, 1], [1, -1]])


def test_sample_weight_and_class_weight_change_the_fit() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=400) > 1.0).astype(int)  # imbalanced
    kw = dict(max_epochs=30, random_state=0, early_stopping=False)
    plain = mn.MonotonicClassifier([1, 0], **kw).fit(X, y)
    balanced = mn.MonotonicClassifier([1, 0], class_weight="balanced", **kw).fit(X, y)
    weighted = mn.MonotonicClassifier([1, 0], **kw).fit(X, y, sample_weight=np.where(y == 1, (y == 0).sum() / (y == 1).sum(), 1.0))
    assert balanced.predict(X).mean() > plain.predict(X).mean() + 0.05  # more positives predicted
    np.testing.assert_allclose(balanced.predict_proba(X), weighted.predict_proba(X), rtol=1e-4, atol=1e-5)
    reg = mn.MonotonicRegressor([1, 0], **kw)
    w = np.where(X[:, 1] > 0, 1.0, 0.0)
    y_reg = np.where(X[:, 1] > 0, X[:, 0], 10.0 + X[:, 0])
    reg.fit(X, y_reg, sample_weight=w)
    assert abs(np.mean(reg.predict(X[X[:, 1] > 0]) - y_reg[X[:, 1] > 0])) < 0.5  # zero-weight rows ignored
    with pytest.raises(ValueError, match="sample_weight"):
        mn.MonotonicRegressor([1, 0], **kw).fit(X, y_reg, sample_weight=-w)


def test_grid_search_over_numpy_grids() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.normal(size=200)
    grid = {
        "width": np.arange(2, 7, 4),
        "lipschitz_const": np.arange(0.5, 2.0, 1.0),
        "learning_rate": np.array([1e-2], dtype=np.float32),
        "max_epochs": np.array([5]),
    }
    search = GridSearchCV(mn.MonotonicRegressor([1, -1], random_state=0), grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert isinstance(search.best_estimator_.width, np.integer)


def test_estimators_expose_vectorwise_and_kinds_and_refuse_missing_devices() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 2))
    y = X[:, 0]
    reg = mn.MonotonicRegressor([1, 0], depth=2, vectorwise=True, kinds=["one-inf", "inf"], max_epochs=3).fit(X, y)
    layers = [m for m in reg.module_.modules() if isinstance(m, lipschitz_core.LipschitzLinear)]
    assert [m.kind for m in layers] == ["one-inf", "inf"] and all(m.vectorwise for m in layers)
    with pytest.raises(ValueError, match="one kind per layer"):
        mn.MonotonicRegressor([1, 0], depth=2, kinds=["inf"]).fit(X, y)
    missing = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ValueError, match="device"):
        mn.MonotonicRegressor([1, 0], device=missing).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        mn.MonotonicRegressor([1, 0], device="tpu").fit(X, y)


def test_monotonic_mlp_vectorwise_and_kinds() -> None:
    model = mn.monotonic_mlp(3, [1, 0, -1], width=8, depth=2, vectorwise=True, kinds=["one-inf", "inf"])
    assert all(m.vectorwise for m in model.modules() if isinstance(m, lipschitz_core.LipschitzLinear))
    # any kind is certified from l1 inputs (l1 is the strongest input norm), only less tightly
    two = mn.monotonic_mlp(3, [1, 0, -1], width=8, depth=2, kinds=["two", "two"], lipschitz_const=1.5)
    assert [m.kind for m in two.modules() if isinstance(m, lipschitz_core.LipschitzLinear)] == ["two", "two"]
    assert two.check_certificate() <= 1.5
