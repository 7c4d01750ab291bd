"""Architecture rules, checked on the source tree (no imports executed):

* no import cycle between the package's modules (module-level imports, the edges Python follows when a
  module is first imported; imports inside functions are deferred and not edges);
* no module, script or benchmark imports a private name (``_x``) of another module, nor a private module
  from outside its own package (tests may: they test internals).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "cevnsjax"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, importer: str, top_level_only: bool):
    """(module, names) pairs imported by ``path``; names empty for ``import x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = []
    if top_level_only:
        stack = list(tree.body)
        while stack:  # module level, including inside if/try blocks, but not inside def/class bodies
            n = stack.pop()
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            nodes.append(n)
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(n, field, []) or [])
    else:
        nodes = list(ast.walk(tree))
    for n in nodes:
        if isinstance(n, ast.Import):
            for a in n.names:
                yield a.name, ()
        elif isinstance(n, ast.ImportFrom):
            yield _resolve(importer, n), tuple(a.name for a in n.names)


def _edges():
    graph = {}
    for name, path in MODULES.items():
        out = set()
        for mod, names in _imports(path, name, top_level_only=True):
            if not mod.startswith("cevnsjax"):
                continue
            targets = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES] or [mod]
            out.update(t for t in targets if t in MODULES and t != "cevnsjax" and t != name)
        graph[name] = out
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    graph = _edges()
    assert len(graph) > 30 and "cevnsjax.io.spec" in graph
    assert "cevnsjax.io.registry" in graph["cevnsjax.io.spec"]  # the walker sees real edges
    assert _cycles(graph) == []


def _private_violations(path: Path, importer: str):
    own_pkg = importer if _is_package(importer) else importer.rpartition(".")[0]
    bad = []
    for mod, names in _imports(path, importer, top_level_only=False):
        if not mod.startswith("cevnsjax"):
            continue
        parts = mod.split(".")
        for i, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                if not own_pkg.startswith(".".join(parts[:i])) or not own_pkg:
                    bad.append(f"{importer}: private module {mod}")
                elif ".".join(parts[:i]) != own_pkg and not own_pkg.startswith(".".join(parts[:i]) + "."):
                    bad.append(f"{importer}: private module {mod}")
        bad += [f"{importer}: {mod}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    return bad


def _scripts():
    for folder in ("models", "benchmarks", "docs"):
        for p in sorted((ROOT / folder).glob("*.py")):
            yield f"{folder}/{p.name}", p


def test_no_private_imports():
    bad = []
    for name, path in MODULES.items():
        bad += _private_violations(path, name)
    for name, path in _scripts():
        bad += _private_violations(path, name)
    assert bad == []


def test_private_rule_catches_violations(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from cevnsjax.stats.fit import _layout\nfrom cevnsjax.stats._linalg import small_solve\n")
    assert len(_private_violations(f, "models/x.py")) == 2
    assert _private_violations(f, "cevnsjax.stats.scan") == ["cevnsjax.stats.scan: cevnsjax.stats.fit._layout"]


@pytest.mark.parametrize("script", [n for n, _ in _scripts() if n.startswith("models/")])
def test_scripts_do_not_touch_sys_path_or_each_other(script):
    text = (ROOT / script).read_text(encoding="utf-8")
    assert "sys.path" not in text
    siblings = {p.stem for p in (ROOT / "models").glob("*.py")}
    imported = {m.split(".")[0] for m, _ in _imports(ROOT / script, script, top_level_only=False)}
    assert not (imported & siblings), f"{script} imports another script: {sorted(imported & siblings)}"
