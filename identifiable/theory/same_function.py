"""``f(.; theta) = f(.; theta2)``: deciding that two parameters of an MLP compute the same function
(exact where the inputs are exact, sampled otherwise), the relation every rewrite of the theory
(Remark 5.2, Corollary 5.3, :func:`~identifiable.theory.submodels.reduce`) must keep.

It sits beside :mod:`identifiable.theory.align`: for exact inputs it first tries
:func:`~identifiable.theory.align.align` (``theta2 = k . theta`` proves the functions equal).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.models import MLP, Theta
from identifiable.numbers import (
    FLOAT64_RESOLUTION,
    rationalise,
    sample_tol,
    validates_arguments,
)
from identifiable.theory.align import align, check_pair
from identifiable.verdict import Verdict

__all__ = ["same_function", "entry_tolerance_effect"]


# ---------------------------------------------------------------------------------- same function
def entry_tolerance_effect(model: MLP, theta: Theta, X: np.ndarray, param_tol: float) -> float:
    """First-order bound on ``max_x |f(x; theta') - f(x; theta)|`` over the rows of ``X`` when
    ``theta'`` differs from ``theta`` in entries of size at most ``param_tol`` (e.g. entries a
    float :func:`~identifiable.theory.submodels.reduce` treated as zero).

    A change of at most ``t`` in each entry of ``W_i, b_i`` moves ``z_i`` by at most
    ``t (||h_{i-1}||_1 + 1)``; it reaches the output through ``|sigma'| <= s_j`` and
    ``||W_j||_inf`` of the later layers, where ``s_j`` is the largest slope of the activation
    over the sampled pre-activations (a local Lipschitz constant, estimated by central
    differences)."""
    th = theta.numeric
    hs = model.latents(X, th)
    zs = model.pre_activations(X, th)
    gains = []
    for layer, z in zip(model.layers, zs):
        act = getattr(layer, "activation", None)
        if act is None:
            gains.append(1.0)
            continue
        lo, hi = float(np.min(z, initial=0.0)) - 1.0, float(np.max(z, initial=0.0)) + 1.0
        grid = np.linspace(lo, hi, 2049)
        eps = 1e-4 * max(1.0, hi - lo)
        slope = np.abs(act(grid + eps) - act(grid - eps)) / (2 * eps)
        gains.append(float(np.max(slope)) if np.all(np.isfinite(slope)) else np.inf)
    L = len(zs)
    total = np.zeros(X.shape[0])
    for i in range(L):
        # effect on z_i, pushed through sigma_i, W_{i+1}, sigma_{i+1}, ...
        g = gains[i]
        for j in range(i + 1, L):
            g *= float(np.max(np.sum(np.abs(th.weights[j]), axis=1), initial=0.0)) * gains[j]
        total += param_tol * (np.sum(np.abs(hs[i]), axis=1) + 1.0) * g
    return float(np.max(total, initial=0.0))


@validates_arguments
def same_function(model: MLP, theta: Any, theta2: Any, *, n_samples: int = 256,
                  tol: float | None = None, seed: int = 0, exact_limit: int = 200,
                  param_tol: float | None = None) -> Verdict:
    """Decide ``f(.; theta) = f(.; theta2)``.

    Exact inputs with at most ``exact_limit`` parameters: ``proved`` when :func:`align` proves
    ``theta2 = k . theta`` (then eq. (3) at every layer gives equal functions) or when the two
    sympy expressions agree (:func:`identifiable.diagrams.expr_is_zero`), ``refuted`` with an
    input ``x`` where they differ (re-evaluated to 30 digits). Otherwise ``checked`` on
    ``n_samples`` random inputs (with the tolerance), or ``refuted`` with the input.

    ``param_tol``: for float parameters that are only claimed equal up to entries of size
    ``param_tol`` treated as zero (a float ``reduce``), the default tolerance is raised by the
    first-order effect of such entries on the sampled inputs (:func:`entry_tolerance_effect`),
    and the tolerance used is recorded in the verdict.
    """
    from identifiable.diagrams import expr_is_zero

    theta, theta2, exact = check_pair(model, theta, theta2)
    x = sp.Matrix([sp.Symbol(f"x{j + 1}", real=True) for j in range(model.widths[0])])
    if exact and model.n_params <= exact_limit:
        v = align(model, theta, theta2)
        if v.status == "proved":
            return Verdict.proved("theta2 = k . theta (align, Definition 3.4); eq. (3) at every "
                                  "layer gives f(.; theta2) = f(.; theta)", witness=v.witness)
        f1, f2 = model.symbolic(theta, x), model.symbolic(theta2, x)
        weakest = None
        for o in range(f1.rows):
            vz = expr_is_zero(f1[o] - f2[o], list(x), n_probe=16)
            if vz.status == "refuted":
                pt = vz.counterexample["point"]
                xs = [pt.get(str(s), sp.Integer(0)) for s in x]
                return Verdict.refuted(
                    f"f(x; theta) and f(x; theta2) differ at output {o} (exact evaluation)",
                    counterexample={"x": xs, "output": o, "difference": vz.counterexample[
                        "value"]})
            if vz.status != "proved":
                weakest = vz
        if weakest is None:
            return Verdict.proved("the end-to-end sympy expressions agree exactly")
    rng = np.random.default_rng(seed)
    d0 = model.widths[0]
    X = np.vstack([rng.standard_normal((n_samples // 2, d0)),
                   rng.standard_normal((n_samples - n_samples // 2, d0)) * 4.0])
    Y1 = model(X, theta)
    Y2 = model(X, theta2)
    tl = sample_tol(tol, Y1)
    if tol is None and param_tol is not None and not exact:
        tl = max(tl, entry_tolerance_effect(model, theta, X, float(param_tol)))
    err = np.abs(Y1 - Y2)
    size = max(float(np.max(np.abs(Y1), initial=0.0)), float(np.max(np.abs(Y2), initial=0.0)))
    if (not exact and tl >= size and np.max(err, initial=0.0) <= tl
            and np.max(err, initial=0.0) > FLOAT64_RESOLUTION * max(1.0, size)):
        # a tolerance that covers the outputs themselves cannot tell two functions apart: a
        # "checked" here would be vacuous
        return Verdict.undecided(
            f"f(.; theta) and f(.; theta2) differ by up to {float(np.max(err)):.3g} on the "
            f"samples, but the tolerance {tl:.3g} is at least the size of the outputs "
            f"({size:.3g}): the comparison cannot tell the functions apart"
            + (" (the tolerance was raised by the effect of the entries treated as zero, "
               "param_tol)" if tol is None and param_tol is not None else ""), tol=tl)
    if np.max(err, initial=0.0) > tl and not exact:
        # float64 rounding alone can exceed a small tol: re-evaluate the worst inputs at 60
        # digits (floats at their exact binary values) before refuting
        worst_rows = [int(k) for k in np.argsort(-err.max(axis=1))[:3]]
        precise = {}
        for k in worst_rows:
            a = model.forward_precise(X[k], theta)
            b = model.forward_precise(X[k], theta2)
            precise[k] = float(max(abs(u - v) for u, v in zip(a, b)))
        confirmed = [k for k in worst_rows if precise[k] > tl]
        if not confirmed:
            return Verdict.undecided(
                f"f(.; theta) and f(.; theta2) differ by {float(np.max(err)):.3g} in float64, "
                f"but by at most {max(precise.values()):.3g} <= tol {tl:.2g} at 60 digits: "
                "float rounding exceeds the tolerance (raise tol)", tol=tl)
        err = err.copy()
        err[[k for k in worst_rows if k not in confirmed]] = 0.0
    if np.max(err, initial=0.0) > tl:
        j, o = np.unravel_index(int(np.argmax(err)), err.shape)
        xs = X[j]
        cex = {"x": xs.tolist(), "output": int(o), "f_theta": float(Y1[j, o]),
               "f_theta2": float(Y2[j, o])}
        if exact:
            xr = rationalise(xs)
            xm = sp.Matrix(xr)
            exact_diff = model.symbolic(theta, xm)[o] - model.symbolic(theta2, xm)[o]
            if not _zero.sign(exact_diff):  # 0 or undecided: no certified counterexample
                return Verdict.undecided("a numeric difference did not survive exact "
                                         "re-evaluation at a rational input", tol=tl)
            cex = {"x": xr, "output": int(o), "difference": float(sp.N(exact_diff, 30))}
        return Verdict.refuted(f"f(x; theta) and f(x; theta2) differ at output {o} by "
                               f"{err[j, o]:.3g}", counterexample=cex,
                               method="exact" if exact else "sampled", tol=None if exact else tl)
    return Verdict.checked("f(.; theta) = f(.; theta2) on random inputs", n_samples=n_samples,
                           tol=tl, max_difference=float(np.max(err, initial=0.0)))
