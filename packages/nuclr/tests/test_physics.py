"""Theory tables and the semi-empirical formula."""

import numpy as np
import pytest

from nuclr import data, physics


def _measured():
    t = data.ground_states(2020)
    return t[(t.z >= 8) & (t.n >= 8) & t.mass_measured]


def test_theory_tables_rms_against_ame2020():
    m = _measured()
    z, n, y = m.z.values, m.n.values, m.binding_energy_kev.values
    rms = {}
    for name in ("WS3", "DZ1995", "FRDM1995"):
        p = physics.read_theory_table(name).lookup(z, n, "binding_energy_kev")
        assert np.isfinite(p).all()
        rms[name] = float(np.sqrt(np.mean((p - y) ** 2)))
    # literature: WS3 ~0.26 MeV, DZ ~0.43, FRDM95 ~0.68 against AME2020
    assert 200 < rms["WS3"] < 320 and 380 < rms["DZ1995"] < 480 and 600 < rms["FRDM1995"] < 760


def test_bskg_radii():
    m = _measured()
    t = physics.read_theory_table("BSkG3")
    r = t.lookup(m.z.values, m.n.values, "charge_radius_fm")
    ok = np.isfinite(r) & m.charge_radius_measured.values
    assert ok.sum() > 800
    assert np.sqrt(np.mean((r - m.charge_radius_fm.values)[ok] ** 2)) < 0.03


def test_semf_fit_recovers_coefficients():
    z, n = np.meshgrid(np.arange(8, 90), np.arange(8, 140), indexing="ij")
    z, n = z.ravel(), n.ravel()
    true = np.array([15.5, 17.0, 0.7, 23.0, 12.0])
    b = physics.semf_binding_kev(z, n, true)
    fit = physics.SemfFit.fit(z, n, b)
    np.testing.assert_allclose(fit.coefficients, true, rtol=1e-9)


def test_semf_on_data():
    m = _measured()
    fit = physics.SemfFit.fit(m.z.values, m.n.values, m.binding_energy_kev.values)
    rms = np.sqrt(np.mean((fit.binding_energy_kev(m.z.values, m.n.values) - m.binding_energy_kev.values) ** 2))
    assert 2500 < rms < 3500  # liquid drop without shell effects: ~3 MeV
    with pytest.raises(ValueError, match="NaN"):
        physics.SemfFit.fit(np.array([8]), np.array([8]), np.array([np.nan]))


def test_unknown_table():
    with pytest.raises(ValueError, match="WS3"):
        physics.read_theory_table("WS5")
