"""Architecture report of the ``identifiable`` package, computed from the code with ``ast``.

Prints the tree (files and line counts), the import graph between modules of the package (and
whether it has a cycle), imports of private names across modules, functions longer than 80
lines, ``isinstance`` checks on latent groups outside their own module, inline tolerance
literals and the spellings of ``Verdict.method``.  Run ``python tools/architecture.py [ROOT]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx

LATENT_GROUPS = {"GeneralLinear", "Monomial", "TrivialGroup", "SignedPermutations",
                 "PositivelyScaledPermutations", "Permutations", "ScalingSet"}
LATENT_GROUP_HOME = {"identifiable.latent_groups", "identifiable.intertwiners"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def report(root: Path) -> dict:
    files = sorted(root.rglob("*.py"))
    modules = {module_name(root, f): f for f in files}
    graph = nx.DiGraph()
    private, long_funcs, isinst, literals, methods = [], [], [], [], set()
    for mod, path in modules.items():
        tree = ast.parse(path.read_text())
        named = {id(n) for a in tree.body if isinstance(a, (ast.Assign, ast.AnnAssign))
                 and all(isinstance(t, ast.Name) and t.id.lstrip("_").isupper()
                         for t in (a.targets if isinstance(a, ast.Assign) else [a.target]))
                 for n in ast.walk(a)}
        graph.add_node(mod)
        is_pkg = path.name == "__init__.py"
        # imports inside a function run when it is called, not at import time: they are how an
        # optional dependency (torch) or a mutual reference is reached without a cycle
        lazy = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef,
                                                                 ast.AsyncFunctionDef))
                for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}

        def edge(a: str, b: str, node: ast.AST, lazy: set = lazy) -> None:
            if graph.has_edge(a, b):
                graph[a][b]["lazy"] = graph[a][b]["lazy"] and id(node) in lazy
            else:
                graph.add_edge(a, b, lazy=id(node) in lazy)

        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = resolve(mod, node, is_pkg)
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    dest = full if full in modules else target
                    if dest in modules and dest != mod:
                        edge(mod, dest, node)
                    if (alias.name.startswith("_") and not alias.name.startswith("__")
                            and dest in modules and dest != mod):
                        private.append(f"{mod}: from {target} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules and alias.name != mod:
                        edge(mod, alias.name, node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long_funcs.append((n, f"{mod}.{node.name}"))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id == "isinstance" and len(node.args) == 2):
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                if names & LATENT_GROUPS and mod not in LATENT_GROUP_HOME:
                    isinst.append(f"{mod}:{node.lineno}")
            elif (isinstance(node, ast.Constant) and isinstance(node.value, float)
                  and id(node) not in named):
                if 1e-100 < node.value < 1e-5 and mod not in {"identifiable.numbers",
                                                          "identifiable.zero"}:
                    literals.append(f"{mod}:{node.lineno} {node.value:g}")
            if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                                   and node.func.id == "minimize"):
                for kw in node.keywords:
                    if kw.arg == "method" and isinstance(kw.value, ast.Constant):
                        methods.add(kw.value.value)
    return {"modules": modules, "graph": graph, "private": private,
            "long": sorted(long_funcs, reverse=True), "isinstance": isinst,
            "literals": literals, "methods": methods}


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else Path(__file__).resolve().parents[1] / "identifiable")
    r = report(root)
    print("== tree (lines)")
    total = 0
    for path in sorted(r["modules"].values()):
        n = len(path.read_text().splitlines())
        total += n
        print(f"{n:6d}  {path.relative_to(root.parent)}")
    print(f"{total:6d}  total, {len(r['modules'])} files")
    g = r["graph"]
    core = g.subgraph([m for m in g if not m.startswith(("identifiable.torch",
                                                          "identifiable.experiments"))])
    eager = nx.DiGraph([(a, b) for a, b, lz in g.edges(data="lazy") if not lz])
    eager.add_nodes_from(g)
    n_lazy = sum(1 for *_, lz in g.edges(data="lazy") if lz)
    print(f"== import graph: {g.number_of_nodes()} modules, {g.number_of_edges()} arrows "
          f"({n_lazy} of them lazy: imports inside functions)")
    cycles = [c for c in nx.simple_cycles(eager) if "identifiable" not in c]
    print("cycles at import time (ignoring the package __init__):", cycles or "none")

    def to_torch(edges) -> list:
        return [(a, b) for a, b in edges if not a.startswith("identifiable.torch")
                and a != "identifiable" and b.startswith("identifiable.torch")
                and not a.startswith("identifiable.experiments") and a != "identifiable.cli"]

    print("core -> torch arrows at import time:", to_torch(eager.edges) or "none")
    print("core -> torch arrows inside functions (optional, need torch when called):",
          to_torch((a, b) for a, b, lz in g.edges(data="lazy") if lz) or "none")
    for a in sorted(core):
        if a == "identifiable":
            continue
        succ = sorted(b for b in core.successors(a) if b != "identifiable")
        print(f"  {a} -> {', '.join(s.removeprefix('identifiable.') for s in succ) or '-'}")
    print("== private names imported across modules:", len(r["private"]))
    for p in r["private"]:
        print("  ", p)
    print("== functions over 80 lines:", len(r["long"]))
    for n, name in r["long"]:
        print(f"  {n:4d}  {name}")
    print("== isinstance on latent groups outside their module:", len(r["isinstance"]))
    for s in r["isinstance"]:
        print("  ", s)
    print("== float literals in (1e-100, 1e-5) outside numbers/zero (tolerances; division "
          "guards and named module constants not counted):", len(r["literals"]))
    for s in r["literals"]:
        print("  ", s)
    print("== Verdict.method spellings:", sorted(r["methods"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
