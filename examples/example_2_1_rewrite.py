"""
Example 2.1 of [BK23]: equivariant, not layerwise equivariant, and the rewrite
==============================================================================

``f(x) = W2 ReLU(W1 x)`` with ``W1 = [[1, 0], [0, 0]]`` and ``W2 = 0`` is invariant under
swapping the two inputs (it is the zero function), but no action on the hidden layer makes its
first layer equivariant: ``rho_1(h) W1 = W1 J`` is impossible. The parameter is not weakly
identifiable (its first neuron is *half-dead*, Remark 5.2 [SMBK26]); zeroing it gives a
parameter with the same function that comes from a submodel, and there Theorem 4.1 applies.
"""

import sympy as sp

import identifiable as idf

J = sp.Matrix([[0, 1], [1, 0]])
model = idf.MLP([2, 2, 1], "relu", bias=False)
theta = model.params([[[1, 0], [0, 0]], [[0, 0]]])

# %%
# End-to-end invariant ...
print(idf.is_equivariant(model, theta, [J]))

# %%
# ... but not layerwise: rho_1 (W1) = W1 J has no solution for any 2 x 2 matrix rho_1
W1 = sp.Matrix(theta.weights[0])
r = sp.Matrix(2, 2, sp.symbols("r0:4"))
print("solutions of rho_1 W1 = W1 J:", sp.solve(list(r * W1 - W1 * J), list(r)) or "none")
print("weakly identifiable:", idf.weakly_identifiable(model, theta).status)

# %%
# The rewrite: reduce, then Theorem 4.1 on the submodel
sub = idf.reduce(model, theta)
print(sub, "steps:", sub.steps)
v = idf.latent_actions(model, theta, [J])
print(v.status, "-", v.reason)
theta2 = v.witness["ambient_theta"]
print("rewritten W1 =", sp.Matrix(theta2.weights[0]).tolist(), " W2 =",
      sp.Matrix(theta2.weights[1]).tolist())
print("same function:", idf.same_function(model, theta, theta2).status)
print("rho_1(h) =", v.witness["rho_generators"][0][0].tolist())
