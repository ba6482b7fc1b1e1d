"""Definition 3.2 [SMBK26]: a submodel's diagram commutes, hence the end-to-end functions agree.

For submodels of MLPs built from inactive and redundant neurons (rectangular intertwiners of
eq. (9)) with tanh, ReLU, x^3, the logistic sigmoid (whose inactive neurons output sigma(0), an
affine alpha_i) and a linear activation (the column-space embedding), we check:

1. ``Submodel.check_definition()``: alpha_0, alpha_L identities, alpha*_i alpha_i = Id, the
   diagram of every layer commutes for *all* submodel parameters (the submodel's weights and
   biases and the input are sympy symbols; kinks are split into sign cases); and, for the
   submodels whose copies have equal multiplicities (or that only drop neurons), eq. (2) on
   generators of K~_i (``Submodel.check_gamma()``). Copies with unequal multiplicities (tanh
   and x^3 cases: two copies of one submodel neuron, one of the other) satisfy Definition 3.2
   but admit no ``gamma_1`` (eq. (2) refuted for the transposition), as recorded in the
   witness;
2. the consequence stated after Definition 3.2: ``f(x; beta(theta~)) = f~(x; theta~)`` as sympy
   expressions in the input *and* all submodel parameters (fully symbolic);
3. a negative control: an embedding that is no rectangular intertwiner (``alpha_i`` claiming
   ``tanh(y) = 2 tanh(y)``) must be refuted, with a point that re-evaluates to a non-zero
   difference.
"""

import sympy as sp

from identifiable.claims import claim
from identifiable.diagrams import expr_is_zero
from identifiable.models import MLP
from identifiable.submodels import Submodel, from_intertwiners
from identifiable.verdict import Verdict

#: two copies of submodel neuron 0 and one of neuron 1: no gamma_1 (eq. (2)) exists
UNEVEN = {"tanh", "power:3"}
CASES = {  # activation -> B_1 for a [2, 3, 1] MLP (rows: neurons, columns: submodel neurons)
    "tanh": sp.Matrix([[1, 0], [-1, 0], [0, 1]]),
    "relu": sp.Matrix([[1, 0], [0, 0], [0, sp.Rational(3, 2)]]),
    "power:3": sp.Matrix([[1, 0], [sp.Rational(-1, 2), 0], [0, 1]]),
    "sigmoid": sp.Matrix([[1, 0], [0, 0], [0, 1]]),
    "identity": sp.Matrix([[1, 0], [1, 1], [0, 2]]),
}


def _end_to_end(sub: Submodel) -> Verdict:
    sym = sub.model.symbols("u", "c")
    big = sub.ambient.symbolic(sub.embed(sym))
    small = sub.model.symbolic(sym)
    for o in range(big.rows):
        v = expr_is_zero(big[o] - small[o])
        if v.status != "proved":
            return v
    return Verdict.proved("f(x; beta(theta~)) = f~(x; theta~) for all x and theta~")


@claim(id="smbk26.def-3.2", source="[SMBK26] Def. 3.2",
       statement="submodel diagrams commute for all submodel parameters, so f(x; beta(theta~)) "
                 "= f~(x; theta~)",
       expected="proved", method="symbolic diagrams (all parameters as symbols)")
def check() -> Verdict:
    results = {}
    for act, B in CASES.items():
        sub = from_intertwiners(MLP([2, 3, 1], act), [B])
        v = sub.check_definition()
        if v.status != "proved":
            return v.but(reason=f"{act}: submodel check {v.status}: {v.reason}") \
                if v.status != "refuted" else Verdict.refuted(
                f"{act}: the submodel of eq. (9) fails Definition 3.2: {v.reason}",
                counterexample=v.counterexample)
        e = _end_to_end(sub)
        if e.status != "proved":
            return Verdict.refuted(f"{act}: end-to-end functions differ: {e.reason}",
                                   counterexample=e.counterexample or {"activation": act}) \
                if e.status == "refuted" else e.but(reason=f"{act}: {e.reason}")
        g = sub.check_gamma()
        results[act] = (f"{sub.model.widths} in {sub.ambient.widths}: Definition 3.2 proved, "
                        f"eq. (2) {g.status}")
        uneven = act in UNEVEN
        if (g.status == "refuted") != uneven:
            return Verdict.refuted(f"{act}: eq. (2) {g.status}, expected "
                                   f"{'refuted' if uneven else 'proved'}",
                                   counterexample={"activation": act, "verdict": g.to_dict()})
    # negative control: alpha_1 = [1; 2] is not an intertwiner partner of B_1 = [1; 1]
    bad = Submodel(MLP([2, 2, 1], "tanh"), [sp.Matrix([[1], [1]])], A=[sp.Matrix([[1], [2]])])
    v = bad.check()
    if v.status != "refuted":
        return Verdict.refuted("a wrong embedding was not refuted",
                               counterexample={"verdict": v.to_dict()})
    if abs(v.counterexample.get("value", 0.0)) < 1e-6:
        return Verdict.undecided("the negative control's counterexample is too small")
    return Verdict.proved(
        "Definition 3.2 proved for inactive / redundant-neuron submodels (tanh, ReLU, x^3, "
        "sigmoid with affine alpha, linear), end-to-end equality proved symbolically, a wrong "
        "embedding refuted", witness=results)

