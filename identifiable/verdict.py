"""The one result type of every check: :class:`Verdict`.

The honesty rule (DESIGN.md):

========== ================================================================================
status     meaning
========== ================================================================================
proved     holds exactly: an exact symbolic argument or a cited theorem whose hypotheses
           were checked
refuted    fails, and ``counterexample`` holds a concrete input that shows it
checked    held on every one of ``n_samples`` numeric samples within tolerance ``tol``
undecided  the library cannot decide; ``reason`` says why
========== ================================================================================

A :class:`Verdict` deliberately refuses to be used as a boolean (``if verdict:``), since a
``checked`` or ``undecided`` answer is not a plain yes; ask for :attr:`Verdict.holds`,
:attr:`Verdict.proved` or :attr:`Verdict.status` instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import sympy as sp

Status = Literal["proved", "refuted", "checked", "undecided"]
STATUSES: tuple[str, ...] = ("proved", "refuted", "checked", "undecided")

#: the values of :attr:`Verdict.method`: how the answer was obtained
METHODS: dict[str, str] = {
    "exact": "exact symbolic or rational arithmetic, number fields, certified enclosures",
    "theorem": "a cited theorem whose hypotheses were checked exactly",
    "tolerance": "float entries compared within tol (a structure, or a theorem's hypotheses)",
    "sampled": "numeric samples within tol",
    "": "not recorded",
}

__all__ = ["Verdict", "Status", "STATUSES", "METHODS", "UndecidedError", "to_jsonable"]


class UndecidedError(ValueError):
    """Raised where a result is needed but the library could only answer ``undecided``.

    The undecided :class:`Verdict` is attached as ``.verdict``.
    """

    def __init__(self, message: str, verdict: Verdict | None = None):
        super().__init__(message)
        self.verdict = verdict


@dataclass(frozen=True, repr=False, eq=False)
class Verdict:
    """Result of a check.

    Parameters
    ----------
    status:
        One of ``"proved"``, ``"refuted"``, ``"checked"``, ``"undecided"``.
    reason:
        One line that says why, citing the paper item used (e.g. ``"Lemma 2.2 [BK23]"``).
    witness:
        What makes the statement true (the P and D of Lemma 2.2, the k_i of identifiability,
        the rho_i of Theorem 4.1). Allowed for any status (an ``undecided`` verdict may carry
        partial evidence).
    counterexample:
        A concrete input that refutes the statement; required for ``refuted``.
    n_samples, tol:
        For ``checked``: the number of numeric samples and the tolerance (both required).
        Any other verdict computed with a tolerance records it in ``tol`` as well.
    method:
        How the answer was obtained: one of :data:`METHODS` (``"exact"``, ``"theorem"``,
        ``"tolerance"``, ``"sampled"``, or ``""``).
    details:
        Free-form extra data (e.g. the largest residual seen).
    """

    status: Status
    reason: str
    witness: Any = None
    counterexample: Any = None
    n_samples: int | None = None
    tol: float | None = None
    method: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError("reason must be a non-empty string")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")
        if self.status == "refuted" and self.counterexample is None:
            raise ValueError("a refuted Verdict needs a counterexample")
        if self.status == "checked":
            if self.n_samples is None or self.tol is None:
                raise ValueError("a checked Verdict needs n_samples and tol")
            if int(self.n_samples) < 1:
                raise ValueError("a checked Verdict needs n_samples >= 1")
        if self.status == "proved" and self.counterexample is not None:
            raise ValueError("a proved Verdict cannot carry a counterexample")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def proved(cls, reason: str, witness: Any = None, *, method: str = "exact",
               tol: float | None = None, **details: Any) -> Verdict:
        return cls("proved", reason, witness=witness, method=method, tol=tol, details=details)

    @classmethod
    def refuted(cls, reason: str, counterexample: Any, *, witness: Any = None,
                method: str = "exact", tol: float | None = None, **details: Any) -> Verdict:
        return cls("refuted", reason, witness=witness, counterexample=counterexample,
                   method=method, tol=tol, details=details)

    @classmethod
    def checked(cls, reason: str, n_samples: int, tol: float, witness: Any = None, *,
                method: str = "sampled", **details: Any) -> Verdict:
        return cls("checked", reason, witness=witness, n_samples=int(n_samples),
                   tol=float(tol), method=method, details=details)

    @classmethod
    def undecided(cls, reason: str, witness: Any = None, *, method: str = "",
                  tol: float | None = None, n_samples: int | None = None,
                  **details: Any) -> Verdict:
        return cls("undecided", reason, witness=witness, method=method, tol=tol,
                   n_samples=n_samples, details=details)

    # ------------------------------------------------------------------ queries
    @property
    def holds(self) -> bool | None:
        """True for ``proved`` / ``checked``, False for ``refuted``, None for ``undecided``."""
        if self.status in ("proved", "checked"):
            return True
        if self.status == "refuted":
            return False
        return None

    @property
    def is_proved(self) -> bool:
        return self.status == "proved"

    def __bool__(self) -> bool:
        raise TypeError(
            "a Verdict is not a boolean (checked and undecided are not plain yes/no); "
            "use verdict.holds, verdict.status or verdict.is_proved"
        )

    def but(self, **changes: Any) -> Verdict:
        """A copy with some fields changed (validated again)."""
        data = {
            "status": self.status, "reason": self.reason, "witness": self.witness,
            "counterexample": self.counterexample, "n_samples": self.n_samples,
            "tol": self.tol, "method": self.method, "details": dict(self.details),
        }
        data.update(changes)
        return Verdict(**data)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (sympy objects become strings, arrays lists)."""
        return {
            "status": self.status,
            "holds": self.holds,
            "reason": self.reason,
            "method": self.method,
            "n_samples": self.n_samples,
            "tol": self.tol,
            "witness": to_jsonable(self.witness),
            "counterexample": to_jsonable(self.counterexample),
            "details": to_jsonable(dict(self.details)),
        }

    def __repr__(self) -> str:
        head = f"Verdict({self.status}: {self.reason}"
        extra = []
        if self.method:
            extra.append(f"method={self.method}")
        if self.n_samples is not None:
            extra.append(f"n_samples={self.n_samples}")
        if self.tol is not None:
            extra.append(f"tol={self.tol:.3g}")
        if extra:
            head += " [" + ", ".join(extra) + "]"
        lines = [head]
        if self.witness is not None:
            lines.append(f"  witness: {_short(self.witness)}")
        if self.counterexample is not None:
            lines.append(f"  counterexample: {_short(self.counterexample)}")
        return "\n".join(lines) + ")"

    __str__ = __repr__


def _short(obj: Any, limit: int = 400) -> str:
    text = repr(obj) if not isinstance(obj, str) else obj
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_jsonable(obj: Any) -> Any:
    """Convert witnesses and counterexamples (numpy, sympy, dataclasses...) into JSON data.

    Exact sympy numbers become strings such as ``"3/2"`` so that nothing is rounded.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        val = float(obj)
        return val if math.isfinite(val) else str(val)
    if isinstance(obj, Fraction):
        return str(obj)
    if isinstance(obj, Verdict):
        return obj.to_dict()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, sp.MatrixBase):
        return [[to_jsonable(v) for v in row] for row in obj.tolist()]
    if isinstance(obj, sp.Basic):
        if obj.is_Integer:
            return int(obj)
        if obj.is_Float:
            return float(obj)
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(_key(k)): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    return repr(obj)


def _key(k: Any) -> Any:
    if isinstance(k, tuple):
        return ",".join(str(_key(v)) for v in k)
    return k
