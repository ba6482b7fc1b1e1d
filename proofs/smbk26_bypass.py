"""Section 5.1 [SMBK26]: the bypass identity sigma(x) - sigma(-x) = x.

It holds for ReLU and GELU (so such networks can route a linear signal through the
nonlinearity, an obstruction to identifiability) and fails for tanh. Decided exactly on the sign
cases x > 0, x = 0, x < 0; the tanh refutation carries an x with a large residual.
"""

from identifiable import activations
from identifiable.claims import claim
from identifiable.verdict import Verdict

EXPECTED = {"relu": "proved", "gelu": "proved", "tanh": "refuted", "leaky_relu:1/2": "refuted"}


@claim(id="smbk26.bypass", source="[SMBK26] Sec. 5.1",
       statement="ReLU and GELU satisfy sigma(x) - sigma(-x) = x; tanh does not",
       expected="proved", method="exact sign-case simplification")
def check() -> Verdict:
    results = {}
    for name, want in EXPECTED.items():
        v = activations.get(name).bypass()
        results[name] = v.status
        if v.status != want:
            return Verdict.refuted(f"{name}: bypass identity {v.status}, expected {want}",
                                   counterexample={"activation": name, "verdict": v.to_dict()})
        if v.status == "refuted" and abs(v.counterexample["residual"]) < 1e-6:
            return Verdict.undecided(f"{name}: counterexample too small")
    return Verdict.proved("bypass identity exact for relu and gelu, refuted for tanh "
                          "(and leaky_relu:1/2)", witness=results)
