"""Split logic of the three protocols, baselines, leakage curve."""

import numpy as np
import pytest

from nuclr import data
from nuclr.evaluate import baseline_predictions, leakage_curve, make_splits, rms
from nuclr.model import TrainConfig

CFG = TrainConfig(width=8, depth=1, epochs=1)


def test_nucleus_kfold_holds_out_whole_nuclei():
    splits = make_splits("nucleus-kfold", CFG, k=5, seed=0)
    assert len(splits) == 5
    all_test = []
    for s in splits:
        assert not set(s.train.nucleus_id.tolist()) & set(s.test.nucleus_id.tolist())
        all_test.append(np.unique(s.test.nucleus_id))
        zs, ns = set(s.train.z.tolist()), set(s.train.n.tolist())
        assert all(z in zs and n in ns for z, n in zip(s.test.z.tolist(), s.test.n.tolist()))
    ids = np.concatenate(all_test)
    unseen = sum(s.extra["n_unseen_test_nuclei"] for s in splits)
    assert unseen < 25  # only nuclei with a Z or N value found nowhere else are dropped
    assert np.unique(ids).size == ids.size  # no nucleus tested in two folds
    assert ids.size + unseen == 2457  # measured NUBASE2020 nuclei with Z, N >= 8: each tested once


def test_random_split_is_leaky():
    s = make_splits("random", CFG, k=5, seed=0)[0]
    shared = set(s.train.nucleus_id.tolist()) & set(s.test.nucleus_id.tolist())
    assert len(shared) > 1000  # the held-out rows' nuclei mostly keep other tasks in training


def test_ame2016_to_2020_split():
    (s,) = make_splits("ame2016-to-2020", CFG, k=5, seed=0)
    f16 = data.ground_states(2016, radii=False)
    known = set(zip(f16.z[f16.mass_measured].tolist(), f16.n[f16.mass_measured].tolist()))
    test_nuclei = set(zip(s.test.z.tolist(), s.test.n.tolist()))
    assert test_nuclei and not test_nuclei & known
    assert s.extra["n_new_nuclei"] == 71
    assert len(test_nuclei) + s.extra["n_unseen_test_nuclei"] == 71
    # training targets come from NUBASE2016: 56Fe's mass differs between editions by ~0.06 keV
    b = s.train.tasks.index("binding")
    sel = (s.train.z == 26) & (s.train.n == 30) & (s.train.task == b)
    assert s.train.value[sel][0] == pytest.approx(data.lookup(f16, 26, 30)["binding_energy_kev"])


def test_baselines_on_split():
    s = make_splits("nucleus-kfold", CFG, k=5, seed=0)[0]
    preds = baseline_predictions(s.train, s.test, ("WS3",))
    kb = s.test.tasks.index("binding")
    sel = s.test.task == kb
    assert 200 < rms(preds["WS3"][sel], s.test.value[sel]) < 350
    assert 2500 < rms(preds["SEMF (fitted)"][sel], s.test.value[sel]) < 3600
    kr = s.test.tasks.index("charge_radius")
    selr = s.test.task == kr
    assert rms(preds["SEMF (fitted)"][selr], s.test.value[selr]) < 0.06


def test_leakage_curve_counts():
    s = make_splits("random", CFG, k=5, seed=0)[0]
    kb = s.test.tasks.index("binding")
    pred = s.test.value + np.where(s.test.task == kb, 100.0, 0.0)
    curve = leakage_curve(s.train, s.test, pred)
    assert sum(c["n"] for c in curve) == int((s.test.task == kb).sum())
    assert all(c["binding_rms_kev"] == pytest.approx(100.0) for c in curve)


def test_bad_protocol():
    with pytest.raises(ValueError, match="protocol"):
        make_splits("loo", CFG, k=5, seed=0)
