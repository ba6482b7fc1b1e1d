"""The ``identifiable`` command line (DESIGN.md, "The command line").

::

    identifiable verify [--json FILE] [--only ID ...] [--claims DIR]
    identifiable experiment NAME [options]      (see ``identifiable experiment --help``)
    identifiable measure CHECKPOINT [options]

``verify`` exits with status 1 when any claim's status differs from the status the paper
predicts (or a check crashed), 0 otherwise. The torch commands are imported lazily, so
``verify`` works without torch.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from identifiable.experiments.arguments import json_path
from identifiable.io import write_json_atomic

__all__ = ["main", "build_parser"]


def _cmd_verify(args: argparse.Namespace) -> int:
    from identifiable.claims import load_claims, run_claims

    claims = load_claims(args.claims)
    if args.only:
        unknown = sorted(set(args.only) - {c.id for c in claims})
        if unknown:
            raise ValueError(f"--only: unknown claim id(s) {unknown}; known: "
                             f"{sorted(c.id for c in claims)}")
    widths = {"id": max([len(c.id) for c in claims] + [2]), "source": 28, "statement": 64,
              "method": 36}
    header = (f"{'id':<{widths['id']}} | {'source':<{widths['source']}} | "
              f"{'statement':<{widths['statement']}} | {'method':<{widths['method']}} | "
              f"{'status':<9} | {'seconds':>7}")
    print(header)
    print("-" * len(header))

    def cut(text: str, n: int) -> str:
        text = " ".join(text.split())
        return text if len(text) <= n else text[: n - 1] + "~"

    def show(res) -> None:
        mark = "" if res.ok else f"  <-- expected {res.claim.expected}"
        source = cut(res.claim.source, widths["source"])
        print(f"{res.claim.id:<{widths['id']}} | {source:<{widths['source']}} | "
              f"{cut(res.claim.statement, widths['statement']):<{widths['statement']}} | "
              f"{cut(res.claim.method, widths['method']):<{widths['method']}} | "
              f"{res.status:<9} | {res.seconds:7.2f}{mark}", flush=True)
        if args.verbose and res.verdict is not None:
            print(textwrap.indent(repr(res.verdict), "    "))
        if res.error:
            print(textwrap.indent(res.error, "    "), file=sys.stderr)

    results = run_claims(claims, args.only, progress=show)
    bad = [r for r in results if not r.ok]
    total = sum(r.seconds for r in results)
    print("-" * len(header))
    print(f"{len(results) - len(bad)} of {len(results)} claims at their expected status "
          f"({total:.1f} s)")
    if args.json:
        write_json_atomic(args.json, [r.to_dict() for r in results])
    return 1 if bad else 0


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="run every claim in proofs/ and print a table")
    p.add_argument("--json", metavar="FILE", type=json_path,
                   help="write the results as JSON (the path is checked before any claim runs)")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids")
    p.add_argument("--claims", metavar="DIR", default=None,
                   help="run the claims of this folder (its *.py files are imported: only use "
                        "folders you trust); default: the installed catalog")
    p.add_argument("-v", "--verbose", action="store_true", help="print every verdict")
    p.set_defaults(func=_cmd_verify)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables of the results records under results/ "
                                      "(identifiable.results)")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="the results folder (default results)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    import json

    from identifiable.results import format_report, load_records

    records = load_records(args.results)
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in records], indent=1, default=str))
    else:
        print(format_report(records))
    return 0 if records else 1


def _add_torch_commands(sub: argparse._SubParsersAction) -> None:
    from identifiable.experiments import EXPERIMENTS, MEASURE

    p = sub.add_parser("experiment", help="run a reproduced experiment (needs torch)")
    exp_sub = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name, (help_text, add_arguments, run) in sorted(EXPERIMENTS.items()):
        q = exp_sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(q)
        q.set_defaults(func=run)
    help_text, add_arguments, run = MEASURE
    q = sub.add_parser("measure", help=help_text, description=help_text)
    add_arguments(q)
    q.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="identifiable",
        description="Executable theory of identifiable and equivariant networks.")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of a one-line message")
    from identifiable import __version__

    parser.add_argument("--version", action="version", version=f"identifiable {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_verify(sub)
    _add_report(sub)
    _add_torch_commands(sub)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a user can cause (bad arguments, files, data): reported in one line with exit
    status 2. Anything else is a bug and keeps its traceback."""
    import pickle
    import tarfile
    import zlib

    return (ValueError, TypeError, OSError, EOFError, OverflowError, pickle.UnpicklingError,
            tarfile.TarError, zlib.error, MemoryError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        if args.debug:
            raise
        what = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError):
            what = f"out of memory ({what}); use smaller inputs"
        elif isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) \
                not in what:
            what = f"{what} ({exc.filename})"
        print(f"identifiable {args.command}: error: {what}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

