"""AME backend: parser on a small sample written here in the published fixed-width formats."""

import math

import numpy as np
import pytest

from nuclr import data
from nuclr._ame import find_ame_file, read_ame_mass, read_ame_rct


def _f(value, width, decimals, estimated=False):
    """FORTRAN fw.d field; AME writes '#' in place of the decimal point for estimated values."""
    if value is None:
        return "*".rjust(width)
    s = f"{value:{width}.{decimals}f}"
    return s.replace(".", "#") if estimated else s


def mass20_line(n, z, el, me, unc, est=False, origin=""):
    # a1,i3,i5,i5,i5,1x,a3,a4,1x,f14.6,f12.6,f15.5,f11.5,1x,a2,f13.5,f11.5,1x,i3,1x,f13.6,f12.6
    a = n + z
    return ("0" + f"{n - z:3d}{n:5d}{z:5d}{a:5d}" + " " + f"{el:<3}" + f"{origin:<4}" + " "
            + _f(me, 14, 6, est) + _f(unc, 12, 6, est) + _f(8000.0, 15, 5) + _f(0.1, 11, 5) + " " + "B-"
            + _f(-1000.0, 13, 5) + _f(1.0, 11, 5) + " " + f"{a:3d}" + " " + _f(123456.0, 13, 6) + _f(1.0, 12, 6))


def mass16_line(n, z, el, me, unc, est=False):
    # a1,i3,i5,i5,i5,1x,a3,a4,1x,f13.5,f11.5,f11.3,f9.3,1x,a2,f11.3,f9.3,1x,i3,1x,f12.5,f11.5
    a = n + z
    return ("0" + f"{n - z:3d}{n:5d}{z:5d}{a:5d}" + " " + f"{el:<3}" + "    " + " "
            + _f(me, 13, 5, est) + _f(unc, 11, 5, est) + _f(8000.0, 11, 3) + _f(0.1, 9, 3) + " " + "B-"
            + _f(-1000.0, 11, 3) + _f(1.0, 9, 3) + " " + f"{a:3d}" + " " + _f(12345.0, 12, 5) + _f(1.0, 11, 5))


def rct20_line(a, el, z, values):
    # a1,i3,1x,a3,i3,1x,6(f12.4,f10.4)
    out = "0" + f"{a:3d}" + " " + f"{el:<3}" + f"{z:3d}" + " "
    for v in values:
        out += _f(v, 12, 4) + _f(None if v is None else 0.5, 10, 4) if v is not None else "*".rjust(12) + " " * 10
    return out


SAMPLE = [  # (N, Z, element, mass excess keV, unc, estimated) -- Si isotopes, AME2020
    (14, 14, "Si", -21492.79711, 0.00051, False),
    (15, 14, "Si", -21895.08154, 0.00056, False),
    (16, 14, "Si", -24432.962, 0.022, False),
    (28, 14, "Si", 23770.0, 500.0, True),
]


def _write(path, lines, crlf=True):
    header = ["1    a0dsskgw      A T O M I C   M A S S   A D J U S T M E N T",
              "1N-Z    N    Z   A  EL    O     MASS EXCESS           BINDING ENERGY/A",
              "                                   (keV)                  (keV)"]
    end = "\r\n" if crlf else "\n"
    path.write_bytes((end.join(header + lines) + end).encode("latin-1"))


