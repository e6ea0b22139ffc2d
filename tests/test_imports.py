"""No import cycles in the package, counting the imports inside functions too (a cycle held off
only by a lazy import is still a cycle: remote <-> emulator.boot was one). Also the layering
the design asks for: read/ and replay/ never reach a board, Docker or Fabric. Under a second."""

import ast
from pathlib import Path

import sysdig_kit

PKG = Path(sysdig_kit.__file__).resolve().parent
ROOT = "sysdig_kit"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = f
    return mods


def _imports(name: str, path: Path, mods: dict) -> set[str]:
    """Every sysdig_kit module `name` imports, at any depth of its code."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()

    def add(target: str) -> None:
        # the longest existing module of the dotted name (an attribute is not a module)
        parts = target.split(".")
        while parts and ".".join(parts) not in mods:
            parts.pop()
        if not parts:
            return
        out.add(".".join(parts))
        # importing a.b.c runs a/__init__ and a/b/__init__ first: edges to the enclosing
        # packages, except the root (everything imports it) and the importer's own packages
        for i in range(2, len(parts)):
            pkg = ".".join(parts[:i])
            if not name.startswith(pkg + ".") and pkg != name:
                out.add(pkg)

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(ROOT):
                    add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith(ROOT):
                continue
            for a in node.names:  # `from . import x`: x may be a submodule
                add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod)
    out.discard(name)
    out.discard(ROOT)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, f, mods) for m, f in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
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
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_no_import_cycles():
    g = _graph()
    assert "sysdig_kit.board" in g and "sysdig_kit.emulator.boot" in g  # the walk sees them
    assert _cycles(g) == []


def test_the_walk_finds_a_lazy_cycle():
    # remote.py (gone) imported emulator.boot inside connect(), and boot imported remote back
    # inside up(): the shape this test exists for, on a made-up graph and on real code.
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    src = "def f():\n    from .emulator import boot\n"
    tree = {"sysdig_kit.x": PKG / "x.py"}
    mods = {**_modules(), **tree}
    p = Path("/tmp") / "kit_imports_probe.py"
    p.write_text(src)
    assert "sysdig_kit.emulator.boot" in _imports("sysdig_kit.x", p, mods)
    p.unlink()


def test_board_layer_is_the_only_way_to_a_board():
    g = _graph()
    for m, deps in g.items():
        # read/ and replay/ (not replayer/, the stage that runs the replay where the program is)
        if m in ("sysdig_kit.read", "sysdig_kit.replay") or m.startswith(
                ("sysdig_kit.read.", "sysdig_kit.replay.")):
            bad = {d for d in deps if d.startswith(("sysdig_kit.board", "sysdig_kit.emulator",
                                                    "sysdig_kit.build", "sysdig_kit.deploy"))}
            assert not bad, f"{m} reaches {bad}"
    # the emulator knows QEMU, not SSH: the board layer wraps it, never the other way round
    assert not {d for d in g["sysdig_kit.emulator.boot"] if d.startswith("sysdig_kit.board")}
    users = {m for m, deps in g.items() if "sysdig_kit.emulator.boot" in deps}
    assert users == {"sysdig_kit.board.qemu"}
