"""Theorem 4.1 [SMBK26] as one algorithm for every model: the constructive proof of Appendix A.

:func:`latent_actions` runs the proof's steps in order, whatever the model:

1. **Definition 3.6**: is ``f`` G-equivariant end to end? (If not, no latent actions exist:
   ``refuted`` with ``(g, x)``.)
2. **Remark 5.2** (Corollary 5.3): rewrite ``theta`` to ``theta' = beta(theta~)``, the
   parameter of a reduced submodel with the same function (MLPs; attention parameters are used
   as they are).
3. **eq. (12)** and **Definition 3.4**: for every generator ``g``, align
   ``theta~' = g^{-1} . theta~`` with ``theta~``; the aligner's ``k`` gives ``k_i(g)`` in
   ``K_i`` (eq. (13)).
4. **eq. (15)**, Remark 4.2: the ``k_i`` are homomorphisms ``G -> K_i``; extend them along the
   words of ``G``.
5. **eq. (14)**: every layer is equivariant for ``rho_i(g)``, the action of ``k_i(g)`` on
   ``V_i`` (the partner ``B`` of eq. (8) for an MLP; the head action composed with the token
   permutation for attention, Remark 4.3).
6. **eq. (16)**: lift the actions from the submodel to the ambient model through ``gamma``.

What differs between models is gathered in one small class per model, :class:`MLPSteps` and
:class:`AttentionSteps`, found by :func:`steps_for` (``functools.singledispatch`` on the model's
type); a new model registers its own.

One witness shape for every model (see :func:`latent_actions`), and one tolerance rule: ``tol``
is the tolerance of every numeric comparison (``None``: each comparison's default from
:mod:`identifiable.numbers`: ``FLOAT64_RTOL`` relative to the values compared for sampled
identities, ``FIT_RTOL`` for least-squares fits); the homomorphism check of step 4 allows
``100 tol`` relative to the matrices' size, since products of fitted elements accumulate error;
``zero_tol`` (MLPs) is reduce's threshold for float entries, kept apart from ``tol``.

A float answer is ``checked`` only when it is not vacuous: the returned network computes
``theta``'s function within the function tolerance (``sample_tol(tol)`` on fresh inputs; the
witness records ``function_gap`` and ``function_tol``), and the tolerance of the comparisons of
values (recorded as the verdict's ``tol``; the homomorphism check's is ``homomorphism_tol``)
stays below :data:`VACUOUS_SHARE` of the size of every layer's outputs (``layer_scales``).
Otherwise the answer is ``undecided`` and points to the approximate measurement of trained
networks (``identifiable.torch.measure_latent_actions``, :func:`identifiable.equivariance_error`).
A rewrite that removes more than :data:`REDUCTION_NOTE_SHARE` of the hidden neurons is named in
the reason. The single-purpose tolerances of the steps stay apart: ``align(tol)`` compares
entries, ``same_function(tol)`` compares outputs, ``reduce(tol)`` zeroes entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.groups import Rep, check_homomorphism
from identifiable.models import MLP
from identifiable.models.attention import AttentionModel, HeadAction
from identifiable.numbers import (
    FIT_RTOL,
    FLOAT64_RTOL,
    RESIDUAL_RTOL,
    sample_tol,
    to_numpy,
    validate_count,
    validate_tol,
    validates_arguments,
)
from identifiable.theory.align import align
from identifiable.theory.attention import (
    align_attention,
    check_layers_equivariant,
    equivariance_failure,
    group_actions,
    input_batch,
    inverse_params,
)
from identifiable.theory.equivariance import (
    check_layer_equivariance,
    confirm_exactly,
    group_pair,
    is_equivariant,
    theta_prime,
)
from identifiable.theory.same_function import same_function
from identifiable.theory.submodels import GammaUndefined, reduce
from identifiable.verdict import Verdict

__all__ = ["latent_actions", "steps_for", "Theorem41Steps", "MLPSteps", "AttentionSteps",
           "Generators", "Rewrite"]


# ---------------------------------------------------------------------- shared records
@dataclass
class Generators:
    """G's generators as the model sees them: the word of each generator, its action on
    ``V_0`` and on ``V_L``, the finite group along whose words actions are extended, and
    whether everything is exact."""

    words: list[str]
    gin: list[Any]
    gout: list[Any]
    group: Rep
    exact: bool
    #: token permutation of each group element (attention with token permutations), else None
    tokens: dict[str, list[int]] | None = None
    #: the model-specific record the steps need (e.g. a GroupPair or the tokenwise actions)
    raw: Any = None


@dataclass
class Rewrite:
    """The parameter the theorem is applied to (Remark 5.2): the (reduced) model and parameter,
    the ambient parameter with the same function, and how that was established."""

    model: Any
    theta: Any
    ambient_theta: Any
    rewritten: bool = False
    same_function: Verdict | None = None
    submodel: Any = None
    widths: list[int] | None = None


def _weaker(a: Verdict | None, b: Verdict) -> Verdict:
    order = {"proved": 0, "checked": 1, "undecided": 2, "refuted": 3}
    if a is None or order[b.status] > order[a.status]:
        return b
    return a


def _hom_tol(images: list[np.ndarray], tol: float | None) -> float:
    """Step 4's tolerance: ``100 tol`` (default ``100 FLOAT64_RTOL``) times the matrices' size."""
    scale = max([1.0] + [float(np.max(np.abs(M), initial=0.0)) for M in images])
    return 100 * (tol if tol is not None else FLOAT64_RTOL) * scale


# ---------------------------------------------------------------------- the model's part
class Theorem41Steps:
    """What :func:`latent_actions` asks of a model; one subclass per model type."""

    method_exact = "exact"
    #: the result the verdicts name (a model beyond the paper's theorem names its extension)
    theorem = "Theorem 4.1"
    #: what the reason of a successful answer cites
    cites = "Theorem 4.1, Appendix A"

    def __init__(self, model: Any):
        self.model = model

    def n_latent(self, rw: Rewrite) -> int:
        """How many latent groups ``k`` has (one per hidden layer ``1..L-1`` by default)."""
        return rw.model.depth - 1

    def latent_group(self, rw: Rewrite, i: int) -> Any:
        """The group of the ``i``-th entry of ``k`` (``1 <= i <= n_latent``)."""
        return rw.model.latent_group(i)

    def generators(self, rep_in: Any, rep_out: Any) -> Generators:
        raise NotImplementedError

    def prepare(self, theta: Any, G: Generators) -> Any:
        """The parameter in the arithmetic of the check (exact only when ``G`` is exact)."""
        return theta

    def sample_inputs(self, n: int, seed: int) -> np.ndarray:
        """``n`` random inputs of the model (a batch for :meth:`Model.forward`)."""
        raise NotImplementedError

    def end_to_end(self, theta: Any, G: Generators, *, n_samples: int, tol: float | None,
                   seed: int) -> Verdict:
        """Definition 3.6: refuted with ``(g, x)``, or proved / checked / undecided."""
        raise NotImplementedError

    def rewrite(self, theta: Any, G: Generators, *, zero_tol: float | None, tol: float | None,
                n_samples: int, seed: int) -> Rewrite | Verdict:
        """Remark 5.2 (a Verdict when the rewrite cannot be trusted); default: no rewrite."""
        return Rewrite(self.model, theta, theta)

    def eq_12(self, rw: Rewrite, g_in: Any, g_out: Any) -> Any:
        """``theta~' = g^{-1} . theta~`` (the action of eq. (12) on the first and last layer)."""
        raise NotImplementedError

    def align(self, rw: Rewrite, theta2: Any, *, tol: float | None, n_samples: int,
              seed: int) -> Verdict:
        """Definition 3.4: witness ``[k_1, ..., k_{L-1}]`` with ``theta2 = k . theta~``."""
        raise NotImplementedError

    def matrix(self, rw: Rewrite, i: int, k: Any) -> Any:
        """The matrix of ``k`` in ``K_i`` (for the homomorphism check of eq. (15))."""
        return k

    def extend(self, rw: Rewrite, i: int, G: Generators, images: list[Any]) -> list[Any]:
        """``k_i`` on every element of ``G`` from the generators' images, along the words."""
        ext = G.group.extend(images)
        return [ext[j] for j in range(G.group.order)]

    def action(self, rw: Rewrite, i: int, k: Any) -> Any:
        """``rho_i(g)``: how ``k_i(g)`` acts on the post-activations ``V_i``."""
        raise NotImplementedError

    def check_layers(self, rw: Rewrite, G: Generators, rho_gens: list[list[Any]], *,
                     n_samples: int, tol: float | None, seed: int) -> Verdict:
        """eq. (14): every layer of ``rw.model`` is equivariant for the generators' actions
        (``rho_gens[i - 1][j]`` on ``V_i``; ``G.gin`` / ``G.gout`` on ``V_0`` / ``V_L``)."""
        raise NotImplementedError

    def lift(self, rw: Rewrite, G: Generators, ks: list[list[Any]], *, n_samples: int,
             tol: float | None, seed: int) -> tuple[list[dict], list[dict]] | str | Verdict:
        """eq. (16): ``(k, rho)`` on the ambient model (per hidden layer, ``{word: element}``),
        a note saying why the actions stay on the submodel, or a failing Verdict. Default:
        nothing was rewritten, the submodel is the model."""
        return ""


