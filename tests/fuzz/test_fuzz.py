"""Differential fuzz tests.

* ``test_short_fuzz_run``: a short seeded run over every procedure (about 40 s; runs in the
  default ``pytest`` selection, marked ``fuzz``) asserting zero false verdicts, wrong results,
  unclear exceptions, accepted bad arguments and rejected valid inputs.
* ``test_long_fuzz_run``: the same with a large budget (``pytest -m slow``; budget and jobs from
  ``IDF_FUZZ_BUDGET`` / ``IDF_FUZZ_JOBS``).
* ``test_known_defects``: the reproducers of the issue, judged by the oracle (they fail until the
  defects are fixed).
* Hypothesis: the case generators wrapped as strategies.
* Oracle self-tests: the oracle agrees with hand-computed answers on the reproducers, its
  activations agree with numpy / scipy, its K action keeps the function, its Jacobian agrees
  with finite differences, the known groups agree with dense 50-digit sampling.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from helpers import TINY, Z1, Z2, power_net_with_zero_output_bias

from . import cases as C
from . import driver as D
from . import oracle as O

pytestmark = pytest.mark.fuzz


def _summary(report) -> str:
    return D.format_table(report) + "\n" + D.format_failures(report)


# ---------------------------------------------------------------------------------- runs
def test_short_fuzz_run():
    budget = float(os.environ.get("IDF_FUZZ_SHORT_BUDGET", "40"))
    report = D.run(seed=int(os.environ.get("IDF_FUZZ_SEED", "0")), budget_seconds=budget,
                   timeout=10.0, keep=2)
    assert sum(s.get("cases", 0) for s in report["stats"].values()) > 0
    assert not report["internal_errors"], _summary(report)
    assert D.total_failures(report) == 0, _summary(report)


@pytest.mark.slow
def test_long_fuzz_run():
    report = D.run(seed=int(os.environ.get("IDF_FUZZ_SEED", "0")),
                   budget_seconds=float(os.environ.get("IDF_FUZZ_BUDGET", "3600")),
                   max_cases=int(os.environ.get("IDF_FUZZ_MAX_CASES", "100000")),
                   jobs=int(os.environ.get("IDF_FUZZ_JOBS", "2")), timeout=10.0)
    assert D.total_failures(report) == 0, _summary(report)


@pytest.mark.parametrize("proc", C.PROCEDURES)
def test_case_reproducible(proc):
    a, b = C.make_case(3, proc, 11), C.make_case(3, proc, 11)
    assert a.variant == b.variant and a.desc == b.desc


# ---------------------------------------------------------------------------------- hypothesis
def _hypothesis_check(case):
    rec = D.run_case(0, case.proc, case.index, timeout=10.0)
    assert rec["status"] not in ("generator_error", "oracle_error"), rec
    assert rec["failure"] is None, f"{rec['failure']}: {rec['note']}\n{rec['desc']}"


try:
    from hypothesis import HealthCheck, given, settings

    @pytest.mark.parametrize("proc", ["check_intertwiner", "membership", "align",
                                      "functional_dimension", "check_adjunction"])
    def test_hypothesis_cases(proc):
        @settings(max_examples=15, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(C.hypothesis_cases(proc))
        def inner(case):
            _hypothesis_check(case)

        inner()
except ImportError:  # pragma: no cover
    pass


# ---------------------------------------------------------------------------------- known defects
def _judge_call(kind):
    """(result-or-exception, judgement) of one reproducer."""
    import identifiable as idf
    from identifiable.identifiability import identifiable

    if kind in ("identifiable", "weakly_identifiable"):
        m, th, _ = power_net_with_zero_output_bias()
        v = (identifiable if kind == "identifiable" else idf.weakly_identifiable)(m, th)
        return C.judge_identifiable(O.net_from_theta(["power:3"], th), v, False, True)
    g = idf.activations.get
    if kind == "membership-identity":
        A = sp.Matrix([[Z1]])
        return C.judge_membership("identity", A, g("identity").intertwiner_group(1).membership(A),
                                  True)
    if kind == "membership-power":
        A = sp.Matrix([[Z2]])
        return C.judge_membership("power:3", A, g("power:3").intertwiner_group(1).membership(A),
                                  True)
    if kind == "membership-tanh":
        A = sp.Matrix([[1, Z2], [0, 1]])
        return C.judge_membership("tanh", A, g("tanh").intertwiner_group(2).membership(A), True)
    if kind == "membership-tiny":
        A = sp.Matrix([[1, TINY], [0, 1]])
        return C.judge_membership("tanh", A, g("tanh").intertwiner_group(2).membership(A), True)
    if kind == "intertwiner-singular":
        with pytest.raises(ValueError, match="A"):
            idf.check_intertwiner("identity", [[Z1]], [[Z1]])
        return C.Judgement("ok")
    if kind == "intertwiner-relu":
        A = sp.Matrix([[1 + Z2]])
        return C.judge_intertwiner("relu", A, A, idf.check_intertwiner("relu", A, A), True)
    if kind == "latent-loose-tol":
        # the construction: tanh [4, 8, 8, 1], invariant under the mirror of 1 x 2 x 2
        # images, weights perturbed by noise 0.1, latent_actions with tol = 2.0
        from identifiable import equivariance as eqv

        P = np.asarray(idf.groups.mirror(1, 2, 2).generators[0], float)
        case = eqv.planted_equivariant_mlp("tanh", [[1, 0, 3, 2]], [["perm", "perm"]] * 2,
                                           invariant=True, seed=0)
        m, th0 = case.model, case.theta.numeric
        rng = np.random.default_rng(0)
        th = m.params([W + 0.1 * rng.standard_normal(W.shape) for W in th0.weights],
                      list(th0.biases))
        v = idf.latent_actions(m, th, [P], [np.eye(1)], tol=2.0)
        return C.judge_latent(O.net_from_theta(["tanh"] * 2, th), [P], [np.eye(1)], v, False, 0)
    if kind == "adjunction":
        m = idf.MLP([2, 2, 2], "relu")
        c, s = sp.cos(2 * sp.pi / 5), sp.sin(2 * sp.pi / 5)
        g = sp.Matrix([[c, -s], [s, c]])  # rotation of order 5
        v = idf.check_adjunction(m, [g], [g])
        return C.Judgement(v.status, "false_refuted" if v.status == "refuted" else None)
    if kind.startswith("badarg-"):
        m = idf.MLP([2, 3, 1], "tanh")
        a, b = m.random_params(0), m.random_params(1)
        what = kind.split("-", 1)[1]
        calls = {
            "same_function-nan": (lambda: idf.same_function(m, a, b, tol=float("nan")), "tol"),
            "same_function-neg": (lambda: idf.same_function(m, a, a, tol=-1.0), "tol"),
            "intertwiner-neg": (lambda: idf.check_intertwiner("relu", np.eye(2), np.eye(2),
                                                              tol=-1.0), "tol"),
            "equivariant-inf": (lambda: idf.is_equivariant(
                m, a, [np.array([[0.0, 1.0], [1.0, 0.0]])], tol=float("inf")), "tol"),
            "same_function-n0": (lambda: idf.same_function(m, a, b, n_samples=0), "n_samples"),
            "same_function-n-1": (lambda: idf.same_function(m, a, b, n_samples=-1),
                                  "n_samples"),
        }
        fn, arg = calls[what]
        with pytest.raises(ValueError, match=arg):
            fn()
        return C.Judgement("ok")
    raise KeyError(kind)


KNOWN = ["identifiable", "weakly_identifiable", "membership-identity", "membership-power",
         "membership-tanh", "membership-tiny", "intertwiner-singular", "intertwiner-relu",
         "latent-loose-tol", "adjunction", "badarg-same_function-nan",
         "badarg-same_function-neg", "badarg-intertwiner-neg", "badarg-equivariant-inf",
         "badarg-same_function-n0", "badarg-same_function-n-1"]


@pytest.mark.parametrize("kind", KNOWN)
def test_known_defects(kind):
    j = _judge_call(kind)
    assert j.failure is None, f"{j.failure}: {j.note}"


def test_public_names_of_design():
    import identifiable as idf

    for name in ("Verdict", "check_intertwiner", "MLP", "reduce", "align", "weakly_identifiable",
                 "functional_dimension", "check_affine_intertwiner", "is_equivariant",
                 "latent_actions", "is_identifiable", "same_function"):
        assert hasattr(idf, name), f"idf.{name} (DESIGN.md public name) is missing"


# ---------------------------------------------------------------------------------- oracle
def test_oracle_reproducer_power_case():
    """Case 1 by hand: (x+1)^3 - (x-1)^3 = 6x^2 + 2 = the second parameter's function, and
    no monomial k relates the two parameters."""
    _, th, th2 = power_net_with_zero_output_bias()
    n1, n2 = O.net_from_theta(["power:3"], th), O.net_from_theta(["power:3"], th2)
    x = sp.Symbol("x1")
    p1, p2 = O.polynomial_function(n1)[0], O.polynomial_function(n2)[0]
    assert p1 == p2 and p1.as_expr() == 6 * x ** 2 + 2
    assert O.brute_align(n1, n2) == (False, None)
    assert O.brute_align(n1, n1)[0] is True


def test_oracle_disguised_zeros():
    for z in C.ZEROS:
        assert O.is_zero(z), z
    for t in C.TINIES:
        assert not O.is_zero(t), t
        assert abs(O.mpf(t)) < 1e-26
    assert O.singular(O.mat(sp.Matrix([[Z1]])))
    assert not O.in_group("identity", sp.Matrix([[Z1]]))
    assert not O.in_group("power:3", sp.Matrix([[Z2]]))
    assert O.in_group("tanh", sp.Matrix([[1, Z2], [0, 1]]))
    assert not O.in_group("tanh", sp.Matrix([[1, TINY], [0, 1]]))
    assert O.intertwines("relu", sp.Matrix([[1 + Z2]]), sp.Matrix([[1 + Z2]]))
    assert O.intertwines("power:3", sp.Matrix([[0, 2], [-1, 0]]), sp.Matrix([[0, 8], [-1, 0]]))
    assert not O.intertwines("power:3", sp.Matrix([[0, 2], [-1, 0]]),
                             sp.Matrix([[0, 2], [-1, 0]]))


def test_oracle_flags_the_known_defect_shapes():
    """The judges flag fabricated wrong verdicts of the reproducers' shapes."""
    from identifiable.verdict import Verdict

    j = C.judge_membership("identity", sp.Matrix([[Z1]]), Verdict.proved("x"), True)
    assert j.failure == "false_proved"
    j = C.judge_membership("tanh", sp.Matrix([[1, Z2], [0, 1]]),
                           Verdict.refuted("x", counterexample={"row": 0}), True)
    assert j.failure == "false_refuted"
    _, th, _ = power_net_with_zero_output_bias()
    j = C.judge_identifiable(O.net_from_theta(["power:3"], th), Verdict.proved("x"), False, True)
    assert j.failure == "false_proved"
    # refuted with a counterexample that does not refute at 50 digits
    j = C.judge_intertwiner("relu", sp.Matrix([[2]]), sp.Matrix([[3]]),
                            Verdict.refuted("x", counterexample={"x": [0]}), True)
    assert j.failure == "false_refuted"


