"""Benchmark: nuclr.data's derived observables (from NUBASE2020 as shipped by nucleardatapy)
against the unrounded AME2020 tables (mass.mas20, rct1.mas20, rct2.mas20).

Usage: uv run python tools/bench/nuclear_data.py [--data ../shared/data] [--out results/nuclr]

NUBASE rounds mass excesses to a few keV, so differences of a few keV are expected; the table
reports, per quantity, the number of nuclides compared (both sides measured), the median and the
largest absolute difference, and where the largest one occurs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from nuclr import data

REPO = Path(__file__).resolve().parents[2]


def _num(text: str) -> tuple[float, bool]:
    s = text.strip()
    if not s or s == "*":
        return np.nan, False
    est = "#" in s
    s = s.rstrip("#") if s.endswith("#") else s.replace("#", ".")
    return float(s), not est


def read_mass_mas20(path: Path) -> dict[tuple[int, int], dict[str, float]]:
    out = {}
    lines = path.read_text(encoding="latin-1").splitlines()
    for line in lines[36:]:
        if len(line) < 90 or not line[14:19].strip().isdigit():
            continue
        n, z = int(line[4:9]), int(line[9:14])
        me, me_ok = _num(line[28:42])
        ba, _ = _num(line[54:67])
        qb, qb_ok = _num(line[81:94])
        out[(z, n)] = {"mass_excess_kev": me, "measured": me_ok, "b_per_a": ba, "q_beta_minus_kev": qb,
                       "q_beta_minus_measured": qb_ok}
    return out


def read_rct(path: Path, names: list[str]) -> dict[tuple[int, int], dict[str, float]]:
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if len(line) < 24 or not line[1:4].strip().isdigit() or not line[8:11].strip().isdigit():
            continue
        a, z = int(line[1:4]), int(line[8:11])
        row = {}
        for k, name in enumerate(names):
            start = 12 + 22 * k
            row[name], row[name + "_measured"] = _num(line[start : start + 12])
        out[(z, a - z)] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="shared data folder holding nuclear/ame2020 (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "nuclr", help="where the markdown/JSON go")
    parser.add_argument("--payload", type=Path, default=None, help="record payload (default OUT/record_nuclear_data.json)")
    args = parser.parse_args(argv)
    ame = args.data / "nuclear" / "ame2020"
    for f in ("mass.mas20", "rct1.mas20", "rct2.mas20"):
        if not (ame / f).exists():
            parser.error(f"missing {ame / f}; pass --data pointing at the shared data folder")

    mass = read_mass_mas20(ame / "mass.mas20")
    rct1 = read_rct(ame / "rct1.mas20", ["s_2n_kev", "s_2p_kev", "q_alpha_kev", "q_2beta_kev", "q_ep_kev", "q_beta_minus_n_kev"])
    rct2 = read_rct(ame / "rct2.mas20", ["s_n_kev", "s_p_kev", "q_4beta_kev", "q_da_kev", "q_pa_kev", "q_na_kev"])
    ours = data.ground_states(2020)

    # reference observables from the unrounded tables
    ref: dict[str, dict[tuple[int, int], float]] = {q: {} for q in data.DERIVED_QUANTITIES}
    ref["binding_energy_per_nucleon_kev"] = {}
    ref["mass_excess_kev"] = {}
    for key, row in mass.items():
        if not row["measured"]:
            continue
        z, n = key
        ref["mass_excess_kev"][key] = row["mass_excess_kev"]
        b = z * data.MASS_EXCESS_HYDROGEN_KEV + n * data.MASS_EXCESS_NEUTRON_KEV - row["mass_excess_kev"]
        ref["binding_energy_kev"][key] = b
        if z + n > 1:  # AME prints 0 for B/A of n and 1H
            ref["binding_energy_per_nucleon_kev"][key] = row["b_per_a"]
        if row["q_beta_minus_measured"]:
            ref["q_beta_minus_kev"][key] = row["q_beta_minus_kev"]
            ref["q_ec_kev"][(z + 1, n - 1)] = -row["q_beta_minus_kev"]  # Q_EC(Z+1,N-1) = -Q_beta-(Z,N)
    for table in (rct1, rct2):
        for key, row in table.items():
            for name in ("s_n_kev", "s_p_kev", "s_2n_kev", "s_2p_kev", "q_alpha_kev", "q_beta_minus_n_kev"):
                if name in row and row[name + "_measured"]:
                    ref[name][key] = row[name]

    index = {(int(z), int(n)): i for i, (z, n) in enumerate(zip(ours.z, ours.n))}
    rows = []
    for q, refs in ref.items():
        stem = q.removesuffix("_kev").replace("_per_nucleon", "")
        flag = ours["mass_measured"] if q == "mass_excess_kev" else ours[f"{stem}_measured"]
        diffs, where = [], []
        for key, value in refs.items():
            i = index.get(key)
            if i is None or not flag.iloc[i] or not np.isfinite(ours[q].iloc[i]):
                continue
            diffs.append(abs(float(ours[q].iloc[i]) - value))
            where.append(key)
        d = np.asarray(diffs)
        k = int(np.argmax(d))
        rows.append({"quantity": q, "n": len(d), "median_abs_diff_kev": float(np.median(d)),
                     "max_abs_diff_kev": float(d[k]), "max_at_z_n": list(where[k])})

    # half-lives: the AME distribution's nubase_1.mas20 against nucleardatapy's copy
    other = data.read_nubase(2020, ame / "nubase_1.mas20")
    ohl = {(int(z), int(n)): t for z, n, t in zip(other.z, other.n, other.half_life_s)}
    d_hl = [abs(np.log10(t) - ours["log10_half_life_s"].iloc[index[k]]) for k, t in ohl.items()
            if k in index and np.isfinite(t) and t > 0 and np.isfinite(ours["log10_half_life_s"].iloc[index[k]])]
    rows.append({"quantity": "log10_half_life_s in decades, not keV (vs nubase_1.mas20)", "n": len(d_hl),
                 "median_abs_diff_kev": float(np.median(d_hl)), "max_abs_diff_kev": float(np.max(d_hl)),
                 "max_at_z_n": []})

    # the package's AME backend (its own parser of the same files) against this script's reference
    os.environ["NUCLR_AME_DIR"] = str(args.data / "nuclear")
    try:
        backend = data.ground_states(2020)
    finally:
        del os.environ["NUCLR_AME_DIR"]
    bindex = {(int(z), int(n)): i for i, (z, n) in enumerate(zip(backend.z, backend.n))}
    for q in ("mass_excess_kev", "binding_energy_kev", "s_n_kev", "s_2n_kev", "q_alpha_kev"):
        stem = q.removesuffix("_kev")
        flag = backend["mass_measured"] if q == "mass_excess_kev" else backend[f"{stem}_measured"]
        d = np.array([abs(float(backend[q].iloc[bindex[key]]) - value) for key, value in ref[q].items()
                      if key in bindex and flag.iloc[bindex[key]] and np.isfinite(backend[q].iloc[bindex[key]])])
        rows.append({"quantity": f"{q} (AME backend, NUCLR_AME_DIR)", "n": int(d.size),
                     "median_abs_diff_kev": float(np.median(d)), "max_abs_diff_kev": float(d.max()), "max_at_z_n": []})

    lines = ["| quantity | nuclides | median abs diff (keV) | max abs diff (keV) | max at (Z, N) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['quantity']} | {r['n']} | {r['median_abs_diff_kev']:.3f} | {r['max_abs_diff_kev']:.3f} | {tuple(r['max_at_z_n'])} |")
    table_md = "\n".join(lines)
    print(table_md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_nuclear_data.md").write_text(
        "NUBASE2020 (nucleardatapy) derived observables vs unrounded AME2020 (measured on both sides)\n\n" + table_md + "\n")
    (args.out / "bench_nuclear_data.json").write_text(json.dumps(rows, indent=2))
    payload = {"experiment": "nuclear_data", "seeds": [], "config": {"reference": "AME2020 mass.mas20, rct1, rct2"},
               "metrics": {"rows": rows},
               "tables": [{"name": "main", "caption": "Derived observables of each backend vs the unrounded AME2020 "
                                                      "tables (measured on both sides)",
                           "columns": ["quantity", "nuclides", "median abs diff (keV)", "max abs diff (keV)"],
                           "rows": [[r["quantity"], r["n"], r["median_abs_diff_kev"], r["max_abs_diff_kev"]] for r in rows],
                           "formats": {"median abs diff (keV)": ".3f", "max abs diff (keV)": ".3f"}}]}
    path = args.payload or args.out / "record_nuclear_data.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