@singledispatch
def steps_for(model: Any) -> Theorem41Steps:
    """The model-specific steps of :func:`latent_actions` for ``model``."""
    raise TypeError(f"model: latent_actions supports MLP and AttentionModel (or a model "
                    f"registered with identifiable.theory.latent_actions.steps_for), got "
                    f"{type(model).__name__}")


# ---------------------------------------------------------------------- the driver
@validates_arguments
@_zero.undecided_on_zero_tests
def latent_actions(model: Any, theta: Any, rep_in: Any, rep_out: Any = None, *,
                   tol: float | None = None, n_samples: int = 128, seed: int = 0,
                   zero_tol: float | None = None) -> Verdict:
    """Theorem 4.1 [SMBK26] as an algorithm (the constructive proof of Appendix A), for an
    :class:`~identifiable.models.mlp.MLP` or an
    :class:`~identifiable.models.attention.AttentionModel`.

    ``rep_in`` / ``rep_out``: a :class:`~identifiable.groups.Rep` or a list of generator
    matrices acting on ``V_0`` / ``V_L`` (``rep_out``: default trivial for an MLP, ``rep_in`` for
    attention; attention generators of size ``n d`` may permute tokens, Remark 4.3).

    Returns a :class:`~identifiable.verdict.Verdict`:

    * ``proved`` when every step is exact (exact ``theta`` and representations), ``checked``
      for floats, with the witness below;
    * ``refuted`` with ``{"g", "x", ...}`` when ``f`` is not G-equivariant (then no latent
      actions exist);
    * ``undecided`` when ``f`` is equivariant but a step of the proof fails: the alignment of
      eq. (12) (the parameter is not identifiable, the theorem's hypothesis), the homomorphism
      check, or a rewrite that does not keep the function within ``tol``.

    The witness has one shape for every model: for the hidden layers ``i = 1..L-1`` (list index
    ``i - 1``) ``"k"``: ``{word: k_i(g)}`` in ``K_i`` (Remark 4.2), ``"rho"``: ``{word:
    rho_i(g)}`` on ``V_i`` (partner matrices for an MLP, head actions for attention),
    ``"rho_generators"``: ``[rho_i(s_j)]``; ``"tokens"``: ``{word: permutation}`` of the tokens
    (attention with token permutations, else None); ``"on"``: ``"ambient"`` or ``"submodel"``,
    with ``"model"`` and ``"theta"`` the network the actions act on; ``"ambient_theta"``,
    ``"rewritten"``, ``"reduced_widths"``, ``"words"``, ``"group_order"`` and ``"unique"`` (the
    aligner found no alternative ``k``; None when it does not say).

    Tolerances: see the module docstring (one rule for every model).
    """
    tol = validate_tol(tol)
    zero_tol = validate_tol(zero_tol, "zero_tol")
    n_samples = validate_count(n_samples, "n_samples")
    steps = steps_for(model)
    theta = model.check_theta(theta)
    if getattr(theta, "kind", "float") == "symbolic":
        raise ValueError("theta: symbolic parameters; substitute values first")
    G = steps.generators(rep_in, rep_out)
    theta = steps.prepare(theta, G)
    exact = G.exact and getattr(theta, "exact", False)
    method = "exact" if exact else "tolerance"
    # 1. Definition 3.6
    eq = steps.end_to_end(theta, G, n_samples=n_samples, tol=tol, seed=seed)
    if eq.status == "refuted":
        return Verdict.refuted(f"hypothesis of {steps.theorem} fails: f is not G-equivariant "
                               "(Definition 3.6), so no latent actions make every layer "
                               "equivariant", counterexample=eq.counterexample,
                               method=eq.method, tol=eq.tol)
    if eq.status == "undecided":
        return eq.but(reason=f"cannot decide end-to-end equivariance: {eq.reason}")
    # 2. Remark 5.2
    rw = steps.rewrite(theta, G, zero_tol=zero_tol, tol=tol, n_samples=n_samples, seed=seed)
    if isinstance(rw, Verdict):
        return rw
    L = steps.n_latent(rw) + 1
    # 3. eq. (12) and Definition 3.4, per generator
    ks: list[list[Any]] = []
    unique: bool | None = None
    for j, (word, gi, go) in enumerate(zip(G.words, G.gin, G.gout)):
        v = steps.align(rw, steps.eq_12(rw, gi, go), tol=tol, n_samples=n_samples,
                        seed=seed + j)
        if not v.holds:
            return Verdict.undecided(
                f"theta~' of eq. (12) for generator {word} is not k . theta~ for any k in K "
                f"({v.reason}): the (reduced) parameter is not identifiable, so "
                f"{steps.theorem} does not apply",
                witness={"generator": word, "align": v.to_dict(), "reduced_widths": rw.widths},
                method=method, tol=v.tol)
        if "unique" in v.details:
            unique = bool(v.details["unique"]) and unique is not False
        ks.append(list(v.witness))
    # 4. eq. (15): homomorphisms, extended over G
    weakest: Verdict | None = None
    hom_tol = 0.0
    words = G.group.words
    k_sub: list[dict] = []
    rho_sub: list[dict] = []
    rho_gens: list[list] = []
    for i in range(1, L):
        images = [k[i - 1] for k in ks]
        K = steps.latent_group(rw, i)
        if K.d == 0:
            k_sub.append({w: images[0] for w in words})
            rho_sub.append({w: images[0] for w in words})
            rho_gens.append(images)
            continue
        mats = [steps.matrix(rw, i, k) for k in images]
        hv = check_homomorphism(G.group, mats, tol=None if exact else _hom_tol(
            [to_numpy(M) for M in mats], tol))
        if hv.status == "refuted":
            return Verdict.undecided(
                f"k_{i}(g) found by alignment is not a homomorphism on G (eq. (15) fails): the "
                "k_i are not unique (tied or degenerate neurons / heads), so weak "
                f"identifiability, which {steps.theorem} needs, fails",
                witness={"layer": i, "generators": images, "counterexample":
                         hv.counterexample}, method=method, tol=hv.tol)
        weakest = _weaker(weakest, hv)
        hom_tol = max(hom_tol, hv.tol or 0.0)
        try:
            gens_rho = [steps.action(rw, i, k) for k in images]
        except ValueError as exc:  # an aligned k_i(g) outside K_i (a loose float tol)
            return Verdict.undecided(f"layer {i}: the aligned k_i(g) is not in K_i = {K.name} "
                                     f"({exc}); lower tol", witness={"layer": i}, tol=tol)
        per_elem = steps.extend(rw, i, G, images)
        k_sub.append(dict(zip(words, per_elem)))
        rho_sub.append({w: steps.action(rw, i, k) for w, k in zip(words, per_elem)})
        rho_gens.append(gens_rho)
    # 5. eq. (14)
    lv = steps.check_layers(rw, G, rho_gens, n_samples=n_samples, tol=tol, seed=seed)
    if not lv.holds:
        return Verdict.undecided(f"a layer is not equivariant for the aligned actions (eq. "
                                 f"(14)): {lv.reason}", witness=lv.counterexample or {},
                                 method=method, tol=lv.tol)
    weakest = _weaker(weakest, lv)
    value_tols = [eq.tol or 0.0, lv.tol or 0.0]
    # 6. eq. (16)
    lifted = steps.lift(rw, G, ks, n_samples=n_samples, tol=tol, seed=seed)
    if isinstance(lifted, Verdict):
        if not lifted.holds:
            return lifted
        raise AssertionError("lift returns a Verdict only when it fails")  # pragma: no cover
    if isinstance(lifted, str):  # "": the (sub)model is the model; else why not lifted
        kk, rho, lift_note = k_sub, rho_sub, lifted
        on_ambient = lifted == ""
    else:
        kk, rho, lv2 = lifted
        weakest = _weaker(weakest, lv2)
        value_tols.append(lv2.tol or 0.0)
        lift_note, on_ambient = "", True
    gen_idx = G.group.generator_indices
    witness = {
        "k": kk,
        "rho": rho,
        "rho_generators": [[r[words[j]] for j in gen_idx] for r in rho],
        "tokens": G.tokens,
        "on": "ambient" if on_ambient else "submodel",
        "model": steps.model if on_ambient else rw.model,
        "theta": rw.ambient_theta if on_ambient else rw.theta,
        "ambient_theta": rw.ambient_theta,
        "rewritten": rw.rewritten,
        "reduced_widths": rw.widths,
        "group_order": G.group.order,
        "words": words,
        "unique": unique,
    }
    note = (" after the Remark 5.2 rewrite theta' = beta(theta~) (same function, Corollary "
            "5.3)" if rw.rewritten else "")
    kinds = ", ".join(f"rho_{i}: G -> {steps.latent_group(rw, i).name}" for i in range(1, L))
    extra = " composed with the token permutation (Remark 4.3)" if G.tokens else ""
    reason = (f"every layer is G-equivariant{note}; {kinds or 'no hidden layer'}{extra} are "
              f"homomorphisms (eq. (15), Remark 4.2) found by aligning eq. (12) ({steps.cites})"
              f"{lift_note}")
    if rw.same_function is not None:
        witness["same_function"] = rw.same_function
        weakest = _weaker(weakest, rw.same_function)
        value_tols.append(rw.same_function.tol or 0.0)
    reason += _reduction_note(steps.model, rw)
    if exact and (weakest is None or weakest.status == "proved"):
        return Verdict.proved(reason, witness)
    # the tolerance recorded is that of the comparisons of values (end to end, layers, the
    # rewrite's function); the homomorphism check's (on matrices) is recorded beside it
    tol_used = max(value_tols)
    gate = _float_gate(steps, witness, theta, tol, tol_used, n_samples, seed)
    if isinstance(gate, Verdict):
        return gate
    witness.update(gate)
    return Verdict.checked(reason, n_samples=eq.n_samples or n_samples, tol=tol_used,
                           witness=witness, method="tolerance", zero_tol=zero_tol,
                           homomorphism_tol=hom_tol)