def test_oracle_activations_agree_with_numpy():
    from scipy import special

    xs = np.concatenate([np.linspace(-8, 8, 161), [-30.5, 25.25, 1e-3, -1e-3]])
    ref = {
        "identity": xs, "relu": np.maximum(xs, 0.0),
        "leaky_relu:1/5": np.where(xs >= 0, xs, 0.2 * xs),
        "leaky_relu:-1": np.abs(xs), "tanh": np.tanh(xs), "sigmoid": special.expit(xs),
        "gelu": xs * special.ndtr(xs), "softplus": np.log1p(np.exp(-np.abs(xs))) +
        np.maximum(xs, 0.0), "power:2": xs ** 2, "power:3": xs ** 3,
    }
    for name, want in ref.items():
        got_np = O.act_np(name, xs)
        got_mp = np.array([float(O.act_mp(name, O.mpf(float(v)))) for v in xs])
        np.testing.assert_allclose(got_np, want, rtol=1e-12, atol=1e-14, err_msg=name)
        np.testing.assert_allclose(got_mp, want, rtol=1e-12, atol=1e-14, err_msg=name)


def test_oracle_derivatives_match_finite_differences():
    for name in ["tanh", "sigmoid", "gelu", "softplus", "power:3", "leaky_relu:1/5"]:
        for x in (-1.7, 0.3, 2.2):
            h = O.mpf(10) ** -25
            xm = O.mpf(x)
            fd = (O.act_mp(name, xm + h) - O.act_mp(name, xm - h)) / (2 * h)
            assert abs(fd - O.dact_mp(name, xm)) < 1e-30, name


