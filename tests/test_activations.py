"""Activations: the derived intertwiner groups against an independent numeric ground truth."""

import functools

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from identifiable import activations
from identifiable import strategies as ids
from identifiable.latent_groups import GeneralLinear, Monomial
from identifiable.verdict import UndecidedError

x = sp.Symbol("x")

# name -> expected (kind, scalings kind) for the table
TABLE = {
    "identity": ("linear", None),
    "relu": ("monomial", "positive"),
    "leaky_relu:0.1": ("monomial", "positive"),
    "tanh": ("monomial", "sign"),
    "sigmoid": ("monomial", "one"),
    "gelu": ("monomial", "one"),
    "softplus": ("monomial", "one"),
    "softplus:2": ("monomial", "one"),
    "silu": ("monomial", "one"),
    "power:2": ("monomial", "nonzero"),
    "power:3": ("monomial", "nonzero"),
}
CUSTOM = {
    "sin": (sp.sin(x), ("monomial", "sign")),
    "x+x^3": (x + x**3, ("monomial", "sign")),
    "x+x^2": (x + x**2, ("monomial", "one")),
    "x/(1+|x|)": (x / (1 + sp.Abs(x)), ("monomial", "sign")),
    "|x|": (sp.Abs(x), ("monomial", "nonzero")),
    "x^2 sign": (x * sp.Abs(x), ("monomial", "nonzero")),
    "cosh-1": (sp.cosh(x) - 1, ("monomial", "sign")),
}


def all_activations():
    out = {name: activations.get(name) for name in TABLE}
    out.update({name: activations.from_sympy(e, x, name) for name, (e, _) in CUSTOM.items()})
    return out


EXPECT = {**TABLE, **{k: v for k, (_, v) in CUSTOM.items()}}
GRID = np.concatenate([np.linspace(-4, 4, 161), [-7.3, 9.1, 0.013]])


def best_c_residual(act, a):
    """Numeric ground truth: min over c of max |sigma(a x) - c sigma(x)| on a grid."""
    s, t = act.reference(GRID), act.reference(a * GRID)
    c = float(s @ t / (s @ s))
    return c, float(np.max(np.abs(t - c * s)))


@pytest.mark.parametrize("name", list(EXPECT))
def test_derived_group_matches_table_and_numeric_ground_truth(name):
    act = all_activations()[name]
    v = act.derive()
    assert v.status == "proved", v
    kind, skind = EXPECT[name]
    assert v.witness.kind == kind
    K = act.intertwiner_group(3)
    if kind == "linear":
        assert isinstance(K, GeneralLinear)
        return
    assert isinstance(K, Monomial) and K.scalings.kind == skind
    S = K.scalings
    # every derived scaling works with the derived partner c(a) ...
    for a in (1.0, -1.0, 2.0, 0.5, -3.0):
        if S.contains(a, 1e-12):
            lhs, rhs = act.reference(a * GRID), S.c(a) * act.reference(GRID)
            assert np.max(np.abs(lhs - rhs)) < 1e-8 * max(1, np.max(np.abs(lhs)))
        else:  # ... and no c makes a non-member work
            _, res = best_c_residual(act, a)
            assert res > 1e-3, (name, a)


def test_silu_group_is_derived_not_looked_up():
    # x sigmoid(x) written by hand (not the registry's object) derives the same K: permutations
    # only (silu(a x) = c silu(x) for all x forces a = c = 1), with a proved verdict
    hand = activations.from_sympy(x / (1 + sp.exp(-x)), x)
    v = hand.derive()
    assert v.status == "proved", v
    assert v.witness.kind == "monomial" and v.witness.scalings.kind == "one"
    assert hand.intertwiner_group(3).name == activations.get("silu").intertwiner_group(3).name
    # a constant multiple silu(x) / 2 has the same K (eq. (8) does not see a constant factor)
    assert activations.from_sympy(x / (1 + sp.exp(-x)) / 2, x).intertwiner_group(2) \
        .scalings.kind == "one"
    assert "silu" in activations.NAMES and "softplus:<beta>" in activations.NAMES
    grid = np.linspace(-6, 6, 25)
    np.testing.assert_allclose(activations.get("silu")(grid), grid / (1 + np.exp(-grid)),
                               rtol=1e-13, atol=1e-15)


