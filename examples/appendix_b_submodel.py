"""
Appendix B: a parameter that is not weakly identifiable, and its submodel
=========================================================================

The shallow network ``f(x; theta) = W_2 sigma(W_1 x)`` of Appendix B [SMBK26] with

    W_1 = [[1, 1], [2, 3]],   W_2 = [-2, 0]

computes ``-2 sigma(x_1 + x_2)``: the second hidden neuron is *half-dead* (its outgoing weight is
zero, its incoming row is not). The function is invariant under swapping the inputs, yet the
first layer is not equivariant for any action on the latent space, so (Theorem 4.1) ``theta_0``
cannot be weakly identifiable. Zeroing the dead row (Remark 5.2) gives ``theta'_0``, which comes
from a one-neuron submodel whose diagrams (20)-(21) commute.
"""

import numpy as np
import sympy as sp

import identifiable as idf
from identifiable.diagrams import expr_is_zero
from identifiable.identifiability import same_function, weakly_identifiable
from identifiable.models import MLP
from identifiable.submodels import reduce

model = MLP([2, 2, 1], "tanh", bias=False)
theta0 = model.params([[[1, 1], [2, 3]], [[-2, 0]]])
print(model, "K_1 =", model.latent_group(1).name)
print("f(x; theta_0) =", model.symbolic(theta0)[0])

# %%
# The function is S_2-invariant
# -----------------------------
# ``J`` swaps the two inputs; the difference ``f(Jx) - f(x)`` is decided exactly.
J = sp.Matrix([[0, 1], [1, 0]])
x = sp.Matrix(sp.symbols("x1 x2", real=True))
print(expr_is_zero(model.symbolic(theta0, J * x)[0] - model.symbolic(theta0, x)[0]))

# %%
# The first layer admits no latent action
# ---------------------------------------
# ``W_1`` is invertible, so an action ``C`` on ``V_1`` with ``C sigma(W_1 x) = sigma(W_1 J x)``
# would make ``R = W_1 J W_1^{-1}`` an intertwiner of sigma. It is not monomial, and
# ``check_intertwiner`` finds a point where ``sigma(R y) != C sigma(y)``.
W1 = sp.Matrix([[1, 1], [2, 3]])
R = W1 * J * W1.inv()
print("R =", R.tolist())
v = idf.check_intertwiner("tanh", R, R)
print(v)

# %%
# Hence theta_0 is not weakly identifiable
# ----------------------------------------
v0 = weakly_identifiable(model, theta0)
print(v0.status, "-", v0.reason[:160], "...")
theta0p = v0.counterexample["theta_prime"]
print("theta'_0: W'_1 =", theta0p.weights[0].tolist(), " W'_2 =", theta0p.weights[1].tolist())
print("same function:", same_function(model, theta0, theta0p).status)

# %%
# theta'_0 comes from a submodel (Remark 5.2)
# -------------------------------------------
# ``reduce`` zeroes the half-dead neuron and removes it. The submodel has one hidden neuron,
# ``W~_1 = [1, 1]``, ``W~_2 = -2``; ``alpha_1`` embeds ``R`` as the first coordinate of
# ``R^2``. The diagrams of Definition 3.2 are checked with the submodel's parameters and the
# input as sympy symbols, i.e. for *all* submodel parameters.
sub = reduce(model, theta0)
print(sub)
print("steps:", sub.steps)
print("theta~:", [W.tolist() for W in sub.theta.weights])
print("alpha_1 =", sub.A[1].tolist(), " alpha*_1 =", sub.A_star[1].tolist())
for i in (1, 2):
    D = sub.diagram(i)
    print(f"diagram ({19 + i}):", D.commutes())
print("Definition 3.2 and eq. (2):", sub.check())

# %%
# The layers of theta'_0 are equivariant
# --------------------------------------
# ``W'_1 J = W'_1``: the first layer maps the permutation action to the trivial action on
# ``V_1``, and the second layer is equivariant between trivial actions.
W1p = theta0p.weights[0]
print("W'_1 J == W'_1:", W1p * J == W1p)
X = np.random.default_rng(0).standard_normal((5, 2))
print("f_1(Jx) - f_1(x) on samples:",
      np.max(np.abs(model.latents(X @ np.array(J.tolist(), float).T, theta0p)[1]
                    - model.latents(X, theta0p)[1])))
print(weakly_identifiable(model, theta0p))