#: a float comparison whose absolute tolerance reaches this share of the size of the values it
#: compares (a layer's outputs) accepts values unrelated to each other: no ``checked`` on it
VACUOUS_SHARE = 0.1
#: a Remark 5.2 rewrite that removes more than this share of the hidden neurons is named in the
#: reason (the actions then describe a much smaller network than the user's)
REDUCTION_NOTE_SHARE = 0.5


def _reduction_note(model: Any, rw: Rewrite) -> str:
    before = sum(getattr(model, "hidden_widths", []) or [])
    after = sum(getattr(rw.model, "hidden_widths", []) or [])
    if before and before - after > REDUCTION_NOTE_SHARE * before:
        return (f"; note: reduce removed {before - after} of {before} hidden neurons "
                f"({100 * (before - after) / before:.0f}%, reduced widths {rw.widths}), so the "
                "actions describe a much smaller network computing the same function")
    return ""


def _float_gate(steps: Theorem41Steps, witness: dict, theta: Any, tol: float | None,
                tol_used: float, n_samples: int, seed: int) -> dict | Verdict:
    """The last word on a float answer: the returned network computes ``theta``'s function
    within the function tolerance, and no comparison's tolerance is comparable to the size of
    the values it compared (else the ``checked`` would be vacuous). Returns what it measured
    (``layer_scales``, ``function_gap``, ``function_tol``) or the ``undecided`` verdict."""
    X = steps.sample_inputs(max(n_samples, 256), seed + 7919)
    model_w, theta_w = witness["model"], witness["theta"]
    lat = model_w.latents(X, theta_w)
    scales = [float(np.max(np.abs(Y))) if np.size(Y) else 0.0 for Y in lat[1:]]
    f_in = np.asarray(steps.model.forward(X, theta), dtype=np.float64)
    gap_rows = np.abs(f_in - lat[-1].reshape(f_in.shape)).reshape(len(X), -1).max(axis=1)
    j = int(np.argmax(gap_rows))
    gap = float(gap_rows[j])
    f_tol = sample_tol(tol, f_in, rtol=RESIDUAL_RTOL)
    measured = {"layer_scales": scales, "function_gap": gap, "function_tol": f_tol}
    approx = ("the layerwise structure is approximate at best: measure it with "
              "identifiable.torch.measure_latent_actions (least-squares and nearest-K latent "
              "maps with held-out errors) or identifiable.equivariance_error")
    if gap > f_tol:
        return Verdict.undecided(
            f"the returned parameter's function differs from theta's by {gap:.3g} > function "
            f"tolerance {f_tol:.3g} at the input in the witness, so the actions found are not "
            f"those of theta's network; {approx}",
            witness={**measured, "x": X[j].tolist()}, method="tolerance", tol=f_tol)
    for i, sc in enumerate(scales, start=1):
        if sc > 0 and tol_used >= VACUOUS_SHARE * sc:
            return Verdict.undecided(
                f"tolerance {tol_used:.3g} is not small against the values compared: layer {i}'s "
                f"outputs are at most {sc:.3g} in size, so a comparison within {tol_used:.3g} "
                f"would accept values unrelated to each other (>= {VACUOUS_SHARE:g} of their "
                f"size); {approx}", witness=measured, method="tolerance", tol=tol_used)
    return measured


