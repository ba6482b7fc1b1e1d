"""Regression tests for the soundness defects found by differential fuzzing (issue: no false
verdicts). Each test is built from the reproducer that showed the defect; the comment above it
says what the library answered before."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from helpers import TINY, Z1, Z2, Z3, power_net_with_zero_output_bias
from hypothesis import given, settings
from hypothesis import strategies as st

import identifiable as idf
from identifiable import zero
from identifiable.equivariance import planted_equivariant_mlp
from identifiable.identifiability import identifiable
from identifiable.verdict import UndecidedError


# ------------------------------------------------------------------ 1. power nets, b_L = 0
def test_power_net_with_zero_output_bias_is_not_proved_identifiable():
    # before: identifiable and weakly_identifiable both 'proved', though th2 has the same
    # function and is not k . th (Kruskal counted the output-bias term only when b_L != 0)
    m, th, th2 = power_net_with_zero_output_bias()
    assert idf.same_function(m, th, th2).status == "proved"
    assert idf.align(m, th, th2).status == "refuted"
    v = identifiable(m, th)
    assert v.status == "undecided"
    assert "b_L = 0" in v.reason
    assert idf.weakly_identifiable(m, th).status != "proved"
    assert idf.is_identifiable(m, th).status == "undecided"


def test_power_net_two_outputs_square():
    # the same with power:2 and two outputs
    m = idf.MLP([1, 2, 2], "power:2")
    th = m.params([[[1], [1]], [[1, -1], [2, -2]]], [[1, -1], [0, 0]])  # 4x, 8x
    # 2 (x+1)^2 - (2x)^2 / 2 - 2 = 4x and 4 (x+1)^2 - (2x)^2 - 4 = 8x
    th2 = m.params([[[1], [2]], [[2, sp.Rational(-1, 2)], [4, -1]]], [[1, 0], [-2, -4]])
    assert idf.same_function(m, th, th2).status == "proved"
    assert idf.align(m, th, th2).status == "refuted"
    assert identifiable(m, th).status != "proved"


def test_power_net_kruskal_still_proves_generic_cases():
    # with a non-zero output bias and enough generic neurons the theorem still applies
    m = idf.MLP([2, 2, 1], "power:3")
    th = m.params([[[1, 0], [0, 1]], [[1, 1]]], [[1, 2], [1]])
    v = identifiable(m, th)
    assert v.status == "proved", v.reason
    assert "R = 3" in v.reason


# ------------------------------------------------------------------ 2. disguised zeros
def test_disguised_zeros_are_zero():
    for z in (Z1, Z2, Z3):
        assert zero.decide_zero(z).is_zero is True
        assert zero.canonical(z) == 0
        assert zero.canonical(1 + z) == 1
    assert zero.decide_zero(TINY).is_zero is False
    assert zero.sign(TINY) == 1
    assert zero.canonical(TINY) == TINY


def test_membership_with_disguised_zeros():
    g = idf.activations.get
    # before: proved (a singular 1x1 matrix "in GL")
    v = g("identity").intertwiner_group(1).membership(sp.Matrix([[Z1]]))
    assert v.status == "refuted"
    assert v.counterexample["rank"] == 0
    # before: proved ([[0]] "monomial")
    assert g("power:3").intertwiner_group(1).membership(sp.Matrix([[Z2]])).status == "refuted"
    # before: refuted (the identity "has a row with 2 non-zero entries")
    assert g("tanh").intertwiner_group(2).membership(sp.Matrix([[1, Z2], [0, 1]])).status \
        == "proved"


def test_membership_irrational_disguise_without_canonical_form():
    # an entry that is zero but not a rational in disguise of the simple kind: sqrt(2) * z2
    A = sp.Matrix([[1, sp.sqrt(2) * Z2], [0, 1]])
    assert idf.activations.get("tanh").intertwiner_group(2).membership(A).status == "proved"
    B = sp.Matrix([[1, sp.sqrt(2) * Z2 + TINY], [0, 1]])
    assert idf.activations.get("tanh").intertwiner_group(2).membership(B).status == "refuted"


def test_gl_membership_refutation_carries_a_kernel_vector():
    A = sp.Matrix([[1, sp.sqrt(2)], [sp.sqrt(2), 2]])
    v = idf.activations.get("identity").intertwiner_group(2).membership(A)
    assert v.status == "refuted"
    k = sp.Matrix(v.counterexample["kernel_vector"])
    assert (A * k).applyfunc(sp.simplify) == sp.zeros(2, 1) and k != sp.zeros(2, 1)


def test_check_intertwiner_singular_disguise_raises():
    # before: proved, and no error for a singular A
    with pytest.raises(ValueError, match="singular"):
        idf.check_intertwiner("identity", [[Z1]], [[Z1]])
    with pytest.raises(ValueError, match="singular"):
        idf.check_intertwiner("relu", [[sp.sqrt(2) * Z2, 0], [0, 1]], [[0, 0], [0, 1]])


def test_check_intertwiner_relu_disguised_positive():
    # before: sympy's internal "not comparable" error leaked
    assert idf.check_intertwiner("relu", [[1 + Z2]], [[1 + Z2]]).status == "proved"
    s2 = sp.sqrt(2)
    assert idf.check_intertwiner("relu", [[s2 + Z2]], [[s2]]).status == "proved"
    v = idf.check_intertwiner("relu", [[s2 + Z2]], [[s2 + 1]])
    assert v.status == "refuted"
    x = v.counterexample["x"]
    lhs = sp.Max(0, (s2 + Z2) * x[0])
    rhs = (s2 + 1) * sp.Max(0, x[0])
    assert zero.sign(lhs - rhs) != 0


def test_undecidable_zero_gives_undecided_not_a_decision():
    # Gamma(1/3) Gamma(2/3) = 2 pi / sqrt(3): sympy cannot prove it and there is no enclosure
    w = sp.gamma(sp.Rational(1, 3)) * sp.gamma(sp.Rational(2, 3)) - 2 * sp.pi / sp.sqrt(3)
    assert zero.decide_zero(w).is_zero is None
    with pytest.raises(zero.UndecidedZero):
        zero.is_exact_zero(w)
    v = idf.activations.get("tanh").intertwiner_group(2).membership(sp.Matrix([[1, w], [0, 1]]))
    assert v.status == "undecided"
    with pytest.raises(UndecidedError):
        idf.activations.get("tanh").intertwiner_group(2).contains(sp.Matrix([[1, w], [0, 1]]))
    assert idf.check_intertwiner("tanh", [[1, w], [0, 1]], [[1, 0], [0, 1]]).status \
        == "undecided"


def test_exact_rank_and_inverse():
    M = sp.Matrix([[1, sp.log(2)], [sp.log(3), sp.log(2) * sp.log(3) + Z3]])
    assert zero.rank(M) == 1
    with pytest.raises(ValueError, match="singular"):
        zero.inverse(M, "A")
    N = sp.Matrix([[sp.log(2), 1], [0, sp.E]])
    assert (zero.inverse(N) * N).applyfunc(sp.simplify) == sp.eye(2)


@settings(max_examples=40)
@given(st.lists(st.integers(-4, 4), min_size=4, max_size=4),
       st.sampled_from([Z1, Z2, Z3, sp.sqrt(2) * Z2]))
def test_rank_with_disguised_zeros_matches_rational_rank(entries, z):
    # the ground truth: the same matrix with the disguised zeros written as 0
    M0 = sp.Matrix(2, 2, entries)
    M = M0 + sp.Matrix([[z, 0], [0, z]])
    assert zero.rank(M) == M0.rank()


def test_canonical_is_applied_at_the_boundary():
    m = idf.MLP([1, 1, 1], "tanh")
    th = m.params([[[1 + Z2]], [[Z1 + 2]]], [[Z3], [0]])
    assert th.weights[0][0, 0] == 1 and th.weights[1][0, 0] == 2 and th.biases[0][0] == 0


# ------------------------------------------------------------------ 3. loose tol, vacuous checked
def _perturbed_mirror_tanh():
    case = planted_equivariant_mlp("tanh", [[3, 2, 1, 0]], [["perm", "perm"], ["perm", "perm"]],
                                   invariant=True, seed=1)
    m, th = case.model, case.theta.numeric
    rng = np.random.default_rng(0)
    th2 = m.params([W + 0.1 * rng.standard_normal(W.shape) for W in th.weights],
                   [b + 0.1 * rng.standard_normal(b.shape) for b in th.biases])
    return m, th2, np.eye(4)[[3, 2, 1, 0]]


def test_latent_actions_checked_holds_within_its_tolerance():
    # before: checked with tol=5 after reduce removed every hidden neuron, its returned
    # parameter differing from theta's function by 6.1
    m, th, P = _perturbed_mirror_tanh()
    X = np.random.default_rng(5).standard_normal((2000, 4)) * 1.5
    for tol in (5.0, 50.0):
        v = idf.latent_actions(m, th, [P], [np.eye(1)], tol=tol)
        assert v.status in ("checked", "undecided", "refuted")
        if v.status == "checked":
            assert v.witness["reduced_widths"] == [4, 8, 8, 1]
            diff = np.abs(m(X, v.witness["ambient_theta"]) - m(X, th)).max()
            assert diff <= v.tol


def test_latent_actions_zero_tol_apart_from_tol():
    m, th, P = _perturbed_mirror_tanh()
    # a huge zeroing threshold removes neurons that matter: the rewrite is caught
    v = idf.latent_actions(m, th, [P], [np.eye(1)], tol=5.0, zero_tol=10.0)
    assert v.status == "undecided"
    assert "does not compute theta's function" in v.reason


# ------------------------------------------------------------------ 4. adjunction
def test_check_adjunction_statuses():
    m = idf.MLP([2, 2, 2], "tanh")
    swap = [[0, 1], [1, 0]]
    v = idf.check_adjunction(m, [swap], [swap])
    assert v.status == "proved"


# ------------------------------------------------------------------ 5. tolerances validated
BAD_TOLS = [float("nan"), float("inf"), -1.0, -1e-300]


@pytest.mark.parametrize("tol", BAD_TOLS)
def test_bad_tolerances_are_refused(tol):
    m = idf.MLP([2, 3, 1], "tanh")
    a, b = m.random_params(seed=0), m.random_params(seed=1)
    with pytest.raises(ValueError, match="tol"):
        idf.same_function(m, a, b, tol=tol)
    with pytest.raises(ValueError, match="tol"):
        idf.check_intertwiner("relu", np.eye(2), np.eye(2), tol=tol)
    with pytest.raises(ValueError, match="tol"):
        idf.is_equivariant(m, a, [[[0, 1], [1, 0]]], tol=tol)
    with pytest.raises(ValueError, match="tol"):
        idf.align(m, a, b, tol=tol)
    with pytest.raises(ValueError, match="tol"):
        idf.weakly_identifiable(m, a, tol=tol)
    with pytest.raises(ValueError, match="tol"):
        idf.reduce(m, a, tol=tol)
    with pytest.raises(ValueError, match="tol"):
        idf.activations.get("relu").intertwiner_group(2).membership(np.eye(2), tol)
    with pytest.raises(ValueError, match="zero_tol"):
        idf.latent_actions(m, a, [[[0, 1], [1, 0]]], zero_tol=tol)


@pytest.mark.parametrize("n", [0, -1, 2.5, "3", True])
def test_bad_sample_counts_are_refused(n):
    m = idf.MLP([2, 3, 1], "tanh")
    a, b = m.random_params(seed=0), m.random_params(seed=1)
    with pytest.raises((ValueError, TypeError), match="n_samples"):
        idf.same_function(m, a, b, n_samples=n)
    with pytest.raises((ValueError, TypeError), match="n_samples"):
        idf.is_equivariant(m, a, [[[0, 1], [1, 0]]], n_samples=n)
    with pytest.raises((ValueError, TypeError), match="n_samples"):
        idf.functional_dimension(m, a, n)


def test_tolerance_zero_cannot_refute_by_rounding():
    # an integer network that is exactly invariant: with tol=0 float rounding alone must not
    # refute (the recorded tolerance is at least the float64 resolution)
    m = idf.MLP([2, 2, 1], "tanh")
    th = m.params([np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([[1.0, 1.0]])],
                  [np.array([0.1, 0.1]), np.array([0.0])])
    v = idf.is_equivariant(m, th, [np.array([[0.0, 1.0], [1.0, 0.0]])], tol=0.0)
    assert v.status == "checked" and v.tol > 0


# ------------------------------------------------------------------ 6. max(0, x)^2
@pytest.mark.parametrize("expr,kind,partner", [
    (lambda x: sp.Max(0, x) ** 2, "positive", lambda a: a**2),
    (lambda x: sp.Max(0, x) ** 3, "positive", lambda a: a**3),
    (lambda x: sp.Max(0, x) ** sp.Rational(3, 2), "positive", lambda a: a ** sp.Rational(3, 2)),
    (lambda x: sp.Abs(x) ** sp.Rational(3, 2), "nonzero", lambda a: sp.Abs(a) ** sp.Rational(3, 2)),
])
def test_homogeneous_piecewise_activations(expr, kind, partner):
    x = sp.Symbol("x")
    act = idf.activations.from_sympy(expr(x), x)
    K = act.intertwiner_group(2)
    assert K.scalings.kind == kind
    a = sp.Rational(3)
    assert sp.simplify(K.scalings.c(a) - partner(a)) == 0
    # ground truth on samples: sigma(a t) = c(a) sigma(t)
    for t in (-2.0, -0.5, 0.3, 1.7):
        lhs = float(act(np.array([3.0 * t]))[0])
        rhs = float(K.scalings.c(3.0)) * float(act(np.array([t]))[0])
        assert math.isclose(lhs, rhs, rel_tol=1e-12, abs_tol=1e-12)
    A = [[0, 2], [3, 0]]
    B = [[0, partner(sp.Integer(2))], [partner(sp.Integer(3)), 0]]
    assert idf.check_intertwiner(act, A, B).status == "proved"
    assert idf.check_intertwiner(act, A, A).status == "refuted"


# ------------------------------------------------------------------ audit of the decision sites
# D = atan(1/2) + atan(1/3) - pi/4 is 0, but neither sympy nor the enclosures can show it: every
# decision that depends on it must end in undecided (or an error), never proved / refuted
D = sp.atan(sp.Rational(1, 2)) + sp.atan(sp.Rational(1, 3)) - sp.pi / 4
X = sp.Symbol("x")


def test_the_undecidable_zero_is_undecided():
    assert zero.decide_zero(D).is_zero is None
    assert zero.sign(D) is None


@pytest.mark.parametrize("name,call", [
    ("derive affine-in-disguise", lambda: idf.activations.from_sympy(X + 1 + D * X**2, X).derive()),
    ("origin_passing", lambda: idf.activations.from_sympy(X + D, X).origin_passing()),
    ("GL membership", lambda: idf.intertwiners.GeneralLinear(1).membership(sp.Matrix([[D]]))),
    ("S_2 membership", lambda: idf.intertwiners.Monomial(2, "one").membership(
        sp.Matrix([[1, D], [0, 1]]))),
    ("S_1 membership", lambda: idf.intertwiners.Monomial(1, "one").membership(
        sp.Matrix([[1 + D]]))),
    ("monomial membership", lambda: idf.intertwiners.Monomial(1, "nonzero").membership(
        sp.Matrix([[D]]))),
    ("expr_is_zero", lambda: idf.diagrams.expr_is_zero(10**30 * D * X)),
    ("power:3 intertwiner", lambda: idf.check_intertwiner("power:3", [[D]], [[D**3]])),
    ("affine intertwiner", lambda: idf.check_affine_intertwiner("power:3", [[D]], [0], [[D**3]],
                                                                [0])),
    ("relu sum", lambda: idf.relu_sum_identity([D], [[1]])),
    ("prop 2.3", lambda: idf.prop_2_3(np.eye(2, dtype=int), np.eye(2, dtype=int),
                                      [[[0, 1], [1, 0]]], rho2=[sp.Matrix([[0, 1 + D], [1, 0]])])),
    ("prop D.1", lambda: idf.prop_d_1(np.eye(2, dtype=int), sp.Matrix([[1, 1 + D]]))),
])
def test_decisions_on_an_undecidable_zero_are_undecided(name, call):
    v = call()
    assert v.status == "undecided", (name, v)


def test_diagram_with_undecidable_entry():
    d = idf.diagrams.Diagram("t")
    d.space("A")
    d.space("B")
    d.arrow("A", "B", "f", matrix=sp.Matrix([[1]]))
    d.arrow("A", "B", "g", matrix=sp.Matrix([[1 + D]]))
    assert d.commutes().status == "undecided"
    e = idf.diagrams.Diagram("u")
    e.space("A")
    e.space("B")
    e.arrow("A", "B", "f", matrix=sp.Matrix([[1]]))
    e.arrow("A", "B", "g", matrix=sp.Matrix([[1 + TINY]]))
    assert e.commutes().status == "refuted"


def test_align_irrational_rows_compared_exactly():
    m = idf.MLP([2, 1, 1], "relu", bias=False)
    t1 = m.params([sp.Matrix([[1, sp.sqrt(2)]]), sp.Matrix([[1]])])
    near = m.params([sp.Matrix([[1, sp.sqrt(2) + sp.Rational(1, 10**20)]]), sp.Matrix([[1]])])
    same = m.params([sp.Matrix([[3, 3 * sp.sqrt(2)]]), sp.Matrix([[sp.Rational(1, 3)]])])
    assert idf.align(m, t1, near).status == "refuted"  # before: proved (nsimplify keys)
    assert idf.align(m, t1, same).status == "proved"
    t3 = m.params([sp.Matrix([[1, sp.cos(sp.pi / 7)]]), sp.Matrix([[1]])])
    t4 = m.params([sp.Matrix([[1, sp.cos(sp.pi / 7) + D]]), sp.Matrix([[1]])])
    assert idf.align(m, t3, t4).status == "undecided"  # before: refuted


def test_exact_network_is_not_refuted_by_float_cancellation():
    m = idf.MLP([2, 2, 1], "identity", bias=False)
    th = m.params([sp.Matrix([[10**15 + 1, 1], [10**15, 0]]), sp.Matrix([[1, -1]])])  # x1 + x2
    swap = [sp.Matrix([[0, 1], [1, 0]])]
    assert idf.is_equivariant(m, th, swap).status == "proved"
    assert idf.is_equivariant(m, th, swap, exact_limit=0).status == "undecided"


def test_linear_translation_witness_respects_the_slope():
    act = idf.activations.from_sympy(2 * X, X)
    m = idf.MLP([1, 1, 1], act)
    th = m.params([[[1]], [[1]]], [[0], [0]])
    v = idf.is_identifiable(m, th)
    assert v.status == "refuted"
    assert idf.same_function(m, th, v.counterexample["theta_prime"]).status == "proved"


def test_non_real_activation_is_not_derived():
    v = idf.activations.from_sympy(sp.sqrt(X), X).derive()
    assert v.status == "undecided" and "not real-valued" in v.reason
    assert idf.activations.from_sympy(sp.sqrt(X), X).odd().status == "undecided"


def test_ex_c_1_never_refutes_on_inconclusive_steps():
    import sympy.stats as st

    a = sp.Symbol("a", real=True, nonzero=True)
    assert idf.relu.ex_c_1(st.Uniform("X", -a, a)).status == "undecided"
    b = sp.Symbol("b", positive=True)
    assert idf.relu.ex_c_1(st.Uniform("X", -b, b)).status == "proved"
    eps = sp.Rational(1, 10**20)
    w = idf.relu.ex_c_1(st.FiniteRV("Y", {1 + eps: sp.Rational(1, 2),
                                          -1 - eps: sp.Rational(1, 2)})).witness
    assert w["equivariant_width1_error"] == 1 + eps  # before: 1 (nsimplify)


def test_algebraic_zero_test_does_not_trust_construct_domain():
    """Regression (fuzz case exact_zero:2886, seed 20261128): sympy's construct_domain builds
    QQ<3> for -3 + 1/(cos(pi/7) - cos(2 pi/7) + sin(pi/14) - 1/6), which is 0, and calls it
    non-zero; align then refuted a true theta2 = k . theta. The minimal polynomial decides."""
    import sympy as sp

    from identifiable import zero

    a = 1 / (-sp.cos(2 * sp.pi / 7) - sp.Rational(1, 6) + sp.sin(sp.pi / 14)
             + sp.cos(sp.pi / 7))
    for e in (a - 3, 3 - a, sp.Matrix([[a]])[0] - sp.Matrix([[3]])[0]):
        assert zero.decide_zero(e).is_zero is True
    assert zero.decide_zero(a - 3 + sp.Rational(1, 10**30)).is_zero is False
    m = idf.MLP([1, 1, 1], "relu")
    th = m.params([[[1]], [[3]]], [[0], [0]])
    th2 = m.params([[[1 / a]], [[3 * a]]], [[0], [0]])  # k = 1/3 (a positive scaling), exactly
    assert idf.align(m, th, th2).status == "proved"


def test_exact_ranks_and_inverses_survive_unreduced_field_elements():
    """sympy's construct_domain returns the field QQ<3> with an element "a - 3" not reduced
    modulo the field's minimal polynomial for -3 + 1/(cos(pi/7) - cos(2 pi/7) + sin(pi/14) - 1/6)
    (= 0); DomainMatrix.rank then raised NotInvertible. Such fields are refused and the
    certified elimination decides."""
    import sympy as sp

    from identifiable import zero

    a = 1 / (-sp.cos(2 * sp.pi / 7) - sp.Rational(1, 6) + sp.sin(sp.pi / 14)
             + sp.cos(sp.pi / 7))  # = 3
    assert zero.rank(sp.Matrix([[a - 3, 1], [0, 1]]), "M") == 1
    assert zero.rank(sp.Matrix([[a, 3], [1, 1]]), "M") == 1
    with pytest.raises(ValueError, match="singular"):
        zero.inverse(sp.Matrix([[a, 3], [1, 1]]), "M")
    inv = zero.inverse(sp.Matrix([[a, 2], [1, 1]]), "M")
    assert all(zero.decide_zero(v).is_zero for v in inv - sp.Matrix([[1, -2], [-1, 3]]))


def test_float_gl_alignment_is_not_refuted_by_small_singular_values():
    """Regression (fuzz case align:6666, seed 20261128): for K = GL (identity / leaky_relu:1)
    theta2 = k . theta with an ill-conditioned k has singular values below tol; the aligner
    refuted on a numeric rank with an absolute threshold. It now refutes only when no A can fit
    every entry within tol (a Frobenius bound), and still refutes unrelated parameters."""
    rng = np.random.default_rng(3)
    m = idf.MLP([3, 4, 4, 1], "leaky_relu:1")
    th = m.params([rng.standard_normal((4, 3)), rng.standard_normal((4, 4)),
                   rng.standard_normal((1, 4))],
                  [rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(1)])
    U, _, Vt = np.linalg.svd(rng.standard_normal((4, 4)))
    k1 = U @ np.diag([3.0, 1.0, 0.5, 2e-4]) @ Vt  # invertible, far from well conditioned
    k2 = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    th2 = m.transform(th, [k1, k2])
    v = idf.align(m, th, th2, tol=1e-3)
    assert v.status == "checked", v
    other = m.params([rng.standard_normal((4, 3)), rng.standard_normal((4, 4)),
                      rng.standard_normal((1, 4))],
                     [rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(1)])
    assert idf.align(m, th, other, tol=1e-3).status == "refuted"


def test_partner_scaling_of_a_tiny_transcendental_value_is_fast():
    """Fuzz timeouts exact_zero:134 / 271 (seed 20261128): c(a) = a^2 on a = 2 log 2 - (a
    28-digit rational) went through sympy's simplify, whose logcombine ran for minutes. The
    value is only compared later (through identifiable.zero), so it is no longer simplified."""
    import time

    import sympy as sp

    a = sp.Rational(-693147180559945309417232121, 500000000000000000000000000) + 2 * sp.log(2)
    t0 = time.perf_counter()
    v = idf.check_intertwiner("power:2", sp.Matrix([[a]]), sp.Matrix([[sp.Rational(1, 4)]]))
    assert v.status == "refuted" and time.perf_counter() - t0 < 5.0
