"""Monotonic residual networks: f(x) = g(x) + lambda * sum_i c_i x_i with a certified bound on g."""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lipschitz_core
from monotonenorm._compat import LipschitzLinear
from monotonenorm._constraints import REQUIRED, infer_in_features, parse_constraints

_P_TO_KIND = {1.0: "one-inf", 2.0: "two-inf", math.inf: "inf"}


def _kind_for_input_norm(p_in: float) -> str:
    try:
        return _P_TO_KIND[p_in]
    except KeyError:
        raise ValueError(
            f"no certificate for input norm l{p_in:g}; supported: l1, l2, linf"
        ) from None


def _is_scalar_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_lambda(value: object) -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if not _is_scalar_number(value) or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise ValueError(f"lipschitz_const must be a finite number > 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def unconstrained_layers(module: nn.Module) -> list[str]:
    """Names of the submodules of ``module`` whose parameters are not under a norm constraint.

    Norm-constrained: ``lipschitz_core.LipschitzLinear`` (and subclasses), layers with a
    ``direct_norm`` parametrization, and modules that certify themselves through a
    ``lipschitz_certificate`` method (their sub-layers are then theirs to bound). Anything else
    that owns parameters (plain ``nn.Linear``, ``PReLU``, normalization layers, ...) is listed.
    """
    found: list[str] = []
    skip: list[str] = []
    for name, sub in module.named_modules():
        if any(name == s or name.startswith(s + ".") for s in skip):
            continue
        constrained = (
            isinstance(sub, lipschitz_core.LipschitzLinear)
            or lipschitz_core.find_constraint(sub) is not None
        )
        if constrained or (
            callable(getattr(sub, "lipschitz_certificate", None)) and sub is not module
        ):
            skip.append(name)
            continue
        if any(True for _ in sub.parameters(recurse=False)):
            found.append(f"{name or '<g>'} ({type(sub).__name__})")
    return found


class MonotonicWrapper(nn.Module):
    """``f(x) = g(x) + lambda * x @ c``: monotone in every feature with c_i != 0, guaranteed.

    ``g`` (``lipschitz_module``) must have a certified l1 -> linf Lipschitz bound (every partial
    derivative of every output bounded) of at most ``lipschitz_const``; this is checked with
    :func:`lipschitz_core.lipschitz_bound` on construction, and a ``ValueError`` naming both
    numbers is raised otherwise. Then ``c_i * df/dx_i >= lambda - bound >= 0`` everywhere.

    Args:
        lipschitz_module: g, e.g. ``lipschitz_core.lipschitz_mlp(..., norm="one-inf")``: an
            ``nn.Sequential`` of constrained linear layers and GroupSort, or any module with a
            ``lipschitz_certificate`` method.
        monotonic_constraints: required. One sign per input feature (+1 non-decreasing, -1
            non-increasing, 0 free), a ``[n_features, n_outputs]`` array for per-output
            constraints, or a mapping ``{feature_index: sign}``.
        lipschitz_const: lambda, the residual's slope (and the bound g must meet).

    The original ``MonotonicWrapper(module, lipschitz_const, monotonic_constraints)``
    positional order is recognised (a number in second place and signs in third).

    Constrained partial derivatives lie in [0, 2 lambda], free ones in [-lambda, lambda].

    The comparison ``bound <= lambda`` is exact (float64, no tolerance); the layers leave room
    for rounding in their normalization instead (see ``lipschitz_core.norm_slack``). The
    certificate is about the function in exact arithmetic; a float32 forward pass adds its own
    rounding (relative 1e-7) on top.

    Every layer of ``g`` with parameters must be norm-constrained (``LipschitzLinear``,
    ``direct_norm``, or a module with a ``lipschitz_certificate`` method), because only then
    does the certificate survive training. ``certify_current_weights_only=True`` accepts other
    layers (plain ``nn.Linear``, ``PReLU``, ...): the certificate then holds only for the weights
    at the time it is checked, so call :meth:`check_certificate` or ``verify_monotonic`` again
    after every change of the weights.
    """

    def __init__(
        self,
        lipschitz_module: nn.Module,
        monotonic_constraints: object = REQUIRED,
        lipschitz_const: float | object = 1.0,
        *,
        certify_current_weights_only: bool = False,
    ) -> None:
        super().__init__()
        if _is_scalar_number(monotonic_constraints) and isinstance(
            lipschitz_const, Iterable | Mapping
        ):
            # monotonicnetworks order: MonotonicWrapper(module, lipschitz_const, monotonic_constraints)
            monotonic_constraints, lipschitz_const = lipschitz_const, monotonic_constraints
        if _is_scalar_number(monotonic_constraints):
            raise ValueError(
                f"got the number {monotonic_constraints!r} where monotonic_constraints were expected; "
                "call MonotonicWrapper(module, monotonic_constraints=[...], lipschitz_const=...)"
            )
        if not isinstance(lipschitz_module, nn.Module):
            raise TypeError(
                f"lipschitz_module must be a torch.nn.Module, got {type(lipschitz_module).__name__}"
            )
        lam = _check_lambda(lipschitz_const)
        in_features = infer_in_features(lipschitz_module)
        mc = parse_constraints(monotonic_constraints, in_features)
        unconstrained = unconstrained_layers(lipschitz_module)
        if unconstrained and not certify_current_weights_only:
            raise ValueError(
                f"g has layers that are not norm-constrained ({', '.join(unconstrained)}): their weights can grow in "
                "training and break monotonicity without notice. Use LipschitzLinear / direct_norm layers, or pass "
                "certify_current_weights_only=True to accept a certificate that holds only for the weights at the time "
                "it is checked (re-check with check_certificate() or verify_monotonic after training)."
            )
        self.nn = lipschitz_module
        self.certify_current_weights_only = bool(certify_current_weights_only)
        self.unconstrained_layers = unconstrained
        self.register_buffer("lipschitz_const", torch.tensor([lam]))
        self.register_buffer("monotonic_constraints", mc)
        self.check_certificate()

    @property
    def in_features(self) -> int:
        return int(self.monotonic_constraints.shape[0])

    def certified_bound(self) -> float:
        """Certified bound on every partial derivative of g (l1 -> linf Lipschitz constant)."""
        return lipschitz_core.lipschitz_bound(self.nn, "one-inf")

    def worst_case_bound(self) -> float:
        """Largest bound g can reach by training: every norm-constrained layer at its constraint's limit.

        Computed on a copy whose constraints rescale to exactly their ``max_norm``; layers
        without a constraint enter with their current weights (their norm can still drift).
        """
        copy_of_g = copy.deepcopy(self.nn)
        for sub in copy_of_g.modules():
            constraint = lipschitz_core.find_constraint(sub)
            if constraint is not None:
                constraint.always_norm = True
        return lipschitz_core.lipschitz_bound(copy_of_g, "one-inf")

    def check_certificate(self) -> float:
        """Check g's certified bound (now, and after any training) against lambda; return the current bound.

        Raises ``ValueError`` naming both numbers when the bound of the current weights, or the
        bound the norm constraints allow (the product of the layer constants), exceeds lambda.
        """
        try:
            bound = self.certified_bound()
            worst = self.worst_case_bound()
        except TypeError as exc:
            raise ValueError(
                "MonotonicWrapper cannot certify g, so monotonicity could not be guaranteed: "
                + str(exc)
            ) from exc
        lam = float(self.lipschitz_const)  # the float32 buffer the residual uses, exactly
        if not bound <= lam:  # exact, in float64: no tolerance
            raise ValueError(
                f"g's certified l1->linf Lipschitz bound is {bound:.7g}, larger than lipschitz_const={lam:.7g}: "
                "the residual could not dominate g and monotonicity would not be guaranteed. Use "
                f"lipschitz_const >= {bound:.7g}, or constrain g's layers so the product of their "
                "constants is <= lipschitz_const (e.g. lipschitz_const ** (1 / depth) per layer)."
            )
        if not worst <= lam:
            raise ValueError(
                f"g's norm constraints allow a certified l1->linf bound of {worst:.7g} (the product of the layer "
                f"constants), larger than lipschitz_const={lam:.7g}: its current bound {bound:.7g} is fine, but "
                "training could push it past lambda and break monotonicity. Use "
                f"lipschitz_const >= {worst:.7g}, or per-layer constants whose product is <= {lam:.7g}."
            )
        return bound

    def residual(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"expected inputs with {self.in_features} features (last dim), got shape {tuple(x.shape)}"
            )
        return self.lipschitz_const * (x @ self.monotonic_constraints)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.residual(x)  # validates the input width before g sees it
        return self.nn(x) + residual

    def lipschitz_certificate(self, p_in: float) -> tuple[float, float]:
        kind = _kind_for_input_norm(p_in)
        g = lipschitz_core.lipschitz_bound(self.nn, kind)
        r = float(
            lipschitz_core.operator_norm(
                self.lipschitz_const.double() * self.monotonic_constraints.double().T, kind
            )
        )
        return g + r, math.inf

    def extra_repr(self) -> str:
        return f"lipschitz_const={float(self.lipschitz_const):g}, in_features={self.in_features}"


class MonotonicLayer(LipschitzLinear):
    """Linear layer ``(W x + b + lambda * x @ c) / 2`` with ``max |W_ij| <= lambda``: monotone by itself.

    Signature of ``monotonicnetworks.MonotonicLayer``: ``(in_features, out_features, bias=True,
    lipschitz_const=1.0, monotonic_constraints, kind="one-inf")``, except that the constraints
    are required. Shapes ``[in]``, ``[in, 1]`` or ``[in, out]`` (per-output). Constrained
    partial derivatives lie in [0, lambda]; layers can be stacked with GroupSort between them
    (constraints of later layers +1 on all hidden units), see :func:`verify_monotonic`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        lipschitz_const: float = 1.0,
        monotonic_constraints: object = REQUIRED,
        kind: str = "one-inf",
        **kwargs: object,
    ) -> None:
        super().__init__(in_features, out_features, bias, lipschitz_const, kind, **kwargs)  # type: ignore[arg-type]
        if _looks_transposed(monotonic_constraints, in_features, out_features):
            raise ValueError(
                f"monotonic_constraints has shape ({out_features}, {in_features}) = [out, in]; the expected layout is "
                f"[in_features, out_features] = ({in_features}, {out_features}): transpose it"
            )
        mc = parse_constraints(monotonic_constraints, in_features, n_outputs=out_features)
        self.register_buffer("monotonic_constraints", mc)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.lipschitz_const * (x @ self.monotonic_constraints)
        return (F.linear(x, self.normalized_weight(), self.bias) + residual) / 2

    def effective_weight(self) -> Tensor:
        """The layer's linear map as a ``[out, in]`` matrix: (W + lambda c^T) / 2."""
        mc = self.monotonic_constraints.expand(self.in_features, self.out_features)
        return (self.normalized_weight() + self.lipschitz_const * mc.T) / 2

    def lipschitz_certificate(self, p_in: float) -> tuple[float, float]:
        kind = _kind_for_input_norm(p_in)
        with torch.no_grad():
            return float(
                lipschitz_core.operator_norm(self.effective_weight().double(), kind)
            ), math.inf


def _looks_transposed(constraints: object, in_features: int, out_features: int) -> bool:
    if isinstance(constraints, Mapping) or constraints is REQUIRED or constraints is None:
        return False
    try:
        shape = tuple(torch.as_tensor(constraints).shape)
    except (TypeError, ValueError, RuntimeError):
        return False
    return in_features != out_features and shape == (out_features, in_features)


class SigmaNet(MonotonicWrapper):
    """Deprecated alias of :class:`MonotonicWrapper` with the original ``(nn, sigma, monotonic_constraints)`` order.

    ``monotone_constraints=`` (the keyword of the ``monotonenorm`` 1.0.0 package) is accepted too.
    """

    def __init__(
        self,
        nn: nn.Module,  # noqa: F811 (the original's argument name)
        sigma: float,
        monotonic_constraints: object = REQUIRED,
        *,
        monotone_constraints: object = REQUIRED,
    ) -> None:
        warnings.warn(
            "SigmaNet is deprecated, use MonotonicWrapper instead", DeprecationWarning, stacklevel=2
        )
        if monotonic_constraints is REQUIRED:
            monotonic_constraints = monotone_constraints
        elif monotone_constraints is not REQUIRED:
            raise ValueError("give monotonic_constraints or monotone_constraints, not both")
        super().__init__(nn, monotonic_constraints, sigma)


def monotonic_mlp(
    in_features: int,
    monotonic_constraints: object,
    *,
    width: int = 16,
    depth: int = 3,
    out_features: int = 1,
    lipschitz_const: float = 1.0,
    group_size: int = 2,
    vectorwise: bool = False,
    kinds: Sequence[str] | None = None,
) -> MonotonicWrapper:
    """The papers' recipe: ``depth`` layers (one-inf, then inf) of constant ``lipschitz_const ** (1/depth)``
    each, MaxMin (``group_size=2``) between them, wrapped in :class:`MonotonicWrapper`.

    ``vectorwise=True`` rescales every row/entry on its own (the authors' default); ``kinds``
    (one per layer) replaces the one-inf/inf recipe; the wrapper refuses kinds whose certified
    l1 -> linf bound exceeds ``lipschitz_const``.
    """
    g = lipschitz_core.lipschitz_mlp(
        in_features,
        width,
        out_features,
        depth,
        lipschitz_const=lipschitz_const,
        norm="one-inf",
        group_size=group_size,
        vectorwise=vectorwise,
        kinds=kinds,
    )
    return MonotonicWrapper(g, monotonic_constraints, lipschitz_const)
