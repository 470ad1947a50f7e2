"""nuclr.data against published AME2020/NUBASE2020 values and hand-computed formulas."""

import math

import numpy as np
import pytest

from nuclr import data


@pytest.fixture(scope="module")
def table():
    return data.ground_states(2020)


# Published AME2020 values (Wang et al., Chin. Phys. C 45 030003): B/A in keV, S_n, Q in keV.
@pytest.mark.parametrize(
    ("z", "n", "b_per_a", "tol"),
    [(2, 2, 7073.9156, 0.01), (26, 30, 8790.3563, 0.05), (82, 126, 7867.4530, 0.05), (28, 34, 8794.5534, 0.05)],
)
def test_binding_per_nucleon_published(table, z, n, b_per_a, tol):
    row = data.lookup(table, z, n)
    assert abs(row["binding_energy_per_nucleon_kev"] - b_per_a) < tol
    assert bool(row["binding_energy_measured"])


def test_separation_and_q_values_published(table):
    fe56 = data.lookup(table, 26, 30)
    assert abs(fe56["s_n_kev"] - 11197.08) < 1.0  # AME2020 rct2: 11197.08(0.39)
    pb208 = data.lookup(table, 82, 126)
    assert abs(pb208["s_n_kev"] - 7367.87) < 2.0
    assert abs(pb208["q_alpha_kev"] - 516.7) < 2.0
    co60 = data.lookup(table, 27, 33)
    assert abs(co60["q_beta_minus_kev"] - 2822.81) < 1.0
    # 60Co: 5.2714 y
    assert abs(co60["log10_half_life_s"] - math.log10(5.2714 * 31556926)) < 1e-3
    assert abs(fe56["charge_radius_fm"] - 3.7377) < 1e-6
    assert bool(data.lookup(table, 26, 30)["is_stable"])
    assert math.isnan(fe56["log10_half_life_s"])


def test_derived_formulas_on_random_masses():
    rng = np.random.default_rng(0)
    z, n = np.meshgrid(np.arange(3, 9), np.arange(3, 9), indexing="ij")
    z, n = z.ravel(), n.ravel()
    delta = rng.normal(0, 1e4, z.size)
    meas = rng.random(z.size) > 0.2
    out = data.derive_observables(z, n, delta, meas)
    idx = {(a, b): i for i, (a, b) in enumerate(zip(z, n))}
    i = idx[(6, 6)]
    mn, mh, mhe = data.MASS_EXCESS_NEUTRON_KEV, data.MASS_EXCESS_HYDROGEN_KEV, data.MASS_EXCESS_HELIUM4_KEV
    assert out["s_n_kev"][i] == pytest.approx(delta[idx[(6, 5)]] + mn - delta[i])
    assert out["s_2p_kev"][i] == pytest.approx(delta[idx[(4, 6)]] + 2 * mh - delta[i])
    assert out["q_alpha_kev"][i] == pytest.approx(delta[i] - delta[idx[(4, 4)]] - mhe)
    assert out["q_beta_minus_n_kev"][i] == pytest.approx(delta[i] - delta[idx[(7, 4)]] - mn)
    assert out["q_ec_kev"][i] == pytest.approx(delta[i] - delta[idx[(5, 7)]])
    assert bool(out["q_ec_measured"][i]) == bool(meas[i] and meas[idx[(5, 7)]])
    # partner missing at the edge of the grid -> NaN, not measured
    j = idx[(3, 3)]
    assert math.isnan(out["s_2n_kev"][j]) and not out["s_2n_measured"][j]
    # S_2n = S_n(Z,N) + S_n(Z,N-1) identically
    k = idx[(6, 7)]
    assert out["s_2n_kev"][k] == pytest.approx(out["s_n_kev"][k] + out["s_n_kev"][idx[(6, 6)]])


def test_estimated_values_flagged(table):
    assert table["mass_measured"].sum() == 2550  # AME2020: 2550 measured ground-state masses
    est = table[~table["mass_measured"]]
    assert len(est) == 1008
    # derived values measured only when every mass is measured
    bad = table["s_n_measured"] & ~table["mass_measured"]
    assert not bad.any()
    assert (table["mass_excess_unc_kev"] >= 0).all()


@pytest.mark.parametrize("year", [2012, 2016, 2020])
def test_other_editions_parse(year):
    t = data.ground_states(year, radii=False)
    row = data.lookup(t, 26, 30)
    assert abs(row["binding_energy_per_nucleon_kev"] - 8790.36) < 0.1
    assert len(t) > 3300


def test_extrapolation_flag():
    measured = {(50, 82), (50, 83)}
    assert not data.is_extrapolation(50, 82, measured)
    assert not data.is_extrapolation(50, 84, measured)  # neighbour (50, 83) measured
    assert data.is_extrapolation(50, 86, measured)


@pytest.mark.parametrize(("z", "n"), [(-1, 5), (5, -2), (2.5, 3), ("8", 8), (True, 8), (float("nan"), 3), (0, 0)])
def test_bad_nucleus_rejected(z, n):
    with pytest.raises(data.NuclideError, match="Z|N"):
        data.check_nucleus(z, n)


def test_lookup_outside_table(table):
    with pytest.raises(data.NuclideError, match="not in the table"):
        data.lookup(table, 50, 200)
    assert data.check_nucleus(8.0, np.int64(8)) == (8, 8)


def test_bad_year():
    with pytest.raises(ValueError, match="2020"):
        data.ground_states(2003)


def test_bad_nubase_file(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("# header\n001 0010   1H       abc.def       0.0001\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        data.read_nubase(2020, p)
