"""Results of the reproduced experiments as data in the repository (kilobytes, never checkpoints).

A finished run leaves one **results record** (JSON) and its figures in a folder under
``results/``::

    results/<experiment>/<tag>/record.json
    results/<experiment>/<tag>/<figure>.png

The record holds everything a reader needs to judge a number: the experiment's name, its
configuration (data, width, epochs, seeds, ...), the library version and git commit that
produced it, the wall time, the machine, and the measured rows. :func:`load_records` reads a
``results/`` folder, :func:`format_report` turns the records into text tables (``identifiable
report``) and :func:`rst_report` into the reStructuredText tables of the docs' "Reproduction"
page, which the docs build generates from the committed records (nothing is retrained there).

Importing this module does not import torch.
"""

from __future__ import annotations

import json
import numbers
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identifiable.io import write_json_atomic

__all__ = ["RECORD_NAME", "COLUMNS", "ResultRecord", "write_record", "load_records",
           "format_report", "rst_report", "git_commit", "summary_tables", "mean_std"]

#: file name of a record inside its run folder
RECORD_NAME = "record.json"
#: the keys every record has (a file without them is refused by :func:`load_records`)
_REQUIRED = ("experiment", "tag", "settings", "rows", "library_version", "commit", "wall_s")


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the checkout that holds ``path`` (default: this package), or None outside a
    git checkout (an installed package); ``+dirty`` when the source below ``path`` (default: the
    library's own folder) differs from it: modified, deleted or new files, ignored ones aside.
    Files elsewhere in the checkout (tests, docs, the results a run is writing) are not the code
    that runs and do not count."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=where,
                               capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "") if sha else None


@dataclass
class ResultRecord:
    """One finished run: configuration, provenance and the measured rows."""

    experiment: str
    tag: str
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    library_version: str
    commit: str | None
    wall_s: float
    created: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    notes: str = ""
    path: Path | None = None
    #: the checkout's commit when the record was written, where it differs from ``commit`` (the
    #: run's start): modules a long run imported late may come from it
    commit_at_write: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("experiment", "tag", "settings", "rows",
                                           "library_version", "commit", "wall_s", "created",
                                           "machine", "figures", "notes")}
        if self.commit_at_write is not None:
            d["commit_at_write"] = self.commit_at_write
        return d

    def provenance(self, short: bool = False) -> str:
        """``commit X``, and where the checkout moved while the run ran, to which commit."""
        def name(c: str | None) -> str:
            return "unknown" if c is None else _short_commit(c) if short else c

        text = f"commit {name(self.commit)}"
        if self.commit_at_write is not None:
            text += (f" (the checkout was at {name(self.commit_at_write)} when the record was "
                     "written; modules imported late in the run may come from it)")
        return text


def _short_commit(commit: str) -> str:
    """A commit by its first 12 hex digits, keeping ``+dirty``."""
    sha = commit.removesuffix("+dirty")
    return sha[:12] + ("+dirty" if commit != sha else "")


_NOW = object()


def write_record(folder: str | Path, experiment: str, tag: str, settings: dict[str, Any],
                 rows: Sequence[dict[str, Any]], wall_s: float, *,
                 figures: Sequence[str | Path] = (), notes: str = "",
                 commit: str | None | object = _NOW) -> Path:
    """Write ``folder/<experiment>/<tag>/record.json`` (atomically) and copy ``figures`` beside
    it; returns the record's path. ``settings`` and ``rows`` must be JSON-serialisable.

    ``commit`` is the commit of the code that ran: pass :func:`git_commit` as taken when the run
    started (the experiments do), since a commit made while a long run trains is not the code it
    runs; left out, the checkout's commit now. Where the checkout has moved since the start, the
    record also keeps ``commit_at_write``: Python imports some modules only when first used, so
    a long run may mix the two."""
    import shutil

    from identifiable import __version__

    if not experiment or "/" in experiment or not tag or "/" in tag:
        raise ValueError(f"experiment / tag: expected non-empty names without '/', got "
                         f"{experiment!r} / {tag!r}")
    run = Path(folder) / experiment / tag
    run.mkdir(parents=True, exist_ok=True)
    names = []
    for f in figures:
        f = Path(f)
        if f.is_file():
            shutil.copyfile(f, run / f.name)
            names.append(f.name)
    now = git_commit()
    if commit is _NOW:
        commit = now
    rec = ResultRecord(experiment, tag, dict(settings), [dict(r) for r in rows], __version__,
                       commit, float(wall_s),
                       time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       {"python": platform.python_version(), "machine": platform.machine(),
                        "system": platform.system()}, names, notes,
                       commit_at_write=now if now != commit else None)
    path = run / RECORD_NAME
    write_json_atomic(path, rec.to_dict())
    return path