def test_softplus_beta_is_softplus_rescaled():
    sp2 = activations.get("softplus:2")
    grid = np.linspace(-6, 6, 25)
    np.testing.assert_allclose(sp2(grid), np.logaddexp(0, 2 * grid) / 2, rtol=1e-13)
    assert activations.get("softplus:1") is activations.get("softplus")
    with pytest.raises(ValueError, match="positive"):
        activations.get("softplus:-1")
    with pytest.raises(ValueError, match="not a number"):
        activations.get("softplus:abc")


def test_derivation_is_not_a_table():
    # an unnamed expression equal to tanh gets the same group; a tiny change alters it
    t = activations.from_sympy(sp.tanh(x), x)
    assert t.intertwiner_group(2).scalings.kind == "sign"
    t2 = activations.from_sympy(sp.tanh(x) + x**2 / 1000, x)
    assert t2.intertwiner_group(2).scalings.kind == "one"
    p = activations.from_sympy(7 * x**5, x)
    K = p.intertwiner_group(2)
    assert K.scalings.kind == "nonzero" and sp.simplify(K.scalings.c(-2) - (-32)) == 0


@pytest.mark.parametrize("expr,why", [
    (sp.Max(-1, sp.Min(1, x)), "breakpoint"),
    (sp.Heaviside(x), "continuous"),
    # sympy's cbrt is the principal (complex) cube root for x < 0
    (x * sp.log(sp.Abs(x) + 1) + sp.cbrt(x), "not real-valued"),
    (x * sp.log(sp.Abs(x) + 1) + sp.sign(x) * sp.cbrt(sp.Abs(x)), "analytic"),
    (2 * x + 1, "affine"),
])
def test_undecided_derivations_never_guess(expr, why):
    act = activations.from_sympy(expr, x)
    v = act.derive()
    assert v.status == "undecided", v
    assert why in v.reason
    with pytest.raises(UndecidedError) as err:
        act.intertwiner_group(2)
    assert err.value.verdict is v


@pytest.mark.parametrize("name,prop,status", [
    ("tanh", "odd", "proved"), ("tanh", "even", "refuted"), ("power:2", "even", "proved"),
    ("relu", "positively_homogeneous", "proved"), ("tanh", "positively_homogeneous", "refuted"),
    ("sigmoid", "origin_passing", "refuted"), ("gelu", "origin_passing", "proved"),
    ("relu", "bypass", "proved"), ("gelu", "bypass", "proved"), ("tanh", "bypass", "refuted"),
    ("leaky_relu:0.1", "positively_homogeneous", "proved"), ("softplus", "bypass", "proved"),
    ("silu", "origin_passing", "proved"), ("silu", "bypass", "proved"),
    ("silu", "odd", "refuted"), ("silu", "positively_homogeneous", "refuted"),
])
def test_properties(name, prop, status):
    v = getattr(activations.get(name), prop)()
    assert v.status == status, v
    if status == "refuted" and prop != "origin_passing":
        cex = v.counterexample
        assert abs(cex["residual"]) > 1e-6


def test_property_counterexample_rechecks():
    v = activations.get("tanh").bypass()
    xv = float(v.counterexample["x"])
    assert abs(np.tanh(xv) - np.tanh(-xv) - xv) > 1e-3


@settings(max_examples=30)
@given(st.sampled_from(sorted(TABLE)), st.lists(st.floats(-30, 30), min_size=1, max_size=20))
def test_fast_numeric_path_agrees_with_expression(name, values):
    act = activations.get(name)
    v = np.array(values)
    np.testing.assert_allclose(act(v), act.reference(v), rtol=1e-9, atol=1e-12)


