"""Seeded long-run driver of the differential fuzz suite.

    python -m tests.fuzz.driver --seed 0 --budget-seconds 600 --max-cases 100000 \\
        [--only PROCEDURE ...] [--jobs 2] [--timeout 20] [--json out.json]
    python tests/fuzz/driver.py --replay align:17 --seed 0      # one case, verbosely

Round-robins over the procedures (``cases.PROCEDURES``) until the time budget or the case
limit is reached; every case is reproducible from ``(seed, procedure, index)``. Each case is
classified as proved / refuted / checked / undecided / documented error (a ``ValueError`` /
``TypeError`` / ``UndecidedError`` raised by the library naming the argument, for an input that
is invalid) / timeout, and against the oracle as a failure: false proved, false refuted, false
checked, wrong result (a returned object that contradicts the oracle), unclear exception (any
other exception, or one whose innermost frame is inside numpy / sympy / scipy / mpmath, or a
documented-looking error that does not name the argument), bad argument accepted (an invalid
argument such as ``tol=nan`` answered with a verdict) and rejected valid input (a documented
error for a valid input). Prints a table per procedure and the first reproducers per failure
kind; exits 1 if any failure occurred (timeouts only with ``--strict-timeouts``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
import traceback
from collections import defaultdict

if __package__ in (None, ""):  # run as a script path: python tests/fuzz/driver.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))))
    from tests.fuzz import cases as C  # noqa: E402
else:
    from . import cases as C

THIRD_PARTY = ("/numpy/", "/sympy/", "/scipy/", "/mpmath/")
COLUMNS = ("proved", "refuted", "checked", "undecided", "doc_error", "timeout")
FAIL_COLUMNS = ("false_proved", "false_refuted", "false_checked", "wrong_result",
                "unclear_exception", "bad_arg_accepted", "rejected_valid")


BAD_ARG_TIMEOUT = 2.0


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that library ``except Exception`` cannot eat it."""


def _alarm(signum, frame):
    raise CaseTimeout()


def _innermost_third_party(exc: BaseException) -> str | None:
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return None
    fn = tb[-1].filename.replace("\\", "/")
    if "site-packages" in fn and any(p in fn for p in THIRD_PARTY):
        return f"{fn.split('site-packages/')[-1]}:{tb[-1].lineno}"
    return None


def _names_arg(msg: str, names) -> list[str]:
    return [n for n in names if re.search(rf"(^|[^A-Za-z0-9_]){re.escape(n)}([^A-Za-z0-9_]|$)",
                                          msg)]


def run_case(seed: int, proc: str, index: int, timeout: float = 20.0,
             deadline: float | None = None) -> dict:
    """Generate, run and judge one case; a plain dict (picklable) record."""
    if deadline is not None and time.time() > deadline:
        return {"skipped": True, "proc": proc, "index": index}
    rec = {"proc": proc, "index": index, "seed": seed, "variant": "", "status": None,
           "failure": None, "note": "", "desc": "", "lib_s": 0.0, "oracle_s": 0.0}
    try:
        case = C.make_case(seed, proc, index)
    except Exception as exc:  # noqa: BLE001 - a generator bug: reported, not a library failure
        rec.update(status="generator_error", note=f"{type(exc).__name__}: {exc}"[:300])
        return rec
    rec["variant"], rec["desc"] = case.variant, case.desc
    use_alarm = hasattr(signal, "setitimer")
    if case.bad_arg is not None:  # validating an argument is immediate
        timeout = min(timeout, BAD_ARG_TIMEOUT)
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    t0 = time.perf_counter()
    result, error = None, None
    try:
        result = case.call()
    except CaseTimeout:
        error = "timeout"
    except Exception as exc:  # noqa: BLE001 - classified below
        error = exc
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
    rec["lib_s"] = time.perf_counter() - t0
    try:
        if error == "timeout":
            rec.update(status="timeout", note=f"no answer within {timeout:g} s")
            if case.bad_arg is not None:
                rec.update(failure="bad_arg_accepted",
                           note=f"invalid {case.bad_arg}: no answer within {timeout:g} s")
            return rec
        if error is not None:
            _classify_error(case, error, rec)
            return rec
        if case.bad_arg is not None:
            st = C.status_of(result[2] if isinstance(result, tuple) and result and
                             result[0] == "reduce" else result) if not (
                isinstance(result, tuple) and result and result[0] == "contains") else "result"
            if st == "undecided" and "-zero" in case.variant:
                # the input is invalid only through a disguised zero; where the library cannot
                # decide that zero, "undecided" is the honest answer (never a decision)
                rec.update(status="undecided", note="invalid only through a disguised zero "
                                                    "the library could not decide")
                return rec
            rec.update(status=st if st in C.STATUSES else "checked", failure="bad_arg_accepted",
                       note=f"invalid {case.bad_arg} answered instead of a ValueError naming it")
            return rec
        rec["result"] = C.short(result, 600)
        t1 = time.perf_counter()
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, max(timeout, 60.0))
        try:
            j = case.judge(result)
        except CaseTimeout:
            rec.update(status="oracle_error", note="oracle timed out")
            return rec
        except Exception as exc:  # noqa: BLE001 - an oracle bug
            rec.update(status="oracle_error",
                       note=f"{type(exc).__name__}: {exc} @ "
                            f"{traceback.extract_tb(exc.__traceback__)[-1]}"[:400])
            return rec
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        rec["oracle_s"] = time.perf_counter() - t1
        rec.update(status=j.status if j.status in C.STATUSES else "checked", failure=j.failure,
                   note=j.note)
        return rec
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old)


