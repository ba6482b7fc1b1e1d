"""How far a network is from equivariance: a continuous measure of Definition 3.6 [SMBK26].

:func:`equivariance_error` evaluates ``f(g x)`` and ``rho_out(g) f(x)`` on a batch of inputs for
every element ``g`` of a finite group and summarises the differences. Per input ``x`` and
element ``g``:

* the **absolute error** is ``max_j |f(g x)_j - (rho_out(g) f(x))_j|`` (the largest output
  coordinate off);
* the **relative error** is ``||f(g x) - rho_out(g) f(x)||_2 / ||f(x)||_2``, relative to the
  size of the output at ``x`` (0 when both are 0, ``inf`` when only ``f(x)`` is 0).

The record (:class:`EquivarianceError`) holds the maximum, mean and median of both over every
input and every element of the group, and ``per_generator`` holds the same statistics for each
generator alone. It also records the dtype the network computed in and the default relative
tolerance of that dtype (one table, :data:`identifiable.numbers.TOLERANCE`: float32 ``1e-5``,
float64 ``1e-9``); :meth:`EquivarianceError.within` compares against it.

``f`` is a library model with its parameter (pass ``(model, theta)``), a ``torch.nn.Module``
(called on a tensor of its parameters' dtype, no gradients) or any callable mapping a batch
``(n, ...)`` to outputs ``(n, ...)``. Inputs and outputs are flattened row-major to apply the
representations, so an image network takes a ``Rep`` on ``C * H * W`` coordinates. This module
does not import torch (it recognises torch modules and tensors when torch is already loaded).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from identifiable.numbers import TOLERANCE, to_numpy, validate_count
from identifiable.theory.equivariance import group_pair

__all__ = ["ErrorStats", "EquivarianceError", "equivariance_error"]


@dataclass(frozen=True)
class ErrorStats:
    """Summary of the per-input errors (see the module docstring for the two errors)."""

    max_abs: float
    mean_abs: float
    median_abs: float
    max_rel: float
    mean_rel: float
    median_rel: float
    n: int

    @classmethod
    def of(cls, abs_err: np.ndarray, rel_err: np.ndarray) -> ErrorStats:
        a, r = np.ravel(abs_err), np.ravel(rel_err)
        return cls(float(a.max()), float(a.mean()), float(np.median(a)), float(r.max()),
                   float(r.mean()), float(np.median(r)), int(a.size))


@dataclass(frozen=True)
class EquivarianceError:
    """The errors of ``f(g x) = rho_out(g) f(x)`` over a finite group (Definition 3.6 [SMBK26]).

    The fields ``max_abs`` ... ``median_rel`` are over every input and every element of the
    group but the identity (``n_elements`` of them; the identity's error is 0 by construction
    and would drag the means and medians towards 0), or over the generators when the group is
    large (``over`` is ``"group"`` or ``"generators"``); ``per_generator`` maps each
    generator's name (``"s0"``, ``"s1"``, ...) to its :class:`ErrorStats`. ``dtype`` is the
    dtype ``f`` computed in and ``rtol`` the default relative tolerance of that dtype.
    """

    max_abs: float
    mean_abs: float
    median_abs: float
    max_rel: float
    mean_rel: float
    median_rel: float
    per_generator: dict[str, ErrorStats]
    n_samples: int
    n_elements: int
    dtype: str
    rtol: float
    over: str = "group"
    output_scale: float = field(default=0.0)

    def within(self, rtol: float | None = None) -> bool:
        """Every relative error at most ``rtol`` (default: the dtype's tolerance)."""
        return self.max_rel <= (self.rtol if rtol is None else float(rtol))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_generator"] = {k: asdict(v) for k, v in self.per_generator.items()}
        return d

    def __str__(self) -> str:
        what = ("non-identity group element" if self.over == "group" else "generator")
        what += "" if self.n_elements == 1 else "s"
        return (f"equivariance error over {self.n_elements} {what} x {self.n_samples} inputs "
                f"({self.dtype}): relative max {self.max_rel:.3g}, mean {self.mean_rel:.3g}, "
                f"median {self.median_rel:.3g}; absolute max {self.max_abs:.3g}, mean "
                f"{self.mean_abs:.3g}, median {self.median_abs:.3g}")


def _torch_module():
    return sys.modules.get("torch")


def _as_function(f: Any) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """``f`` as a numpy batch function and the dtype it computes in."""
    if isinstance(f, tuple) and len(f) == 2 and hasattr(f[0], "forward"):
        model, theta = f
        theta = model.check_theta(theta)
        th = theta.numeric if getattr(theta, "exact", False) else theta
        return (lambda X: np.asarray(model.forward(X, th), dtype=np.float64)), "float64"
    torch = _torch_module()
    if torch is not None and isinstance(f, torch.nn.Module):
        p = next(iter(f.parameters()), None)
        tdtype = p.dtype if p is not None else torch.get_default_dtype()
        device = p.device if p is not None else torch.device("cpu")

        def run(X: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = f(torch.as_tensor(X, dtype=tdtype, device=device))
            return out.detach().to("cpu", torch.float64).numpy()

        return run, str(tdtype).replace("torch.", "")
    if callable(f):
        def call(X: np.ndarray) -> np.ndarray:
            out = f(X)
            if torch is not None and isinstance(out, torch.Tensor):
                out = out.detach().to("cpu").numpy()
            return np.asarray(out)
        return call, ""
    raise TypeError(f"f: expected (model, theta), a torch.nn.Module or a callable, got "
                    f"{type(f).__name__}")


def equivariance_error(f: Any, rep_in: Any, rep_out: Any = None, x: Any = None, *,
                       n_samples: int = 256, seed: int = 0,
                       max_elements: int = 64) -> EquivarianceError:
    """Measure ``f(g x) - rho_out(g) f(x)`` over the finite group generated by ``rep_in``
    (Definition 3.6 [SMBK26]; ``rep_out`` default trivial, i.e. invariance).

    Parameters
    ----------
    f:
        ``(model, theta)``, a ``torch.nn.Module`` or a callable on batches.
    rep_in, rep_out:
        A :class:`~identifiable.groups.Rep` or a list of generator matrices on the flattened
        input / output; the j-th generators correspond.
    x:
        Inputs ``(n, ...)`` (numpy array or torch tensor); when omitted, ``n_samples`` standard
        normal inputs of shape ``(n_samples, dim rep_in)`` drawn with ``seed``.

    max_elements:
        The group-wide statistics evaluate every element of G when it has at most this many
        (else they pool the generators' errors; ``over`` says which).

    Returns
    -------
    EquivarianceError
        The record; ``ValueError`` naming the argument when the representations do not fit the
        input or output size.
    """
    fn, dtype = _as_function(f)
    if x is None:
        n = validate_count(n_samples, "n_samples")
        gens = rep_in.generators if hasattr(rep_in, "generators") else rep_in
        first = gens[0] if isinstance(gens, (list, tuple)) else gens
        d_in = int(np.shape(to_numpy(first))[0])
        X = np.random.default_rng(seed).standard_normal((n, d_in))
    else:
        torch = _torch_module()
        if torch is not None and isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float64).numpy()
        X = np.asarray(x, dtype=np.float64)
        if X.ndim < 2 or X.shape[0] == 0:
            raise ValueError(f"x: expected a batch (n, ...) with n >= 1, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("x: contains NaN or inf")
    shape, n = X.shape[1:], X.shape[0]
    flat = X.reshape(n, -1)
    FX = np.asarray(fn(X), dtype=np.float64)
    if FX.ndim == 0 or FX.shape[0] != n:
        raise ValueError(f"f: returned shape {FX.shape} for a batch of {n} inputs")
    fx = FX.reshape(n, -1)
    G = group_pair(rep_in, rep_out, flat.shape[1], fx.shape[1])
    d_in = flat.shape[1]
    dtype = dtype or str(FX.dtype)
    rtol = TOLERANCE.get(dtype, TOLERANCE["float64"])
    fnorm = np.linalg.norm(fx, axis=1)

    def errors(gi: np.ndarray, go: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = (flat @ gi.T).reshape((n, *shape))
        lhs = np.asarray(fn(gx), dtype=np.float64).reshape(n, -1)
        rhs = fx @ go.T
        diff = lhs - rhs
        abs_err = np.abs(diff).max(axis=1) if diff.shape[1] else np.zeros(n)
        dn = np.linalg.norm(diff, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(fnorm > 0, dn / np.where(fnorm > 0, fnorm, 1.0),
                           np.where(dn > 0, np.inf, 0.0))
        return abs_err, rel

    per_gen = {}
    for word, gi, go in zip(G.words, G.gin, G.gout):
        per_gen[word] = ErrorStats.of(*errors(to_numpy(gi), to_numpy(go)))
    if G.group.order <= max_elements:
        over = "group"
        all_abs, all_rel = [], []
        elems = G.group.elements
        for M in (elems[1:] if len(elems) > 1 else elems):  # the identity's error is 0 by
            M = to_numpy(M)                                  # construction: left out
            a, r = errors(M[:d_in, :d_in], M[d_in:, d_in:])
            all_abs.append(a)
            all_rel.append(r)
        tot = ErrorStats.of(np.concatenate(all_abs), np.concatenate(all_rel))
    else:  # too many elements to evaluate each: the generators' errors, pooled
        over = "generators"
        tot = _pool(list(per_gen.values()))
    return EquivarianceError(tot.max_abs, tot.mean_abs, tot.median_abs, tot.max_rel,
                             tot.mean_rel, tot.median_rel, per_gen, n,
                             max(G.group.order - 1, 1) if over == "group" else len(per_gen),
                             dtype, rtol,
                             over, float(np.max(np.abs(fx))) if fx.size else 0.0)


def _pool(stats: list[ErrorStats]) -> ErrorStats:
    """Pool per-generator statistics (exact for max and mean; the median of the medians
    stands in for the pooled median)."""
    n = sum(s.n for s in stats)
    return ErrorStats(max(s.max_abs for s in stats), sum(s.mean_abs * s.n for s in stats) / n,
                      float(np.median([s.median_abs for s in stats])),
                      max(s.max_rel for s in stats), sum(s.mean_rel * s.n for s in stats) / n,
                      float(np.median([s.median_rel for s in stats])), n)
