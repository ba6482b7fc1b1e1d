"""Residual MLPs (extension beyond [SMBK26]): the derived latent group, exact align, reduce,
functional dimension and the Theorem 4.1 algorithm on residual networks.

Ground truths independent of the library: an own forward pass (numpy and exact sympy), finite
differences for the Jacobian, planted constructions and hand-built "no" cases."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import identifiable as idf
from identifiable import strategies as ids
from identifiable.models.residual import ResidualMLP, StreamAffine, affine, split_affine
from identifiable.theory.residual import (
    align_residual,
    functional_dimension_residual,
    is_equivariant_residual,
    planted_equivariant_residual,
    reduce_residual,
    residual_jacobian,
    theta_prime_residual,
)


# ---------------------------------------------------------------------- own forward passes
def own_forward(model, theta, x):
    """numpy forward written from the definition (not via the library's layers)."""
    th = theta.numeric
    E, e = (np.asarray(v, float) for v in th.embed)
    h = np.asarray(x, float) @ E.T + e.reshape(-1)
    for V, c, U in th.blocks:
        z = h @ np.asarray(V, float).T + np.asarray(c, float).reshape(-1)
        h = h + np.tanh(z) @ np.asarray(U, float).T
    O, o = (np.asarray(v, float) for v in th.readout)
    return h @ O.T + o.reshape(-1)


def own_exact(theta, x):
    """Exact sympy forward at a rational input (tanh kept symbolic)."""
    h = sp.Matrix(theta.embed[0]) * sp.Matrix(x) + sp.Matrix(theta.embed[1])
    for V, c, U in theta.blocks:
        z = sp.Matrix(V) * h + sp.Matrix(c)
        h = h + sp.Matrix(U) * z.applyfunc(sp.tanh)
    return sp.Matrix(theta.readout[0]) * h + sp.Matrix(theta.readout[1])


def rational_point(rng, d):
    return [sp.Rational(int(rng.integers(-7, 8)), int(rng.integers(1, 4))) for _ in range(d)]


def rebuild(model, theta, **changes):
    """A copy of ``theta`` with some parameters replaced (E, Vs, Us, O, e, cs, o)."""
    parts = {"E": theta.embed[0], "Vs": [b[0] for b in theta.blocks],
             "Us": [b[2] for b in theta.blocks], "O": theta.readout[0]}
    if model.bias:
        parts.update(e=theta.embed[1], cs=[b[1] for b in theta.blocks], o=theta.readout[1])
    parts.update(changes)
    return model.params(parts.pop("E"), parts.pop("Vs"), parts.pop("Us"), parts.pop("O"),
                        **parts)


# ---------------------------------------------------------------------- the model
def test_forward_matches_own_forward():
    m = ResidualMLP(3, 4, [2, 0, 3], 2)
    th = m.random_params(0)
    X = np.random.default_rng(1).standard_normal((7, 3))
    np.testing.assert_allclose(m.forward(X, th), own_forward(m, th, X), atol=1e-12)
    lat = m.latents(X, th)
    assert len(lat) == 2 + 3 + 1 and lat[1].shape == (7, 4)
    assert [a.shape[1] for a in m.block_latents(X, th)] == [2, 0, 3]
    assert m.n_params == th.flat().size


def test_params_validation():
    m = ResidualMLP(2, 2, [1], 1)
    with pytest.raises(ValueError, match="Vs"):
        m.params(np.eye(2), [np.ones((2, 2))], [np.ones((2, 1))], np.ones((1, 2)))
    with pytest.raises(ValueError, match="bias=False"):
        ResidualMLP(2, 2, [1], 1, bias=False).params(np.eye(2), [np.ones((1, 2))],
                                                     [np.ones((2, 1))], np.ones((1, 2)),
                                                     e=[1, 2])
    with pytest.raises(ValueError):
        ResidualMLP(0, 2, [1], 1)


def test_latent_groups_derived():
    m = ResidualMLP(2, 3, [2, 4], 1, activation=["tanh", "relu"])
    Ks = m.latent_groups()
    assert isinstance(Ks[0], StreamAffine) and Ks[0].dimension == 12
    assert Ks[1].name.startswith("{+-1}") and Ks[2].scalings.kind == "positive"
    assert ResidualMLP(2, 3, [2], 1, bias=False).latent_group(0).name == "GL(3)"
    assert m.symmetry_dimension == 12 + 0 + 4


@pytest.mark.parametrize("bias", [True, False])
def test_transform_keeps_function_exactly(bias):
    """f(x; k . theta) = f(x; theta) exactly, by an own exact forward pass."""
    rng = np.random.default_rng(5)
    for seed in range(3):
        m = ResidualMLP(2, 3, [2, 3], 2, bias=bias)
        th = m.random_params(seed, exact=True)
        k = m.random_k(seed + 10, exact=True)
        th2 = m.transform(th, k)
        assert th2.kind == "exact"
        x = rational_point(rng, 2)
        diff = own_exact(th2, x) - own_exact(th, x)
        assert all(sp.expand(v) == 0 for v in diff)
        assert m.check_symmetry(th, th2, k).status == "proved"


def test_translation_needs_biases():
    m = ResidualMLP(2, 2, [3], 2)
    th = m.random_params(0)
    T = affine(np.eye(2), [0.7, -1.3])          # a pure translation of the stream
    th2 = m.transform(th, [T, np.eye(3)])
    X = np.random.default_rng(0).standard_normal((5, 2))
    np.testing.assert_allclose(own_forward(m, th2, X), own_forward(m, th, X), atol=1e-12)
    assert not np.allclose(th2.embed[1], th.embed[1])   # it did move the parameters
    mb = ResidualMLP(2, 2, [3], 2, bias=False)
    with pytest.raises(ValueError):
        mb.transform(mb.random_params(0), [T, np.eye(3)])


def test_one_stream_element_for_all_blocks():
    """A change of basis applied to block 2 only (as if K were a product over stream points)
    changes the function: the skip forces one S for every stream point."""
    m = ResidualMLP(2, 2, [3, 3], 2)
    th = m.random_params(3)
    S = np.array([[1.0, 2.0], [0.5, -1.0]])
    V2, c2, U2 = th.blocks[1]
    O = th.readout[0]
    bad = rebuild(m, th, Vs=[th.blocks[0][0], V2 @ np.linalg.inv(S)],
                  Us=[th.blocks[0][2], S @ U2], O=O @ np.linalg.inv(S))
    X = np.random.default_rng(0).standard_normal((20, 2))
    assert np.max(np.abs(own_forward(m, bad, X) - own_forward(m, th, X))) > 1e-3


# ---------------------------------------------------------------------- no larger group
def test_jacobian_matches_finite_differences():
    m = ResidualMLP(2, 3, [2, 2], 2)
    th = m.random_params(4)
    X = np.random.default_rng(2).standard_normal((3, 2))
    J = residual_jacobian(m, th, X)
    flat = th.flat()
    eps = 1e-6
    fd = np.zeros_like(J)
    for p in range(flat.size):
        up, dn = flat.copy(), flat.copy()
        up[p] += eps
        dn[p] -= eps
        fd[:, p] = (own_forward(m, _unflat(m, up), X) - own_forward(m, _unflat(m, dn), X)
                    ).reshape(-1) / (2 * eps)
    np.testing.assert_allclose(J, fd, atol=1e-7)


def _unflat(m, v):
    d = m.d_stream
    i = 0

    def take(*shape):
        nonlocal i
        n = int(np.prod(shape))
        out = v[i:i + n].reshape(shape)
        i += n
        return out

    E, e = take(d, m.d_in), take(d)
    Vs, cs, Us = [], [], []
    for mb in m.blocks:
        Vs.append(take(mb, d))
        cs.append(take(mb))
        Us.append(take(d, mb))
    O, o = take(m.d_out, d), take(m.d_out)
    return m.params(E, Vs, Us, O, e=e, cs=cs, o=o)


@pytest.mark.parametrize("dims,bias", [((3, 2, [3, 2], 2), True), ((3, 3, [4, 4], 3), True),
                                       ((3, 3, [2, 2, 2], 4), True), ((4, 3, [3, 3], 3), False),
                                       ((2, 2, [5], 3), True)])
def test_no_larger_group_generic(dims, bias):
    """rank d f / d theta = #params - dim K on generic parameters when d_stream <= d_in, d_out:
    the K-orbits are the fibres near theta (tanh blocks)."""
    m = ResidualMLP(*dims, bias=bias)
    for seed in range(2):
        fd = functional_dimension_residual(m, m.random_params(seed), seed=seed)
        assert fd.rank == fd.n_params - m.symmetry_dimension, fd
        assert fd.gap > 1e4


@pytest.mark.parametrize("dims", [(2, 3, [4, 4], 2), (4, 3, [4, 4], 2), (2, 3, [4, 4], 4),
                                  (3, 5, [3, 3, 3], 4)])
def test_wide_stream_has_non_group_degeneracy(dims):
    """d_stream > d_out (d_in): the part of U_B in ker O (of V_1 on the complement of range E)
    is invisible; the rank drops by exactly m_B (d_s - d_out)^+ + m_1 (d_s - d_in)^+."""
    m = ResidualMLP(*dims)
    d_in, d_s, blocks, d_out = dims
    fd = functional_dimension_residual(m, m.random_params(1))
    extra = blocks[-1] * max(0, d_s - d_out) + blocks[0] * max(0, d_s - d_in)
    assert fd.rank == fd.n_params - m.symmetry_dimension - extra, (fd, extra)


# ---------------------------------------------------------------------- align
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_align_recovers_planted_k(data):
    m = data.draw(ids.residual_mlps(max_width=3))
    seed = data.draw(st.integers(0, 10**6))
    th = m.random_params(seed, exact=True)     # non-zero entries: generic enough
    k = data.draw(ids.residual_latent_elements(m))
    th2 = m.transform(th, k)
    v = align_residual(m, th, th2)
    assert v.status == "proved", v.reason
    assert m.transform(th, v.witness).equals(th2)        # the witness is a certificate
    if v.details["unique"]:
        assert all(sp.Matrix(a) == sp.Matrix(b) for a, b in zip(v.witness, k))
    # "no": a perturbed entry of the readout bias or of U_B
    O = sp.Matrix(th2.readout[0])
    O[0, 0] += sp.Rational(1, 7)
    v2 = align_residual(m, th, rebuild(m, th2, O=O))
    assert v2.status == "refuted", v2.reason


def test_align_float_records_tol():
    m = ResidualMLP(3, 2, [3, 2], 2)
    th = m.random_params(0)
    k = m.random_k(1)
    v = idf.align(m, th, m.transform(th, k))
    assert v.status == "checked" and v.tol > 0
    np.testing.assert_allclose(v.witness[0], k[0], atol=1e-8)
    th3 = m.random_params(9)
    assert idf.align(m, th, th3).status == "refuted"


def test_align_refutes_same_function_outside_the_orbit():
    """d_stream > d_out: adding to U_B a matrix N with O N = 0 keeps the function (checked by
    an own forward pass) but leaves the orbit: refuted, naming the stream constraint."""
    m = ResidualMLP(3, 3, [3, 3], 1)
    th = m.random_params(2, exact=True)
    O = sp.Matrix(th.readout[0])
    N = sp.zeros(3, 3)
    N[:, 0] = O.nullspace()[0]
    th2 = rebuild(m, th, Us=[th.blocks[0][2], sp.Matrix(th.blocks[1][2]) + N])
    x = rational_point(np.random.default_rng(0), 3)
    assert all(sp.expand(v) == 0 for v in own_exact(th2, x) - own_exact(th, x))
    v = align_residual(m, th, th2)
    assert v.status == "refuted"
    assert v.counterexample["where"] == "stream"
    assert "U2 B = S U" in v.counterexample["constraint"]


def test_align_refutes_different_collapsed_weights_with_entry():
    m = ResidualMLP(2, 2, [2], 1)
    th = m.random_params(0, exact=True)
    th2 = rebuild(m, th, o=sp.Matrix(th.readout[1]) + sp.Matrix([[1]]))
    v = align_residual(m, th, th2)
    assert v.status == "refuted" and v.counterexample["where"] == "readout"
    assert v.counterexample["entry"] == (0, 2)        # the column of e / o


def test_align_underdetermined_stream_gives_one_certified_witness():
    """Stream wider than what pins it down (no biases, d_in = d_out = 1, one neuron): the
    constraints leave a family of S; the witness is certified and flagged not unique."""
    m = ResidualMLP(1, 3, [1], 1, bias=False)
    th = m.random_params(3, exact=True)
    k = m.random_k(4, exact=True)
    th2 = m.transform(th, k)
    v = align_residual(m, th, th2)
    assert v.status == "proved"
    assert v.details["stream_freedom"] > 0 and v.details["unique"] is False
    assert m.transform(th, v.witness).equals(th2)


def test_align_undecided_for_free_scaling_of_a_silent_neuron():
    """ReLU block with a neuron whose pre-activation is 0 everywhere (zero row of V, zero bias):
    its positive scaling is free in the collapsed weights, only U sees it; the aligner does
    not guess it: undecided (the right answer here is yes, with scaling 1/5)."""
    m = ResidualMLP(2, 2, [2], 1, activation="relu")
    th = m.random_params(1, exact=True)
    V = sp.Matrix(th.blocks[0][0])
    V[1, :] = sp.zeros(1, 2)
    c = sp.Matrix(th.blocks[0][1])
    c[1] = 0
    th = rebuild(m, th, Vs=[V], cs=[c])
    A = sp.diag(1, sp.Rational(1, 5))
    th2 = m.transform(th, [affine(sp.eye(2)), A])
    assert align_residual(m, th, th2).status == "undecided"


# ---------------------------------------------------------------------- reduce
def test_reduce_removes_dead_constant_duplicate_and_empty_blocks():
    m = ResidualMLP(2, 2, [4, 2], 2)
    th = m.random_params(0, exact=True)
    V1, c1, U1 = (sp.Matrix(v) for v in th.blocks[0])
    V1[1, :] = -V1[0, :]                 # neuron 1 = -neuron 0 (tanh: a duplicate)
    c1[1] = -c1[0]
    V1[2, :] = sp.zeros(1, 2)            # neuron 2 constant
    U1[:, 3] = sp.zeros(2, 1)            # neuron 3 dead
    U2 = sp.zeros(2, 2)                  # block 2 dead
    th = rebuild(m, th, Vs=[V1, th.blocks[1][0]], cs=[c1, th.blocks[1][1]], Us=[U1, U2])
    red = reduce_residual(m, th)
    assert red.model.blocks == [1] and red.dropped_blocks == [2]
    assert sorted(j for j, _ in red.removed[0]) == [1, 2, 3]
    x = rational_point(np.random.default_rng(3), 2)
    assert all(sp.simplify(v) == 0 for v in own_exact(red.theta, x) - own_exact(th, x))
    X = np.random.default_rng(0).standard_normal((9, 2))
    np.testing.assert_allclose(red.model.forward(X, red.theta), m.forward(X, th), atol=1e-12)
    assert not reduce_residual(red.model, red.theta).changed


# ---------------------------------------------------------------------- equivariance, Thm 4.1
def _layer_recheck(model, theta, case_in, case_out, rho_gens):
    """Own check of eq. (14) on the parameters: E g = S E, e = S e + t, V S = A V,
    V t + c = A c, S U = U A (tanh: B = A), O S = g_out O, O t + o = g_out o."""
    for j, (gi, go) in enumerate(zip(case_in, case_out)):
        S, t = (sp.Matrix(M) for M in split_affine(sp.Matrix(rho_gens[0][j])))
        E, e = sp.Matrix(theta.embed[0]), sp.Matrix(theta.embed[1])
        assert E * sp.Matrix(gi) == S * E and e == S * e + t
        for (V, c, U), R in zip(theta.blocks, rho_gens[1:]):
            A = sp.Matrix(R[j])
            V, c, U = sp.Matrix(V), sp.Matrix(c), sp.Matrix(U)
            assert V * S == A * V and V * t + c == A * c and S * U == U * A
        O, o = sp.Matrix(theta.readout[0]), sp.Matrix(theta.readout[1])
        assert O * S == sp.Matrix(go) * O and O * t + o == sp.Matrix(go) * o


@pytest.mark.parametrize("perms,stream,blocks,inv", [
    ([[1, 2, 0]], ["perm"], [["perm", "trivial"], ["twisted"]], False),
    ([[1, 0, 2], [1, 2, 0]], ["perm"], [["perm", "twisted"]], True),
    ([[1, 0]], ["perm", "trivial"], [["twisted", "perm"], ["perm"]], False),
])
def test_latent_actions_planted(perms, stream, blocks, inv):
    case = planted_equivariant_residual("tanh", perms, stream, blocks, invariant=inv, seed=2)
    v = idf.latent_actions(case.model, case.theta, case.rep_in, case.rep_out)
    assert v.status == "proved", v.reason
    assert "extension beyond [SMBK26]" in v.reason and "not covered" in v.reason
    w = v.witness
    assert len(w["rho_generators"]) == case.model.n_blocks + 1
    _layer_recheck(case.model, case.theta, case.rep_in, case.rep_out, w["rho_generators"])
    # the stream action is the planted one conjugated by the scramble
    Sh = sp.Matrix(case.k[0])
    planted = sp.Matrix(case.planted["stream"][0])
    assert sp.Matrix(w["rho_generators"][0][0]) == Sh * planted * Sh.inv()


def test_latent_actions_refuted_when_not_equivariant():
    m = ResidualMLP(2, 2, [2], 2)
    th = m.random_params(0, exact=True)
    v = idf.latent_actions(m, th, [sp.Matrix([[0, 1], [1, 0]])], [sp.Matrix([[0, 1], [1, 0]])])
    assert v.status == "refuted" and "residual generalisation" in v.reason


def test_equivariant_but_not_layerwise_counterexample():
    """End-to-end S_3-invariant (the function of a planted invariant net) yet no actions in K
    make every sublayer equivariant: a component of U_B in ker O is invisible and breaks the
    last block. Not identifiable (d_stream > d_out), so no contradiction with the
    generalisation's hypothesis."""
    case = planted_equivariant_residual("tanh", [[1, 0, 2], [1, 2, 0]], ["perm"],
                                        [["perm", "twisted"], ["perm"]], invariant=True, seed=3)
    m, th = case.model, case.theta
    O = sp.Matrix(th.readout[0])
    N = sp.zeros(*sp.Matrix(th.blocks[-1][2]).shape)
    N[:, 0] = O.nullspace()[0]
    th2 = rebuild(m, th, Us=[th.blocks[0][2], sp.Matrix(th.blocks[1][2]) + N])
    x = rational_point(np.random.default_rng(1), 3)
    assert all(sp.expand(v) == 0 for v in own_exact(th2, x) - own_exact(th, x))
    v = idf.latent_actions(m, th2, case.rep_in, case.rep_out)
    assert v.status == "undecided" and "not identifiable" in v.reason
    g = case.rep_in[0]
    a = align_residual(m, th2, theta_prime_residual(m, th2, g, sp.eye(1)))
    assert a.status == "refuted"        # no k(g): no layerwise actions for this generator


def test_is_equivariant_residual_exact_and_sampled():
    case = planted_equivariant_residual("tanh", [[1, 0]], ["perm"], [["twisted"]],
                                        invariant=True, seed=0)
    v = is_equivariant_residual(case.model, case.theta, case.rep_in, case.rep_out)
    assert v.status == "proved"
    v = is_equivariant_residual(case.model, case.theta, case.rep_in, case.rep_out,
                                exact_limit=0)
    assert v.status == "checked"
    m = case.model
    th = m.random_params(5, exact=True)
    v = is_equivariant_residual(m, th, case.rep_in, case.rep_out)
    assert v.status == "refuted"
