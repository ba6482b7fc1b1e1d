"""Proposition D.4 [BK23]: if psi o phi: X -> Z is G-equivariant, then phi and psi become
equivariant maps X -> Y' -> Z for an action of G on Y' = phi(X)/~ (y1 ~ y2 iff
psi(y1) = psi(y2)); if psi is invertible, on Y itself.

How the claim is checked, on finite sets (where everything can be enumerated):
:func:`identifiable.quotients.prop_d_4` builds Y' and the action g.[y] = psi'^-1(g.psi'([y]))
and verifies the action axioms and the equivariance of phi', psi' over all of G. We generate

* G-sets from permutation groups (cyclic, dihedral, symmetric): X = ordered pairs of points,
  Z = points or unordered pairs, an equivariant h: X -> Z, a random set Y and a random phi whose
  fibres refine those of h, psi = h o phi^-1 on phi(X) and arbitrary off it: must be proved;
  the witness is re-checked here from scratch (action axioms over all pairs g, h through the
  multiplication table of G; phi', psi' equivariant; classes = fibres of psi on phi(X));
* the same with phi scrambled at random: when psi o phi is not equivariant it must be refuted
  with a (g, x) that re-checks;
* Example 2.1 on the grid {-1, 0, 1}^2 with phi = W1 x and psi = W2 ReLU(.) = 0: Y' is a single
  point with the trivial action (as the paper says after the proof);
* a bijective psi: the action on all of Y (part 1, Lemma D.3) is re-checked too.

Status: ``checked``, not ``proved``: every case is decided exactly, but the proposition
quantifies over all networks and the library verifies finitely many (exact on each of finitely
many G-sets).
"""

import functools
import itertools

import numpy as np

from identifiable import groups
from identifiable.claims import claim
from identifiable.quotients import prop_d_4
from identifiable.verdict import Verdict


def _perm_action(p):
    """The action of a point permutation (index array) on tuples of points."""
    return lambda t: tuple(int(p[i]) for i in t) if isinstance(t, tuple) else int(p[t])


def _elements(G):
    """Point permutations of every element (p[i] = image of point i)."""
    return [groups.permutation_of(M) for M in G.elements]


def _recheck(G, X, Z, phi, psi, act_point, w):
    """Independent re-check of a QuotientAction witness (None if fine)."""
    table, words = G.multiplication_table(), G.words
    perms = _elements(G)
    ncls = len(w.classes)
    acts = [w.action[words[g]] for g in range(G.order)]
    if acts[0] != list(range(ncls)):
        return "identity does not act trivially on Y'"
    for g, h in itertools.product(range(G.order), repeat=2):
        if any(acts[table[g, h]][c] != acts[g][acts[h][c]] for c in range(ncls)):
            return f"(gh).y != g.(h.y) for {words[g]}, {words[h]}"
    # classes are the fibres of psi on phi(X)
    image = {phi[x] for x in X}
    if sorted(y for c in w.classes for y in c) != sorted(image):
        return "classes do not partition phi(X)"
    for c, members in enumerate(w.classes):
        if any(psi[y] != w.psi_prime[c] for y in members):
            return "a class is not a fibre of psi"
    cls = {y: c for c, members in enumerate(w.classes) for y in members}
    for g in range(G.order):
        gx = _perm_action(perms[g])
        for i, x in enumerate(X):
            if cls[phi[gx(x)]] != acts[g][w.phi_prime[i]] or w.phi_prime[i] != cls[phi[x]]:
                return f"phi' not equivariant at {x}, {words[g]}"
        for c in range(ncls):
            if w.psi_prime[acts[g][c]] != act_point(perms[g], w.psi_prime[c]):
                return f"psi' not equivariant at class {c}, {words[g]}"
    return None


def _instance(rng, G, n):
    X = [(i, j) for i in range(n) for j in range(n)]
    if rng.random() < 0.5:
        Z = list(range(n))
        h = {x: x[0] for x in X}

        def act_point(p, z):
            return int(p[z])
    else:
        Z = sorted({tuple(sorted(x)) for x in X})
        h = {x: tuple(sorted(x)) for x in X}

        def act_point(p, z):
            return tuple(sorted(int(p[i]) for i in z))
    # phi refines the fibres of h; Y has extra unused points
    phi, psi, Y = {}, {}, []
    for z in Z:
        fibre = [x for x in X if h[x] == z]
        k = int(rng.integers(1, len(fibre) + 1))
        labels = rng.integers(0, k, size=len(fibre))
        for lab in range(k):
            y = f"y{len(Y)}"
            Y.append(y)
            psi[y] = z
            for x, lx in zip(fibre, labels):
                if lx == lab:
                    phi[x] = y
    for _ in range(int(rng.integers(0, 3))):
        y = f"y{len(Y)}"
        Y.append(y)
        psi[y] = Z[int(rng.integers(0, len(Z)))]
    return X, Y, Z, phi, psi, act_point


