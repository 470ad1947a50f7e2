"""Certificates and empirical searches for monotonicity violations."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

import lipschitz_core
from monotonenorm._constraints import parse_constraints
from monotonenorm._monotonic import MonotonicWrapper

# Elementwise maps that are non-decreasing, so they keep every monotone direction.
_MONOTONE_ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.Sigmoid,
    nn.Tanh,
    # (not nn.Softplus: torch's switches to the identity above `threshold` with a downward jump)
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Identity,
    nn.Dropout,  # identity in eval mode, which is where certificates apply
)


@dataclass(frozen=True)
class MonotonicityReport:
    """What :func:`verify_monotonic` found.

    ``certified`` is True when the weights prove monotonicity (bound check plus sign analysis),
    False when the analysis ran but cannot prove it, None when the model type has no
    certificate (e.g. a boosted-tree predict function). The empirical counts are violations of
    ``c_i * (f(x') - f(x)) >= 0`` for moves ``x' - x`` along ``c_i`` (gradient signs, finite
    differences at several step sizes, random pairs that swap one feature between two rows).
    ``certified_output`` names what was checked and certified: a torch module's outputs (the
    logits, for a classifier network), a classifier's ``predict_proba`` or a regressor's
    ``predict``.
    """

    certified: bool | None
    certificate: str
    certified_bound: float | None
    lipschitz_const: float | None
    certified_output: str
    n_gradient_checks: int
    gradient_violations: int
    n_finite_difference_checks: int
    finite_difference_violations: int
    n_pair_checks: int
    pair_violations: int
    worst_violation: float

    @property
    def n_checks(self) -> int:
        return self.n_gradient_checks + self.n_finite_difference_checks + self.n_pair_checks

    @property
    def n_violations(self) -> int:
        return self.gradient_violations + self.finite_difference_violations + self.pair_violations

    @property
    def violation_fraction(self) -> float:
        """Fraction of all empirical checks that found a violation."""
        return self.n_violations / self.n_checks if self.n_checks else 0.0

    @property
    def pair_violation_fraction(self) -> float:
        return self.pair_violations / self.n_pair_checks if self.n_pair_checks else 0.0

    @property
    def ok(self) -> bool:
        """No empirical violation and no failed certificate."""
        return self.n_violations == 0 and self.certified is not False

    def __str__(self) -> str:
        cert = {True: "certified", False: "NOT certified", None: "no certificate"}[self.certified]
        return (
            f"{self.certified_output}: {cert} ({self.certificate}); empirical violations: gradient {self.gradient_violations}/"
            f"{self.n_gradient_checks}, finite differences {self.finite_difference_violations}/"
            f"{self.n_finite_difference_checks}, pairs {self.pair_violations}/{self.n_pair_checks}"
            f" (worst {self.worst_violation:.3g})"
        )


# --- certificates ---------------------------------------------------------------------------


def _combine(terms: Tensor, dim: int) -> Tensor:
    """Combine dependence signs (+1, -1, 0 = none, nan = unknown) along ``dim``."""
    unknown = torch.isnan(terms).any(dim=dim)
    pos = (terms > 0).any(dim=dim)
    neg = (terms < 0).any(dim=dim)
    out = torch.zeros(unknown.shape, dtype=terms.dtype)
    out[pos & ~neg] = 1.0
    out[neg & ~pos] = -1.0
    out[(pos & neg) | unknown] = math.nan
    return out


def _through_linear_signs(signs: Tensor, m: Tensor) -> Tensor:
    """Compose input->unit signs ``[in, k]`` with unit->unit signs ``m`` ``[k, out]`` (nan allowed)."""
    prod = signs.unsqueeze(2) * m.unsqueeze(0)  # [in, k, out]
    no_dependence = (signs == 0).unsqueeze(2).expand_as(prod)
    prod = torch.where(no_dependence, torch.zeros_like(prod), prod)
    return _combine(prod, dim=1)


class _NoCertificate(Exception):
    pass


def _propagate(module: nn.Module, signs: Tensor, notes: list[str]) -> Tensor:
    if isinstance(module, MonotonicWrapper):
        bound = module.certified_bound()
        lam = float(module.lipschitz_const)
        mc = module.monotonic_constraints.double().expand(module.in_features, -1)
        if bound <= lam:  # exact, float64
            note = f"g bound {bound:.10g} <= lambda {lam:.10g}"
            if module.certify_current_weights_only:
                note += (
                    " for the weights at check time only (unconstrained layers: "
                    + ", ".join(module.unconstrained_layers)
                    + ")"
                )
            notes.append(note)
            m = torch.where(mc == 0, torch.full_like(mc, math.nan), mc)
        else:
            notes.append(f"g bound {bound:.10g} > lambda {lam:.10g}")
            m = torch.full_like(mc, math.nan)
        if m.shape[1] == 1:
            out_dim = _probe_out_dim(module, signs.shape[1])
            m = m.expand(-1, out_dim)
        return _through_linear_signs(signs, m)
    if isinstance(module, nn.Sequential):
        for child in module:
            signs = _propagate(child, signs, notes)
        return signs
    weight = _effective_weight(module)
    if weight is not None:
        return _through_linear_signs(signs, torch.sign(weight.detach().double().T))
    if isinstance(module, lipschitz_core.GroupSort):
        if module.dim not in (-1,):
            raise _NoCertificate("GroupSort over a dimension other than the last")
        n = signs.shape[1]
        size = module.group_size if module.group_size is not None else n // module.n_groups
        grouped = signs.reshape(signs.shape[0], n // size, size)
        combined = _combine(grouped, dim=2)  # sorting is non-decreasing in every input of the group
        return combined.repeat_interleave(size, dim=1)
    if isinstance(module, nn.LeakyReLU) and module.negative_slope >= 0:
        return signs
    if isinstance(module, nn.ELU) and module.alpha >= 0:
        return signs
    if type(module) in _MONOTONE_ELEMENTWISE:
        return signs
    raise _NoCertificate(f"no monotonicity certificate for a {type(module).__name__} layer")


def _effective_weight(module: nn.Module) -> Tensor | None:
    effective = getattr(module, "effective_weight", None)
    if callable(effective):
        return effective()
    if isinstance(module, lipschitz_core.LipschitzLinear):
        return module.normalized_weight()
    if isinstance(module, nn.Linear):
        return module.weight
    return None


def _probe_out_dim(module: nn.Module, in_features: int) -> int:
    with torch.no_grad():
        param = next(module.parameters(), None)
        x = torch.zeros(
            1, in_features, dtype=param.dtype if param is not None else torch.get_default_dtype()
        )
        return int(module(x).shape[-1])


def certify_monotonic(
    model: nn.Module, monotonic_constraints: object
) -> tuple[bool | None, str, float | None, float | None]:
    """Prove monotonicity from the weights: ``(certified, description, bound, lambda)``.

    Each :class:`MonotonicWrapper` must have a certified bound <= its lambda; through the rest
    of the network the sign of every input->unit dependence is tracked exactly (linear layers
    by the signs of their actual weights, non-decreasing elementwise maps and GroupSort keep
    signs). ``certified`` is None for layer types the analysis does not know.
    """
    in_features = getattr(model, "in_features", None)
    mc = parse_constraints(
        monotonic_constraints, in_features if isinstance(in_features, int) else None
    ).double()
    n_in = mc.shape[0]
    notes: list[str] = []
    try:
        with lipschitz_core.eval_mode(model), torch.no_grad():
            signs = _propagate(model, torch.eye(n_in, dtype=torch.float64), notes)
    except (_NoCertificate, TypeError) as exc:
        return None, str(exc), None, None
    required = mc.expand(-1, signs.shape[1]) if mc.shape[1] == 1 else mc
    if required.shape != signs.shape:
        raise ValueError(
            f"constraints of shape {tuple(mc.shape)} do not match the model's {tuple(signs.shape)} input/output signs"
        )
    need = required != 0
    proven = (signs == required) | (signs == 0)
    ok = bool(proven[need].all())
    wrappers = [m for m in model.modules() if isinstance(m, MonotonicWrapper)]
    bound = wrappers[0].certified_bound() if len(wrappers) == 1 else None
    lam = float(wrappers[0].lipschitz_const) if len(wrappers) == 1 else None
    failed = int((need & ~proven).sum())
    detail = "; ".join(notes) if notes else "sign analysis"
    if not ok:
        detail += f"; {failed} constrained input/output pair(s) not proven"
    return ok, detail, bound, lam


# --- empirical checks -------------------------------------------------------------------------


def _as_function(
    model: object,
) -> tuple[Callable[[np.ndarray], np.ndarray], nn.Module | None, object | None]:
    """(numpy function, torch module evaluated in float64 or None, constraints from the model or None)."""
    if isinstance(model, nn.Module):
        # the certified function: the constrained layers' float32 effective weights, baked into
        # plain layers and evaluated in float64 (re-normalizing in float64 would move them)
        module = lipschitz_core.freeze(model).double().eval()

        def fn(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = module(torch.as_tensor(x, dtype=torch.float64))
            return out.reshape(len(x), -1).numpy()

        default = module.monotonic_constraints if isinstance(module, MonotonicWrapper) else None
        return fn, module, default
    hook = getattr(model, "_monotonic_function", None)
    if callable(hook):
        return hook()
    if callable(model):
        return (lambda x: np.asarray(model(x), dtype=float).reshape(len(x), -1)), None, None
    raise TypeError(
        f"verify_monotonic needs a torch module, a fitted monotonenorm estimator or a function X -> predictions, "
        f"got {type(model).__name__}"
    )


def verify_monotonic(
    model: object,
    X: object,
    monotonic_constraints: object = None,
    *,
    n_pairs: int = 2000,
    relative_steps: tuple[float, ...] = (1e-3, 1e-1, 1.0),
    rtol: float = 1e-6,
    atol: float = 1e-9,
    seed: int = 0,
) -> MonotonicityReport:
    """Check that ``model`` is monotone in the constrained features, on and around ``X``.

    ``model`` is a torch module (its outputs, e.g. logits, are checked; evaluated in float64 on
    a frozen copy), a fitted :class:`MonotonicRegressor` (``predict``) or
    :class:`MonotonicClassifier` (``predict_proba``: one column per class, with the probability
    constraints that the logit constraints imply, ``probability_constraints_``), or any
    function ``X -> predictions`` (e.g. ``lgbm.predict``). ``monotonic_constraints`` default to
    the model's own when it has them; for a classifier they refer to ``predict_proba``'s columns.
    The certificate is re-computed from the current weights every call (so it also re-checks a
    model built with ``certify_current_weights_only=True`` after training). Checks: the certificate (:func:`certify_monotonic`, torch
    modules and our estimators), gradient signs at every row (torch modules), finite
    differences ``x + h * std_i * e_i`` for each step in ``relative_steps``, and ``n_pairs``
    random pairs that copy one constrained feature from another row. A change counts as a
    violation when ``c_i * (f(x') - f(x)) * sign(x'_i - x_i) < -(atol + rtol * |f|)``.
    """
    x = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(
            f"X must be a non-empty 2-D array [n_samples, n_features], got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("X contains NaN or inf")
    fn, module, default = _as_function(model)
    constraints = default if monotonic_constraints is None else monotonic_constraints
    mc = parse_constraints(constraints, x.shape[1]).double().numpy()
    expand = getattr(model, "_monotonic_expand", None)
    if callable(expand):
        mc = expand(mc)
    rng = np.random.default_rng(seed)
    base = fn(x)
    n_out = base.shape[1]
    if mc.shape[1] not in (1, n_out):
        raise ValueError(
            f"constraints have {mc.shape[1]} columns but the model has {n_out} outputs"
        )
    mc_full = np.broadcast_to(mc, (mc.shape[0], n_out))
    constrained = np.flatnonzero((mc_full != 0).any(axis=1))

    certified, detail, bound, lam = (None, "no certificate for this model type", None, None)
    if module is not None:
        output = "module outputs (logits, for a classifier network)"
        certified, detail, bound, lam = certify_monotonic(model, mc)
    else:
        output = getattr(model, "_monotonic_output", "function outputs")
        certify = getattr(model, "_monotonic_certificate", None)
        if callable(certify):
            certified, detail, bound, lam = certify(mc)

    worst = 0.0

    def count(delta: np.ndarray, scale: np.ndarray) -> int:
        nonlocal worst
        tol = atol + rtol * scale
        signed = delta.copy()
        relevant = ~np.isnan(signed)
        viol = relevant & (signed < -tol)
        if viol.any():
            worst = min(worst, float(signed[viol].min()))
        return int(viol.sum())

    grad_checks = grad_viol = 0
    if module is not None:
        xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
        out = module(xt).reshape(len(x), -1)
        for j in range(n_out):
            (grad,) = torch.autograd.grad(out[:, j].sum(), xt, retain_graph=j < n_out - 1)
            g = grad.numpy()[:, constrained] * mc_full[constrained, j]
            mask = mc_full[constrained, j] != 0
            g = g[:, mask]
            grad_checks += g.size
            grad_viol += count(g, np.zeros_like(g) + 1.0)

    std = x.std(axis=0)
    std[std == 0] = 1.0
    fd_checks = fd_viol = 0
    for i in constrained:
        for h in relative_steps:
            moved = x.copy()
            moved[:, i] += h * std[i]
            after = fn(moved)
            delta = (after - base) * mc_full[i]
            delta[:, mc_full[i] == 0] = np.nan
            valid = mc_full[i] != 0
            fd_checks += int(valid.sum()) * len(x)
            fd_viol += count(delta, np.maximum(np.abs(after), np.abs(base)))

    pair_checks = pair_viol = 0
    if len(constrained) and n_pairs > 0:
        rows = rng.integers(len(x), size=n_pairs)
        donors = rng.integers(len(x), size=n_pairs)
        feats = constrained[rng.integers(len(constrained), size=n_pairs)]
        start = x[rows]
        moved = start.copy()
        moved[np.arange(n_pairs), feats] = x[donors, feats]
        direction = np.sign(moved[np.arange(n_pairs), feats] - start[np.arange(n_pairs), feats])
        f0, f1 = fn(start), fn(moved)
        delta = (f1 - f0) * mc_full[feats] * direction[:, None]
        delta[mc_full[feats] == 0] = np.nan
        delta[direction == 0] = np.nan
        pair_checks = int((~np.isnan(delta)).sum())
        pair_viol = count(delta, np.maximum(np.abs(f0), np.abs(f1)))

    return MonotonicityReport(
        certified=certified,
        certificate=detail,
        certified_bound=bound,
        lipschitz_const=lam,
        certified_output=output,
        n_gradient_checks=grad_checks,
        gradient_violations=grad_viol,
        n_finite_difference_checks=fd_checks,
        finite_difference_violations=fd_viol,
        n_pair_checks=pair_checks,
        pair_violations=pair_viol,
        worst_violation=worst,
    )