def load_records(folder: str | Path) -> list[ResultRecord]:
    """Every ``record.json`` under ``folder`` (sorted by experiment, then tag). A missing folder
    gives no records; a malformed record raises ``ValueError`` naming the file."""
    root = Path(folder)
    if not root.exists():
        return []
    if not root.is_dir():
        raise ValueError(f"results: {root} is not a folder")
    out = []
    for path in sorted(root.rglob(RECORD_NAME)):
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"results: {path} is not a readable JSON record ({exc})") from None
        missing = [k for k in _REQUIRED if k not in d] if isinstance(d, dict) else list(_REQUIRED)
        if missing:
            raise ValueError(f"results: {path} lacks {missing}")
        out.append(ResultRecord(
            d["experiment"], d["tag"], d["settings"], d["rows"], d["library_version"],
            d["commit"], float(d["wall_s"]), d.get("created", ""), d.get("machine", {}),
            d.get("figures", []), d.get("notes", ""), path, d.get("commit_at_write")))
    return sorted(out, key=lambda r: (r.experiment, r.tag))


#: the columns shown per experiment (others stay in the record); unknown experiments: every
#: scalar column
COLUMNS: dict[str, tuple[str, ...]] = {
    "mirror-mlp": ("task", "activation", "layer", "mirror", "probe", "K", "ls_error",
                   "k_error", "dist_ls_to_K", "identity_error", "test_mse", "test_accuracy"),
    "attention-heads": ("layer", "mirror", "ls_error", "k_error", "head_perm_from_maps",
                        "head_perm_from_action", "agree", "test_mse"),
    "gcnn-barrier": ("arch", "recipe", "seed", "width", "epochs", "accuracy",
                     "invariance_error", "barrier", "barrier_repair", "barrier_repair_train",
                     "barrier_repair_eval"),
}

#: the REPAIR endpoint convention of a gcnn-barrier record that does not name one: before
#: ``--repair-endpoints`` existed the library measured the endpoints in eval mode only
LEGACY_REPAIR_ENDPOINTS = "eval"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return f"[{len(v)} values]" if len(v) > 12 else " ".join(_cell(x) for x in v)
    return str(v)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None
           ) -> tuple[list[str], list[list[str]]]:
    cols = [c for c in columns if any(c in r for r in rows)] if columns else []
    if not cols:
        for r in rows:
            for k, v in r.items():
                if k not in cols and not isinstance(v, dict):
                    cols.append(k)
    return cols, [[_cell(r.get(c)) for c in cols] for r in rows]


