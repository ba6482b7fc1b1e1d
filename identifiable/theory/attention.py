"""The theory of [SMBK26] on multi-head attention networks (Section 5.2, Remark 4.3).

The group ``G`` and the adjunctions (5) and (6)
-----------------------------------------------
``G`` acts on ``V_0`` and ``V_L`` by maps of the form ``g . X = Pi_g X rho(g)^T``: a token
permutation ``sigma_g`` (the same in every layer; ``(Pi X)[sigma(p)] = X[p]``) and a token-wise
linear map ``rho_in(g)`` on ``R^{d_0}`` (``rho_out(g)`` on ``R^{d_L}``), applied to every token
alike (Section 5.2). On parameters (:meth:`AttentionModel.act_params`):

    g . theta_1 : W_O^1 -> rho_in(g)^{-T} W_O^1     (W_A^1, W_V^1 untouched: they act on Xbar)
    g . theta_L : W_V^L -> W_V^L rho_out(g)^T
    g . theta_i : P_i -> Pi_g P_i                    (every layer with positional encodings)

With these, the generalised adjunction (6) ``g^{-1} . f_i(g . x; theta_i) = f_i(x; g^{-1} .
theta_i)`` holds in every layer, ``G`` acting on the hidden ``V_i`` by the token permutation
alone (Remark 4.3): softmax is equivariant under simultaneous permutation of rows and columns,
``smax(Pi S Pi^T) = Pi smax(S) Pi^T``. For token-wise ``G`` (no permutation) this is the plain
adjunction (5): the ``rho_in(g)`` is absorbed by ``W_O^1`` (``Xbar = X rho_in(g)^T W_O^1``), so
(5) asks nothing of ``W_A^1`` -- without a ``W_O^1`` it would act as ``W_A -> rho^{-T} W_A
rho^{-1}``, ``W_V -> rho^{-T} W_V``. Without positional encodings ``G`` acts trivially on all
parameters, so attention is ``S_n``-equivariant; positional encodings break this unless they are
invariant (``P[sigma(p)] = P[p]``, :func:`positional_invariance`) or, more generally, permuted
``P`` is matched by a latent symmetry -- the heads then permute (:func:`equivariant_attention`).

Theorem 4.1 on attention
------------------------
:func:`identifiable.latent_actions` runs the constructive proof (Appendix A) numerically: for each
generator ``g`` it forms ``theta' = g^{-1} . theta`` (eq. (12)), aligns ``theta'`` with ``theta``
(:func:`align_attention`) to get ``k_i(g)`` -- a head permutation and per-head matrices -- extends
along words, checks the homomorphism property (15) and the layer equivariance (14). Whether
softmax attention networks are (weakly) identifiable is open (Section 5.2); the answers are
``checked`` at best, ``undecided`` where the alignment fails although the network is equivariant.

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from identifiable import zero as _zero
from identifiable.groups import Rep, check_homomorphism
from identifiable.models.attention import (
    DEFAULT_TOL,
    RANK_RTOL,
    AttentionModel,
    AttentionTheta,
    HeadAction,
    TokenwiseAction,
    as_rng,
    factor_tokenwise,
    perm_matrix,
    perm_rows,
    positive_int,
    random_gl,
    rel_err,
)
from identifiable.numbers import (
    FLOAT64_RTOL,
    validates_arguments,
)
from identifiable.verdict import Verdict

__all__ = [
    "GroupActions",
    "group_actions",
    "inverse_params",
    "check_adjunction",
    "equivariance_failure",
    "input_batch",
    "is_equivariant_attention",
    "positional_invariance",
    "project_positional",
    "align_attention",
    "check_layers_equivariant",
    "equivariant_attention",
    "PlantedAttention",
]


# ---------------------------------------------------------------------------------- comparisons
def _check_model(model: Any) -> AttentionModel:
    if not isinstance(model, AttentionModel):
        raise TypeError(f"model: expected an AttentionModel, got {type(model).__name__}")
    return model


@dataclass
class GroupActions:
    """The generators' and elements' (sigma, rho_in, rho_out) parts, checked once."""

    rep: Rep
    gens_in: list[TokenwiseAction]
    gens_out: list[TokenwiseAction]
    words: list[str]

    @property
    def permutes_tokens(self) -> bool:
        return any(a.permutes_tokens for a in self.gens_in)


def group_actions(model: AttentionModel, rep_in: Any, rep_out: Any) -> GroupActions:
    if not isinstance(rep_in, Rep):
        raise TypeError(f"rep_in: expected an identifiable.groups.Rep, got "
                        f"{type(rep_in).__name__}")
    if rep_out is None:
        rep_out = rep_in
    if not isinstance(rep_out, Rep):
        raise TypeError(f"rep_out: expected an identifiable.groups.Rep, got "
                        f"{type(rep_out).__name__}")
    n, d0, dL = model.n_tokens, model.dims[0], model.dims[-1]
    if rep_in.dim not in (d0, n * d0):
        raise ValueError(f"rep_in: acts on R^{rep_in.dim}, but the input tokens are R^{d0} "
                         f"(d_0 = {d0}; or R^{n * d0} for sequences of n = {n} tokens)")
    if rep_out.dim not in (dL, n * dL):
        raise ValueError(f"rep_out: acts on R^{rep_out.dim}, but the output tokens are R^{dL} "
                         f"(d_L = {dL}; or R^{n * dL} for sequences of n = {n} tokens)")
    if len(rep_out.generators) != len(rep_in.generators):
        raise ValueError(f"rep_out: has {len(rep_out.generators)} generators, rep_in "
                         f"{len(rep_in.generators)}; they must be images of the same generators")
    hom = check_homomorphism(rep_in, rep_out.generators)
    if hom.status == "refuted":
        raise ValueError("rep_out: its generators do not define a homomorphism of rep_in's group "
                         f"({hom.reason})")
    gin = [factor_tokenwise(M, n, d0, f"rep_in.generators[{k}]")
           for k, M in enumerate(rep_in.generators)]
    gout = [factor_tokenwise(M, n, dL, f"rep_out.generators[{k}]")
            for k, M in enumerate(rep_out.generators)]
    for k, (a, b) in enumerate(zip(gin, gout)):
        if not np.array_equal(a.tokens, b.tokens):
            raise ValueError(f"rep_out: generator {k} permutes tokens by {b.tokens.tolist()} but "
                             f"rep_in by {a.tokens.tolist()}; attention layers need the same "
                             "token permutation on V_0 and V_L (Remark 4.3 [SMBK26])")
    return GroupActions(rep_in, gin, gout, rep_in.words)


def inverse_params(model: AttentionModel, theta: AttentionTheta, a_in: TokenwiseAction,
                    a_out: TokenwiseAction) -> AttentionTheta:
    """``g^{-1} . theta`` (eq. (12)) from the parts of ``g``."""
    ii, oi = a_in.inverse(), a_out.inverse()
    return model.act_params(theta, feature_in=ii.M, feature_out=oi.M,
                            tokens=ii.tokens if a_in.permutes_tokens else None)


# ---------------------------------------------------------------------------------- adjunction
@validates_arguments
@_zero.undecided_on_zero_tests
def check_adjunction(model: AttentionModel, theta: Any, rep_in: Rep, rep_out: Rep | None = None,
                     *, n_samples: int = 32, tol: float = DEFAULT_TOL, seed: int = 0) -> Verdict:
    """The generalised adjunction (6) of Remark 4.3 [SMBK26] in every layer and for every
    element of ``G``: ``g^{-1} . f_i(g . x; theta_i) = f_i(x; g^{-1} . theta_i)``.

    ``G`` acts on ``V_0`` by ``rep_in`` (token permutation and token-wise map), on ``V_L`` by
    ``rep_out``, on hidden ``V_i`` by the token permutation alone, and on parameters by
    :meth:`AttentionModel.act_params`. With no token permutation this is the adjunction (5) (at
    layers 1 and L; the middle layers' check is then trivial). Sampled: ``checked`` or
    ``refuted`` with the layer, the element and the input.
    """
    model = _check_model(model)
    theta = model.check_theta(theta)
    ga = group_actions(model, rep_in, rep_out)
    rng = as_rng(seed)
    L = model.depth
    outs = rep_in.extend(rep_out.generators if rep_out is not None else rep_in.generators)
    worst = 0.0
    for j, M in enumerate(rep_in.elements):
        a_in = factor_tokenwise(M, model.n_tokens, model.dims[0], "rep_in")
        a_out = factor_tokenwise(outs[j], model.n_tokens, model.dims[-1], "rep_out")
        th_inv = inverse_params(model, theta, a_in, a_out)
        sigma = a_in.tokens
        for i in range(1, L + 1):
            X = rng.standard_normal((n_samples, *model.latent_shape(i - 1)))
            layer = model.layers[i - 1]
            if i == 1:
                gX = a_in.act(X[..., 0])[..., None]
            else:
                gX = perm_rows(X, sigma, axis=1)
            Y = layer.heads(gX, theta[i - 1])
            if i == L:
                lhs = a_out.inverse().act(Y[..., 0])[..., None]
            else:
                lhs = perm_rows(Y, a_in.inverse().tokens, axis=1)
            rhs = layer.heads(X, th_inv[i - 1])
            err, t = rel_err(lhs, rhs, tol)
            worst = max(worst, err)
            if err > t:
                b = int(np.argmax(np.abs(lhs - rhs).reshape(n_samples, -1).max(axis=1)))
                return Verdict.refuted(
                    f"eq. (6) fails at layer {i} for g = {ga.words[j]}: residual {err:.3g}",
                    counterexample={"layer": i, "g": ga.words[j], "x": X[b],
                                    "g^-1 f_i(g x)": lhs[b], "f_i(x; g^-1 theta)": rhs[b]},
                    method="sampled", tol=t)
    kind = "(6) (tokens permuted in every layer)" if ga.permutes_tokens else "(5)"
    return Verdict.checked(f"adjunction {kind} holds in every layer for all {rep_in.order} "
                           "elements of G (Section 5.2, Remark 4.3 [SMBK26])",
                           n_samples=n_samples * L * rep_in.order, tol=tol, max_residual=worst)


# ---------------------------------------------------------------------------------- equivariance
def equivariance_failure(model: AttentionModel, theta: AttentionTheta, ga: GroupActions,
                          X: np.ndarray, tol: float) -> tuple[dict | None, float]:
    """The first generator and input with ``f(g x) != g f(x)``, and the worst residual."""
    FX = model.forward(X, theta)
    worst = 0.0
    for k, (a_in, a_out) in enumerate(zip(ga.gens_in, ga.gens_out)):
        lhs = model.forward(a_in.act(X), theta)
        rhs = a_out.act(FX)
        err, t = rel_err(lhs, rhs, tol)
        worst = max(worst, err)
        if err > t:
            b = int(np.argmax(np.abs(lhs - rhs).reshape(X.shape[0], -1).max(axis=1)))
            word = ga.words[ga.rep.generator_indices[k]]
            return {"g": word, "generator": k, "x": X[b], "f(g x)": lhs[b], "g f(x)": rhs[b],
                    "residual": err, "tol": t}, worst
    return None, worst


def input_batch(model: AttentionModel, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    half = n_samples // 2
    shape = (model.n_tokens, model.dims[0])
    return np.concatenate([rng.standard_normal((half, *shape)),
                           2.0 * rng.standard_normal((n_samples - half, *shape))])


@validates_arguments
@_zero.undecided_on_zero_tests
def is_equivariant_attention(model: AttentionModel, theta: Any, rep_in: Rep,
                             rep_out: Rep | None = None, *, n_samples: int = 64,
                             tol: float = DEFAULT_TOL, seed: int = 0) -> Verdict:
    """Definition 3.6 on samples: ``f(g . x; theta) = g . f(x; theta)`` for the generators of
    ``G`` (hence all of ``G``). ``rep_in`` / ``rep_out`` act on tokens (``d x d``) or on whole
    sequences (``nd x nd``, a token permutation times a token-wise map). ``checked`` or
    ``refuted`` with ``{"g", "x", "f(g x)", "g f(x)"}``."""
    model = _check_model(model)
    theta = model.check_theta(theta)
    ga = group_actions(model, rep_in, rep_out)
    X = input_batch(model, n_samples, as_rng(seed))
    fail, worst = equivariance_failure(model, theta, ga, X, tol)
    if fail is not None:
        return Verdict.refuted(f"f(g x) != g f(x) for g = {fail['g']} (residual "
                               f"{fail['residual']:.3g}; Definition 3.6 [SMBK26])",
                               counterexample=fail, method="sampled", tol=fail["tol"])
    return Verdict.checked("f(g x) = g f(x) for every generator g on random inputs "
                           "(Definition 3.6 [SMBK26])", n_samples=n_samples, tol=tol,
                           max_residual=worst)


@validates_arguments
@_zero.undecided_on_zero_tests
def positional_invariance(model: AttentionModel, theta: Any, rep: Rep, *,
                          tol: float = FLOAT64_RTOL) -> Verdict:
    """Are the positional encodings ``G``-invariant, ``P_i[sigma(p)] = P_i[p]`` for every token
    permutation ``sigma`` of ``G`` and every layer? (Remark 4.3, Section 5.2 [SMBK26].)

    Invariant encodings make ``g^{-1} . theta = theta`` in eq. (6), so (with no token-wise part
    in ``G``) the network is ``G``-equivariant, whatever its other parameters. Conversely, by
    (6) an equivariant network has ``f(.; sigma^{-1} . theta) = f(.; theta)``: if ``theta`` is
    identifiable, the permuted encodings must be matched by some ``k`` in ``K`` (eq. (3)) --
    with ``k = id`` this is invariance (up to the intra-layer changes of basis ``P -> P B``),
    otherwise the heads permute and the encodings are *equivariant* rather than invariant
    (:func:`equivariant_attention` builds such networks; :func:`identifiable.latent_actions` finds
    the ``k``). ``rep`` acts on
    sequences (``n d_0 x n d_0``, see :func:`token_permutations`) or is a permutation
    representation on ``R^n``. ``checked`` (entries compared within ``tol``) or ``refuted`` with
    the layer, the permutation and the token.
    """
    model = _check_model(model)
    theta = model.check_theta(theta)
    sigmas = _token_perms(model, rep)
    n_cmp = 0
    for i, p in enumerate(theta):
        if p.P is None:
            continue
        t = tol * max(1.0, float(np.max(np.abs(p.P))))
        for word, sigma in sigmas:
            diff = np.abs(perm_rows(p.P, sigma, axis=0) - p.P).max(axis=1)
            n_cmp += p.P.size
            if diff.max() > t:
                q = int(np.argmax(diff))
                src = int(np.flatnonzero(sigma == q)[0])
                return Verdict.refuted(
                    f"P_{i + 1} is not G-invariant: row {q} differs from row {src} = "
                    f"sigma^-1({q}) for g = {word}",
                    counterexample={"layer": i + 1, "g": word, "token": q, "source": src,
                                    "P[token]": p.P[q], "P[source]": p.P[src]},
                    method="tolerance", tol=t)
    if n_cmp == 0:
        return Verdict.proved("the model has no positional encodings (nothing to check)")
    return Verdict.checked("every positional encoding satisfies P[sigma(p)] = P[p] for all "
                           "sigma in G (Remark 4.3 [SMBK26])", n_samples=n_cmp, tol=tol)


def _token_perms(model: AttentionModel, rep: Rep) -> list[tuple[str, np.ndarray]]:
    if not isinstance(rep, Rep):
        raise TypeError(f"rep: expected a Rep, got {type(rep).__name__}")
    n, d0 = model.n_tokens, model.dims[0]
    out = []
    for j, M in enumerate(rep.elements):
        if rep.dim == n * d0:
            sigma = factor_tokenwise(M, n, d0, "rep").tokens
        elif rep.dim == n:
            A = np.asarray(M, dtype=float)
            sigma = np.argmax(np.abs(A), axis=0)
            if not np.array_equal(perm_matrix(sigma), A):
                raise ValueError(f"rep: element {rep.words[j]} is not a permutation matrix")
        else:
            raise ValueError(f"rep: acts on R^{rep.dim}; expected token permutations on R^{n} "
                             f"or on sequences R^{n * d0} (n = {n}, d_0 = {d0})")
        out.append((rep.words[j], sigma))
    return out


def project_positional(model: AttentionModel, theta: Any, rep: Rep) -> AttentionTheta:
    """``theta`` with every positional encoding replaced by its ``G``-average
    ``mean_g Pi_g P`` (the invariant encodings of :func:`positional_invariance`)."""
    model = _check_model(model)
    theta = model.check_theta(theta)
    sigmas = _token_perms(model, rep)
    layers = [p if p.P is None else
              p.replace(P=np.mean([perm_rows(p.P, s, axis=0) for _, s in sigmas], axis=0))
              for p in theta]
    return AttentionTheta(tuple(layers))


# ---------------------------------------------------------------------------------- alignment
@dataclass
class _AlignFailure:
    layer: int
    reason: str
    undecided: bool = False
    info: dict = field(default_factory=dict)


_MAX_BRANCHES = 64  # alternative head matchings tried when heads tie (redundant heads)


def _fit_heads(Y: np.ndarray, Y2: np.ndarray, tol: float,
               limit: int = _MAX_BRANCHES) -> tuple[list[HeadAction], int] | _AlignFailure:
    """The ``k`` with ``k . Y = Y2`` (``Y``, ``Y2``: ``(batch, n, d, h)``): per pair of heads
    the least-squares ``M`` with ``Y_s M = Y2_t`` (``A_s = M^T``); the head permutation by a
    linear assignment on the relative residuals. Returns the candidates (the assignment's
    first, then other zero-residual matchings when heads tie, at most ``limit``) and the number
    of ties."""
    _, _, d, h = Y.shape
    Yf = Y.reshape(-1, d, h)
    Y2f = Y2.reshape(-1, d, h)
    fits: dict[tuple[int, int], np.ndarray] = {}
    cost = np.zeros((h, h))
    for s in range(h):
        U, sv, Vt = np.linalg.svd(Yf[:, :, s], full_matrices=False)
        if sv[-1] <= RANK_RTOL * max(sv[0], 1e-300):
            r = int(np.sum(sv > RANK_RTOL * max(sv[0], 1e-300)))
            return _AlignFailure(0, f"head {s}'s outputs span a subspace of dimension {r} < "
                                    f"{d}: the per-head matrix is not determined (such "
                                    "parameters come from a submodel, Section 5.2)", True)
        for t in range(h):
            B = Y2f[:, :, t]
            C = U.T @ B
            norm = max(float(np.linalg.norm(B)), 1e-300)
            cost[s, t] = float(np.linalg.norm(B - U @ C)) / norm
            fits[s, t] = (Vt.T @ (C / sv[:, None])).T
    rows, cols = linear_sum_assignment(cost)
    first = np.empty(h, dtype=int)
    first[rows] = cols
    worst = float(max(cost[s, first[s]] for s in range(h)))
    if worst > tol:
        bad = int(np.argmax([cost[u, first[u]] for u in range(h)]))
        return _AlignFailure(0, f"no (head permutation, per-head GL) fits: head {bad} matched "
                                f"to head {first[bad]} leaves a relative residual {worst:.3g} > "
                                f"{tol:.3g}", info={"cost": cost})
    ok = cost <= tol
    ties = int(ok.sum() - h)

    def invertible(A: np.ndarray) -> bool:
        sv = np.linalg.svd(A, compute_uv=False)
        return bool(sv[-1] > RANK_RTOL * max(sv[0], 1e-300))

    perms: list[tuple[int, ...]] = [tuple(int(t) for t in first)]
    if ties:  # other perfect matchings in the zero-residual graph, depth first
        def extend(prefix: list[int], used: set[int]) -> None:
            if len(perms) >= limit:
                return
            s = len(prefix)
            if s == h:
                if tuple(prefix) != perms[0]:
                    perms.append(tuple(prefix))
                return
            for t in sorted(np.flatnonzero(ok[s]), key=lambda t: cost[s, t]):
                if int(t) not in used:
                    extend(prefix + [int(t)], used | {int(t)})

        extend([], set())
    cands = []
    for perm in perms:
        mats = [fits[s, perm[s]] for s in range(h)]
        if all(invertible(A) for A in mats):
            cands.append(HeadAction(perm, tuple(mats)))
    if not cands:
        return _AlignFailure(0, "the heads fit only through singular matrices (not in GL)", True)
    return cands, ties


def _align_layers(model: AttentionModel, theta: AttentionTheta, theta2: AttentionTheta,
                  rng: np.random.Generator, n_samples: int,
                  tol: float) -> tuple[list[HeadAction], _AlignFailure | None, dict]:
    """Find ``k_1, ..., k_{L-1}`` with eq. (3), layer by layer: fit ``k_i`` from head outputs
    on random inputs of ``V_{i-1}`` (``k_i = id`` first when it fits), verify it on fresh
    inputs, go on; when heads tie, try the other matchings (depth first, at most
    ``_MAX_BRANCHES`` in all). Returns the elements found, the failure (or None) and
    statistics."""
    stats = {"max_residual": 0.0, "ties": 0, "branches": 0}
    L = model.depth

    def search(i: int, prev: HeadAction | None,
               ks: list[HeadAction]) -> tuple[list[HeadAction], _AlignFailure | None]:
        layer = model.layers[i - 1]
        shape = model.latent_shape(i - 1)

        def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            X = rng.standard_normal((n_samples, *shape))
            Xin = X if prev is None else prev.inverse().act(X)
            return X, layer.heads(Xin, theta[i - 1]), layer.heads(X, theta2[i - 1])

        X, Y, Y2 = sample()
        if i == L:
            err, t = rel_err(Y2, Y, tol)
            stats["max_residual"] = max(stats["max_residual"], err)
            if err > t:
                return ks, _AlignFailure(i, f"the last layer differs: residual {err:.3g} > "
                                            f"{t:.3g}", info={"x": X[0]})
            return ks, None
        fit = _fit_heads(Y, Y2, tol)
        cands: list[HeadAction] = []
        err, t = rel_err(Y2, Y, tol)
        if err <= t:  # k_i = id fits (e.g. theta2_i = theta_i): try it first
            cands.append(HeadAction.identity(layer.d_out, layer.h_out))
            stats["ties"] += 1 if isinstance(fit, _AlignFailure) else fit[1]
        if isinstance(fit, _AlignFailure):
            if not cands:
                fit.layer = i
                return ks, fit
        else:
            cands += fit[0]
            if not err <= t:
                stats["ties"] += fit[1]
        failure: _AlignFailure | None = None
        for k in cands:
            if stats["branches"] > _MAX_BRANCHES:
                break
            stats["branches"] += 1
            X, Y, Y2 = sample()  # verify on fresh inputs
            err, t = rel_err(Y2, k.act(Y), tol)
            stats["max_residual"] = max(stats["max_residual"], err)
            if err > t:
                failure = failure or _AlignFailure(i, f"the fitted k fails on fresh inputs: "
                                                      f"residual {err:.3g} > {t:.3g}")
                continue
            found, fail = search(i + 1, k, ks + [k])
            if fail is None:
                return found, None
            if failure is None or fail.layer > failure.layer:
                failure = fail
        return ks, failure or _AlignFailure(i, "search budget exhausted", True)

    ks, failure = search(1, None, [])
    return ks, failure, stats


@validates_arguments
@_zero.undecided_on_zero_tests
def align_attention(model: AttentionModel, theta: Any, theta2: Any, *, n_samples: int = 48,
                    tol: float = DEFAULT_TOL, seed: int = 0) -> Verdict:
    """Is ``theta2 = k . theta`` for some ``k = (k_1, ..., k_{L-1})`` in ``K`` (Definition 3.4
    [SMBK26], ``K_i = GL(d_i)^{h_i} x| S_{h_i}``, Section 5.2)? Decided numerically.

    ``theta2 = k . theta`` is read as eq. (3), ``f_i(x; theta2_i) = k_i . f_i(k_{i-1}^{-1} . x;
    theta_i)`` for all ``x`` -- the functional statement that Definition 3.4 needs; it also
    covers parameters related by the intra-layer symmetries ``W_O -> W_O B``, ``W_A -> B^{-1}
    W_A B^{-T}``, ``W_V -> B^{-1} W_V``, ``P -> P B`` that ``K`` does not see. Layer by layer,
    on random ``x`` in ``V_{i-1}``: the head outputs of ``theta2`` are matched with those of
    ``theta`` by per-pair least squares (giving ``A_s``) and a linear assignment (giving the head
    permutation); the ``k_i`` found is verified on fresh inputs.

    Returns ``checked`` with witness ``[k_1, ..., k_{L-1}]`` (:class:`HeadAction`),
    ``refuted`` when ``f(.; theta) != f(.; theta2)`` (then no ``k`` exists; the counterexample
    holds the input ``x`` and names the first layer where no element of ``K_i`` fits), or
    ``undecided`` when the functions agree but no ``k`` was found (degenerate heads, or a
    parameter that is not identifiable -- identifiability of softmax attention is open).
    """
    model = _check_model(model)
    theta = model.check_theta(theta)
    theta2 = model.check_theta(theta2, "theta2")
    rng = as_rng(seed)
    ks, fail, stats = _align_layers(model, theta, theta2, rng, n_samples, tol)
    if fail is None:
        return Verdict.checked(
            "theta2 = k . theta: eq. (3) holds at every layer with the fitted k_i in "
            "K_i = GL(d_i)^h_i x| S_h_i (Definition 3.4, Section 5.2 [SMBK26]), verified on "
            "fresh inputs", n_samples=n_samples * model.depth, tol=tol, witness=ks,
            method="tolerance", unique=stats["ties"] == 0, max_residual=stats["max_residual"])
    X = input_batch(model, n_samples, rng)
    F1, F2 = model.forward(X, theta), model.forward(X, theta2)
    err, t = rel_err(F2, F1, tol)
    if err > t:
        b = int(np.argmax(np.abs(F1 - F2).reshape(n_samples, -1).max(axis=1)))
        return Verdict.refuted(
            f"no k in K: f(.; theta) != f(.; theta2) (residual {err:.3g}), so eq. (3) fails for "
            f"every k; the alignment stops at layer {fail.layer}: {fail.reason}",
            counterexample={"x": X[b], "f(x; theta)": F1[b], "f(x; theta2)": F2[b],
                            "layer": fail.layer, "why": fail.reason},
            witness=ks or None, method="sampled", tol=t)
    return Verdict.undecided(
        f"f(.; theta) = f(.; theta2) on samples, but no k in K was found at layer {fail.layer}: "
        f"{fail.reason}; identifiability of softmax attention networks is open (Section 5.2 "
        "[SMBK26])", witness=ks or None, method="tolerance", tol=tol, n_samples=n_samples)


# ---------------------------------------------------------------------------------- eq. (14)
def check_layers_equivariant(model: AttentionModel, theta: Any, ga: GroupActions,
                             rho_gens: Sequence[Sequence[HeadAction]], *, n_samples: int = 48,
                             tol: float = DEFAULT_TOL, seed: int = 0) -> Verdict:
    """eq. (14) [SMBK26] for every layer and generator, on fresh inputs: ``f_i(rho_{i-1}(g) x)
    = rho_i(g) f_i(x)`` where ``rho_i(g)`` is the head action ``rho_gens[i - 1][k]`` of the
    ``k``-th generator composed with its token permutation (Remark 4.3), and ``rho_0``,
    ``rho_L`` are the generator's actions ``ga.gens_in`` / ``ga.gens_out`` on the tokens.
    A step of :func:`identifiable.theory.latent_actions.latent_actions`."""
    theta = model.check_theta(theta)
    rng = as_rng(seed)
    L = model.depth
    words = ga.rep.words
    worst = 0.0
    for k, (a_in, a_out) in enumerate(zip(ga.gens_in, ga.gens_out)):
        word = words[ga.rep.generator_indices[k]]
        sigma = a_in.tokens
        for i in range(1, L + 1):
            layer = model.layers[i - 1]
            Xi = rng.standard_normal((n_samples, *model.latent_shape(i - 1)))
            if i == 1:
                gX = a_in.act(Xi[..., 0])[..., None]
            else:
                gX = perm_rows(rho_gens[i - 2][k].act(Xi), sigma, axis=1)
            lhs = layer.heads(gX, theta[i - 1])
            Y = layer.heads(Xi, theta[i - 1])
            if i == L:
                rhs = a_out.act(Y[..., 0])[..., None]
            else:
                rhs = perm_rows(rho_gens[i - 1][k].act(Y), sigma, axis=1)
            err, t = rel_err(lhs, rhs, tol)
            worst = max(worst, err)
            if err > t:
                return Verdict.refuted(
                    f"layer {i} is not equivariant for g = {word} with the given actions "
                    f"(eq. (14), residual {err:.3g})", counterexample={"layer": i, "g": word},
                    method="sampled", tol=t)
    return Verdict.checked("every layer is G-equivariant (eq. (14)) on fresh inputs",
                           n_samples=n_samples * L * len(ga.gens_in), tol=tol,
                           max_residual=worst)


# ---------------------------------------------------------------------------------- builders
@dataclass
class PlantedAttention:
    """An equivariant attention network with a planted latent action
    (:func:`equivariant_attention`)."""

    model: AttentionModel
    theta: AttentionTheta
    rep_in: Rep
    rep_out: Rep
    rho: dict[str, HeadAction]
    tokens: dict[str, list[int]]
    scramble: HeadAction | None = None


def equivariant_attention(n_tokens: int, rep_in: Rep, rep_out: Rep | None = None, *,
                          d_hidden: int = 2, orbits: int = 1, seed: int = 0,
                          scramble: bool = True) -> PlantedAttention:
    """A depth-2 ``G``-equivariant attention network whose heads ``G`` permutes (Section 5.2
    and Figure 3 [SMBK26]), with the latent action ``rho_1`` it is built with.

    ``G`` acts on ``V_0`` by ``rep_in`` and on ``V_2`` by ``rep_out`` (default ``rep_in``), each
    a token-wise map possibly combined with a token permutation (see
    :func:`identifiable.latent_actions`). The hidden layer has ``orbits * |G|`` heads in regular
    orbits: the inner space of layer 1 holds ``|G|`` blocks, block ``a`` computing
    ``X rho_in(a)^{-T} W + Pi_a P_0`` (``P_0`` a positional encoding, present only when ``G``
    permutes tokens), so that ``g`` moves block ``a`` to block ``g a``; head ``(o, a)`` reads the
    blocks relabelled by ``a``. Then ``head_{o,a}(g . X) = sigma_g head_{o, g^{-1} a}(X)``:
    ``rho_1(g)`` moves head ``(o, b)`` to ``(o, g b)``. Layer 2 is made equivariant by averaging
    (Reynolds operator) its ``W_O``, ``W_A``, ``W_V`` over ``G``.

    With ``scramble`` the parameter is moved by a random ``k`` in ``K_1`` (and by random
    intra-layer changes of the inner bases), so the planted ``rho_1`` becomes ``k rho_1
    k^{-1}`` with non-trivial per-head matrices; :attr:`PlantedAttention.rho` is that action,
    keyed by the words of ``rep_in``.
    """
    n = positive_int(n_tokens, "n_tokens")
    d1 = positive_int(d_hidden, "d_hidden")
    m = positive_int(orbits, "orbits")
    if not isinstance(rep_in, Rep):
        raise TypeError(f"rep_in: expected a Rep, got {type(rep_in).__name__}")
    rep_out = rep_in if rep_out is None else rep_out
    if not isinstance(rep_out, Rep):
        raise TypeError(f"rep_out: expected a Rep, got {type(rep_out).__name__}")
    # rep_in acts on R^{d0} (token-wise) or on R^{n d0}; decide d0 from the generators' form
    d0 = _infer_token_dim(rep_in, n, "rep_in")
    dL = _infer_token_dim(rep_out, n, "rep_out")
    rng = as_rng(seed)
    G = rep_in.order
    outs = rep_in.extend(rep_out.generators)
    parts_in = [factor_tokenwise(M, n, d0, "rep_in") for M in rep_in.elements]
    parts_out = [factor_tokenwise(outs[j], n, dL, "rep_out") for j in range(G)]
    permutes = any(a.permutes_tokens for a in parts_in)
    table = rep_in.multiplication_table()
    c = d0
    e1 = G * c
    h1 = m * G
    model = AttentionModel(n, [d0, d1, dL], [h1], positional=[permutes, False],
                           inner=[e1, dL])
    # layer 1: W_O^1 = [rho_in(a)^{-T} W]_a, P_1 = [Pi_a P_0]_a
    W = rng.standard_normal((d0, c)) / np.sqrt(d0)
    P0 = rng.standard_normal((n, c))
    WO1 = np.hstack([np.linalg.solve(parts_in[a].M.T, W) for a in range(G)])
    P1 = np.hstack([perm_rows(P0, parts_in[a].tokens, axis=0) for a in range(G)]) \
        if permutes else None
    # T_a: (Xbar T_a) block b = Xbar block (a b)
    T = np.zeros((G, e1, e1))
    for a in range(G):
        for b in range(G):
            ab = int(table[a, b])
            T[a, ab * c:(ab + 1) * c, b * c:(b + 1) * c] = np.eye(c)
    WA1 = np.zeros((h1, e1, e1))
    WV1 = np.zeros((h1, e1, d1))
    for o in range(m):
        base_A = rng.standard_normal((e1, e1)) / np.sqrt(e1)
        base_V = rng.standard_normal((e1, d1)) / np.sqrt(e1)
        for a in range(G):
            WA1[o * G + a] = T[a] @ base_A @ T[a].T
            WV1[o * G + a] = T[a] @ base_V
    # rho_1(g): head (o, b) -> (o, g b), per-head identity
    words = rep_in.words
    rho = {}
    for j in range(G):
        perm = [o * G + int(table[j, b]) for o in range(m) for b in range(G)]
        rho[words[j]] = HeadAction.make(perm, d=d1)
    # layer 2 by Reynolds averaging: W_O^T R_g = T_g W_O^T, T_g^T W_A T_g = W_A,
    # W_V^T T_g = rho_out(g) W_V^T with T_g = rho_out(g) (inner width d_L)
    R = [rho[words[j]].matrix() for j in range(G)]
    To = [parts_out[j].M for j in range(G)]
    M0 = rng.standard_normal((dL, d1 * h1)) / np.sqrt(d1 * h1)
    WO2 = np.mean([To[j] @ M0 @ np.linalg.inv(R[j]) for j in range(G)], axis=0).T
    A0 = rng.standard_normal((dL, dL)) / dL
    WA2 = np.mean([To[j].T @ A0 @ To[j] for j in range(G)], axis=0)[None]
    V0 = rng.standard_normal((dL, dL)) / np.sqrt(dL)
    WV2 = np.mean([To[j] @ V0 @ np.linalg.inv(To[j]) for j in range(G)], axis=0).T[None]
    theta = model.params([WA1, WA2], [WV1, WV2], [WO1, WO2], [P1, None])
    k = None
    if scramble:
        B1, B2 = random_gl(e1, rng), random_gl(dL, rng)
        theta = _change_inner(theta, 0, B1)
        theta = _change_inner(theta, 1, B2)
        k = HeadAction.random(d1, h1, rng)
        theta = model.transform(theta, [k])
        kinv = k.inverse()
        rho = {w: k @ r @ kinv for w, r in rho.items()}
    tokens = {words[j]: parts_in[j].tokens.tolist() for j in range(G)}
    return PlantedAttention(model, theta, rep_in, rep_out, rho, tokens, k)


def _infer_token_dim(rep: Rep, n: int, name: str) -> int:
    """``d`` with ``rep`` acting on ``R^d`` (tokens) or ``R^{n d}`` (sequences)."""
    if rep.dim % n == 0 and rep.dim // n >= 1 and n > 1:
        d = rep.dim // n
        try:
            for k, M in enumerate(rep.generators):
                factor_tokenwise(M, n, d, f"{name}.generators[{k}]")
            return d
        except ValueError:
            pass
    return rep.dim


def _change_inner(theta: AttentionTheta, i: int, B: np.ndarray) -> AttentionTheta:
    """The intra-layer symmetry of layer ``i + 1``: ``W_O B``, ``P B``, ``B^{-1} W_A B^{-T}``,
    ``B^{-1} W_V`` (same layer function)."""
    p = theta[i]
    Binv = np.linalg.inv(B)
    q = p.replace(W_O=p.W_O @ B, P=None if p.P is None else p.P @ B,
                  W_A=np.einsum("ef,jfg,hg->jeh", Binv, p.W_A, Binv),
                  W_V=np.einsum("ef,jfd->jed", Binv, p.W_V))
    return theta.replace_layer(i, q)
