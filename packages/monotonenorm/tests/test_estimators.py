"""scikit-learn estimators: monotone for all inputs, sklearn-compatible, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, QuantileTransformer, StandardScaler

import monotonenorm as mn
from monotonenorm import MonotonicClassifier, MonotonicRegressor

FAST = {"max_epochs": 60, "n_iter_no_change": 10, "random_state": 0}


def _regression_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3)) * np.array([1.0, 10.0, 0.1])  # very different scales
    y = np.tanh(X[:, 0]) - 0.2 * X[:, 1] + np.sin(30 * X[:, 2]) + 0.05 * rng.normal(size=n)
    return X, y


def test_regressor_fits_and_is_monotone_everywhere() -> None:
    X, y = _regression_data()
    model = MonotonicRegressor([1, -1, 0], width=16, lipschitz_const=2.0, **FAST).fit(X, y)
    assert model.score(X, y) > 0.85
    # far outside the training range too: the guarantee is global
    probe = np.random.default_rng(1).normal(size=(300, 3)) * np.array([20.0, 200.0, 2.0])
    report = mn.verify_monotonic(model, probe)
    assert report.certified is True and report.n_violations == 0 and report.n_pair_checks > 1000
    assert model.n_parameters_ == sum(p.numel() for p in model.module_.parameters())


def test_regressor_is_deterministic_given_random_state() -> None:
    X, y = _regression_data(200)
    a = MonotonicRegressor([1, -1, 0], **FAST).fit(X, y).predict(X)
    b = MonotonicRegressor([1, -1, 0], **FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_early_stopping_uses_a_validation_split_from_training_data() -> None:
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(300, 2)), rng.normal(size=300)  # pure noise: validation stops early
    model = MonotonicRegressor([1, 0], max_epochs=500, n_iter_no_change=5, random_state=0).fit(X, y)
    assert model.n_iter_ < 500
    assert len(model.validation_loss_curve_) == model.n_iter_
    assert model.best_validation_loss_ == min(model.validation_loss_curve_)
    no_val = MonotonicRegressor([1, 0], max_epochs=7, early_stopping=False, random_state=0).fit(X, y)
    assert no_val.n_iter_ == 7 and no_val.validation_loss_curve_ == []


def test_binary_classifier_probability_is_monotone() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 3))
    logit = 2 * X[:, 0] - 2 * X[:, 1] + np.cos(2 * X[:, 2])
    y = np.where(rng.uniform(size=600) < 1 / (1 + np.exp(-logit)), "yes", "no")
    model = MonotonicClassifier({0: 1, 1: -1}, lipschitz_const=2.0, **FAST).fit(X, y)
    assert list(model.classes_) == ["no", "yes"]
    assert model.score(X, y) > 0.75
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(model.predict(X), model.classes_[(proba[:, 1] > 0.5).astype(int)])
    report = mn.verify_monotonic(model, X * 3)
    assert report.certified is True and report.n_violations == 0


def test_multiclass_per_class_constraints_make_probabilities_monotone() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 2))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=600), [-0.5, 0.5])  # 3 ordered classes
    # class 2's logit increases in x0, the others' decrease: P(class 2) increases in x0
    constraints = np.array([[-1, -1, 1], [0, 0, 0]])
    model = MonotonicClassifier(constraints, lipschitz_const=3.0, **FAST).fit(X, y)
    assert model.predict_proba(X).shape == (600, 3) and model.score(X, y) > 0.7
    report = mn.verify_monotonic(lambda a: model.predict_proba(a)[:, 2], X * 2, [1, 0])
    assert report.n_violations == 0
    assert mn.verify_monotonic(model, X * 2).certified is True
    with pytest.raises(ValueError, match="3 outputs"):
        MonotonicClassifier(np.array([[1, -1], [0, 0]]), **FAST).fit(X, y)


@pytest.mark.parametrize("scaler", [StandardScaler(), MinMaxScaler(), QuantileTransformer(n_quantiles=50)])
def test_pipeline_with_direction_preserving_scaler_stays_monotone(scaler: object) -> None:
    X, y = _regression_data(300)
    pipe = make_pipeline(scaler, MonotonicRegressor([1, -1, 0], **FAST)).fit(X, y)
    assert pipe.score(X, y) > 0.6
    assert mn.verify_monotonic(pipe.predict, X, [1, -1, 0]).n_violations == 0


def test_pipeline_with_a_feature_mixing_transform_loses_monotonicity() -> None:
    X, y = _regression_data(300)
    pipe = make_pipeline(StandardScaler(), PCA(n_components=3), MonotonicRegressor([1, -1, 0], **FAST)).fit(X, y)
    assert mn.verify_monotonic(pipe.predict, X, [1, -1, 0]).n_violations > 0


def test_clear_errors() -> None:
    X, y = _regression_data(50)
    with pytest.raises(ValueError, match="2 entries but the model has 3 input features"):
        MonotonicRegressor([1, 0], **FAST).fit(X, y)
    with pytest.raises(ValueError, match="only -1, 0 and"):
        MonotonicRegressor([1, 0, 5], **FAST).fit(X, y)
    with pytest.raises(ValueError, match="no column names"):
        MonotonicRegressor({"age": 1}, **FAST).fit(X, y)
    with pytest.raises(ValueError):
        MonotonicRegressor([1, 0, 0], **FAST).fit(np.array([["a", "b", "c"]] * 5), np.arange(5.0))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MonotonicRegressor([1, 0, 0], **FAST).fit(bad, y)
    with pytest.raises(NotFittedError):
        MonotonicRegressor([1, 0, 0]).predict(X)
    with pytest.raises(ValueError, match="width must be even"):
        MonotonicRegressor([1, 0, 0], width=5).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MonotonicClassifier([1, 0, 0], **FAST).fit(X, np.zeros(50))
    fitted = MonotonicRegressor([1, 0, 0], **FAST).fit(X, y)
    with pytest.raises(ValueError, match="3 features"):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError, match="device"):
        MonotonicRegressor([1, 0, 0], device="tpu-9000", **FAST).fit(X, y)


def test_unconstrained_default_is_documented_as_only_lipschitz() -> None:
    X, y = _regression_data(100)
    model = MonotonicRegressor(**FAST).fit(X, y)
    assert not model.monotonic_constraints_.any()