def mean_std(values: Sequence[Any]) -> tuple[float, float, int]:
    """Mean and sample standard deviation (0 for one value) of the finite numbers among
    ``values`` (None and NaN left out), and their count; NaN, NaN, 0 for none."""
    vals = [float(v) for v in values if isinstance(v, numbers.Real) and v == v]
    if not vals:
        return float("nan"), float("nan"), 0
    m = sum(vals) / len(vals)
    sd = (sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return m, sd, len(vals)


def _fmt(m: float, sd: float, n: int) -> str:
    if n == 0:
        return "-"
    return f"{m:.3g}" if n == 1 else f"{m:.3g} ± {sd:.2g}"


def _pm(values: Sequence[Any]) -> str:
    return _fmt(*mean_std(values))


def _published(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{pair[0]:.3g} ± {pair[1]:.2g}"


def _repair_keys(rec: ResultRecord, rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Endpoint convention -> the row key holding the REPAIR barrier in that convention; a
    record from before the conventions were separated has only ``barrier_repair``, measured
    with :data:`LEGACY_REPAIR_ENDPOINTS`."""
    if rows and all("barrier_repair_train" in r for r in rows):
        return {"train": "barrier_repair_train", "eval": "barrier_repair_eval"}
    conv = rec.settings.get("repair_endpoints", LEGACY_REPAIR_ENDPOINTS)
    return {conv: "barrier_repair"}


def _gcnn_barrier_summaries(rec: ResultRecord) -> list[tuple[str, list[str], list[list[str]]]]:
    """[BK23] Tables 2 and 4 side by side with the paper (mean ± sample std over seeds / pairs)
    and the flipped-self-versus-another-net comparison per recipe."""
    from identifiable.published import BK23_TABLE2, BK23_TABLE4

    nets = [r for r in rec.rows if " + " not in str(r.get("recipe", ""))]
    merges = [r for r in rec.rows if " + " in str(r.get("recipe", ""))]
    vgg = rec.settings.get("arch", "vgg11") == "vgg11"
    reps = _repair_keys(rec, nets)
    out = []
    cols = ["recipe", "n", "accuracy", "[BK23]", "invariance error", "[BK23]",
            "GCNN barrier, BN reset"] + [f"GCNN barrier, REPAIR ({c} endpoints)" for c in reps]
    cols += ["[BK23] GCNN barrier (REPAIR)"]
    body = []
    for name in dict.fromkeys(r["recipe"] for r in nets):
        rs = [r for r in nets if r["recipe"] == name]
        pub = BK23_TABLE2.get(name, {}) if vgg else {}
        body.append([name, str(len(rs)), _pm([r.get("accuracy") for r in rs]),
                     _published(pub.get("accuracy")),
                     _pm([r.get("invariance_error") for r in rs]),
                     _published(pub.get("invariance_error")),
                     _pm([r.get("barrier") for r in rs])]
                    + [_pm([r.get(k) for r in rs]) for k in reps.values()]
                    + [_published(pub.get("barrier_repair"))])
    if body:
        out.append(("Table 2 [BK23]: this run (mean ± std over seeds) next to the paper's",
                    cols, body) if vgg else _without_paper(
                        "Table 2 [BK23] style: this run (mean ± std over seeds; the paper has no "
                        "numbers for this architecture)", cols, body))
    if merges:
        mreps = _repair_keys(rec, merges)
        cols4 = ["model 1", "model 2", "n", "barrier, BN reset"] + \
            [f"barrier, REPAIR ({c} endpoints)" for c in mreps] + ["[BK23] barrier"]
        body4 = []
        for name in dict.fromkeys(r["recipe"] for r in merges):
            ms = [r for r in merges if r["recipe"] == name]
            a, b = name.split(" + ")
            pub = BK23_TABLE4.get((a, b), BK23_TABLE4.get((b, a))) if vgg else None
            body4.append([a, b, str(len(ms)), _pm([m.get("barrier") for m in ms])]
                         + [_pm([m.get(k) for m in ms]) for k in mreps.values()]
                         + [_published(pub)])
        out.append(("Table 4 [BK23]: merging two different nets (mean ± std over pairs)",
                    cols4, body4) if vgg else _without_paper(
                        "Table 4 [BK23] style: merging two different nets (mean ± std over pairs)",
                        cols4, body4))
        conv, key = next(iter(reps.items()))
        mkey = mreps.get(conv)
        cols5 = ["recipe", f"flipped self (REPAIR, {conv})",
                 f"two different nets (REPAIR, {conv})", "flipped self lower?",
                 "[BK23] flipped self", "[BK23] two nets"]
        body5 = []
        for name in dict.fromkeys(r["recipe"] for r in nets):
            same = [m for m in merges if m["recipe"] == f"{name} + {name}"]
            if not same or mkey is None:
                continue
            m_self, sd_self, n_self = stat_self = mean_std([r.get(key) for r in nets
                                                            if r["recipe"] == name])
            m_two, sd_two, n_two = stat_two = mean_std([m.get(mkey) for m in same])
            gap = m_two - m_self
            verdict = ("yes" if gap > sd_self + sd_two else
                       "no" if gap < -(sd_self + sd_two) else "within the spread")
            if min(n_self, n_two) < 2:
                verdict += f" ({n_two} pair{'s' if n_two != 1 else ''}, {n_self} "\
                           f"net{'s' if n_self != 1 else ''}: no spread for one of them)"
            pub2 = BK23_TABLE2.get(name, {}).get("barrier_repair") if vgg else None
            pub4 = BK23_TABLE4.get((name, name)) if vgg else None
            body5.append([name, _fmt(*stat_self), _fmt(*stat_two), verdict, _published(pub2),
                          _published(pub4)])
        if body5:
            title = ("Merging a net with its flipped self against merging two different nets "
                     "of the recipe ('yes' where the difference of the means exceeds the sum "
                     "of the two standard deviations)")
            out.append((title, cols5, body5) if vgg else _without_paper(title, cols5, body5))
    return out


def _without_paper(title: str, cols: list[str], body: list[list[str]]
                   ) -> tuple[str, list[str], list[list[str]]]:
    """The table without its ``[BK23]`` columns (an architecture the paper did not measure)."""
    keep = [i for i, c in enumerate(cols) if not c.startswith("[BK23]")]
    return title, [cols[i] for i in keep], [[r[i] for i in keep] for r in body]


#: per experiment, the summary tables printed before a record's rows
_SUMMARIES = {"gcnn-barrier": _gcnn_barrier_summaries}


def summary_tables(rec: ResultRecord) -> list[tuple[str, list[str], list[list[str]]]]:
    """``(title, columns, rows)`` of the summary tables of one record (the paper's published
    numbers beside this library's, :mod:`identifiable.published`); none for an experiment
    without published numbers."""
    fn = _SUMMARIES.get(rec.experiment)
    return fn(rec) if fn else []


def train_hours(seconds: Sequence[Any]) -> float | None:
    """The summed training time of a run's nets in hours (each net's ``seconds``, accumulated
    across resumes), rounded to 0.01 h; None when a net does not record it. Recorded as the
    ``train_hours`` setting: the wall time of a record is only its last invocation's."""
    secs = list(seconds)
    if not secs or any(isinstance(x, bool) or not isinstance(x, numbers.Real) for x in secs):
        return None
    return round(float(sum(secs)) / 3600.0, 2)


def _shown(key: str, value: Any) -> Any:
    """A setting as the report shows it: a data path by its file name (the folder is the
    machine's, not the run's), the commits that trained the nets by their short names."""
    if key == "data" and isinstance(value, str) and ("/" in value or "\\" in value):
        return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if key == "trained_at" and isinstance(value, list):
        return [_short_commit(c) for c in value]
    return value


def _settings_line(rec: ResultRecord) -> str:
    keys = ("data", "width", "epochs", "batch_size", "lr", "weight_decay", "seeds", "recipes",
            "n_train", "n_probes", "probe", "repair_endpoints", "quick", "train_hours",
            "trained_at")
    parts = [f"{k}={_cell(_shown(k, rec.settings[k]))}" for k in keys
             if k in rec.settings and rec.settings[k] is not None and rec.settings[k] != []]
    if rec.experiment == "gcnn-barrier" and "repair_endpoints" not in rec.settings:
        parts.append(f"repair_endpoints={LEGACY_REPAIR_ENDPOINTS} (recorded before the "
                     "option existed)")
    return ", ".join(parts) or "(no settings recorded)"


def format_report(records: Sequence[ResultRecord], columns: dict[str, Sequence[str]] | None = None
                  ) -> str:
    """Plain-text tables, one per record, with its scale, provenance and wall time."""
    if not records:
        return "no results records found"
    out = []
    for rec in records:
        out.append(f"== {rec.experiment} / {rec.tag}: {_settings_line(rec)}")
        out.append(f"   identifiable {rec.library_version}, {rec.provenance()}, "
                   f"{rec.wall_s / 60:.1f} min wall, {rec.created}")
        summaries = summary_tables(rec)
        for title, cols, body in summaries:
            out.append(f"   {title}")
            out.extend(_text_table(cols, body))
        cols, body = _table(rec.rows, (columns or COLUMNS).get(rec.experiment))
        if summaries:
            out.append("   every row")
        out.extend(_text_table(cols, body))
        if rec.notes:
            out.append(f"   note: {rec.notes}")
    return "\n".join(out)


def _text_table(cols: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in body)) if body else len(c)
              for i, c in enumerate(cols)]
    lines = ["   " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)),
             "   " + "-+-".join("-" * w for w in widths)]
    lines += ["   " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in body]
    return lines