@pytest.mark.parametrize("name", ["tanh", "relu", "power:2", "power:3", "identity", "sigmoid",
                                  "leaky_relu:-1"])
def test_oracle_k_action_keeps_the_function(name):
    """k . theta (generator, exact sympy) = oracle transform (60 digits), same function, and
    brute-force alignment finds a k."""
    rng = np.random.default_rng(5)
    widths = [2, 3, 2, 2]
    Ws, bs = C.rand_net_data(rng, widths, True)
    ks = [C.rand_k(rng, name, w, True) for w in widths[1:-1]]
    W2, b2 = C.exact_transform([name] * 2, Ws, bs, ks)
    n1, n2 = C.net_of([name] * 2, Ws, bs), C.net_of([name] * 2, W2, b2)
    P = O.transform(n1, [O.mat(A) for A, _ in ks])
    assert O.params_close(P, n2.mp()) < 1e-40
    pts = O.sample_points(2, 6, rng)
    assert O.max_diff(n1, n2, pts) < 1e-40
    ok, k = O.brute_align(n1, n2)
    if O.group_of(name).kind == "gl":
        assert ok in (True, None)
    else:
        assert ok is True and O.verify_witness(n1, n2, k)


def test_oracle_known_groups_agree_with_sampling():
    rng = np.random.default_rng(1)
    for _ in range(60):
        name = C.pick(rng, C.ACTS_ALL)
        d = int(rng.integers(1, 4))
        if rng.random() < 0.5:
            A, B = C.rand_k(rng, name, d, True)
        else:
            A, B = C.nonmember(rng, name, d, True)
        if O.singular(O.mat(A)):
            continue
        truth = O.intertwines(name, A, B)
        res = O.intertwining_residual(name, A, B, O.structured_points(d, rng, 30))
        assert (res < 1e-40) == truth, (name, A, B, res)


