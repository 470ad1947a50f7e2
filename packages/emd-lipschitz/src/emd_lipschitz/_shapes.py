"""Parametrized shapes as evenly spaced weighted point sets (deterministic quadrature, no sampling).

A shape maps parameters ``[B, P]`` to points ``[B, N, 2]`` and weights ``[B, N]`` (each row sums
to 1), differentiably. I.i.d. samples of a shape add a noise floor of their own to the EMD
(0.037 for a 100-point random ring vs 0.002 evenly spaced; see the package notes), so every
shape here uses evenly spaced points with quadrature weights.

User shapes follow the :class:`Shape` protocol: ``n_params``, ``param_names``, ``__call__`` and
``initial_params``.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Shape(Protocol):
    """What :func:`emd_lipschitz.fit_shape` needs from a shape."""

    n_params: int
    param_names: tuple[str, ...]

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """``params [B, P]`` -> (points ``[B, N, 2]``, weights ``[B, N]`` summing to 1 per row)."""
        ...

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        """A starting point ``[P]`` for one event (points ``[n, 2]``, weights ``[n]``)."""
        ...


def _centroid(x: Tensor, a: Tensor) -> Tensor:
    return (a[:, None] * x).sum(0) / a.sum()


def _mean_radius(x: Tensor, a: Tensor) -> Tensor:
    return ((a * (x - _centroid(x, a)).norm(dim=1)).sum() / a.sum()).clamp_min(1e-6)


def _check_count(n: int, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    return n


class Ring:
    """Circle with centre (cx, cy) and radius r = exp(log_r), ``n`` evenly spaced points of weight 1/n."""

    param_names = ("cx", "cy", "log_r")
    n_params = 3

    def __init__(self, n: int = 200) -> None:
        self.n = _check_count(n)

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        t = torch.arange(self.n, dtype=params.dtype, device=params.device) * (2 * math.pi / self.n)
        unit = torch.stack([torch.cos(t), torch.sin(t)], -1)
        points = params[:, None, :2] + params[:, 2, None, None].exp() * unit
        return points, torch.full(points.shape[:2], 1.0 / self.n, dtype=params.dtype, device=params.device)

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        c = _centroid(x, a)
        return torch.stack([c[0], c[1], (0.5 * _mean_radius(x, a)).log()])

    @staticmethod
    def true_params(cx: float, cy: float, r: float) -> Tensor:
        return torch.tensor([cx, cy, math.log(r)], dtype=torch.float64)


class Ellipse:
    """Ellipse with centre, semi-axes exp(log_a), exp(log_b) and rotation angle ``theta``.

    ``n`` points evenly spaced in the parameter t with weights proportional to the arc-length
    element ``|dp/dt|``: the quadrature of the uniform density along the curve.
    """

    param_names = ("cx", "cy", "log_a", "log_b", "theta")
    n_params = 5

    def __init__(self, n: int = 200) -> None:
        self.n = _check_count(n)

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        t = torch.arange(self.n, dtype=params.dtype, device=params.device) * (2 * math.pi / self.n)
        ax, bx = params[:, 2:3].exp(), params[:, 3:4].exp()
        u, v = ax * torch.cos(t), bx * torch.sin(t)  # [B, n]
        cos, sin = torch.cos(params[:, 4:5]), torch.sin(params[:, 4:5])
        points = torch.stack([params[:, 0:1] + cos * u - sin * v, params[:, 1:2] + sin * u + cos * v], -1)
        speed = torch.sqrt((ax * torch.sin(t)) ** 2 + (bx * torch.cos(t)) ** 2)
        return points, speed / speed.sum(1, keepdim=True)

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        c = _centroid(x, a)
        d = x - c
        cov = (a[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0) / a.sum()
        evals, evecs = torch.linalg.eigh(cov)
        # A uniform ellipse with semi-axis s has variance s^2 / 2 along it.
        sa, sb = (2 * evals[1].clamp_min(1e-12)).sqrt(), (2 * evals[0].clamp_min(1e-12)).sqrt()
        theta = torch.atan2(evecs[1, 1], evecs[0, 1])
        return torch.stack([c[0], c[1], sa.log(), sb.log(), theta])


class Disk:
    """Uniform disk of radius exp(log_r): ``n`` points on a Vogel (sunflower) spiral, weight 1/n."""

    param_names = ("cx", "cy", "log_r")
    n_params = 3

    def __init__(self, n: int = 300) -> None:
        self.n = _check_count(n)

    def unit_points(self, dtype: torch.dtype = torch.float64) -> Tensor:
        k = torch.arange(self.n, dtype=dtype)
        rho = torch.sqrt((k + 0.5) / self.n)
        phi = k * math.pi * (3.0 - math.sqrt(5.0))
        return torch.stack([rho * torch.cos(phi), rho * torch.sin(phi)], -1)

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        unit = self.unit_points(params.dtype).to(params.device)
        points = params[:, None, :2] + params[:, 2, None, None].exp() * unit
        return points, torch.full(points.shape[:2], 1.0 / self.n, dtype=params.dtype, device=params.device)

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        c = _centroid(x, a)
        return torch.stack([c[0], c[1], (1.5 * _mean_radius(x, a)).log()])


class Segment:
    """Line segment from (x0, y0) to (x1, y1): ``n`` points at the midpoints of n equal pieces."""

    param_names = ("x0", "y0", "x1", "y1")
    n_params = 4

    def __init__(self, n: int = 100) -> None:
        self.n = _check_count(n)

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        s = (torch.arange(self.n, dtype=params.dtype, device=params.device) + 0.5) / self.n
        p0, p1 = params[:, None, 0:2], params[:, None, 2:4]
        points = p0 + s[None, :, None] * (p1 - p0)
        return points, torch.full(points.shape[:2], 1.0 / self.n, dtype=params.dtype, device=params.device)

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        e = Ellipse.initial_params(Ellipse(), x, a)
        half = e[2].exp() * 0.8
        dx, dy = half * torch.cos(e[4]), half * torch.sin(e[4])
        return torch.stack([e[0] - dx, e[1] - dy, e[0] + dx, e[1] + dy])


class Triangle:
    """Triangle outline A, B, C with ``n_per_edge`` points per edge, all of equal weight (the paper's shape)."""

    param_names = ("ax", "ay", "bx", "by", "cx", "cy")
    n_params = 6

    def __init__(self, n_per_edge: int = 100) -> None:
        self.n_per_edge = _check_count(n_per_edge, "n_per_edge")

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        s = torch.arange(self.n_per_edge, dtype=params.dtype, device=params.device) / self.n_per_edge
        v = params.view(-1, 3, 2)
        edges = [v[:, i, None, :] + s[None, :, None] * (v[:, (i + 1) % 3, None, :] - v[:, i, None, :]) for i in range(3)]
        points = torch.cat(edges, 1)
        return points, torch.full(points.shape[:2], 1.0 / points.shape[1], dtype=params.dtype, device=params.device)

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        c = _centroid(x, a)
        r = _mean_radius(x, a)
        angles = torch.tensor([math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3], dtype=x.dtype)
        return torch.stack([c[0] + r * torch.cos(angles), c[1] + r * torch.sin(angles)], -1).reshape(-1)


class WeightedPoints:
    """``k`` points; weights equal (``free_weights=False``) or softmax of ``k`` logits."""

    def __init__(self, k: int, *, free_weights: bool = False) -> None:
        self.k = _check_count(k, "k")
        self.free_weights = bool(free_weights)
        names = [f"{c}{i}" for i in range(self.k) for c in ("x", "y")]
        if self.free_weights:
            names += [f"logit{i}" for i in range(self.k)]
        self.param_names = tuple(names)
        self.n_params = len(names)

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        points = params[:, : 2 * self.k].view(-1, self.k, 2)
        if self.free_weights:
            weights = torch.softmax(params[:, 2 * self.k :], 1)
        else:
            weights = torch.full((params.shape[0], self.k), 1.0 / self.k, dtype=params.dtype, device=params.device)
        return points, weights

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        from emd_lipschitz._cluster import kmeans

        centres, _ = kmeans(x.detach().cpu().numpy(), a.detach().cpu().numpy(), self.k, seed=0)
        p = torch.as_tensor(centres, dtype=x.dtype).reshape(-1)
        if self.free_weights:
            p = torch.cat([p, torch.zeros(self.k, dtype=x.dtype)])
        return p


class Sum:
    """A mixture of shapes: parameters concatenated, plus ``len(shapes)`` logits for the mixture
    weights (softmax) unless ``fractions`` fixes them."""

    def __init__(self, *shapes: Shape, fractions: tuple[float, ...] | None = None) -> None:
        if len(shapes) < 1:
            raise ValueError("Sum needs at least one shape")
        self.shapes = shapes
        if fractions is not None:
            if len(fractions) != len(shapes) or any(f < 0 for f in fractions) or sum(fractions) <= 0:
                raise ValueError(f"fractions must be {len(shapes)} non-negative numbers with a positive sum, got {fractions}")
            fractions = tuple(float(f) / sum(fractions) for f in fractions)
        self.fractions = fractions
        names: list[str] = []
        for i, s in enumerate(shapes):
            names += [f"s{i}.{n}" for n in s.param_names]
        if fractions is None:
            names += [f"logit{i}" for i in range(len(shapes))]
        self.param_names = tuple(names)
        self.n_params = len(names)

    def __call__(self, params: Tensor) -> tuple[Tensor, Tensor]:
        points, weights, start = [], [], 0
        for s in self.shapes:
            p, w = s(params[:, start : start + s.n_params])
            points.append(p)
            weights.append(w)
            start += s.n_params
        if self.fractions is None:
            mix = torch.softmax(params[:, start:], 1)
        else:
            mix = torch.tensor(self.fractions, dtype=params.dtype, device=params.device).expand(params.shape[0], -1)
        weights = [w * mix[:, i : i + 1] for i, w in enumerate(weights)]
        return torch.cat(points, 1), torch.cat(weights, 1)

    def initial_params(self, x: Tensor, a: Tensor) -> Tensor:
        parts = [s.initial_params(x, a) for s in self.shapes]
        if self.fractions is None:
            parts.append(torch.zeros(len(self.shapes), dtype=x.dtype))
        return torch.cat(parts)


def shape_points(shape: Shape, params: object) -> tuple[Tensor, Tensor]:
    """Points and weights of one parameter vector (``[P]``) as ``[N, 2]``, ``[N]`` float64 tensors."""
    p = torch.as_tensor(params, dtype=torch.float64).reshape(1, -1)
    if p.shape[1] != shape.n_params:
        raise ValueError(f"{type(shape).__name__} takes {shape.n_params} parameters {shape.param_names}, got {p.shape[1]}")
    points, weights = shape(p)
    return points[0], weights[0]
