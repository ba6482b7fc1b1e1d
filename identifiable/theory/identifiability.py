"""
Alignment (Definition 3.4) is :mod:`identifiable.theory.align`, the function check
:mod:`identifiable.theory.same_function`, the functional dimension
:mod:`identifiable.theory.dimension`.

* :func:`is_identifiable` applies the known identifiability theorems to ``theta`` itself
  (Definition 3.4), :func:`weakly_identifiable` to the parameter of the submodel ``theta`` comes
  from (Definition 3.5, via :func:`identifiable.theory.submodels.reduce`).

The theorems and exactly which hypotheses are checked (on the reduced parameter):

tanh
    One hidden layer: Sussmann (1992): an *irreducible* net (every hidden neuron has a non-zero
    incoming weight vector and a non-zero outgoing weight, and no two hidden neurons have
    ``(w_j, b_j) = +-(w_k, b_k)``) is determined by its function up to permutations and sign
    flips, i.e. up to ``K`` (vector outputs reduce to a generic linear combination of them).
    Deeper nets: Vlacic & Bolcskei (2021), who settle identifiability for tanh in full
    generality; we check the same conditions on every hidden layer (no zero incoming row, no zero
    outgoing column, no clones up to sign). Our reading of their non-degeneracy conditions.
logistic sigmoid
    ``sigma(-x) = 1 - sigma(x)`` is an *affine* symmetry, not in the linear intertwiner group
    ``K_i = S_{d_i}`` of eq. (8) (:func:`identifiable.check_affine_intertwiner` proves it): with
    biases, flipping a neuron and shifting the next bias gives the same function, and no
    permutation relates the two parameters. So a sigmoid parameter with a hidden neuron is not
    identifiable in the sense of Definition 3.4 (``refuted`` with that witness); the results of
    Fefferman (1994) and Vlacic & Bolcskei (2022) hold up to these affine symmetries. (The paper
    assumes origin-passing activations for MLPs, Section 5.1, which excludes the sigmoid.)
powers ``t^m`` (m >= 2)
    One hidden layer: the function is the tensor ``sum_j c_j (x) v_j^{(x) m} (+ b_2 (x) e_0^m)``
    with ``v_j = (w_j, b_j)``; by Kruskal's theorem (Kruskal 1977; N-way form of Sidiropoulos &
    Bro 2000) the decomposition is unique when ``k_C + m k_V >= 2R + m`` (``k`` the Kruskal ranks,
    ``R`` the number of terms), and uniqueness of the terms is exactly ``K``-equivalence. Deeper
    nets: Kileel et al. (2019) / Finkel et al. (2025) prove statements about *generic*
    parameters (the neurovariety reaches its expected dimension ``#params - dim K`` above an
    activation degree threshold, at most ``6w^2 - 6w + 1`` for largest width w and no width-one
    bottleneck, and 1 for equi-width architectures); they do not certify a given parameter, so
    the answer is ``undecided`` with the functional dimension attached.
linear (``sigma(t) = s t``)
    Trager et al. (2020): without biases a parameter whose hidden widths are all equal to ``r``
    with ``r <= min(d_0, d_L)`` and every ``W_i`` of rank ``r`` is determined by the product up to
    ``GL(r)`` in every hidden layer. With biases ``b_i -> b_i + t``,
    ``b_{i+1} -> b_{i+1} - W_{i+1} t`` is a symmetry outside ``K`` (refuted with that witness).
ReLU, leaky ReLU, GELU, softplus, others
    ``undecided``: identifiability is open (ReLU, GELU and softplus also satisfy the bypass
    identity ``sigma(x) - sigma(-x) = x``); Grillo & Montufar (2026) show that ReLU
    architectures with input and hidden widths >= 2 have an open set of identifiable parameters
    and functional dimension ``#params - #hidden neurons``, a statement about some parameters.
    The functional dimension at ``theta`` is attached as evidence."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.models import MLP, Theta
from identifiable.numbers import (
    default_tol,
    is_exact_zero,
    validate_tol,
    validates_arguments,
)
from identifiable.theory.align import align
from identifiable.theory.dimension import functional_dimension
from identifiable.theory.same_function import same_function
from identifiable.theory.submodels import half_dead_are_copies, reduce
from identifiable.verdict import Verdict

__all__ = ["is_identifiable", "weakly_identifiable", "activation_family"]


# ---------------------------------------------------------------------------------- families
def activation_family(act: Any) -> tuple[str, Any]:
    """``("tanh", None)``, ``("sigmoid", None)``, ``("power", m)``, ``("linear", s)``,
    ``("relu", None)`` or ``("other", None)``: :attr:`Activation.family
    <identifiable.activations.Activation.family>`, decided from the expression."""
    return act.family


# ---------------------------------------------------------------------------------- identifiable
def _nonzero(v: Any, tol: float | None) -> bool:
    return not is_exact_zero(v) if tol is None else abs(float(v)) > tol


def _rows(theta: Theta, i: int) -> list[list]:
    W, b = theta[i - 1]
    if theta.exact:
        return [list(W.row(r)) + [b[r]] for r in range(W.shape[0])]
    return np.hstack([W, np.asarray(b).reshape(-1, 1)]).tolist()


def _tanh_hypotheses(model: MLP, theta: Theta, tol: float | None) -> dict | None:
    """The first violated hypothesis (no zero incoming row, no zero outgoing column, no
    clones up to sign), or None."""
    for i in range(1, model.depth):
        W, _ = theta[i - 1]
        N = theta.weights[i]
        rows = _rows(theta, i)
        for r in range(W.shape[0]):
            w = list(W.row(r)) if theta.exact else W[r].tolist()
            if not any(_nonzero(v, tol) for v in w):
                return {"layer": i, "neuron": r, "hypothesis": "non-zero incoming weights"}
            col = list(N.col(r)) if theta.exact else N[:, r].tolist()
            if not any(_nonzero(v, tol) for v in col):
                return {"layer": i, "neuron": r, "hypothesis": "non-zero outgoing weights"}
        for r, q in itertools.combinations(range(W.shape[0]), 2):
            for s in (1, -1):
                if all(not _nonzero(u - s * v, tol) for u, v in zip(rows[r], rows[q])):
                    return {"layer": i, "neurons": (q, r), "hypothesis":
                            "no two neurons with (w, b) equal up to sign"}
    return None


def _kruskal_rank(cols: list, tol: float | None) -> int:
    """Largest k such that every k of the columns are linearly independent."""
    n = len(cols)
    k = 0
    for size in range(1, n + 1):
        for comb in itertools.combinations(range(n), size):
            if tol is None:
                rank = _zero.rank(sp.Matrix.hstack(*[cols[j] for j in comb]), "Kruskal rank")
            else:
                M = np.column_stack([cols[j] for j in comb])
                s = np.linalg.svd(M, compute_uv=False)
                rank = int(np.sum(s > tol * max(1.0, s[0] if s.size else 1.0)))
            if rank < size:
                return k
        k = size
    return k


def _flip_witness(model: MLP, theta: Theta) -> Theta:
    """Sigmoid: flip the first neuron of the last hidden layer, shift the next bias
    (sigma(-z) = 1 - sigma(z))."""
    i = max(j for j in range(1, model.depth) if model.widths[j] > 0)
    Ws = [sp.Matrix(W) if theta.exact else np.array(W, float) for W in theta.weights]
    bs = [sp.Matrix(b) if theta.exact else np.array(b, float).reshape(-1) for b in theta.biases]
    col = Ws[i][:, 0].copy() if not theta.exact else sp.Matrix(Ws[i][:, 0])
    Ws[i - 1][0, :] = -Ws[i - 1][0, :]
    bs[i - 1][0] = -bs[i - 1][0]
    Ws[i][:, 0] = -Ws[i][:, 0]
    bs[i] = bs[i] + (col if theta.exact else col)
    return model.params(Ws, bs) if theta.exact else Theta(tuple(Ws), tuple(bs), "float")


def _translation_witness(model: MLP, theta: Theta) -> Theta:
    """Linear sigma(t) = s t with biases: b_1 -> b_1 + e_1, b_2 -> b_2 - s W_2 e_1 (the first
    hidden layer's output moves by s e_1, which the next bias takes back)."""
    s = model.activations[0].derive().witness.slope
    Ws = list(theta.weights)
    bs = [sp.Matrix(b) if theta.exact else np.array(b, float).reshape(-1) for b in theta.biases]
    bs[0][0] = bs[0][0] + 1
    bs[1] = bs[1] - (s * sp.Matrix(Ws[1][:, 0]) if theta.exact
                     else float(s) * np.asarray(Ws[1])[:, 0])
    return model.params(Ws, bs) if theta.exact else Theta(tuple(Ws), tuple(bs), "float")


def _not_identifiable_witness(model: MLP, theta: Theta, tol: float | None) -> Verdict | None:
    """If reduce changes or shrinks theta: a second parameter with the same function that no
    element of K relates to theta."""
    sub = reduce(model, theta, tol=tol)
    emb = sub.embed()
    if not emb.equals(theta, tol):
        other = emb
        why = "; ".join(sub.steps[:3])
    elif sub.model.widths != model.widths:
        # an inactive neuron: give it a non-zero incoming row (its outgoing column is zero)
        i = next(j for j in range(1, model.depth) if sub.model.widths[j] < model.widths[j])
        B = sub.B[i]
        r = next(rr for rr in range(B.shape[0]) if all(is_exact_zero(B[rr, k]) if theta.exact
                                                       else B[rr, k] == 0
                                                       for k in range(B.shape[1])))
        Ws = [sp.Matrix(W) if theta.exact else np.array(W, float) for W in theta.weights]
        Ws[i - 1][r, :] = (sp.ones(1, Ws[i - 1].shape[1]) * 7 if theta.exact
                           else np.full(Ws[i - 1].shape[1], 7.0))
        other = model.params(Ws, list(theta.biases) if model.bias else None) if theta.exact \
            else Theta(tuple(Ws), theta.biases, "float")
        why = f"neuron {r} of layer {i} is inactive; its incoming row is free"
    else:
        return None
    va = align(model, theta, other, tol=tol)
    if va.status != "refuted":
        return None
    vs = same_function(model, theta, other, tol=None if tol is None else 1e3 * tol)
    if vs.status not in ("proved", "checked"):
        return None
    return Verdict.refuted(
        f"theta is not identifiable: theta' (same function, {vs.status}) is not k . theta "
        f"({why})", counterexample={"theta_prime": other, "align": va.reason,
                                    "same_function": vs.status},
        method="exact" if theta.exact else "tolerance", tol=tol)


def _positive(reason: str, theta: Theta, tol: float | None, **details: Any) -> Verdict:
    """``proved`` for exact parameters; for floats, whose hypotheses were checked entry-wise
    within ``tol``, ``checked`` with that tolerance."""
    if theta.exact:
        return Verdict.proved(reason, method="theorem", **details)
    n = sum(int(np.size(W)) + int(np.size(b)) for W, b in theta)
    return Verdict.checked(reason + " (hypotheses checked within tol)", n_samples=max(n, 1),
                           tol=tol or 0.0, method="tolerance", **details)


def _theta_and_tol(model: MLP, theta: Any, tol: float | None) -> tuple[Theta, float | None]:
    """Validate an MLP parameter; exact parameters get ``tol = None``, float ones a default."""
    tol = validate_tol(tol)
    if not isinstance(model, MLP):
        raise TypeError(f"model: expected an MLP, got {type(model).__name__}")
    theta = model.check_theta(theta)
    if theta.kind == "symbolic":
        raise ValueError("theta: symbolic parameters; substitute values first")
    if theta.exact:
        return theta, None
    return theta, default_tol(*theta.weights, *theta.biases) if tol is None else tol


@validates_arguments
@_zero.undecided_on_zero_tests
def is_identifiable(model: MLP, theta: Any, *, tol: float | None = None,
                 evidence: bool = True) -> Verdict:
    """Is ``theta`` identifiable (Definition 3.4 [SMBK26])? See the module docstring for the
    theorems and the hypotheses checked. ``refuted`` carries a second parameter ``theta_prime``
    with the same function that no element of ``K`` relates to ``theta``."""
    theta, tol = _theta_and_tol(model, theta, tol)
    method = "theorem" if theta.exact else "tolerance"
    L = model.depth
    hidden = [w for w in model.hidden_widths]
    if L == 1 or sum(hidden) == 0:
        return Verdict.proved("no hidden neurons: K is trivial and f determines theta "
                              "(affine map / constant)" if L == 1 else
                              "a hidden layer of width 0: theta~ reduces to the output bias, "
                              "which f determines", method="exact")
    w = _not_identifiable_witness(model, theta, tol)
    if w is not None:
        return w
    fam, arg = model.activation_family
    if fam == "tanh":
        bad = _tanh_hypotheses(model, theta, tol)
        if bad is not None:
            return Verdict.undecided(f"tanh: hypothesis '{bad['hypothesis']}' fails at layer "
                                     f"{bad['layer']}", witness=bad, tol=tol)
        cite = ("Sussmann (1992), one hidden layer" if L == 2 else
                "Vlacic & Bolcskei (2021), tanh networks of any depth")
        return _positive(
            f"{cite}: every hidden neuron has non-zero incoming and outgoing weights and no two "
            "neurons of a layer have (w, b) equal up to sign, so theta is determined by f up to "
            "permutations and sign flips = K (Definition 3.4)", theta, tol, theorem=cite)
    if fam == "sigmoid":
        if not model.bias:
            return Verdict.undecided("logistic sigmoid without biases: no theorem applied "
                                     "(sigma(0) != 0; Section 5.1 assumes origin-passing "
                                     "activations)", tol=tol)
        from identifiable.intertwining import check_affine_intertwiner

        aff = check_affine_intertwiner(model.activations[-1], [[-1]], [0], [[-1]], [1])
        other = _flip_witness(model, theta)
        va = align(model, theta, other, tol=tol)
        vs = same_function(model, theta, other, tol=None if tol is None else 1e3 * tol)
        if aff.status == "proved" and va.status == "refuted" and vs.status in ("proved",
                                                                               "checked"):
            return Verdict.refuted(
                "logistic sigmoid: sigma(-z) = 1 - sigma(z) (proved) lets a neuron flip with a "
                "shift of the next bias; the flipped parameter has the same function but no "
                "permutation (K_i = S_d, eq. (8)) relates it to theta",
                counterexample={"theta_prime": other, "align": va.reason,
                                "same_function": vs.status}, method=method, tol=tol)
        return Verdict.undecided("sigmoid: the flip witness did not separate", tol=tol)
    if fam == "linear":
        if model.bias:
            other = _translation_witness(model, theta)
            va = align(model, theta, other, tol=tol)
            vs = same_function(model, theta, other, tol=None if tol is None else 1e3 * tol)
            if va.status == "refuted" and vs.status in ("proved", "checked"):
                return Verdict.refuted(
                    "linear activation with biases: b_1 -> b_1 + t, b_2 -> b_2 - W_2 t keeps f "
                    "but is not in K = GL (Trager et al. 2020 concerns bias-free networks)",
                    counterexample={"theta_prime": other, "align": va.reason,
                                    "same_function": vs.status}, method=method, tol=tol)
            return Verdict.undecided("linear with biases: translation witness not separated",
                                     tol=tol)
        r = hidden[0]
        ranks = []
        for W in theta.weights:
            if theta.exact:
                ranks.append(_zero.rank(W, "W_i"))
            else:
                s = np.linalg.svd(W, compute_uv=False)
                ranks.append(int(np.sum(s > tol)))
        if all(h == r for h in hidden) and r <= min(model.widths[0], model.widths[-1]) and all(
                k == r for k in ranks):
            return _positive(
                f"Trager et al. (2020): bias-free linear network with equal hidden widths {r} <= "
                "min(d_0, d_L) and every W_i of rank r: the product determines theta up to "
                "GL(r) in every hidden layer", theta, tol)
        return Verdict.undecided(f"linear: hidden widths {hidden} / ranks {ranks} outside "
                                 "Trager et al.'s hypotheses", tol=tol)
    if fam == "power" and L == 2:
        m = int(arg)
        W1, b1 = theta[0]
        W2, b2 = theta[1]
        exact = theta.exact
        cols_v, cols_c = [], []
        for j in range(model.widths[1]):
            if exact:
                v = list(W1.row(j)) + ([b1[j]] if model.bias else [])
                cols_v.append(sp.Matrix(v))
                cols_c.append(sp.Matrix(W2.col(j)))
            else:
                v = np.concatenate([W1[j], [b1[j]] if model.bias else []])
                cols_v.append(v)
                cols_c.append(np.asarray(W2[:, j]))
        # With biases the output bias is one more rank-one term b_L (x) e_0^(x)m, counted even
        # when b_L = 0: a competing parameter may have b_L' != 0, and the uniqueness must hold
        # among decompositions with that many terms. A zero column (b_L = 0, or a neuron with
        # c_j = 0) has Kruskal rank 0, and the N-way theorem needs every k >= 1.
        b_zero = False
        if model.bias:
            e0 = [0] * model.widths[0] + [1]
            cols_v.append(sp.Matrix(e0) if exact else np.array(e0, float))
            cols_c.append(sp.Matrix(b2) if exact else np.asarray(b2, float))
            b_zero = not any(_nonzero(v, tol) for v in (list(b2) if exact else b2))
        R = len(cols_v)
        kv, kc = _kruskal_rank(cols_v, tol), _kruskal_rank(cols_c, tol)
        if min(kv, kc) >= 1 and kc + m * kv >= 2 * R + m:
            return _positive(
                f"x^{m}, one hidden layer: f is the tensor sum_j c_j (x) v_j^(x){m}"
                + (" + b_L (x) e_0^(x)" + str(m) if model.bias else "")
                + f" with R = {R} terms and Kruskal ranks k_V = {kv}, k_C = {kc} >= 1; "
                f"k_C + m k_V = {kc + m * kv} >= 2R + m = {2 * R + m}, so every decomposition "
                f"with at most R terms is this one (Kruskal 1977; Sidiropoulos & Bro 2000) and "
                "theta is determined up to K (monomial matrices)", theta, tol)
        why = (f"x^{m}: Kruskal's condition k_C + m k_V >= 2R + m with k_V, k_C >= 1 fails "
               f"(R = {R}, k_V = {kv}, k_C = {kc})")
        if b_zero:
            why += ("; b_L = 0, so the output-bias term is a zero column (k_C = 0), yet a "
                    "competing parameter may use b_L' != 0 as one more rank-one term")
    elif fam == "power":
        why = (f"x^{arg}, depth {L}: Kileel et al. (2019) / Finkel et al. (2025) concern generic "
               "parameters (expected neurovariety dimension above an activation degree "
               "threshold <= 6w^2 - 6w + 1, = 1 for equi-width), not this theta")
    elif fam == "relu":
        why = ("ReLU: identifiability of a given parameter is open (bypass sigma(x) - sigma(-x) = "
               "x; Grillo & Montufar 2026: an open set of identifiable parameters exists when "
               "input and hidden widths are >= 2)")
    else:
        why = (f"no identifiability theorem for activation(s) "
               f"{sorted({a.name for a in model.activations})} (open problem)")
    fd = None
    if evidence:
        try:
            fd = functional_dimension(model, theta)
        except ValueError:  # beyond the memory budget: no evidence attached
            fd = None
    return Verdict.undecided(why + ("" if fd is None else f"; functional dimension {fd.rank} of "
                                    f"{fd.n_params} parameters (dim K = "
                                    f"{model.symmetry_dimension})"),
                             witness=fd, tol=tol)


@validates_arguments
@_zero.undecided_on_zero_tests
def weakly_identifiable(model: MLP, theta: Any, *, tol: float | None = None,
                        evidence: bool = True) -> Verdict:
    """Is ``theta`` weakly identifiable (Definition 3.5 [SMBK26])?

    ``theta`` is reduced (:func:`identifiable.theory.submodels.reduce`); when ``theta`` is exactly
    ``beta(theta~)`` for the resulting submodel (whose Definition 3.2 and eq. (2) are checked) the
    answer is :func:`identifiable` of ``theta~``. A half-dead neuron that is no copy of another
    (Remark 5.2) makes ``theta`` the image of no identifiable submodel parameter: in any submodel
    of eq. (9) its submodel neuron is itself half-dead, so ``refuted`` with the zeroed parameter
    as witness. Redundant neurons whose outgoing columns were not already combined give
    ``undecided`` (whether ``theta`` itself comes from an identifiable submodel parameter depends
    on the left inverse alpha*, Definition 3.2 admits many) with the weakly identifiable
    ``theta'`` of the same function as witness.

    Cost: one pass over the neuron classes of every layer and the submodel's maps (Definition
    3.2, eq. (2) on the generators of each K~_i), growing with the number of parameters
    (measured: x2.2 to x4 per doubling of the width of [w, w, 1]); [250, 250, 1] (62,750
    parameters) takes about 7 s of CPU with a float theta and 17 s with an exact one on the
    project's 2-core machine (``tests/robustness/test_sizes_and_inputs.py``).
    """
    theta, tol = _theta_and_tol(model, theta, tol)
    sub = reduce(model, theta, tol=tol)
    emb = sub.embed()
    vid = is_identifiable(sub.model, sub.theta, tol=tol, evidence=evidence)
    base = {"submodel": sub, "theta_tilde": sub.theta, "identifiable": vid}
    candidates = [sub]
    if not emb.equals(theta, tol):
        subc = reduce(model, theta, tol=tol, copies=True)
        candidates = [subc] if subc.embed().equals(theta, tol) else []
    for cand in candidates:
        chk = cand.check()
        if chk.status not in ("proved", "checked"):
            if chk.status == "refuted":
                return Verdict.undecided(
                    f"theta = beta(theta~) for a Definition 3.2 submodel, but {chk.reason}; "
                    f"theta~ is {vid.status} identifiable ({vid.reason})",
                    witness={**base, "submodel": cand, "check": chk}, tol=tol)
            continue
        if vid.status in ("proved", "checked"):
            reason = (f"theta = beta(theta~) for the submodel {cand.model.widths} (Definition "
                      f"3.2 and eq. (2) {chk.status}) and theta~ is identifiable: {vid.reason}")
            if vid.status == "proved" and chk.status == "proved":
                return Verdict.proved(reason, witness={**base, "submodel": cand, "check": chk},
                                      method=vid.method)
            return Verdict.checked(reason, n_samples=vid.n_samples or chk.n_samples or 1,
                                   tol=max(vid.tol or 0.0, chk.tol or 0.0), method=vid.method,
                                   witness={**base, "submodel": cand, "check": chk})
        if vid.status == "refuted":
            return Verdict.refuted(
                f"theta = beta(theta~) and theta~ is not identifiable ({vid.reason}); the same "
                "symmetry exists in every submodel of this class that has a hidden neuron",
                counterexample=vid.counterexample, witness=base, method=vid.method, tol=tol)
        return vid.but(reason=f"theta = beta(theta~) for the submodel {cand.model.widths}; "
                              f"{vid.reason}", witness={**base, "evidence": vid.witness})
    # theta is not beta(theta~): half-dead neurons that are no copies, or uncombined copies
    half_dead = [s for s in sub.steps if "half-dead" in s or "constant" in s]
    copies_only = all("redundant" in s or "half-dead" in s for s in sub.steps) and \
        half_dead_are_copies(model, theta, tol)
    va = align(model, theta, emb, tol=tol)
    vs = same_function(model, theta, emb, tol=None if tol is None else 1e3 * tol)
    if half_dead and not copies_only and va.status == "refuted" and vs.status in ("proved",
                                                                                   "checked"):
        return Verdict.refuted(
            "theta has half-dead neurons (Remark 5.2: " + "; ".join(half_dead[:2]) + "); in "
            "every submodel of eq. (9) with beta(theta~) = theta the corresponding submodel "
            "neuron is half-dead too, so theta~ is never identifiable; theta' = beta(theta~) "
            f"after zeroing has the same function ({vs.status}) and is "
            f"{vid.status} weakly identifiable",
            counterexample={"theta_prime": emb, "align": va.reason, "same_function": vs.status},
            witness={**base, "weakly_identifiable_prime": vid.status}, method="exact"
            if theta.exact else "tolerance", tol=tol)
    if any(K.family == "GL" for K in model.latent_groups()):
        return Verdict.undecided(
            "linear activation: reduce projects [W_i | b_i] and W_(i+1) onto each other and "
            "changes theta; whether theta itself is beta(theta~) for another left inverse "
            f"alpha* is not decided; theta' = beta(theta~) (same function, {vs.status}) is "
            f"weakly identifiable: {vid.status}", witness={**base, "theta_prime": emb}, tol=tol)
    return Verdict.undecided(
        "theta has redundant neurons whose outgoing columns are not combined: theta itself is "
        "not beta(theta~) for the submodels built here; theta' = beta(theta~) (same function, "
        f"{vs.status}) is weakly identifiable: {vid.status}", witness={**base, "theta_prime": emb},
        tol=tol)
