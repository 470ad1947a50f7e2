"""Two small optimizers written out by hand.

``torch.optim`` imports ``torch._dynamo`` on the first ``step()`` (about 13 s on a loaded 2-core
machine), which would dominate every short estimate, CLI call and test. These are the textbook
updates: Adam (Kingma & Ba) and L-BFGS (Nocedal & Wright, Alg. 7.4) with Armijo backtracking.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


class Adam:
    """Adam on a list of tensors (in place), with a settable learning rate."""

    def __init__(self, params: list[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr = float(lr)
        self.betas = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1 = 1 - b1**self.t
        c2 = 1 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m / c1, (v / c2).sqrt_().add_(self.eps), value=-self.lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def lbfgs_maximize(func: Callable[[Tensor], tuple[float, Tensor]], x0: Tensor, *, iters: int, history: int = 20) -> Tensor:
    """Maximize a smooth concave ``func(x) -> (value, gradient)`` from ``x0``; returns the last iterate."""
    x = x0.clone()
    value, grad = func(x)
    s_hist: list[Tensor] = []
    y_hist: list[Tensor] = []
    for _ in range(iters):
        # Two-loop recursion on the negated problem (minimize -func).
        q = -grad.clone()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            rho = 1.0 / float(y @ s)
            alpha = rho * float(s @ q)
            alphas.append((alpha, rho, s, y))
            q -= alpha * y
        if y_hist:
            gamma = float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
        else:
            gamma = 1.0 / max(float(grad.norm()), 1e-300)
        r = gamma * q
        for alpha, rho, s, y in reversed(alphas):
            beta = rho * float(y @ r)
            r += (alpha - beta) * s
        direction = -r  # ascent direction
        slope = float(grad @ direction)
        if not slope > 0:
            direction, slope = grad.clone(), float(grad @ grad)
            s_hist.clear()
            y_hist.clear()
        step = 1.0
        accepted = False
        for _ in range(30):
            candidate = x + step * direction
            new_value, new_grad = func(candidate)
            if math.isfinite(new_value) and new_value >= value + 1e-4 * step * slope:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            break
        s_vec = candidate - x
        y_vec = grad - new_grad  # gradient of the negated objective: -(new) - (-(old))
        if float(s_vec @ y_vec) > 1e-300:
            s_hist.append(s_vec)
            y_hist.append(y_vec)
            if len(s_hist) > history:
                s_hist.pop(0)
                y_hist.pop(0)
        improvement = new_value - value
        x, value, grad = candidate, new_value, new_grad
        if improvement <= 1e-15 * max(1.0, abs(value)):
            break
    return x


class intra_op_threads:  # noqa: N801 - used like a function: ``with intra_op_threads(1):``
    """Temporarily set torch's intra-op thread count (restored on exit); ``None`` leaves it alone.

    The critic's matrices are tiny (tens of units, hundreds of points): with more than one
    thread every op pays a synchronisation, and on a loaded machine the spinning threads made a
    100-step estimate 20x slower (6.4 s vs 0.27 s of CPU) in our measurements.
    """

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.previous: int | None = None

    def __enter__(self) -> None:
        if self.n is not None:
            self.previous = torch.get_num_threads()
            if self.previous != self.n:
                torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None and self.previous != self.n:
            torch.set_num_threads(self.previous)
