"""Playbooks: declarative experiments (YAML) run on boards or on this machine.

A playbook names board(s), workloads (shell commands), capture variants, repetitions and
warm-up (playbooks/README.md). `load()` validates all of it before anything runs; a mistake
is a KitError naming the file and line. `runner.run()` does the runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import KitError

TOP_KEYS = {"name", "description", "board", "boards", "setup", "workloads", "variants",
            "repetitions", "warmup", "timeout", "parallel", "output"}
VARIANT_KEYS = {"name", "tool", "snaplen"}
WORKLOAD_KEYS = {"name", "run"}
TOOLS = ("none", "sysdig", "strace")
DEFAULT_SNAPLEN = 4096  # sysdig-kit capture's default (sysdig's own 80 cuts most reads)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHORT = re.compile(r"^sysdig(?:-s(\d+))?$")


@dataclass(frozen=True)
class Variant:
    name: str
    tool: str  # none | sysdig | strace
    snaplen: int | None = None


@dataclass(frozen=True)
class Workload:
    name: str
    run: str
    line: int


@dataclass
class Playbook:
    name: str
    source: Path
    boards: list[str]
    workloads: list[Workload]
    variants: list[Variant]
    repetitions: int = 3
    warmup: int = 1
    timeout: float = 600.0
    parallel: bool = True
    output: str | None = None
    description: str = ""
    setup: list[str] = field(default_factory=list)  # once per board, before anything else
    lines: dict = field(default_factory=dict)  # key -> line, for messages after loading

    def where(self, key: str) -> str:
        return f"{self.source}:{self.lines.get(key, 1)}"


def _err(path, node, msg) -> KitError:
    line = node.start_mark.line + 1 if node is not None else 1
    return KitError(f"{path}:{line}: {msg}")


def _scalar(loader, node):
    return loader.construct_object(node, deep=True)


def _int(path, loader, node, key, low):
    v = _scalar(loader, node)
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise _err(path, node, f"{key}: a whole number >= {low}, not {v!r}")
    return v


def _variant(path, loader, node) -> Variant:
    if isinstance(node, yaml.ScalarNode):
        v = str(_scalar(loader, node))
        if v in ("none", "strace"):
            return Variant(v, v)
        m = _SHORT.match(v)
        if m:
            snap = int(m[1]) if m[1] else DEFAULT_SNAPLEN
            return _check_snaplen(path, node, Variant(f"sysdig-s{snap}", "sysdig", snap))
        raise _err(path, node, f"variant {v!r}: one of none, strace, sysdig, sysdig-sN "
                               "(N = snaplen), or a mapping {tool, snaplen, name}")
    if not isinstance(node, yaml.MappingNode):
        raise _err(path, node, "a variant is a name (none, strace, sysdig-s4096) or a mapping")
    d = {}
    for k, v in node.value:
        if k.value not in VARIANT_KEYS:
            raise _err(path, k, f"unknown variant key {k.value!r}; allowed: "
                                f"{', '.join(sorted(VARIANT_KEYS))}")
        d[k.value] = (v, _scalar(loader, v))
    if "tool" not in d:
        raise _err(path, node, f"variant needs 'tool' ({', '.join(TOOLS)})")
    tnode, tool = d["tool"]
    if tool not in TOOLS:
        raise _err(path, tnode, f"tool {tool!r}: one of {', '.join(TOOLS)}")
    snap = None
    if tool == "sysdig":
        snap = _int(path, loader, d["snaplen"][0], "snaplen", 1) if "snaplen" in d \
            else DEFAULT_SNAPLEN
    elif "snaplen" in d:
        raise _err(path, d["snaplen"][0], f"snaplen applies to sysdig only, not {tool}")
    name = str(d["name"][1]) if "name" in d else (f"sysdig-s{snap}" if snap else tool)
    if not _NAME.match(name):
        raise _err(path, d.get("name", (node,))[0], f"variant name {name!r}: letters, digits, _.-")
    return _check_snaplen(path, node, Variant(name, tool, snap))


def _check_snaplen(path, node, v: Variant) -> Variant:
    if v.snaplen is not None and not 0 < v.snaplen <= 65536:
        raise _err(path, node, f"variant {v.name}: snaplen between 1 and 65536 bytes")
    return v


def _workloads(path, loader, node) -> list[Workload]:
    out = []
    if isinstance(node, yaml.MappingNode):  # name: command
        items = [(k, v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):  # - {name: ..., run: ...}
        items = []
        for item in node.value:
            if not isinstance(item, yaml.MappingNode):
                raise _err(path, item, "a workload is a mapping {name, run}")
            d = {}
            for k, v in item.value:
                if k.value not in WORKLOAD_KEYS:
                    raise _err(path, k, f"unknown workload key {k.value!r}; allowed: name, run")
                d[k.value] = v
            for need in ("name", "run"):
                if need not in d:
                    raise _err(path, item, f"workload needs {need!r}")
            items.append((d["name"], d["run"]))
    else:
        raise _err(path, node, "workloads: a mapping of name -> shell command, or a list")
    for k, v in items:
        name, cmd = str(_scalar(loader, k)), _scalar(loader, v)
        if not _NAME.match(name):
            raise _err(path, k, f"workload name {name!r}: letters, digits and _.- (1-64)")
        if not isinstance(cmd, str) or not cmd.strip():
            raise _err(path, v, f"workload {name}: a shell command (text), not {cmd!r}")
        if any(w.name == name for w in out):
            raise _err(path, k, f"workload {name!r} given twice")
        out.append(Workload(name, cmd, v.start_mark.line + 1))
    if not out:
        raise _err(path, node, "workloads: none given")
    return out


def _boards(path, loader, node) -> list[str]:
    raw = _scalar(loader, node)
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(b, str) for b in names):
        raise _err(path, node, "board(s): a board profile name, 'local', or a list of them")
    from .. import profiles

    for b in names:
        if b != "local":
            try:
                profiles.load(b)
            except KitError as exc:
                raise _err(path, node, f"board {b!r}: {exc}") from None
    if len(set(names)) != len(names):
        raise _err(path, node, "a board is listed twice")
    return names


def load(path, boards: list[str] | None = None) -> Playbook:
    """Read and validate a playbook; `boards` replaces the playbook's own (--board)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise KitError(f"{path}: cannot read the playbook: {exc.strerror or exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise KitError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return _build(path, loader, root, boards)
    finally:
        loader.dispose()


