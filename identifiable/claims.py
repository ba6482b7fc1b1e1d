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

import importlib
import importlib.util
import os
import pkgutil
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from identifiable.verdict import STATUSES, Verdict

__all__ = ["Claim", "ClaimResult", "claim", "load_claims", "run_claims", "default_claims_dir",
           "CATALOG"]

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
    """Decorator marking a claim's ``check`` function (the :class:`Claim` is attached to it as
    ``check.claim``; :func:`load_claims` finds it there, no global registry)."""

    def register(fn: Callable[[], Verdict]) -> Callable[[], Verdict]:
        path = fn.__globals__.get("__file__") or ""  # the file of the module defining fn
        fn.claim = Claim(id, source, statement, expected, method, fn, path)  # type: ignore
        return fn

    return register


#: the import name of the installed claims catalog (the repository's ``proofs/`` folder)
CATALOG = "identifiable_proofs"


def default_claims_dir() -> Path:
    """The folder of the installed claims catalog (:data:`CATALOG`)."""
    return Path(_catalog().__file__).resolve().parent


def _catalog():
    try:
        return importlib.import_module(CATALOG)
    except ImportError as exc:  # pragma: no cover - a broken installation
        raise FileNotFoundError(f"claims: the claims catalog {CATALOG!r} is not installed "
                                f"({exc}); reinstall identifiable or pass --claims DIR") from None


def _claims_of(module) -> list[Claim]:
    return [obj.claim for obj in vars(module).values()
            if callable(obj) and isinstance(getattr(obj, "claim", None), Claim)]


def _claim_files(path: Iterable[str]) -> list[str]:
    """The module names of the claim files in a package path (``_*`` files are helpers)."""
    return sorted(info.name for info in pkgutil.iter_modules(list(path))
                  if not info.name.startswith("_"))


def _catalog_modules() -> list:
    """The claim modules of the installed catalog, imported as what they are: the submodules
    ``identifiable_proofs.<name>`` of an installed package."""
    package = _catalog()
    return [importlib.import_module(f"{CATALOG}.{name}") for name in _claim_files(package.__path__)]


def _folder_modules(folder: Path) -> list:
    """The claim modules of an explicit folder, imported as one package of its own.

    Claim files may share helpers through relative imports (``from ._common import ...``, as the
    catalog's own files do), so the folder is loaded as a package (spec with
    ``submodule_search_locations``), under a name made for this load
    (``identifiable_claims_<hex>``: nothing else can import it or collide with it). Python
    resolves a relative import only through ``sys.modules`` (the parent package must be there,
    and the import system records each submodule it loads), so the package is visible there
    while its files execute, and only then: afterwards it and every submodule the load added
    are removed again, and loading leaves ``sys.modules`` as it found it. The claims keep their
    modules alive through their ``check`` functions. (Hence a claim file imports its helpers
    at its top, not inside ``check``.)
    """
    name = f"identifiable_claims_{uuid.uuid4().hex[:12]}"
    init = folder / "__init__.py"
    if init.exists():
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(folder)])
    else:
        spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    if spec is None:  # pragma: no cover
        raise ValueError(f"claims: cannot import {folder}")
    spec.submodule_search_locations = [str(folder)]
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        if init.exists():
            assert spec.loader is not None
            spec.loader.exec_module(package)
        return [importlib.import_module(f"{name}.{sub}") for sub in _claim_files(package.__path__)]
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def load_claims(directory: str | os.PathLike | None = None) -> list[Claim]:
    """The claims of the installed catalog (``directory=None``) or of the ``*.py`` files of
    an explicit folder (imported as a package; files starting with ``_`` are helpers), sorted
    by id. A folder without claims, a file without a claim and duplicate ids are errors."""
    if directory is None:
        modules = _catalog_modules()
        where = f"the installed catalog {CATALOG}"
    else:
        folder = Path(directory).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"claims: no such folder {directory}")
        modules = _folder_modules(folder)
        where = str(folder)
    found: list[Claim] = []
    for module in modules:
        new = _claims_of(module)
        if not new:
            raise ValueError(f"claims: {module.__file__} defines no @claim")
        found.extend(new)
    if not found:
        raise ValueError(f"claims: no claims in {where} (expected *.py files with @claim "
                         "functions)")
    ids = [c.id for c in found]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"claims: duplicate claim ids {sorted(dup)}")
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
