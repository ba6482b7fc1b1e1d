"""Sphinx configuration for identifiable (autodoc + sphinx-gallery; built with -W in CI)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # gallery_order
os.environ.setdefault("MPLBACKEND", "Agg")

project = "identifiable"
author = "The identifiable developers"
copyright = "2026, The identifiable developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
nitpicky = False
suppress_warnings = ["config.cache"]

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "plot_gallery": "True",
    # from the intertwiner groups (Section 5.1) through the theorems to the experiments
    "within_subsection_order": "gallery_order.GalleryOrder",
}

html_theme = "alabaster"
#: wide enough for the code of the examples and the results tables
html_theme_options = {"page_width": "1160px", "sidebar_width": "230px"}
html_static_path = ["_static"]
exclude_patterns = ["_build", "_generated", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "sg_execution_times.rst"]


# MathJax: from the CDN by default (MathJax 3). Where the package ``jupyter_server_mathjax`` is
# installed (``pip install --no-deps jupyter-server-mathjax``: MathJax 2.7 as static files), the
# docs use that copy instead and render their maths offline.
def _local_mathjax():
    import importlib.util

    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or spec.origin is None:
        return None
    static = Path(spec.origin).parent / "static"
    return static if (static / "MathJax.js").is_file() else None


_MATHJAX = _local_mathjax()
if _MATHJAX is not None:
    mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]],
                                   "displayMath": [["\\[", "\\]"]],
                                   "processEscapes": True, "processClass": "math|output_area",
                                   "ignoreClass": "document"}}


def _copy_mathjax(app, exception):
    if exception is None and _MATHJAX is not None and app.builder.format == "html":
        import shutil

        shutil.copytree(_MATHJAX, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _reproduction_pages() -> None:
    """docs/_generated/*.rst for the Reproduction page, from the committed results records."""
    from identifiable.results import load_records, rst_report

    gen = Path(__file__).resolve().parent / "_generated"
    gen.mkdir(exist_ok=True)
    records = load_records(ROOT / "results")
    pages = {"mirror_mlp": "mirror-mlp", "attention_heads": "attention-heads",
             "gcnn_barrier": "gcnn-barrier"}
    for stem, experiment in pages.items():
        text = rst_report(records, experiment, figures_dir="../results")
        (gen / f"reproduction_{stem}.rst").write_text(text)
    status = (f"{len(records)} results record(s) under ``results/``: "
              + (", ".join(sorted({f"``{r.experiment}/{r.tag}``" for r in records})) or "none")
              + ".\n")
    (gen / "reproduction_status.rst").write_text(status)


_reproduction_pages()


def setup(app):
    app.connect("build-finished", _copy_mathjax)
