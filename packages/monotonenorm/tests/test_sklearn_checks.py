"""scikit-learn's own estimator checks (slow: dozens of fits)."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import check_estimator

from monotonenorm import MonotonicClassifier, MonotonicRegressor

# Checks that sklearn itself skips here, and why (none is excluded by us):
# - check_array_api_input: needs the SCIPY_ARRAY_API environment variable (array-API inputs).
# - check_*_data_not_an_array: needs pandas, which is not a dependency of this package.
# Expected to fail, since fit takes sample_weight (0.2):
EXPECTED_FAILED: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch Adam with a random validation split: a weight of 2 and a repeated row give the same loss "
        "but not the same batches, split or optimisation path (as for sklearn's own SGD estimators)"
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("estimator", [MonotonicRegressor, MonotonicClassifier], ids=lambda c: c.__name__)
def test_check_estimator(estimator: type) -> None:
    results = check_estimator(
        estimator(random_state=0, max_epochs=40, n_iter_no_change=5),
        expected_failed_checks=EXPECTED_FAILED,
        on_skip=None,
        on_fail=None,
    )
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert len(results) > 40
    assert failed == {}