def _classify_error(case, exc: BaseException, rec: dict) -> None:
    from identifiable.verdict import UndecidedError

    msg = f"{type(exc).__name__}: {exc}"
    third = _innermost_third_party(exc)
    rec["note"] = (msg[:300] + (f" [raised in {third}]" if third else ""))
    if third is not None or not isinstance(exc, (ValueError, TypeError)):
        rec.update(status="doc_error", failure="unclear_exception")
        if case.bad_arg is not None:
            rec["note"] = f"invalid {case.bad_arg} not validated; " + rec["note"]
        return
    named = _names_arg(str(exc), case.params + ("activation", "d", "name", "widths", "k",
                                                 "generators", "x", "i"))
    if isinstance(exc, UndecidedError) and case.bad_arg is None:
        rec.update(status="doc_error")  # an undecided answer raised where a result is needed
        return
    if case.bad_arg is not None:
        if case.bad_arg in named:
            rec.update(status="doc_error")
        else:  # the invalid argument went through unvalidated and broke something else
            rec.update(status="doc_error", failure="bad_arg_accepted",
                       note=f"invalid {case.bad_arg} not validated; the error names "
                            f"{named or 'no argument'}: " + msg[:300])
        return
    if any(n in case.may_raise for n in named):
        rec.update(status="doc_error")
        return
    rec.update(status="doc_error", failure="rejected_valid" if named else "unclear_exception")


# ---------------------------------------------------------------------------------- the run
def _tasks(seed, procs, max_cases, start=0):
    idx = {p: start for p in procs}
    n = 0
    while n < max_cases:
        for p in procs:
            if n >= max_cases:
                return
            yield (seed, p, idx[p])
            idx[p] += 1
            n += 1


def _worker(args):
    seed, proc, index, timeout, deadline = args
    return run_case(seed, proc, index, timeout, deadline)


def run(seed: int = 0, budget_seconds: float = 60.0, max_cases: int = 10 ** 9,
        only=None, jobs: int = 1, timeout: float = 20.0, keep: int = 3, start: int = 0,
        progress: bool = False) -> dict:
    procs = list(only) if only else list(C.PROCEDURES)
    for p in procs:
        if p not in C.GENERATORS:
            raise SystemExit(f"--only: unknown procedure {p!r}; known: {', '.join(C.PROCEDURES)}")
    t_start = time.time()
    deadline = t_start + budget_seconds
    stats = {p: defaultdict(float) for p in procs}
    failures: dict[tuple, list] = defaultdict(list)
    other: list = []
    tasks = ((s, p, i, timeout, deadline) for s, p, i in _tasks(seed, procs, max_cases, start))
    n_done = 0
    last_print = time.time()

    def consume(rec):
        nonlocal n_done, last_print
        if rec.get("skipped"):
            return
        p = rec["proc"]
        s = stats[p]
        st = rec["status"]
        if st in ("generator_error", "oracle_error"):
            s[st] += 1
            if len(other) < 50:
                other.append(rec)
            return
        s["cases"] += 1
        s[st] += 1
        s["lib_s"] += rec["lib_s"]
        s["oracle_s"] += rec["oracle_s"]
        if rec["failure"]:
            s[rec["failure"]] += 1
            if progress:  # at once: a run cut off before its report still names what failed
                print(f"FAILURE {rec['failure']} {p}:{rec['index']} (seed {rec['seed']}) "
                      f"status={st}: {rec['note'][:300]}", file=sys.stderr, flush=True)
            key = (p, rec["failure"])
            if len(failures[key]) < keep:
                failures[key].append(rec)
        if st == "timeout":
            key = (p, "timeout")
            if len(failures[key]) < keep:
                failures[key].append(rec)
        n_done += 1
        if progress and time.time() - last_print > 30:
            last_print = time.time()
            nf = sum(v for st_ in stats.values() for k, v in st_.items() if k in FAIL_COLUMNS)
            print(f"[{time.time() - t_start:7.0f} s] {n_done} cases, {int(nf)} failures",
                  file=sys.stderr, flush=True)

    if jobs <= 1:
        for t in tasks:
            if time.time() > deadline:
                break
            consume(_worker(t))
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        with ctx.Pool(jobs, maxtasksperchild=2000) as pool:
            for rec in pool.imap_unordered(_worker, tasks, chunksize=4):
                consume(rec)
                if time.time() > deadline + timeout + 5:
                    pool.terminate()
                    break
    wall = time.time() - t_start
    return {"seed": seed, "wall_s": wall, "budget_s": budget_seconds, "jobs": jobs,
            "procedures": procs, "stats": {p: dict(v) for p, v in stats.items()},
            "failures": {f"{p}:{k}": v for (p, k), v in failures.items()},
            "internal_errors": other}