def _rst_table(cols: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    out = [".. list-table::\n   :header-rows: 1\n",
           "   * - " + "\n     - ".join(_rst_escape(c) for c in cols)]
    out += ["   * - " + "\n     - ".join(_rst_escape(v) for v in r) for r in body]
    out.append("")
    return out


def _rst_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")
    return "\\" + text if text[:1] in ("-", "+") else text   # not a bullet in a list-table cell


def rst_report(records: Sequence[ResultRecord], experiment: str,
               columns: Sequence[str] | None = None, figures_dir: str = "") -> str:
    """reStructuredText for the records of one experiment: a ``list-table`` per record with its
    scale and provenance, and its figures (``figures_dir`` is the path from the page to the
    ``results/`` folder). No record: a line saying the experiment was not run."""
    recs = [r for r in records if r.experiment == experiment]
    columns = columns if columns is not None else COLUMNS.get(experiment)
    if not recs:
        return f"*Not run*: no results record of ``{experiment}`` in ``results/``.\n"
    out = []
    for rec in recs:
        cols, body = _table(rec.rows, columns)
        out.append(f"**{_rst_escape(rec.tag)}**: {_rst_escape(_settings_line(rec))}; "
                   f"identifiable {rec.library_version}, "
                   f"{_rst_escape(rec.provenance(short=True))}, "
                   f"{rec.wall_s / 60:.1f} min wall.\n")
        summaries = summary_tables(rec)
        for title, scols, sbody in summaries:
            out.append(f"*{_rst_escape(title)}*\n")
            out.extend(_rst_table(scols, sbody))
        if body:
            if summaries:
                out.append("*Every row of the record*\n")
            out.extend(_rst_table(cols, body))
        if rec.notes:
            out.append(_rst_escape(rec.notes) + "\n")
        if figures_dir and rec.path is not None:
            rel = rec.path.parent.relative_to(rec.path.parents[2])
            for name in rec.figures:
                out.append(f".. image:: {figures_dir}/{rel.as_posix()}/{name}\n"
                           "   :width: 90%\n")
    return "\n".join(out) + "\n"