def _build(path, loader, root, boards) -> Playbook:
    if not isinstance(root, yaml.MappingNode):
        raise _err(path, root, "a playbook is a mapping (name, board, workloads, variants, ...)")
    nodes, lines = {}, {}
    for k, v in root.value:
        key = k.value
        if key not in TOP_KEYS:
            raise _err(path, k, f"unknown key {key!r}; allowed: {', '.join(sorted(TOP_KEYS))}")
        if key in nodes:
            raise _err(path, k, f"key {key!r} given twice")
        nodes[key], lines[key] = v, k.start_mark.line + 1
    if "board" in nodes and "boards" in nodes:
        raise _err(path, nodes["boards"], "give either 'board' or 'boards', not both")
    bnode = nodes.get("board") or nodes.get("boards")
    if boards:
        board_list = _boards(path, loader, yaml.SequenceNode(
            "tag:yaml.org,2002:seq", [yaml.ScalarNode("tag:yaml.org,2002:str", b) for b in boards],
            start_mark=(bnode or root).start_mark))
    elif bnode is None:
        raise _err(path, root, "missing 'board' (a board profile such as qemu-arm64 or juno, "
                               "or 'local' for this machine)")
    else:
        board_list = _boards(path, loader, bnode)
    for need in ("workloads", "variants"):
        if need not in nodes:
            raise _err(path, root, f"missing {need!r}")
    vnode = nodes["variants"]
    if not isinstance(vnode, yaml.SequenceNode) or not vnode.value:
        raise _err(path, vnode, "variants: a non-empty list (none, strace, sysdig-s80, ...)")
    variants = [_variant(path, loader, n) for n in vnode.value]
    seen = set()
    for n, v in zip(vnode.value, variants):
        if v.name in seen:
            raise _err(path, n, f"variant {v.name!r} given twice")
        seen.add(v.name)
    pb = Playbook(
        name=str(_scalar(loader, nodes["name"])) if "name" in nodes else path.stem,
        source=path, boards=board_list, workloads=_workloads(path, loader, nodes["workloads"]),
        variants=variants, lines=lines)
    if not _NAME.match(pb.name):
        raise _err(path, nodes.get("name", root), f"name {pb.name!r}: letters, digits and _.-")
    if "repetitions" in nodes:
        pb.repetitions = _int(path, loader, nodes["repetitions"], "repetitions", 1)
    if "warmup" in nodes:
        pb.warmup = _int(path, loader, nodes["warmup"], "warmup", 0)
    if "timeout" in nodes:
        t = _scalar(loader, nodes["timeout"])
        if not isinstance(t, int | float) or isinstance(t, bool) or t <= 0:
            raise _err(path, nodes["timeout"], f"timeout: seconds per run, > 0, not {t!r}")
        pb.timeout = float(t)
    if "parallel" in nodes:
        p = _scalar(loader, nodes["parallel"])
        if not isinstance(p, bool):
            raise _err(path, nodes["parallel"], "parallel: true or false")
        pb.parallel = p
    if "setup" in nodes:
        sn = nodes["setup"]
        v = _scalar(loader, sn)
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            raise _err(path, sn, "setup: a shell command or a list of them")
        pb.setup = v
    for key in ("description", "output"):
        if key in nodes:
            v = _scalar(loader, nodes[key])
            if not isinstance(v, str):
                raise _err(path, nodes[key], f"{key}: text")
            setattr(pb, key, v)
    return pb
