"""The benchmark behind the README's crossover table (``emd-lipschitz bench``, ``tools/bench/emd.py``).

Parts (``--parts``):

* ``crossover``: POT exact (``ot.emd``), POT Sinkhorn (log-domain, debiased), GeomLoss
  (tensorized; online only if pykeops is installed) and the NEEMo critic on the same problems for
  growing N, each run on a ladder of settings (eps, blur, critic steps); for each method the time
  of the cheapest setting that reaches 1 % and 0.1 % of the reference. References: POT's exact
  value where it runs (``--exact-cap``), otherwise the closed form of the "dilation" problem (a
  cloud against its copy scaled by 1.25 about its centre: W1 = 0.25 * mean distance to the centre,
  the map along the rays is optimal, exactly, at any N).
* ``amortized``: the paper's use: one critic trained once against a fixed ring and reused for new
  events (no steps), or warm-started across a batch of similar events (a few steps each), against
  the exact solver per event.
* ``fits``: 200-point ring fits on the exact path (``fit_shape(mode="exact")``) against 0.1's
  exact-gradient fit (Adam on ``ot.emd2``, 300 steps, the reference).
* ``cluster``: k from the N-subjettiness elbow on synthetic events with equal and unequal cluster
  populations; the ratio is swept on validation events, the held-out events use the package's
  ``ELBOW_RATIO``.

The payload (``record.json`` in ``--out``) is rewritten atomically after every finished cell, so an
interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TARGETS = (0.01, 0.001)


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


class Payload:
    """The record payload, written atomically after every update."""

    def __init__(self, out: Path, config: dict, seeds: list[int]) -> None:
        self.path = out / "record.json"
        self.data = {"experiment": "emd_bench", "seeds": seeds, "config": config, "metrics": {}, "tables": []}

    def table(self, name: str, caption: str, columns: list[str], rows: list[list], formats: dict | None = None) -> None:
        self.data["tables"] = [t for t in self.data["tables"] if t["name"] != name]
        self.data["tables"].append({"name": name, "caption": caption, "columns": columns, "rows": rows, "formats": formats or {}})
        self.write()

    def metric(self, key: str, value) -> None:
        self.data["metrics"][key] = value
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=1, default=_jsonable)
        os.replace(tmp, self.path)


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str = "cpu"):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


PROBLEMS = ("gaussians", "dilation", "translation")
TRANSLATION = np.array([0.3, 0.4])  # |t| = 0.5


def problem(kind: str, n: int, seed: int):
    """(x, a, y, b, closed_form or None) with uniform weights; coordinates of order 1.

    Closed forms (exact at any N, sharing nothing with the solvers): "dilation" (y = 1.25 x about
    the centre: the radial map gives the upper bound and f(p) = |p - c| the lower bound, so
    W1 = 0.25 * mean |x - c|) and "translation" (y = x + t: the translation plan gives the upper
    bound and f(p) = <p, t/|t|> the lower bound, so W1 = |t| = 0.5).
    """
    rng = np.random.default_rng(seed)
    if kind == "gaussians":
        x = rng.normal(size=(n, 2))
        y = rng.normal(size=(n, 2)) * np.array([1.3, 0.7]) + np.array([0.5, -0.2])
        return x, np.full(n, 1.0 / n), y, np.full(n, 1.0 / n), None
    if kind == "dilation":
        x = rng.normal(size=(n, 2))
        x -= x.mean(0)
        y = 1.25 * x
        return x, np.full(n, 1.0 / n), y, np.full(n, 1.0 / n), 0.25 * float(np.linalg.norm(x, axis=1).mean())
    if kind == "translation":
        x = rng.normal(size=(n, 2))
        return x, np.full(n, 1.0 / n), x + TRANSLATION, np.full(n, 1.0 / n), float(np.linalg.norm(TRANSLATION))
    raise ValueError(kind)


def _rel(value: float, reference: float) -> float:
    return abs(value - reference) / abs(reference)


def _first_reaching(runs: list[tuple[str, float, float]], target: float):
    """runs: (setting, seconds, rel_error) -> the cheapest run within target, or None."""
    ok = [r for r in runs if r[2] <= target]
    return min(ok, key=lambda r: r[1]) if ok else None


# how a method's time grows with N (for skipping sizes whose first setting would overrun the cell cap)
_GROWTH = {"POT exact": 2.0, "POT Sinkhorn": 2.0, "GeomLoss tensorized": 2.0, "GeomLoss online": 2.0, "NEEMo critic": 1.0}


def _median_timed(fn, device: str, repeats: int, cheap_seconds: float):
    """Run once; when that took < ``cheap_seconds`` run ``repeats - 1`` more and take the median time."""
    out, sec = _timed(fn, device)
    times = [sec]
    if sec < cheap_seconds:
        for _ in range(repeats - 1):
            times.append(_timed(fn, device)[1])
    return out, float(np.median(times)), len(times)


def crossover(payload: Payload, sizes: list[int], *, exact_cap: int, sinkhorn_cap: int, tensorized_cap: int, critic_cap: int,
              critic_steps: list[int], device: str, seed: int, quiet: bool, deadline: float, ladder_length: int = 4,
              problems: tuple[str, ...] = ("gaussians", "dilation"), online_cap: int = 1000, repeats: int = 3,
              cell_seconds: float = math.inf, table: str = "crossover") -> None:
    """Time to 1 % and 0.1 % for every method on every (problem, N); see the module docstring.

    ``repeats``: runs shorter than 5 s are repeated and their median time is kept (the row says
    how many runs). ``cell_seconds``: a method stops climbing its ladder once it has spent this
    long on one (problem, N), and is not started at a size where its first setting, extrapolated
    from the previous size (time ~ N^2, the critic ~ N), would take longer. The payload is rewritten
    after every (problem, N).
    """
    from emd_lipschitz import CriticConfig, emd
    from emd_lipschitz._exact import prepare, solve_sinkhorn

    try:
        import geomloss  # noqa: F401
        have_geomloss = True
    except ImportError:
        have_geomloss = False
    try:
        import pykeops  # noqa: F401
        have_keops = True
    except ImportError:
        have_keops = False
    try:
        import ot  # noqa: F401
        have_pot = True
    except ImportError:
        have_pot = False
    payload.metric("available", {"pot": have_pot, "geomloss": have_geomloss, "pykeops": have_keops, "device": device})
    rows, cells, skipped, winners = [], [], [], []
    for kind in problems:
        first_seconds: dict[str, tuple[int, float]] = {}  # method -> (N, seconds of its first setting)

        def too_slow(method: str, n: int, first_seconds: dict = first_seconds, kind: str = kind) -> bool:
            if method not in first_seconds:
                return False
            n0, sec0 = first_seconds[method]
            estimate = sec0 * (n / n0) ** _GROWTH[method]
            if estimate > cell_seconds:
                skipped.append([kind, n, method, f"first setting took {sec0:.3g} s at N = {n0}: about {estimate:.3g} s expected, "
                                                 f"above the {cell_seconds:g} s cap per cell"])
                return True
            return False

        for n in sizes:
            if time.perf_counter() > deadline:
                _say(f"crossover: stopping before {kind} n={n} (time budget)", quiet)
                break
            x, a, y, b, closed = problem(kind, n, seed)
            runs: dict[str, list[tuple[str, float, float]]] = {}
            counts: dict[str, int] = {}
            reference, ref_name = closed, "closed form"
            exact_seconds = math.nan
            if have_pot and n <= exact_cap and not too_slow("POT exact", n):
                sol, exact_seconds, k = _median_timed(lambda x=x, a=a, y=y, b=b: emd(x, a, y, b, method="exact"), "cpu", repeats, 5.0)
                reference, ref_name = (closed, "closed form") if closed is not None else (sol.value, "POT exact")
                runs["POT exact"], counts["POT exact"] = [("ot.emd", exact_seconds, _rel(sol.value, reference))], k
                first_seconds["POT exact"] = (n, exact_seconds)
                del sol
            if reference is None:
                _say(f"crossover: {kind} n={n} has no reference (exact capped, no closed form); skipped", quiet)
                continue
            if have_pot and n <= sinkhorn_cap and not too_slow("POT Sinkhorn", n):
                runs["POT Sinkhorn"], spent = [], 0.0
                pr = prepare(x, a, y, b, R=None)
                for reg in SINKHORN_LADDER[:ladder_length]:
                    sol, sec, k = _median_timed(lambda reg=reg, pr=pr: solve_sinkhorn(pr, reg=reg, stop=1e-6, max_iter=10000), "cpu", repeats, 5.0)
                    runs["POT Sinkhorn"].append((f"reg {reg:g}", sec, _rel(sol.value, reference)))
                    counts["POT Sinkhorn"] = max(counts.get("POT Sinkhorn", 0), k)
                    if len(runs["POT Sinkhorn"]) == 1:
                        first_seconds["POT Sinkhorn"] = (n, sec)
                    spent += sec * k
                    if runs["POT Sinkhorn"][-1][2] <= TARGETS[-1] or time.perf_counter() > deadline or spent > cell_seconds:
                        break
            for backend, cap in (("tensorized", tensorized_cap), ("online", online_cap)):
                method = f"GeomLoss {backend}"
                if have_geomloss and (backend == "tensorized" or have_keops) and n <= cap and not too_slow(method, n):
                    runs[method], counts[method] = _geomloss_runs(x, a, y, b, reference, backend, device, deadline, GEOMLOSS_LADDER[:ladder_length],
                                                                  repeats=repeats, cell_seconds=cell_seconds)
                    first_seconds[method] = (n, runs[method][0][1])
            if n <= critic_cap and not too_slow("NEEMo critic", n):
                runs["NEEMo critic"], spent = [], 0.0
                for steps in critic_steps:
                    cfg = CriticConfig(hidden=64, depth=3, steps=steps)
                    sol, sec, k = _median_timed(lambda cfg=cfg, x=x, a=a, y=y, b=b: emd(x, a, y, b, method="neural", critic=cfg, seed=seed, device=device),
                                                device, repeats, 5.0)
                    runs["NEEMo critic"].append((f"{steps} steps", sec, _rel(sol.value, reference)))
                    counts["NEEMo critic"] = max(counts.get("NEEMo critic", 0), k)
                    if len(runs["NEEMo critic"]) == 1:
                        first_seconds["NEEMo critic"] = (n, sec)
                    spent += sec * k
                    if runs["NEEMo critic"][-1][2] <= TARGETS[-1] or time.perf_counter() > deadline or spent > cell_seconds:
                        break
            for method, rs in runs.items():
                best_err = min(r[2] for r in rs)
                hits = [_first_reaching(rs, t) for t in TARGETS]
                rows.append([kind, n, method, ref_name, counts.get(method, 1), *[h[1] if h else "not reached" for h in hits],
                             *[h[0] if h else "-" for h in hits], best_err * 100])
                cells.append({"kind": kind, "n": n, "method": method, "reference": reference, "reference_kind": ref_name,
                              "runs": [list(r) for r in rs], "repeats": counts.get(method, 1)})
            for target in TARGETS:
                hits = {m: _first_reaching(rs, target) for m, rs in runs.items()}
                hits = {m: h for m, h in hits.items() if h is not None}
                best = min(hits, key=lambda m: hits[m][1]) if hits else None
                winners.append([kind, n, f"{target:.1%}", best or "none reached", hits[best][1] if best else "-",
                                ", ".join(sorted(runs))])
            payload.metric(f"{table}_cells", cells)
            payload.metric(f"{table}_skipped", skipped)
            payload.table(table, "seconds to reach 1 % / 0.1 % of the reference (cheapest setting that does; median of the runs counted in "
                          "'runs' when a run took < 5 s); best error over the ladder",
                          ["problem", "N per cloud", "method", "reference", "runs", "s to 1 %", "s to 0.1 %", "setting (1 %)", "setting (0.1 %)",
                           "best error (%)"], rows, {"s to 1 %": ".3g", "s to 0.1 %": ".3g", "best error (%)": ".3g"})
            payload.table(f"{table}_winner", "fastest method to each target (among the methods run at that size)",
                          ["problem", "N per cloud", "target", "fastest", "seconds", "methods run"], winners, {"seconds": ".3g"})
            if skipped:
                payload.table(f"{table}_skipped", "methods not started at a size (cell cap)", ["problem", "N per cloud", "method", "why"], skipped)
            _say(f"crossover: {kind} n={n} done (exact {exact_seconds:.3g} s)", quiet)


GEOMLOSS_LADDER = ((1e-2, 0.9), (1e-3, 0.9), (3e-3, 0.99), (1e-3, 0.99))  # (blur, scaling): p = 1 needs scaling near 1
SINKHORN_LADDER = (1e-1, 1e-2, 3e-3, 1e-3)


def _geomloss_runs(x, a, y, b, reference, backend: str, device: str, deadline: float, ladder=GEOMLOSS_LADDER, *, repeats: int = 1,
                   cell_seconds: float = math.inf):
    from geomloss import SamplesLoss

    from emd_lipschitz._ground import frame

    centre, scale = frame(x, y)
    dtype = torch.float32 if device.startswith("cuda") or backend == "online" else torch.float64
    X = torch.as_tensor((x - centre) / scale, dtype=dtype, device=device)
    Y = torch.as_tensor((y - centre) / scale, dtype=dtype, device=device)
    A = torch.as_tensor(a, dtype=dtype, device=device)
    B = torch.as_tensor(b, dtype=dtype, device=device)
    runs, count, spent = [], 1, 0.0
    for blur, scaling in ladder:
        loss = SamplesLoss("sinkhorn", p=1, blur=blur, scaling=scaling, debias=True, backend=backend)
        try:
            value, sec, k = _median_timed(lambda loss=loss: float(loss(A, X, B, Y)), device, repeats, 5.0)
        except RuntimeError as exc:  # out of memory at large N
            runs.append((f"blur {blur:g} failed: {str(exc).splitlines()[0][:60]}", math.inf, math.inf))
            break
        count = max(count, k)
        spent += sec * k
        runs.append((f"blur {blur:g}, scaling {scaling:g}", sec, _rel(value * scale, reference)))
        if runs[-1][2] <= TARGETS[-1] or time.perf_counter() > deadline or spent > cell_seconds:
            break
    return runs, count


def amortized(payload: Payload, *, n_events: int, m: int, warm_steps: int, cold_steps: int, seed: int, quiet: bool, device: str) -> None:
    """One critic for a fixed ring reused across events, or warm-started from event to event."""
    try:
        import ot  # noqa: F401  (the exact reference per event)
    except ImportError:
        _say("amortized: skipped (POT is not installed, so there is no exact reference)", quiet)
        payload.metric("amortized", "skipped: POT not installed")
        return
    from emd_lipschitz import Ring, emd, shape_points
    from emd_lipschitz._critic import BatchedCritic
    from emd_lipschitz._dual import DualProblem, dual_objective, normalization, train_critic

    rng = np.random.default_rng(seed)
    ring, _ = shape_points(Ring(200), [0.0, 0.0, math.log(0.3)])
    ring = ring.numpy()
    w_ring = np.full(len(ring), 1.0 / len(ring))
    events = []
    for _ in range(n_events):
        t = rng.uniform(0, 2 * np.pi, m)
        r = 0.3 * rng.uniform(0.8, 1.2)
        c = rng.normal(0, 0.05, 2)
        events.append((np.c_[c[0] + r * np.cos(t), c[1] + r * np.sin(t)] + rng.normal(0, 0.02, (m, 2)), np.full(m, 1.0 / m)))
    exact, exact_sec = [], []
    for x, a in events:
        sol, sec = _timed(lambda x=x, a=a: emd(x, a, ring, w_ring, method="exact"))
        exact.append(sol.value)
        exact_sec.append(sec)
    dtype = torch.float32

    def dual_problem(x, a):
        X = torch.as_tensor(x, dtype=torch.float64)[None]
        A = torch.as_tensor(a, dtype=torch.float64)[None]
        Y = torch.as_tensor(ring, dtype=torch.float64)[None]
        B = torch.as_tensor(w_ring, dtype=torch.float64)[None]
        centre, scale = normalization(Y, B, Y, B)  # the fixed shape's frame: one critic input map for all events
        return DualProblem(X.to(device, dtype), A.to(device, dtype), Y.to(device, dtype), B.to(device, dtype), centre.to(device, dtype),
                           scale.to(device, dtype), None, False)

    critic = BatchedCritic(1, 2, hidden=64, depth=3, dtype=dtype, device=device, generator=torch.Generator().manual_seed(seed))
    (_, state), cold_sec = _timed(lambda: train_critic(critic, dual_problem(*events[0]), steps=cold_steps, lr=1e-2, final_lr_fraction=0.02), device)
    rows = []
    for setting, steps in (("reused, no steps", 0), (f"warm-started, {warm_steps} steps per event", warm_steps)):
        errs, secs = [], []
        for (x, a), ex in zip(events[1:], exact[1:]):
            prob = dual_problem(x, a)

            def run(prob=prob, steps=steps):
                nonlocal state
                if steps:
                    _, state = train_critic(critic, prob, steps=steps, lr=2e-3, final_lr_fraction=1.0, state=state)
                with torch.no_grad():
                    return float(dual_objective(critic, prob)[0])

            value, sec = _timed(run, device)
            # dual_objective is sum b f(ring) - sum a f(event): the EMD's dual with the roles swapped
            errs.append(_rel(value, ex))
            secs.append(sec)
        rows.append([setting, n_events - 1, m, float(np.median(errs)) * 100, float(np.max(errs)) * 100, float(np.median(secs)) * 1e3,
                     float(np.median(exact_sec)) * 1e3])
    payload.metric("amortized", {"cold_training_seconds": cold_sec, "cold_steps": cold_steps, "exact_median_ms": float(np.median(exact_sec)) * 1e3})
    payload.table("amortized", f"critic trained once ({cold_steps} steps, {cold_sec:.2f} s) against a fixed 200-point ring, then used on new events",
                  ["setting", "events", "particles", "median error (%)", "worst error (%)", "ms per event", "exact ms per event"], rows,
                  {"median error (%)": ".3g", "worst error (%)": ".3g", "ms per event": ".3g", "exact ms per event": ".3g"})
    _say("amortized: done", quiet)


def _reference_exact_fit(x, a, shape, params0, steps: int, lr: float):
    """0.1's exact-gradient fit: Adam on POT's differentiable ot.emd2, fixed number of steps."""
    import ot

    from emd_lipschitz._ground import torch_distances
    from emd_lipschitz._optim import Adam

    params = params0.clone().requires_grad_(True)
    opt = Adam([params], lr=lr)
    X, A = torch.as_tensor(x), torch.as_tensor(a)
    for _ in range(steps):
        points, weights = shape(params)
        loss = ot.emd2(A, weights[0] * A.sum(), torch_distances(X, points[0]), numItermax=1_000_000)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return params.detach()


def fits(payload: Payload, *, n_events: int, m: int, seed: int, quiet: bool, patience: int | None = None) -> None:
    import ot  # noqa: F401  (imported before any clock starts)

    from emd_lipschitz import FitConfig, Ring, fit_shape

    rng = np.random.default_rng(seed)
    shape = Ring(200)
    results = {"exact path (0.2)": [], "0.1 exact-gradient fit (reference)": []}
    for _ in range(n_events):
        r = rng.uniform(0.15, 0.4)
        c = rng.uniform(-0.2, 0.2, 2)
        t = rng.uniform(0, 2 * np.pi, m)
        x = np.c_[c[0] + r * np.cos(t), c[1] + r * np.sin(t)] + rng.normal(0, 0.02, (m, 2))
        a = np.full(m, 1.0 / m)
        cpu = time.process_time()
        config = FitConfig(mode="exact", steps=300, lr=0.01, compute_exact=False)
        if patience is not None:
            config = FitConfig(mode="exact", steps=300, lr=0.01, compute_exact=False, patience=patience)
        fit = fit_shape((x, a), shape, config=config)
        cpu_new = time.process_time() - cpu
        p_new = fit.params[0].numpy()
        params0 = torch.stack([shape.initial_params(torch.as_tensor(x), torch.as_tensor(a))]).double()
        cpu = time.process_time()
        p_ref, sec_ref = _timed(lambda x=x, a=a, params0=params0: _reference_exact_fit(x, a, shape, params0, 300, 0.01))
        cpu_ref = time.process_time() - cpu
        p_ref = p_ref[0].numpy()
        for name, p, sec, cpu_sec in (("exact path (0.2)", p_new, fit.seconds, cpu_new), ("0.1 exact-gradient fit (reference)", p_ref, sec_ref, cpu_ref)):
            results[name].append((float(np.linalg.norm(p[:2] - c)), abs(math.exp(p[2]) - r) / r, sec, cpu_sec))
        _say(f"fits: event {len(results['exact path (0.2)'])}/{n_events}", quiet)
    rows, metrics = [], {}
    ref = np.array(results["0.1 exact-gradient fit (reference)"])
    for name, vals in results.items():
        v = np.array(vals)
        rows.append([name, len(v), m, float(np.median(v[:, 0])), float(np.median(v[:, 1])) * 100, float(np.median(v[:, 0]) / np.median(ref[:, 0])),
                     float(np.median(v[:, 1]) / np.median(ref[:, 1])), float(np.median(v[:, 2])), float(np.max(v[:, 2])),
                     float(np.median(v[:, 3])), float(np.max(v[:, 3]))])
        metrics[name] = {"centre_error_median": float(np.median(v[:, 0])), "radius_rel_error_median": float(np.median(v[:, 1])),
                         "seconds_median": float(np.median(v[:, 2])), "seconds_max": float(np.max(v[:, 2])),
                         "cpu_seconds_median": float(np.median(v[:, 3])), "cpu_seconds_max": float(np.max(v[:, 3]))}
    payload.metric("fits", metrics)
    payload.table("fits", "200-point ring fits (Adam lr 0.01, <= 300 steps), medians over events; CPU s = process time of the one thread",
                  ["fit", "events", "particles", "centre error", "abs dr / r (%)", "centre error / reference", "abs dr / r, / reference",
                   "wall s per fit (median)", "wall s per fit (max)", "CPU s per fit (median)", "CPU s per fit (max)"], rows,
                  {"centre error": ".4f", "abs dr / r (%)": ".3g", "centre error / reference": ".3f", "abs dr / r, / reference": ".3f",
                   "wall s per fit (median)": ".3f", "wall s per fit (max)": ".3f", "CPU s per fit (median)": ".3f",
                   "CPU s per fit (max)": ".3f"})


def synthetic_clusters(rng: np.random.Generator, n_events: int, *, unequal: bool, separation: float, sigma: float = 0.1,
                       return_centres: bool = False):
    """k in 2..5 clusters with centres in [0, 4]^2 at least ``separation`` apart; 10 particles each, or
    5/10/25 at random when ``unequal``; uniform weights. ``return_centres`` adds the generating centres."""
    events, truth, all_centres = [], [], []
    for _ in range(n_events):
        k = int(rng.integers(2, 6))
        while True:
            centres = rng.uniform(0, 4, (k, 2))
            gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(k) * 1e9
            if gaps.min() >= separation:
                break
        pops = rng.choice([5, 10, 25], k) if unequal else np.full(k, 10)
        x = np.concatenate([c + rng.normal(0, sigma, (p, 2)) for c, p in zip(centres, pops)])
        events.append((x, np.full(len(x), 1.0 / len(x))))
        truth.append(k)
        all_centres.append(centres)
    if return_centres:
        return events, np.array(truth), all_centres
    return events, np.array(truth)


def resolvable_k(centres: np.ndarray, merge_distance: float) -> int:
    """The number of groups of generating centres after merging (single linkage) every pair closer
    than ``merge_distance``: the "right k" when clusters may overlap."""
    k = len(centres)
    parent = list(range(k))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(k):
        for j in range(i + 1, k):
            if np.linalg.norm(centres[i] - centres[j]) < merge_distance:
                parent[root(i)] = root(j)
    return len({root(i) for i in range(k)})


def separation_rule(fits, taus: np.ndarray, ks: tuple[int, ...], factor: float) -> np.ndarray:
    """Alternative rule tried on validation: the largest k whose fitted centres are all at least
    ``factor`` x the pooled cluster width (sqrt(tau_k / d)) apart."""
    chosen = []
    for b in range(taus.shape[0]):
        best = ks[0]
        for j, k in enumerate(ks):
            if k == 1:
                continue
            c = np.asarray(fits[j].params[b]).reshape(k, -1)
            gap = (np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(k) * 1e9).min()
            if gap >= factor * math.sqrt(taus[b, j] / c.shape[1]):
                best = k
        chosen.append(best)
    return np.array(chosen)


MERGE_SIGMAS = 3.0  # "resolvable" right k: generating centres closer than 3 sigma count as one cluster


def cluster(payload: Payload, *, n_events: int, seed: int, quiet: bool) -> None:
    from emd_lipschitz import cluster_events
    from emd_lipschitz._cluster import ELBOW_RATIO
    from emd_lipschitz._observables import choose_k_elbow, nsubjettiness

    ks = (1, 2, 3, 4, 5, 6)
    sweep = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
    factors = (3.5, 4.0, 4.5, 5.0)
    sigma = 0.1
    rows, val_rows = [], []
    for separation in (0.6, 0.0):
        for unequal in (False, True):
            label = f"{'unequal 5/10/25' if unequal else 'equal 10'}, separation {'>= 0.6 (6 sigma)' if separation else 'none'}"
            val_events, val_truth, val_centres = synthetic_clusters(np.random.default_rng(seed + 1000), n_events, unequal=unequal,
                                                                    separation=separation, return_centres=True)
            val_resolvable = np.array([resolvable_k(c, MERGE_SIGMAS * sigma) for c in val_centres])
            fits = [nsubjettiness(val_events, k, beta=2.0) for k in (*ks, 7)]
            taus = np.stack([f.values for f in fits], axis=1)
            for truth_name, truth in (("generating k", val_truth), (f"resolvable k ({MERGE_SIGMAS:g} sigma)", val_resolvable)):
                val_rows.append([label, truth_name,
                                 *[float(np.mean([choose_k_elbow(t, (*ks, 7), r) for t in taus] == truth)) * 100 for r in sweep],
                                 *[float(np.mean(separation_rule(fits, taus, ks, f) == truth)) * 100 for f in factors]])
            test_events, test_truth, test_centres = synthetic_clusters(np.random.default_rng(seed), n_events, unequal=unequal,
                                                                       separation=separation, return_centres=True)
            test_resolvable = np.array([resolvable_k(c, MERGE_SIGMAS * sigma) for c in test_centres])
            min_gap = np.array([(np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(len(c)) * 1e9).min() for c in test_centres])
            result, sec = _timed(lambda ev=test_events: cluster_events(ev, ks))
            acc = float(np.mean(result.k == test_truth))
            acc_res = float(np.mean(result.k == test_resolvable))
            wide = min_gap >= 6 * sigma
            acc_wide = float(np.mean(result.k[wide] == test_truth[wide])) if wide.any() else math.nan
            old = cluster_events(test_events[:20], (2, 3, 4, 5, 6), method="equal-weight")
            old_acc = float(np.mean(old.k == test_truth[:20]))
            rows.append([label, len(test_truth), acc * 100, acc_res * 100, float(np.mean(~wide)) * 100, acc_wide * 100, old_acc * 100,
                         sec / len(test_truth) * 1e3])
            _say(f"cluster: {label}: {acc:.2%} generating, {acc_res:.2%} resolvable (0.1 rule on 20 events: {old_acc:.0%})", quiet)
            payload.table("cluster", f"held-out events (seed {seed}); elbow ratio {ELBOW_RATIO} chosen on validation events (seed {seed + 1000}); "
                          f"resolvable k: generating centres closer than {MERGE_SIGMAS:g} sigma merged",
                          ["events", "n", "right k (%)", "right resolvable k (%)", "events with centres < 6 sigma apart (%)",
                           "right k, events >= 6 sigma apart (%)", "0.1 equal-weight rule, first 20 (%)", "ms per event"], rows,
                          {"right k (%)": ".1f", "right resolvable k (%)": ".1f", "events with centres < 6 sigma apart (%)": ".1f",
                           "right k, events >= 6 sigma apart (%)": ".1f", "0.1 equal-weight rule, first 20 (%)": ".0f", "ms per event": ".3g"})
            payload.table("cluster_validation", "right k (%) on validation events: elbow rule for each ratio, and the separation rule "
                          "(largest k whose fitted centres are >= factor x the pooled width apart) for each factor",
                          ["events", "right k means", *[f"elbow {r}" for r in sweep], *[f"separation {f:g}" for f in factors]],
                          val_rows, {**{f"elbow {r}": ".1f" for r in sweep}, **{f"separation {f:g}": ".1f" for f in factors}})
    payload.metric("elbow_ratio", ELBOW_RATIO)
    payload.metric("merge_sigmas", MERGE_SIGMAS)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emd-lipschitz bench", description="EMD benchmark: exact vs Sinkhorn vs GeomLoss vs the NEEMo critic.")
    parser.add_argument("--out", type=Path, required=True, help="folder for record.json (the payload, rewritten after every cell)")
    parser.add_argument("--parts", default="crossover,amortized,fits,cluster", help="comma-separated parts (default all)")
    parser.add_argument("--sizes", default=None, help="N per cloud for the crossover (default 100,300,1000,3000; --quick: 100,300)")
    parser.add_argument("--exact-cap", type=int, default=3000, help="largest N for POT exact (default 3000)")
    parser.add_argument("--sinkhorn-cap", type=int, default=1000, help="largest N for POT Sinkhorn (default 1000)")
    parser.add_argument("--tensorized-cap", type=int, default=3000, help="largest N for GeomLoss tensorized (default 3000)")
    parser.add_argument("--critic-cap", type=int, default=100_000, help="largest N for the critic (default 100000)")
    parser.add_argument("--online-cap", type=int, default=1000, help="largest N for GeomLoss online (needs pykeops; default 1000)")
    parser.add_argument("--problems", default="gaussians,dilation", help=f"crossover problems, from {','.join(PROBLEMS)} (default gaussians,dilation)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting when one run takes < 5 s; the median time is kept (default 3)")
    parser.add_argument("--cell-seconds", type=float, default=math.inf,
                        help="cap on one method's seconds per (problem, N); sizes whose first setting would exceed it are skipped (default none)")
    parser.add_argument("--table", default="crossover", help="name of the crossover table in the payload (default crossover)")
    parser.add_argument("--critic-steps", default=None, help="critic training steps ladder (default 100,300,1000; --quick: 50,100)")
    parser.add_argument("--events", type=int, default=8, help="events for fits (default 8); x25 for cluster, x4 for amortized")
    parser.add_argument("--fit-patience", type=int, default=None, help="early-stopping patience of the exact-path fits (default: FitConfig's)")
    parser.add_argument("--device", default="cpu", help="cpu|cuda[:N]|auto for GeomLoss and the critic (default cpu)")
    parser.add_argument("--budget-minutes", type=float, default=60.0, help="stop starting new crossover cells after this (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="smoke size: N 100,300, 2 events, one Sinkhorn/GeomLoss setting (seconds)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.quick:
        args.events = 2
    args.sizes = args.sizes or ("100,300" if args.quick else "100,300,1000,3000")
    args.critic_steps = args.critic_steps or ("50,100" if args.quick else "100,300,1000")
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        critic_steps = [int(s) for s in args.critic_steps.split(",")]
    except ValueError:
        print("emd-lipschitz bench: error: --sizes and --critic-steps take comma-separated integers", file=sys.stderr)
        return 2
    problems = tuple(args.problems.split(","))
    if set(problems) - set(PROBLEMS) or args.repeats < 1 or not args.cell_seconds > 0:
        print(f"emd-lipschitz bench: error: --problems takes names from {PROBLEMS}, --repeats >= 1, --cell-seconds > 0", file=sys.stderr)
        return 2
    parts = args.parts.split(",")
    unknown = set(parts) - {"crossover", "amortized", "fits", "cluster"}
    if unknown:
        print(f"emd-lipschitz bench: error: unknown part(s) {sorted(unknown)}", file=sys.stderr)
        return 2
    torch.set_num_threads(1) if args.device == "cpu" else None
    deadline = time.perf_counter() + 60 * args.budget_minutes
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config["machine"] = platform.machine()
    config["torch_threads"] = torch.get_num_threads()
    payload = Payload(args.out, config, [args.seed])
    start = time.perf_counter()
    if "crossover" in parts:
        crossover(payload, sizes, exact_cap=args.exact_cap, sinkhorn_cap=args.sinkhorn_cap, tensorized_cap=args.tensorized_cap,
                  critic_cap=args.critic_cap, critic_steps=critic_steps, device=args.device, seed=args.seed, quiet=args.quiet, deadline=deadline,
                  ladder_length=1 if args.quick else 4, problems=problems, online_cap=args.online_cap, repeats=args.repeats,
                  cell_seconds=args.cell_seconds, table=args.table)
    if "amortized" in parts:
        amortized(payload, n_events=4 * args.events + 1, m=100, warm_steps=20, cold_steps=300 if not args.quick else 50, seed=args.seed,
                  quiet=args.quiet, device=args.device)
    if "fits" in parts:
        fits(payload, n_events=args.events, m=100, seed=args.seed, quiet=args.quiet, patience=args.fit_patience)
    if "cluster" in parts:
        cluster(payload, n_events=25 * args.events if not args.quick else 10, seed=args.seed, quiet=args.quiet)
    payload.metric("seconds", time.perf_counter() - start)
    _say(f"bench: wrote {payload.path} ({time.perf_counter() - start:.0f} s)", args.quiet)
    return 0
