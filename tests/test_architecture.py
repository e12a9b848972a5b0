"""The import rules of docs/architecture.md, checked on the source: every import counts, including
the ones inside functions and importlib calls with a literal module name."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "alignkit"
# the library's reusable parts: none may import a plug-in (the bundled task) or an entry point
GENERIC = {"data", "models", "losses", "train", "rewards", "rl", "online", "eval", "judges", "merge",
           "method", "config", "errors", "registry", "leaderboard"}
ENTRY_POINTS = {"cli", "commands", "api", "plugins", "serve"}
PLUGINS = {"synthetic"}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> set:
    """Absolute names of the alignkit modules that `path` imports, wherever the import statement is."""
    mod = module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                prefix = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            out.add(prefix)
            out |= {f"{prefix}.{a.name}" for a in node.names}  # `from . import x` may import module x
        elif is_import_module_call(node):
            out.add(str(node.args[0].value))
    return {n for n in out if n.split(".")[0] == root.name}


def is_import_module_call(node) -> bool:
    return (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and bool(node.args) and isinstance(node.args[0], ast.Constant))


def unit(name: str) -> str:
    """alignkit.rl.trainer -> rl; alignkit.registry -> registry."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def graph(root: Path = ROOT) -> dict:
    """package -> {(imported package, file that imports it)}, between top-level units of the package."""
    units = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    units |= {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    edges: dict = {}
    for path in root.rglob("*.py"):
        src = unit(module_name(path, root))
        for name in imports_of(path, root):
            dst = unit(name)
            if dst in units and dst != src:
                edges.setdefault(src, set()).add((dst, str(path.relative_to(root.parent))))
    return edges


def find_cycle(edges: dict) -> list:
    """One cycle of the graph as [a, b, ..., a], or [] when it is acyclic."""
    succ = {a: sorted({d for d, _ in outs}) for a, outs in edges.items()}
    state: dict = {}

    def visit(n, stack):
        state[n] = 1
        for m in succ.get(n, ()):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if not state.get(m):
                found = visit(m, stack + [m])
                if found:
                    return found
        state[n] = 2
        return []

    for n in sorted(succ):
        if not state.get(n):
            found = visit(n, [n])
            if found:
                return found
    return []


def test_generic_packages_import_no_plugin_and_no_entry_point():
    bad = [f"{where} imports alignkit.{dst}" for src, outs in graph().items() if src in GENERIC
           for dst, where in outs if dst in PLUGINS | ENTRY_POINTS]
    assert not bad, "\n".join(sorted(bad))


def test_every_module_belongs_to_a_known_layer():
    """A new top-level package must be placed in the rules above (generic, entry point or plug-in)."""
    units = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    units |= {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    assert units <= GENERIC | ENTRY_POINTS | PLUGINS, sorted(units - (GENERIC | ENTRY_POINTS | PLUGINS))


def test_no_module_imports_through_importlib():
    """Imports are static, so the graph above is the whole truth (a name in a tuple hides an edge)."""
    hidden = [f"{p.relative_to(ROOT.parent)}:{n.lineno}" for p in ROOT.rglob("*.py")
              for n in ast.walk(ast.parse(p.read_text()))
              if isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) in ("import_module", "__import__")]
    assert not hidden, "\n".join(hidden)


def test_the_package_graph_has_no_cycle():
    edges = graph()
    cycle = find_cycle(edges)
    where = [w for a, b in zip(cycle, cycle[1:]) for d, w in sorted(edges[a]) if d == b]
    assert not cycle, "import cycle: " + " -> ".join(cycle) + "\n" + "\n".join(where)


def test_the_checker_catches_function_level_relative_and_importlib_imports(tmp_path):
    """The rules above can fail: a fake package where eval imports the task inside a function, and
    the task imports eval back through importlib."""
    root = tmp_path / "alignkit"
    for pkg in ("eval", "synthetic"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "eval" / "metrics.py").write_text("def f():\n    from ..synthetic import reward\n")
    (root / "synthetic" / "reward.py").write_text("import importlib\nimportlib.import_module('alignkit.eval.metrics')\n")
    assert imports_of(root / "eval" / "metrics.py", root) >= {"alignkit.synthetic", "alignkit.synthetic.reward"}
    edges = graph(root)
    assert ("synthetic", "alignkit/eval/metrics.py") in edges["eval"]
    assert find_cycle(edges) in (["eval", "synthetic", "eval"], ["synthetic", "eval", "synthetic"])