def test_bad_input():
    y = sp.Symbol("y")
    with pytest.raises(ValueError, match="free symbols"):
        activations.from_sympy(x * y, x)
    with pytest.raises(TypeError, match="Symbol"):
        activations.from_sympy(x, "x")
    with pytest.raises(ValueError, match="unknown activation"):
        activations.get("swishy")
    with pytest.raises(ValueError, match="slope"):
        activations.get("leaky_relu:abc")
    with pytest.raises(ValueError, match="exponent"):
        activations.get("power:-2")
    with pytest.raises(ValueError, match="d"):
        activations.get("tanh").intertwiner_group(0)


@settings(max_examples=25)
@given(ids.activation_family())
def test_random_family_groups_hold_numerically(act):
    """Random polynomial / tanh-of-polynomial activations: whatever group is derived, its
    members satisfy eq. (8) numerically and excluded sign flips do not."""
    v = act.derive()
    assert v.status == "proved", v
    K = act.intertwiner_group(1)
    S = K.scalings
    for a in (-1.0, 2.0, -2.0):
        if S.contains(a, 1e-12):
            lhs, rhs = act.reference(a * GRID[:40]), S.c(a) * act.reference(GRID[:40])
            assert np.allclose(lhs, rhs, rtol=1e-9, atol=1e-9)
        else:
            _, res = best_c_residual(act, a)
            assert res > 1e-6


# ---------------------------------------------------------------------------- family, derivative
X = activations.X


@pytest.mark.parametrize("name,family,derivative", [
    ("tanh", ("tanh", None), 1 - sp.tanh(X) ** 2),
    ("sigmoid", ("sigmoid", None), sp.exp(-X) / (1 + sp.exp(-X)) ** 2),
    ("relu", ("relu", None), sp.Heaviside(X)),
    ("power:3", ("power", 3), 3 * X ** 2),
    ("power:2", ("power", 2), 2 * X),
    ("identity", ("linear", 1), sp.Integer(1)),
    ("gelu", ("other", None), None),
    ("leaky_relu:0.1", ("other", None), None),
])
def test_family_and_derivative(name, family, derivative):
    act = activations.get(name)
    assert act.family == family
    if derivative is not None:
        assert sp.simplify(act.derivative - derivative) == 0, act.derivative
    # the numeric derivative agrees with central differences away from the kink at 0
    z = np.array([[-2.5, -0.7, -0.1], [0.2, 1.3, 3.0]])
    h = 1e-6
    fd = (act.reference(z + h) - act.reference(z - h)) / (2 * h)
    d = act.derivative_values(z)
    assert d.shape == z.shape
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-8)


def test_family_of_unnamed_expressions():
    assert activations.from_sympy(sp.tanh(x), x).family == ("tanh", None)
    assert activations.from_sympy(sp.Rational(5, 2) * x, x).family == ("linear", sp.Rational(5, 2))
    assert activations.from_sympy(7 * x ** 5, x).family == ("power", 5)
    assert activations.from_sympy(x + x ** 3, x).family == ("other", None)
    assert activations.from_sympy(sp.Max(0, x), x).family == ("relu", None)


def test_family_and_derivative_are_read_only_and_shared():
    a, b = activations.get("tanh"), activations.get("tanh")
    assert a is b  # get() hands out one shared object per name
    fam, der = a.family, a.derivative
    assert b.family is fam and b.derivative is der  # computed once, on the object
    for attr, value in (("family", ("other", None)), ("derivative", x)):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(a, attr, value)
    assert a.family is fam and a.derivative is der
    # the library's own users (the Jacobian of functional_dimension) leave the shared object as
    # Activation built it: every attribute is set in Activation.__init__ or is one of its cached
    # properties; no other module hangs state on it
    from identifiable.identifiability import jacobian
    from identifiable.models import MLP

    m = MLP([2, 3, 1], "tanh")
    assert m.activations[0] is a
    before = set(vars(a))
    jacobian(m, m.random_params(0), np.ones((4, 2)))
    cached = {k for k, v in vars(type(a)).items() if isinstance(v, functools.cached_property)}
    own = {"expr", "x", "name", "_numeric", "_lambdified"}
    assert set(vars(a)) - before <= cached
    assert set(vars(a)) <= own | cached
