"""The claims catalog: one file per claim of the papers in ``proofs/``, run by
``identifiable verify``.

Each file in ``proofs/`` defines a function decorated with :func:`claim`::

    from identifiable.claims import claim

    @claim(id="bk23.lem-2.2", source="[BK23] Lemma 2.2",
           statement="ReLU(Ax) = B ReLU(x) for invertible A, B iff A = B = PD",
           expected="proved", method="exact decision on generated cases")
    def check() -> Verdict:
        ...

``expected`` is the status the paper predicts (Example 2.1 of [BK23] *expects* a refutation of
layerwise equivariance; that refutation is a pass).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from identifiable.verdict import STATUSES, Verdict

__all__ = ["Claim", "ClaimResult", "claim", "load_claims", "run_claims", "default_claims_dir"]

_REGISTRY: dict[str, Claim] = {}


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    expected: str
    method: str
    check: Callable[[], Verdict]
    path: str = ""

    def __post_init__(self) -> None:
        if self.expected not in STATUSES:
            raise ValueError(f"claim {self.id}: expected must be one of {STATUSES}")


@dataclass
class ClaimResult:
    claim: Claim
    verdict: Verdict | None
    seconds: float
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "error" if self.verdict is None else self.verdict.status

    @property
    def ok(self) -> bool:
        return self.verdict is not None and self.verdict.status == self.claim.expected

    def to_dict(self) -> dict:
        return {
            "id": self.claim.id,
            "source": self.claim.source,
            "statement": self.claim.statement,
            "method": self.claim.method,
            "expected": self.claim.expected,
            "status": self.status,
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "error": self.error,
        }


def claim(*, id: str, source: str, statement: str, expected: str, method: str):
    """Decorator registering a claim's ``check`` function."""

    def register(fn: Callable[[], Verdict]) -> Callable[[], Verdict]:
        path = getattr(sys.modules.get(fn.__module__), "__file__", "") or ""
        _REGISTRY[id] = Claim(id, source, statement, expected, method, fn, path)
        fn.claim = _REGISTRY[id]  # type: ignore[attr-defined]
        return fn

    return register


def default_claims_dir() -> Path:
    """``$IDENTIFIABLE_PROOFS``, else ``proofs/`` beside the package (a source checkout or
    editable install), else ``./proofs``."""
    env = os.environ.get("IDENTIFIABLE_PROOFS")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[1] / "proofs"
    if beside.is_dir():
        return beside
    return Path.cwd() / "proofs"


def load_claims(directory: str | os.PathLike | None = None) -> list[Claim]:
    """Import every ``*.py`` in the claims directory and return the registered claims, sorted."""
    directory = Path(directory) if directory is not None else default_claims_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"claims directory {directory} does not exist "
                                "(pass --claims DIR or set IDENTIFIABLE_PROOFS)")
    found: list[Claim] = []
    # claim files may share helpers in underscore modules of the same directory
    if str(directory.resolve()) not in sys.path:
        sys.path.insert(0, str(directory.resolve()))
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        before = set(_REGISTRY)
        modname = f"identifiable_proofs.{path.stem.replace('-', '_').replace('.', '_')}"
        if modname in sys.modules:
            module = sys.modules[modname]
            mfile = getattr(module, "__file__", None)
            found.extend(c for c in _REGISTRY.values() if c.path == mfile)
            continue
        spec = importlib.util.spec_from_file_location(modname, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        new = [_REGISTRY[k] for k in set(_REGISTRY) - before]
        if not new:
            raise ValueError(f"{path} defines no @claim")
        found.extend(new)
    ids = [c.id for c in found]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"duplicate claim ids: {sorted(dup)}")
    return sorted(found, key=lambda c: c.id)


def run_claims(claims: Iterable[Claim], only: Iterable[str] | None = None,
               progress: Callable[[ClaimResult], None] | None = None) -> list[ClaimResult]:
    """Run claims (optionally only the given ids; unknown ids raise ValueError)."""
    claims = list(claims)
    if only:
        only = list(only)
        known = {c.id for c in claims}
        unknown = [i for i in only if i not in known]
        if unknown:
            raise ValueError(f"unknown claim id(s): {unknown}; known: {sorted(known)}")
        claims = [c for c in claims if c.id in set(only)]
    results = []
    for c in claims:
        t0 = time.perf_counter()
        try:
            verdict = c.check()
            if not isinstance(verdict, Verdict):
                raise TypeError(f"check() returned {type(verdict).__name__}, not a Verdict")
            res = ClaimResult(c, verdict, time.perf_counter() - t0)
        except Exception as exc:  # a crashing check is reported, not hidden
            res = ClaimResult(c, None, time.perf_counter() - t0,
                              error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        results.append(res)
        if progress is not None:
            progress(res)
    return results