@claim(id="bk23.prop-d.4", source="[BK23] Proposition D.4 (App. D.1)",
       statement="psi o phi equivariant => phi, psi equivariant through Y' = phi(X)/~ with an "
                 "induced G-action (on Y itself if psi is invertible)",
       expected="checked", method="finite G-sets, brute force over all of G")
def check() -> Verdict:
    rng = np.random.default_rng(44)
    n_proved = n_refuted = 0
    makers = [groups.cyclic(3), groups.cyclic(4), groups.dihedral(3), groups.dihedral(4),
              groups.symmetric(3)]
    for trial in range(15):
        G = makers[trial % len(makers)]
        n = G.dim
        X, Y, Z, phi, psi, act_point = _instance(rng, G, n)
        gens = [groups.permutation_of(M) for M in G.generators]
        act_X = [_perm_action(p) for p in gens]
        act_Z = [functools.partial(act_point, p) for p in gens]
        v = prop_d_4(X, Y, Z, phi, psi, act_X, act_Z, group=G)
        if v.status != "proved":
            return Verdict.refuted("equivariant composite not proved",
                                   counterexample={"trial": trial, "verdict": v.to_dict()})
        msg = _recheck(G, X, Z, phi, psi, act_point, v.witness)
        if msg:
            return Verdict.refuted(f"witness does not re-check: {msg}",
                                   counterexample={"trial": trial})
        n_proved += 1
        # scramble phi: mostly not equivariant any more
        phi2 = dict(phi)
        xs = list(phi2)
        a, b = (xs[int(i)] for i in rng.choice(len(xs), size=2, replace=False))
        phi2[a], phi2[b] = phi2[b], phi2[a]
        v = prop_d_4(X, Y, Z, phi2, psi, act_X, act_Z, group=G)
        if v.status == "refuted":
            ce = v.counterexample
            g = G.words.index(ce["g"])
            p = _elements(G)[g]
            x = ce["x"]
            if psi[phi2[_perm_action(p)(x)]] == act_point(p, psi[phi2[x]]):
                return Verdict.refuted("counterexample does not re-check", counterexample=ce)
            n_refuted += 1
        elif v.status != "proved" or _recheck(G, X, Z, phi2, psi, act_point, v.witness):
            return Verdict.refuted("scrambled case neither refuted nor re-checked",
                                   counterexample={"trial": trial})
    # Example 2.1: phi = W1 x, psi = W2 ReLU(.) = 0 on the grid
    swap = groups.Rep([[[0, 1], [1, 0]]])
    X = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    Y = [(a, 0) for a in (-1, 0, 1)]
    v = prop_d_4(X, Y, [0], lambda x: (x[0], 0), lambda y: 0, swap, [[0]])
    if v.status != "proved" or len(v.witness.classes) != 1 or v.witness.action["s0"] != [0]:
        return Verdict.refuted("Example 2.1: Y' is not a single point with trivial action",
                               counterexample={"verdict": v.to_dict()})
    # bijective psi: the action on Y itself (part 1)
    Y = [(a - b, b - a) for a in (-1, 0, 1) for b in (-1, 0, 1) if a >= b]
    Y = sorted(set(Y) | {(-a, a) for a, _ in Y})
    v = prop_d_4(X, Y, Y, lambda x: (x[0] - x[1], x[1] - x[0]), lambda y: y, swap,
                 [lambda y: (y[1], y[0])])
    ya = None if v.status != "proved" else v.witness.Y_action
    if ya is None or any(Y[ya["s0"][i]] != (y[1], y[0]) for i, y in enumerate(Y)):
        return Verdict.refuted("bijective psi: the action on Y is not the transported one",
                               counterexample={"verdict": v.to_dict()})
    return Verdict.checked(
        f"{n_proved} generated equivariant composites: Y' and its action built and re-checked "
        f"over all of G (action axioms, phi' and psi' equivariant); {n_refuted} scrambled "
        "composites refuted with re-checked (g, x); Example 2.1 gives a one-point Y' with the "
        "trivial action; a bijective psi transports the action to Y",
        n_samples=n_proved + n_refuted, tol=0.0,
        witness={"proved": n_proved, "refuted": n_refuted})
