"""Functional dimension [SMBK26]: the rank of the Jacobian of the outputs at sample inputs with
respect to ``theta`` (analytic back-propagation in numpy, vectorised over the samples), compared
with ``#params - dim K`` (Section 5; the references are in
:mod:`identifiable.theory.identifiability`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from identifiable.models import MLP
from identifiable.numbers import (
    RANK_RTOL,
    validates_arguments,
)

__all__ = ["functional_dimension", "jacobian", "FunctionalDimension",
           "FUNCTIONAL_DIMENSION_MAX_BYTES"]


# ---------------------------------------------------------------------------------- dimension
@dataclass
class FunctionalDimension:
    """Rank of the Jacobian ``d f(x_s; theta) / d theta`` over sample inputs ``x_s``."""

    rank: int
    singular_values: np.ndarray
    gap: float
    threshold: float
    n_params: int
    n_samples: int
    symmetry_dimension: int | None
    expected: int | None
    expected_reason: str
    details: dict = field(default_factory=dict)

    @property
    def predicted_by_symmetry(self) -> int | None:
        """``#params - dim K``."""
        return None if self.symmetry_dimension is None else self.n_params - \
            self.symmetry_dimension

    def __repr__(self) -> str:
        return (f"FunctionalDimension(rank={self.rank} of {self.n_params} params, expected="
                f"{self.expected}, gap={self.gap:.3g}, n_samples={self.n_samples})")

    def to_dict(self) -> dict:
        return {"rank": self.rank, "n_params": self.n_params, "expected": self.expected,
                "expected_reason": self.expected_reason, "gap": self.gap,
                "threshold": self.threshold, "n_samples": self.n_samples,
                "symmetry_dimension": self.symmetry_dimension,
                "singular_values_tail": self.singular_values[-8:].tolist()}


def jacobian(model: MLP, theta: Any, X: np.ndarray) -> np.ndarray:
    """``d f(x; theta) / d theta`` for every row of X: shape ``(n * d_L, n_params)``, columns in
    the order of :meth:`Theta.flat` (``W_1`` row-major, ``b_1``, ``W_2``, ...; no biases for a
    bias-free MLP). Analytic back-propagation, vectorised over the samples."""
    theta = model.check_theta(theta).numeric
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    L = model.depth
    hs = [X]
    zs = []
    for i, (W, b) in enumerate(theta):
        Z = hs[-1] @ np.asarray(W).T + np.asarray(b)[None, :]
        zs.append(Z)
        if i < L - 1:
            hs.append(model.activations[i](Z))
    dL = model.widths[-1]
    G = np.broadcast_to(np.eye(dL), (n, dL, dL))  # d out / d z_L
    blocks: list[np.ndarray] = []
    for i in range(L - 1, -1, -1):
        JW = np.einsum("nao,nj->naoj", G, hs[i]).reshape(n, dL, -1)
        parts = [JW] + ([G] if model.bias else [])
        blocks = parts + blocks
        if i > 0:
            W = np.asarray(theta.weights[i])
            G = (G @ W) * model.activations[i - 1].derivative_values(zs[i - 1])[:, None, :]
    J = np.concatenate(blocks, axis=2)
    return J.reshape(n * dL, -1)