# ---------------------------------------------------------------------- MLP
class MLPSteps(Theorem41Steps):
    """The MLP's part (Section 5.1 [SMBK26]): exact where the inputs are exact; reduce for
    Remark 5.2; the aligner of Definition 3.4; the lift through ``gamma`` (eq. (16))."""

    def generators(self, rep_in: Any, rep_out: Any) -> Generators:
        G = group_pair(rep_in, rep_out, self.model.widths[0], self.model.widths[-1])
        return Generators(G.words, G.gin, G.gout, G.group, G.exact, raw=G)

    def prepare(self, theta: Any, G: Generators) -> Any:
        if not G.exact and theta.exact:  # float representations: compare in floats
            return theta.numeric
        return theta

    def sample_inputs(self, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((n, self.model.widths[0]))

    def end_to_end(self, theta, G, *, n_samples, tol, seed) -> Verdict:
        exact = G.exact and theta.exact
        # on samples first (cheap, and it yields a counterexample); for exact input a numeric
        # failure is confirmed by the exact decision. A successful exact alignment below
        # proves equivariance: f(x; theta~') = f(x; theta~) is g^-1 f(g x) = f(x) by eq. (5).
        eq = is_equivariant(self.model, theta.numeric if exact else theta,
                            [to_numpy(g) for g in G.gin], [to_numpy(g) for g in G.gout],
                            n_samples=max(n_samples, 64), tol=tol, seed=seed)
        if eq.status == "refuted" and exact:
            eq = confirm_exactly(self.model, theta, G.raw, eq)
        return eq

    def rewrite(self, theta, G, *, zero_tol, tol, n_samples, seed) -> Rewrite | Verdict:
        sub = reduce(self.model, theta, tol=zero_tol)
        used = sub.embed()
        rewritten = not _same_theta(used, theta)
        same = None
        exact = G.exact and theta.exact
        if rewritten and not exact:  # the witness must compute theta's function within tol
            # (exact Remark 5.2 steps keep the function exactly; float zeroing may not)
            same = same_function(self.model, theta, used, tol=tol,
                                 n_samples=max(n_samples, 512), seed=seed)
            if same.status not in ("proved", "checked"):
                return Verdict.undecided(
                    f"the Remark 5.2 rewrite beta(theta~) (zeroing threshold zero_tol = "
                    f"{zero_tol if zero_tol is not None else 'default'}) does not compute "
                    f"theta's function within tol: {same.reason}; lower zero_tol or raise tol",
                    witness={"same_function": same, "reduced_widths": sub.model.widths},
                    method="tolerance", tol=same.tol)
        return Rewrite(sub.model, sub.theta, used, rewritten, same, sub, sub.model.widths)

    def eq_12(self, rw, g_in, g_out):
        return theta_prime(rw.model, rw.theta, g_in, g_out)

    def align(self, rw, theta2, *, tol, n_samples, seed) -> Verdict:
        return align(rw.model, rw.theta, theta2, tol=tol)

    def action(self, rw, i, k):
        return rw.model.latent_group(i).partner(_as_exactness(k, rw.theta.exact))

    def check_layers(self, rw, G, rho_gens, *, n_samples, tol, seed) -> Verdict:
        return _check_mlp_layers(rw.model, rw.theta, G, rho_gens, n_samples=n_samples, tol=tol)

    def lift(self, rw, G, ks, *, n_samples, tol, seed):
        if (not rw.rewritten and rw.model.widths == self.model.widths
                and _same_theta(rw.theta, rw.ambient_theta)):
            return ""  # the submodel is the model, with the same parameter: nothing to lift
        # otherwise the actions were found on the submodel's parameter (which may differ from
        # theta by a change of basis even at equal widths, e.g. reduce's canonical form for
        # K = GL) and must be carried to theta's layers through gamma (eq. (16))
        exact = rw.theta.exact and G.exact
        kk, rho, rho_gens = [], [], []
        for i in range(1, self.model.depth):
            K = self.model.latent_group(i)
            try:
                gens_k = [rw.submodel.gamma[i](_as_exactness(k[i - 1], exact)) for k in ks]
            except GammaUndefined as exc:
                return f"; gamma_{i} undefined ({exc}), actions given on the submodel"
            try:
                gens_b = [K.partner(_as_exactness(M, exact)) for M in gens_k]
            except ValueError as exc:
                return Verdict.undecided(f"layer {i}: gamma_i(k_i(g)) is not in K_i = {K.name} "
                                         f"({exc}); lower tol", witness={"layer": i}, tol=tol)
            ext_k, ext_b = G.group.extend(gens_k), G.group.extend(gens_b)
            kk.append({G.group.words[j]: M for j, M in ext_k.items()})
            rho.append({G.group.words[j]: M for j, M in ext_b.items()})
            rho_gens.append(gens_b)
        v = _check_mlp_layers(self.model, rw.ambient_theta, G, rho_gens, n_samples=n_samples,
                              tol=tol, where="lifted action fails at ambient layer {i} "
                                             "(eq. (16))")
        if not v.holds:
            return Verdict.undecided(v.reason, witness=v.counterexample or {}, tol=v.tol)
        return kk, rho, v


def _check_mlp_layers(model, theta, G: Generators, rho_gens, *, n_samples, tol,
                      where: str = "submodel layer {i} not equivariant for the aligned k "
                                   "(eq. (14))") -> Verdict:
    weakest = None
    prev = list(G.gin)
    L = model.depth
    for i in range(1, L + 1):
        nxt = list(G.gout) if i == L else rho_gens[i - 1]
        v = check_layer_equivariance(model, theta, i, prev, nxt, n_samples=n_samples, tol=tol)
        if not v.holds:
            return Verdict.refuted(f"{where.format(i=i)}: {v.reason}",
                                   counterexample={"layer": i}, tol=v.tol,
                                   method=v.method or "sampled")
        weakest = _weaker(weakest, v)
        prev = nxt
    return weakest if weakest is not None else Verdict.proved("no layers")


def _as_exactness(M: Any, exact: bool) -> Any:
    if exact:
        return M if isinstance(M, sp.MatrixBase) else sp.ImmutableMatrix(
            np.asarray(M).tolist())
    return to_numpy(M)


def _same_theta(a: Any, b: Any) -> bool:
    """Did reduce leave every entry unchanged?"""
    if a.exact and b.exact:
        return all(sp.Matrix(x) == sp.Matrix(y) for x, y in zip(a.weights + a.biases,
                                                                 b.weights + b.biases))
    return all(np.array_equal(to_numpy(x).reshape(-1), to_numpy(y).reshape(-1))
               for x, y in zip(a.weights + a.biases, b.weights + b.biases))


# ---------------------------------------------------------------------- attention
class AttentionSteps(Theorem41Steps):
    """The attention model's part (Section 5.2, Remark 4.3 [SMBK26]): numeric throughout;
    ``K_i = GL(d_i)^h_i x| S_h_i`` acting on heads; the token permutation of ``g`` composes
    with ``k_i(g)`` on every hidden ``V_i``; no rewrite (reduction of attention parameters is
    not implemented, so the aligner meets the parameter as it is)."""

    def generators(self, rep_in: Any, rep_out: Any) -> Generators:
        ga = group_actions(self.model, rep_in, rep_out)
        rep = ga.rep
        gen_words = [rep.words[j] for j in rep.generator_indices]
        tokens = None
        if ga.permutes_tokens:
            n = self.model.n_tokens
            perms = rep.extend_with([a.tokens for a in ga.gens_in], lambda s, p: s[p],
                                    np.arange(n))
            tokens = {w: perms[j].tolist() for j, w in enumerate(rep.words)}
        return Generators(gen_words, ga.gens_in, ga.gens_out, rep, False, tokens, raw=ga)

    def sample_inputs(self, n: int, seed: int) -> np.ndarray:
        return input_batch(self.model, n, np.random.default_rng(seed))

    def end_to_end(self, theta, G, *, n_samples, tol, seed) -> Verdict:
        t = FIT_RTOL if tol is None else tol
        X = input_batch(self.model, n_samples, np.random.default_rng(seed))
        fail, worst = equivariance_failure(self.model, theta, G.raw, X, t)
        if fail is not None:
            return Verdict.refuted(
                f"f(g x) != g f(x) for g = {fail['g']} (residual {fail['residual']:.3g})",
                counterexample=fail, method="sampled", tol=fail["tol"])
        return Verdict.checked("f(g x) = g f(x) on samples for every generator",
                               n_samples=n_samples, tol=t, max_residual=worst)

    def eq_12(self, rw, g_in, g_out):
        return inverse_params(self.model, rw.theta, g_in, g_out)

    def align(self, rw, theta2, *, tol, n_samples, seed) -> Verdict:
        return align_attention(self.model, rw.theta, theta2, n_samples=n_samples,
                               tol=FIT_RTOL if tol is None else tol, seed=seed)

    def matrix(self, rw, i, k):
        return k.matrix()

    def extend(self, rw, i, G, images):
        layer = self.model.layers[i - 1]
        return G.group.extend_with(images, lambda a, b: a @ b,
                                   HeadAction.identity(layer.d_out, layer.h_out))

    def action(self, rw, i, k):
        return k

    def check_layers(self, rw, G, rho_gens, *, n_samples, tol, seed) -> Verdict:
        return check_layers_equivariant(self.model, rw.theta, G.raw, rho_gens,
                                        n_samples=n_samples, tol=FIT_RTOL if tol is None
                                        else tol, seed=seed)


steps_for.register(MLP, MLPSteps)
steps_for.register(AttentionModel, AttentionSteps)
