"""Extension beyond [SMBK26] (Section 7 names skip connections as open): the latent symmetry
group of a residual MLP ``h_0 = E x + e``, ``h_b = h_{b-1} + U_b sigma(V_b h_{b-1} + c_b)``,
``y = O h_B + o`` is ``K = Aff(d_stream) x K_1 x ... x K_B`` (``GL(d_stream)`` without
biases): one affine change of coordinates ``h -> S h + t`` shared by every stream point (the
skip has no parameter to absorb a different one per block) times the intertwiner group of
eq. (8) on every block's hidden layer. Derivation: :mod:`identifiable.models.residual`.

How the claim is checked, on finitely many cases (hence ``checked``):

1. **K acts**: for random exact ``theta`` and random exact ``k`` (tanh; with and without
   biases), ``f(x; k . theta) = f(x; theta)`` exactly at rational inputs (an own exact forward
   pass, tanh kept symbolic), and eq. (3) holds sublayer by sublayer
   (:meth:`ResidualMLP.check_symmetry`, exact).
2. **One S for all blocks**: changing the basis of the stream after block 1 only changes the
   function (numerically, by far more than rounding).
3. **No larger group, generically**: for ``d_stream <= min(d_in, d_out)`` the Jacobian of the
   parameter-to-function map has rank ``#params - dim K`` at random parameters (a clear
   singular-value gap), so near them the fibres are the K-orbits. (For ``d_stream > d_out`` or
   ``> d_in`` the rank is lower by ``m_B (d_s - d_out) + m_1 (d_s - d_in)``: invisible
   directions no group explains, see ``tests/test_residual.py``.)
4. **align recovers k**: ``align(theta, k . theta)`` returns ``k`` exactly (unique).
"""

import numpy as np
import sympy as sp

from identifiable.claims import claim
from identifiable.models.residual import ResidualMLP
from identifiable.theory.residual import align_residual, functional_dimension_residual
from identifiable.verdict import Verdict

ARCHS = [(2, 2, [2, 3], 2, True), (3, 3, [2, 2], 3, True), (3, 2, [3], 2, False)]
RANK_CASES = [(3, 2, [3, 2], 2, True), (3, 3, [4, 4], 3, True), (4, 3, [3, 3], 3, False),
              (3, 3, [2, 2, 2], 4, True)]


def _exact_out(theta, x):
    h = sp.Matrix(theta.embed[0]) * x + sp.Matrix(theta.embed[1])
    for V, c, U in theta.blocks:
        h = h + sp.Matrix(U) * (sp.Matrix(V) * h + sp.Matrix(c)).applyfunc(sp.tanh)
    return sp.Matrix(theta.readout[0]) * h + sp.Matrix(theta.readout[1])


@claim(id="ext.residual-latent-group", source="extension beyond [SMBK26] (Sec. 7: skip "
       "connections)", statement="residual MLP: K = Aff(d_stream) (GL without biases) shared "
       "by all stream points x K_b (eq. (8)) per block; no larger group acts generically",
       expected="checked", method="exact invariance, Jacobian rank = #params - dim K, exact "
                                  "align on planted cases")
def check() -> Verdict:
    rng = np.random.default_rng(14)
    n = 0
    for a, (d_in, d_s, blocks, d_out, bias) in enumerate(ARCHS):
        m = ResidualMLP(d_in, d_s, blocks, d_out, bias=bias)
        for seed in range(2):
            th = m.random_params(10 * a + seed, exact=True)
            k = m.random_k(100 + 10 * a + seed, exact=True)
            th2 = m.transform(th, k)
            x = sp.Matrix([sp.Rational(int(rng.integers(-6, 7)), 3) for _ in range(d_in)])
            if any(sp.expand(v) != 0 for v in _exact_out(th2, x) - _exact_out(th, x)):
                return Verdict.refuted("f(x; k . theta) != f(x; theta)",
                                       counterexample={"arch": a, "seed": seed, "x": list(x)})
            v = m.check_symmetry(th, th2, k)
            if v.status != "proved":
                return Verdict.refuted(f"eq. (3) not proved: {v.reason}",
                                       counterexample={"arch": a, "seed": seed})
            al = align_residual(m, th, th2)
            if al.status != "proved" or not all(
                    sp.Matrix(p) == sp.Matrix(q) for p, q in zip(al.witness, k)):
                return Verdict.refuted(f"align did not recover k: {al.status}: {al.reason}",
                                       counterexample={"arch": a, "seed": seed})
            n += 1
    # one S for every stream point
    m = ResidualMLP(2, 2, [3, 3], 2)
    th = m.random_params(3)
    S = np.array([[1.0, 2.0], [0.5, -1.0]])
    (V1, c1, U1), (V2, c2, U2) = th.blocks
    bad = m.params(th.embed[0], [V1, V2 @ np.linalg.inv(S)], [U1, S @ U2],
                   th.readout[0] @ np.linalg.inv(S), e=th.embed[1], cs=[c1, c2],
                   o=th.readout[1])
    X = rng.standard_normal((32, 2))
    if np.max(np.abs(m.forward(X, bad) - m.forward(X, th))) < 1e-3:
        return Verdict.refuted("a per-block change of basis kept the function",
                               counterexample={"S": S.tolist()})
    gaps = []
    for j, (d_in, d_s, blocks, d_out, bias) in enumerate(RANK_CASES):
        m = ResidualMLP(d_in, d_s, blocks, d_out, bias=bias)
        fd = functional_dimension_residual(m, m.random_params(j), seed=j)
        if fd.rank != fd.n_params - m.symmetry_dimension or fd.gap < 1e4:
            return Verdict.refuted(f"Jacobian rank {fd.rank} != #params - dim K = "
                                   f"{fd.n_params - m.symmetry_dimension} (gap {fd.gap:.3g})",
                                   counterexample={"arch": (d_in, d_s, blocks, d_out, bias)})
        gaps.append(fd.gap)
        n += 1
    return Verdict.checked(f"K acts exactly and align recovers k on {len(ARCHS) * 2} exact "
                           f"cases; rank d f/d theta = #params - dim K on {len(RANK_CASES)} "
                           f"architectures (smallest gap {min(gaps):.3g}); a per-block S "
                           "changes the function (extension beyond [SMBK26])",
                           n_samples=n, tol=1e-10, witness={"min_gap": min(gaps)})