def test_mass20_sample_round_trips(tmp_path):
    p = tmp_path / "mass.mas20"
    lines = [mass20_line(n, z, el, me, unc, est) for n, z, el, me, unc, est in SAMPLE]
    assert all(len(line) == len(lines[0]) for line in lines)
    # field positions as in the published file; below, 30Si's line exactly as mass.mas20 prints it
    # (fewer decimals, blank-padded, origin code "-n")
    assert lines[0][:54] == "0  0   14   14   28 Si       -21492.797110    0.000510"
    published = ("   2   16   14   30 Si   -n  -24432.962       0.022      8520.6549     0.0008  B-  -4232.1065"
                 "     0.0615   29 973770.137       0.023")
    lines[2] = published
    _write(p, lines)
    t = read_ame_mass(p, 2020)
    assert t.z.tolist() == [14] * 4 and t.n.tolist() == [14, 15, 16, 28]
    np.testing.assert_allclose(t.mass_excess_kev, [s[3] for s in SAMPLE], atol=1e-6)
    np.testing.assert_allclose(t.mass_excess_unc_kev, [s[4] for s in SAMPLE], atol=1e-6)
    assert t.mass_measured.tolist() == [True, True, True, False]
    assert list(t.symbol) == ["Si"] * 4


def test_mass16_sample_and_errors(tmp_path):
    p = tmp_path / "mass16.txt"
    _write(p, [mass16_line(14, 14, "Si", -21492.7937, 0.0005), mass16_line(28, 14, "Si", 23770.0, 500.0, True)], crlf=False)
    t = read_ame_mass(p, 2016)
    np.testing.assert_allclose(t.mass_excess_kev, [-21492.7937, 23770.0])
    assert t.mass_measured.tolist() == [True, False]
    bad = tmp_path / "bad.mas20"
    line = mass20_line(14, 14, "Si", -21492.79711, 0.00051)
    _write(bad, [line[:28] + "   -214x2.7971" + line[42:]])
    with pytest.raises(ValueError, match=r"bad.mas20:4: cannot parse mass excess"):
        read_ame_mass(bad, 2020)
    with pytest.raises(ValueError, match="no AME2020 mass lines"):
        _write(bad, [])
        read_ame_mass(bad, 2020)


def test_rct_sample(tmp_path):
    p = tmp_path / "rct2.mas20"
    _write(p, [rct20_line(29, "Si", 14, [8473.5584, 12333.6, None, -1.0, 2.0, 3.0])])
    r = read_ame_rct(p, ("s_n_kev", "s_p_kev", "a", "b", "c", "d"), 2020)
    assert r[(14, 15)]["s_n_kev"] == pytest.approx(8473.5584) and r[(14, 15)]["s_n_kev_measured"]
    assert math.isnan(r[(14, 15)]["a"])


def test_ground_states_from_ame_files(tmp_path, monkeypatch):
    folder = tmp_path / "ame2020"
    folder.mkdir()
    _write(folder / "mass.mas20", [mass20_line(n, z, el, me, unc, est) for n, z, el, me, unc, est in SAMPLE])
    # NUBASE2020 lines of the same nuclides, as the published nubase_1.mas20 prints them
    nubase = data.nubase_path(2020).read_text(encoding="latin-1").splitlines()
    keep = [line for line in nubase if line[:3] in ("028", "029", "030") and line[4:8] == "0140"]
    assert len(keep) == 3
    (folder / "nubase_1.mas20").write_text("\n".join(keep) + "\n", encoding="latin-1")
    monkeypatch.setenv("NUCLR_AME_DIR", str(tmp_path))
    monkeypatch.setenv("NUCLR_RADII_CSV", "")
    assert find_ame_file(tmp_path, 2020, "mass") == folder / "mass.mas20"
    t = data.ground_states(2020, radii=False)
    assert "AME2020" in t.attrs["source"] and len(t) == 4
    si29 = data.lookup(t, 14, 15)
    # S_n(29Si) = Delta(28Si) + Delta_n - Delta(29Si), from the sample's unrounded masses
    assert si29.s_n_kev == pytest.approx(-21492.79711 + data.MASS_EXCESS_NEUTRON_KEV + 21895.08154, abs=1e-6)
    assert si29.is_stable and not data.lookup(t, 14, 28).mass_measured
    assert np.isnan(data.lookup(t, 14, 28).log10_half_life_s)  # no NUBASE line for it in the sample
    monkeypatch.setenv("NUCLR_AME_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="NUCLR_AME_DIR"):
        data.ground_states(2020)