def _expected(model: MLP) -> tuple[int | None, str]:
    P = model.n_params
    fam, arg = model.activation_family
    hidden = model.hidden_widths
    d0, dL = model.widths[0], model.widths[-1]
    if fam in ("tanh", "sigmoid"):
        return P, f"{fam}: K finite, generic parameters identifiable up to finitely many: #params"
    if fam == "linear":
        r = min(model.widths)
        val = r * (d0 + dL - r) + (dL if model.bias else 0)
        return val, (f"linear: matrices of rank <= {r} ({r}(d_0 + d_L - {r}))"
                     + (" plus the output constant" if model.bias else ""))
    if fam == "power":
        D = int(arg) ** (model.depth - 1)
        amb = dL * (math.comb(d0 + D, D) if model.bias else math.comb(d0 + D - 1, D))
        sym = P - sum(hidden)
        return min(sym, amb), (f"x^{arg}: min(#params - #hidden = {sym}, dim of polynomial maps "
                               f"of degree {D} = {amb}) (expected; some architectures are "
                               "defective)")
    if fam == "relu":
        if d0 >= 2 and all(h >= 2 for h in hidden):
            return P - sum(hidden), ("ReLU, input and hidden widths >= 2: #params - #hidden "
                                     "(Grillo & Montufar 2026), the maximum over parameters, "
                                     "attained on an open set; dead, always-active or "
                                     "otherwise degenerate neurons give less")
        return None, "ReLU with a width-1 input or hidden layer: no prediction"
    return None, "no prediction for this activation"


#: default memory budget of :func:`functional_dimension` (the Jacobian and its SVD), bytes
FUNCTIONAL_DIMENSION_MAX_BYTES = 2 * 2**30


@validates_arguments
def functional_dimension(model: MLP, theta: Any, n_samples: int | None = None, *,
                         seed: int = 0, scale: float = 2.0, rtol: float | None = None,
                         max_bytes: int = FUNCTIONAL_DIMENSION_MAX_BYTES) -> FunctionalDimension:
    """The rank of the Jacobian of the outputs at ``n_samples`` random inputs
    (``N(0, scale^2)``) with respect to ``theta``, with the singular values and the gap
    ``s_rank / s_(rank+1)`` at the threshold ``rtol * s_max`` (default ``1e-10``); compared with
    ``#params - dim K`` and, where known, the predicted dimension (``.expected``).

    Cost: the Jacobian has ``m = n_samples * d_L`` rows and ``P = #params`` columns, so memory
    ``8 m P`` bytes (about twice that at the peak of back-propagation) and the SVD
    ``O(m P min(m, P))`` time (``n_samples`` defaults to ``max(32, 3 P / d_L)``, so both grow
    like ``P^2`` and ``P^3``). An estimate above ``max_bytes`` (default 2 GiB) is refused
    before anything is allocated: pass fewer ``n_samples`` or a larger ``max_bytes``."""
    if not isinstance(model, MLP):
        raise TypeError(f"model: expected an MLP, got {type(model).__name__}")
    theta = model.check_theta(theta)
    P = model.n_params
    dL = model.widths[-1]
    if n_samples is None:
        n_samples = max(32, int(math.ceil(3 * P / dL)))
    if int(n_samples) < 1:
        raise ValueError(f"n_samples: expected a positive integer, got {n_samples}")
    need = 2 * 8 * int(n_samples) * dL * P
    if need > max_bytes:
        raise ValueError(
            f"functional_dimension: the Jacobian of {int(n_samples)} samples x {dL} outputs x "
            f"{P} parameters needs about {need / 2**30:.3g} GiB, above max_bytes = "
            f"{max_bytes / 2**30:.3g} GiB; pass fewer n_samples (at least {-(-P // dL)} to "
            "see every direction) or a larger max_bytes")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((int(n_samples), model.widths[0])) * scale
    J = jacobian(model, theta, X)
    s = np.linalg.svd(J, compute_uv=False) if J.size else np.zeros(0)
    rtol = RANK_RTOL if rtol is None else rtol
    thr = (s[0] if s.size else 0.0) * rtol
    rank = int(np.sum(s > thr))
    if 0 < rank < s.size:
        with np.errstate(over="ignore", divide="ignore"):
            gap = float(s[rank - 1] / s[rank]) if s[rank] > 0 else float("inf")
    else:
        gap = float("inf")
    try:
        symdim: int | None = model.symmetry_dimension
    except ValueError:
        symdim = None
    exp, why = _expected(model)
    return FunctionalDimension(rank, s, gap, float(thr), P, int(n_samples), symdim, exp, why,
                               {"jacobian_shape": J.shape})