def test_oracle_jacobian_matches_finite_differences():
    rng = np.random.default_rng(2)
    net = C.net_of(["tanh", "tanh"], *C.rand_net_data(rng, [2, 3, 2, 2], False))
    x = [0.4, -1.1]
    J = O.jacobian_mp(net, x)
    Ws, bs = net.mp()
    flat = []
    for W, b in zip(Ws, bs):
        flat += [(W, r, c) for r in range(len(W)) for c in range(len(W[0]))]
        flat += [(b, r, None) for r in range(len(b))]
    h = O.mpf(10) ** -20
    for j, (M, r, c) in enumerate(flat):
        old = M[r] if c is None else M[r][c]
        for sgn in (1, -1):
            if c is None:
                M[r] = old + sgn * h
            else:
                M[r][c] = old + sgn * h
            if sgn == 1:
                up = O.forward_mp(net, x)
            else:
                dn = O.forward_mp(net, x)
        if c is None:
            M[r] = old
        else:
            M[r][c] = old
        for o in range(2):
            assert abs((up[o] - dn[o]) / (2 * h) - J[o][j]) < 1e-30


def test_oracle_rank_of_a_degenerate_net():
    """Two identical tanh neurons: the Jacobian loses exactly d_0 + 1 + d_L... directions of the
    copy's incoming row (they equal the original's), checked against a hand count."""
    net = O.Net(["tanh"], [[[1, 2], [1, 2]], [[1, 1]]], [[0.5, 0.5], [0]], False)
    X = np.random.default_rng(0).standard_normal((40, 2)) * 2
    rk, _ = O.jacobian_rank(net, X)
    # f = tanh(z)(c1 + c2) + b: params W1 (4), b1 (2), W2 (2), b2 (1) = 9; the function class is
    # {c tanh(w.x + b) + b0}: dimension 2 + 1 + 1 + 1 = 5
    assert rk == 5
    assert math.isclose(float(O.mpf(Fraction(1, 3))), 1 / 3)
