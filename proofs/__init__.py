"""The claims catalog of ``identifiable verify``: one module per claim of the papers.

Installed as the package ``identifiable_proofs`` (see ``pyproject.toml``), so that
``identifiable verify`` finds it in any installation, editable or not, without reading the
current directory. Files starting with ``_`` hold shared helpers.
"""