def total_failures(report: dict, strict_timeouts: bool = False) -> int:
    n = 0
    for s in report["stats"].values():
        n += sum(int(s.get(k, 0)) for k in FAIL_COLUMNS)
        if strict_timeouts:
            n += int(s.get("timeout", 0))
    return n


def format_table(report: dict) -> str:
    head = ["procedure", "cases", "proved", "refuted", "checked", "undec", "docerr", "timeout",
            "F:proved", "F:refuted", "F:checked", "F:wrong", "F:unclear", "F:badarg",
            "F:rejvalid", "ms/case", "oracle ms"]
    rows = []
    tot = defaultdict(float)
    for p, s in report["stats"].items():
        n = int(s.get("cases", 0))
        vals = [n] + [int(s.get(k, 0)) for k in COLUMNS] + [int(s.get(k, 0))
                                                          for k in FAIL_COLUMNS]
        for k, v in zip(["cases"] + list(COLUMNS) + list(FAIL_COLUMNS), vals):
            tot[k] += v
        tot["lib_s"] += s.get("lib_s", 0.0)
        tot["oracle_s"] += s.get("oracle_s", 0.0)
        ms = 1e3 * s.get("lib_s", 0.0) / max(n, 1)
        oms = 1e3 * s.get("oracle_s", 0.0) / max(n, 1)
        rows.append([p] + [str(v) for v in vals] + [f"{ms:.1f}", f"{oms:.1f}"])
    n = int(tot["cases"])
    rows.append(["TOTAL"] + [str(int(tot[k])) for k in ["cases"] + list(COLUMNS) +
                             list(FAIL_COLUMNS)] +
                [f"{1e3 * tot['lib_s'] / max(n, 1):.1f}",
                 f"{1e3 * tot['oracle_s'] / max(n, 1):.1f}"])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    out = [" ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    out.append("-" * len(out[0]))
    for r in rows:
        out.append(" ".join(c.rjust(w) if i else c.ljust(w)
                            for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def format_failures(report: dict, limit_desc: int = 600) -> str:
    out = []
    for key, recs in sorted(report["failures"].items()):
        out.append(f"== {key} ({len(recs)} shown)")
        for r in recs:
            out.append(f"  seed={r['seed']} case={r['proc']}:{r['index']} variant={r['variant']}"
                       f" status={r['status']}")
            out.append(f"    why: {r['note'][:400]}")
            d = r["desc"]
            out.append(f"    repro: {d if len(d) <= limit_desc else d[:limit_desc - 3] + '...'}")
            out.append(f"    replay: python -m tests.fuzz.driver --seed {r['seed']} --replay "
                       f"{r['proc']}:{r['index']}")
    for r in report.get("internal_errors", [])[:10]:
        out.append(f"!! {r['status']} {r['proc']}:{r['index']} {r['note'][:300]}")
    return "\n".join(out)


def replay(seed: int, spec: str, timeout: float) -> int:
    proc, idx = spec.rsplit(":", 1)
    case = C.make_case(seed, proc, int(idx))
    print(f"case {proc}:{idx} (seed {seed}) variant {case.variant}\n{case.desc}")
    rec = run_case(seed, proc, int(idx), timeout)
    print(json.dumps({k: v for k, v in rec.items() if k != "desc"}, indent=1, default=str))
    return 1 if rec.get("failure") else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-seconds", type=float, default=600.0)
    ap.add_argument("--max-cases", type=int, default=100_000)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20.0, help="per-case library time limit")
    ap.add_argument("--keep", type=int, default=3, help="reproducers kept per failure kind")
    ap.add_argument("--start", type=int, default=0, help="first case index per procedure")
    ap.add_argument("--json", default=None)
    ap.add_argument("--replay", default=None, help="PROCEDURE:INDEX: run one case verbosely")
    ap.add_argument("--strict-timeouts", action="store_true")
    a = ap.parse_args(argv)
    if a.replay:
        return replay(a.seed, a.replay, a.timeout)
    cmd = "python -m tests.fuzz.driver " + " ".join(sys.argv[1:] if argv is None else argv)
    report = run(a.seed, a.budget_seconds, a.max_cases, a.only, a.jobs, a.timeout, a.keep,
                 a.start, progress=True)
    report["command"] = cmd
    print(f"command: {cmd}\nseed: {a.seed}  wall time: {report['wall_s']:.1f} s  jobs: {a.jobs}")
    print(format_table(report))
    fails = format_failures(report)
    if fails:
        print("\nFailures (first reproducers per kind):")
        print(fails)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1, default=str)
    n = total_failures(report, a.strict_timeouts)
    print(f"\n{n} failures")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
