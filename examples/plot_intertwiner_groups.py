"""
Deriving the intertwiner groups of activations
==============================================

For an activation sigma applied coordinate-wise, the latent symmetries of an MLP layer are the
invertible A with ``sigma(A x) = B sigma(x)`` for some B (eq. (8) of [SMBK26]). ``identifiable``
*derives* this group from the expression of sigma: for non-affine sigma it consists of monomial
matrices ``P diag(a)`` whose scalings a lie in a subgroup S of the non-zero reals, with partner
``B = P diag(c(a))``.

Here we derive S and c for several activations and draw them: a scaling a is allowed where the
curve c(a) is drawn.
"""

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import identifiable as idf
from identifiable import activations

x = sp.Symbol("x")
acts = [activations.get(n) for n in ("relu", "leaky_relu:0.1", "tanh", "gelu", "power:2",
                                     "power:3")]
acts += [activations.from_sympy(sp.sin(x), x, "sin"),
         activations.from_sympy(x / (1 + sp.Abs(x)), x, "x/(1+|x|)"),
         activations.from_sympy(sp.Abs(x), x, "|x|")]

# %%
# The derivation, one verdict per activation
# ------------------------------------------
for act in acts:
    v = act.derive()
    K = act.intertwiner_group(4)
    print(f"{act.name:12s} {v.status:8s} K = {K.name}")

# %%
# Drawing S and c(a)
# ------------------
# Allowed scalings are drawn as the graph of c on S; finite S as dots.
a_grid = np.linspace(-3, 3, 601)
a_grid = a_grid[np.abs(a_grid) > 1e-9]
fig, axes = plt.subplots(3, 3, figsize=(9, 8), sharex=True)
for ax, act in zip(axes.ravel(), acts):
    S = act.intertwiner_group(1).scalings
    if S.is_finite:
        pts = [1.0] if S.kind == "one" else [-1.0, 1.0]
        ax.plot(pts, [float(S.c(p)) for p in pts], "o", color="C3", ms=8)
    else:
        mask = a_grid > 0 if S.kind == "positive" else np.ones_like(a_grid, bool)
        ax.plot(a_grid[mask], S.c_numeric(a_grid[mask]), color="C3")
    ax.plot(a_grid, act(a_grid), color="0.7", lw=1, label="sigma")
    ax.axhline(0, color="0.85", lw=0.5)
    ax.axvline(0, color="0.85", lw=0.5)
    ax.set_title(f"{act.name}: S = {S.name}", fontsize=9)
    ax.set_ylim(-4, 9)
fig.suptitle("allowed scalings a (red: c(a) on S) and sigma (grey)")
fig.tight_layout()

# %%
# Deciding intertwiners exactly
# -----------------------------
# A random signed permutation is an intertwiner of tanh; adding one entry breaks it, and the
# refutation carries a concrete input where the two sides differ.
K = activations.get("tanh").intertwiner_group(3)
A = K.random_exact(seed=1)
print(idf.check_intertwiner("tanh", A, A))
A2 = sp.Matrix(A)
A2[0, 1] += 1 if A2[0, 1] == 0 else 0
A2[0, 2] += 1 if A2[0, 2] == 0 else 0
v = idf.check_intertwiner("tanh", A2, A)
print(v)
xv = np.array([float(t) for t in v.counterexample["x"]])
lhs = np.tanh(np.array(A2.evalf().tolist(), float) @ xv)
rhs = np.array(sp.Matrix(A).evalf().tolist(), float) @ np.tanh(xv)
print("re-check at the counterexample:", lhs, rhs)
