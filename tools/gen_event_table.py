#!/usr/bin/env python3
"""Generate sysdig_kit/data/event_tables/<driver>.json from a falcosecurity driver source tree.

The driver source ships in Debian's `falcosecurity-scap-dkms` binary package (bookworm: the 2022
driver, 0.1.1dev+git20220316; sid: 0.23.2). Fetch it at generation time, never commit it:

    apt-get download falcosecurity-scap-dkms          # bookworm
    # sid, e.g. inside the sid chroot of tests/setup/20-sysdig-sid.sh:
    chroot $ROOT sh -c 'cd /tmp && apt-get -o Acquire::Check-Valid-Until=false update &&
                        apt-get -o Acquire::Check-Valid-Until=false download falcosecurity-scap-dkms'
    apt-get download libfalcosecurity0       # bookworm's libscap: its syscall names
    python3 tools/gen_event_table.py falcosecurity-scap-dkms_0.1.1dev*.deb \
        falcosecurity-scap-dkms_0.23.2*.deb --userspace libfalcosecurity0_0.1.1dev*.deb

A new sysdig/driver version is then one row in sysdig_kit/data/versions.yaml naming the table
(versions, era, Debian suite, pinned dkms .deb + sha256, how that sysdig prints text): the
readers, profiles and `check` pick it up with no code change.

Each argument is a .deb or a driver source directory (the one holding event_table.c). The table
is read by compiling the driver's own event_table.c into a tiny dumper with the host's C compiler
(so C initialiser syntax never has to be parsed by hand); enum names come from
ppm_events_public.h. Needs `cc` and `dpkg-deb`.

A tree patched by a sysdig-kit patch set (sysdig_kit/build/patches/<version>/<set>/, applied in
name order) names itself by its marker patch's DRIVER_VERSION, e.g. `0.23.2+replay-complete.2`:
its table is written as `scap-0.23.2+replay-complete.2.json` with `patch_set` and `base`. The
generator never rewrites a stock table with different events (a patched tree without its marker).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "sysdig_kit" / "data" / "event_tables"

DUMPER = r"""
#include <stdio.h>
#include "ppm_events_public.h"
extern const struct ppm_event_info g_event_info[];
int main(void) {
    for (int i = 0; i < PPM_EVENT_MAX; i++) {
        const struct ppm_event_info *e = &g_event_info[i];
        printf("E\t%d\t%s\t%u\t%u\t%u\n", i, e->name, (unsigned)e->category,
               (unsigned)e->flags, e->nparams);
        for (unsigned j = 0; j < e->nparams; j++)
            printf("P\t%s\t%u\t%u\n", e->params[j].name, (unsigned)e->params[j].type,
                   (unsigned)e->params[j].fmt);
    }
    return 0;
}
"""


def driver_dir(arg: str, tmp: Path) -> Path:
    p = Path(arg)
    if p.is_file():  # a .deb: unpack it and find the source tree inside
        dest = tmp / p.stem
        subprocess.run(["dpkg-deb", "-x", str(p), str(dest)], check=True)
        hits = sorted(dest.glob("usr/src/*/event_table.c"))
        if not hits:
            sys.exit(f"{p}: no usr/src/*/event_table.c inside")
        return hits[0].parent
    if not (p / "event_table.c").is_file():
        sys.exit(f"{p}: no event_table.c")
    return p


def enum_values(header: str, enum: str) -> dict[int, str]:
    """Values of a C enum `enum NAME { A = 1, ... }` -> {1: 'A'} (first name wins)."""
    m = re.search(r"enum\s+" + enum + r"\s*\{(.*?)\}", header, re.DOTALL)
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", m.group(1), flags=re.DOTALL)
    out: dict[int, str] = {}
    for name, expr in re.findall(r"(\w+)\s*=\s*([^,]+)", body):
        expr = expr.strip()
        sh = re.fullmatch(r"\(\s*1\s*<<\s*(\d+)\s*\)", expr)
        val = 1 << int(sh.group(1)) if sh else int(expr, 0)
        out.setdefault(val, name)
    return out


def ppm_sc_names(header: str) -> dict[int, str]:
    """ppm_sc code -> syscall name, as libscap names them (the enum name, lower case)."""
    pairs = re.findall(r"PPM_SC_X\((\w+),\s*(\d+)\)", header)  # libs >= 0.10: X-macro list
    if not pairs:
        m = re.search(r"enum\s+ppm_syscall_code\s*\{(.*?)\}", header, re.DOTALL)
        pairs = re.findall(r"PPM_SC_(\w+)\s*=\s*(\d+)", m.group(1))
    return {int(v): n.lower() for n, v in pairs if n != "MAX"}


def userspace_names(lib: Path, tmp: Path) -> dict[int, str]:
    """ppm_sc code -> name from libscap's own g_syscall_info_table (x86_64 .so, or the
    libfalcosecurity .deb holding it). Older libscap names some syscalls differently from the
    driver's enum (PPM_SC_NEWFSSTAT is "newfstatat"), and sysdig prints libscap's names."""
    if lib.suffix == ".deb":
        dest = tmp / lib.stem
        subprocess.run(["dpkg-deb", "-x", str(lib), str(dest)], check=True)
        lib = next(p for p in sorted(dest.rglob("libscap.so*")) if p.is_file() and not p.is_symlink())

    def run(*cmd):
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    sym = next(ln.split() for ln in run("nm", "-D", "-S", str(lib)).splitlines()
               if ln.endswith(" g_syscall_info_table"))
    start, size = int(sym[0], 16), int(sym[1], 16)
    entry = 16  # {u32 category, u32 flags, const char *name}
    # the name pointers are R_X86_64_RELATIVE relocations: their addends are the addresses
    names_at = {}
    for ln in run("readelf", "-r", "-W", str(lib)).splitlines():
        f = ln.split()
        if len(f) >= 4 and "RELATIVE" in f[2]:
            off = int(f[0], 16)
            if start <= off < start + size and (off - start) % entry == 8:
                names_at[(off - start) // entry] = int(f[3], 16)
    sections = []  # (vaddr, file offset, size) of loadable sections, to map addresses
    for ln in run("readelf", "-S", "-W", str(lib)).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+\S+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", ln)
        if m:
            sections.append(tuple(int(x, 16) for x in m.groups()))
    data = lib.read_bytes()
    out = {}
    for code, addr in names_at.items():
        va, fo, _ = next(s for s in sections if s[0] <= addr < s[0] + s[2])
        raw = data[fo + addr - va:]
        out[code] = raw[: raw.index(b"\0")].decode()
    return out


def generate(src: Path, tmp: Path) -> dict:
    # The 2022 driver includes ../userspace/common/types.h outside the kernel: give it stdint.
    work = tmp / "build" / src.name / "driver"
    shutil.copytree(src, work)
    (work.parent / "userspace" / "common").mkdir(parents=True)
    (work.parent / "userspace" / "common" / "types.h").write_text("#include <stdint.h>\n#include <stdbool.h>\n")
    (work / "dump_table.c").write_text(DUMPER)
    exe = work / "dump_table"
    tables = [str(work / f) for f in ("event_table.c", "flags_table.c", "dynamic_params_table.c")
              if (work / f).is_file()]
    subprocess.run(["cc", "-w", "-O0", "-I", str(work), "-o", str(exe), str(work / "dump_table.c"),
                    *tables], check=True)
    dump = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout

    header = (src / "ppm_events_public.h").read_text()
    ptypes = enum_values(header, "ppm_param_type")
    pfmts = enum_values(header, "ppm_print_format")
    eflags = enum_values(header, "ppm_event_flags")
    events: list[dict] = []
    for line in dump.splitlines():
        f = line.split("\t")
        if f[0] == "E":
            code, flags = int(f[1]), int(f[4])
            events.append({
                "code": code, "name": f[2], "dir": ">" if code % 2 == 0 else "<",
                "category": int(f[3]),
                "flags": [n for v, n in sorted(eflags.items()) if v and flags & v],
                "params": [],
            })
        else:
            events[-1]["params"].append(
                {"name": f[1], "type": ptypes.get(int(f[2]), f[2]), "fmt": pfmts.get(int(f[3]), f[3])})
    package, version = versions(src)
    # libs >= 0.22 drivers send exit events only, with every parameter on the exit
    num = re.match(r"(\d+)\.(\d+)", version)
    exit_only = bool(num) and (int(num.group(1)), int(num.group(2))) >= (0, 22)
    table = {
        "driver": src.name if version == package else f"scap-{version}",
        "driver_version": version,
        "era": "exit-only" if exit_only else "enter-exit",
        "generated_by": "tools/gen_event_table.py",
    }
    if version != package:  # a patched tree (sysdig_kit/build/patches/<package>/<set>/)
        table["patch_set"] = re.sub(r"\.\d+$", "", version[len(package) + 1:])
        table["base"] = f"scap-{package}"
    table["events"] = events
    table["ppm_sc"] = {str(k): v for k, v in sorted(ppm_sc_names(header).items())}
    return table


def versions(src: Path) -> tuple[str, str]:
    """(the package's version, the module's own version). A patch set marks the tree it patched
    by DRIVER_VERSION = "<package version>+<set>.<revision>" in driver_config.h (the string
    modinfo shows); an unpatched tree has both equal."""
    m = re.search(r"^PACKAGE_VERSION=\"?([^\"\n]+)", (src / "dkms.conf").read_text(), re.MULTILINE) \
        if (src / "dkms.conf").is_file() else None
    package = m.group(1) if m else src.name
    cfg = src / "driver_config.h"
    d = re.search(r'^#define DRIVER_VERSION "([^"]+)"', cfg.read_text(), re.MULTILINE) \
        if cfg.is_file() else None
    module = d.group(1) if d else package
    return package, module if module.startswith(package + "+") else package


def refuse_overwrite(dest: Path, table: dict) -> None:
    """A table is only ever rewritten with the same events: its name is the driver's identity,
    and captures of that driver exist. A patched tree whose marker patch is missing (or not
    bumped after a new patch) would otherwise replace the stock table (or the previous
    revision's) under its name, and those captures would read with the wrong layout."""
    if not dest.is_file():
        return
    old = json.loads(dest.read_text())
    if old.get("events") != table["events"]:
        what = f"patched table ({old['patch_set']})" if "patch_set" in old else "stock table"
        sys.exit(f"{dest}: refusing to overwrite the {what} with different events; a patched "
                 "tree must carry its set's DRIVER_VERSION marker (driver_config.h: "
                 "'<version>+<set>.<revision>', a new revision for new parameters), which names "
                 "its own table")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sources", nargs="+", help=".deb of falcosecurity-scap-dkms, or driver source dir")
    ap.add_argument("--userspace", type=Path, action="append", default=[],
                    help="libfalcosecurity .deb (or libscap.so) of the same version as a driver: "
                         "take syscall names from its g_syscall_info_table")
    ap.add_argument("-o", "--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        for s in args.sources:
            table = generate(driver_dir(s, Path(t)), Path(t))
            for lib in args.userspace:
                if table["driver_version"] in lib.name:
                    names = userspace_names(lib, Path(t))
                    table["ppm_sc"] = {str(k): names.get(k, v)
                                       for k, v in ((int(k), v) for k, v in table["ppm_sc"].items())}
                    table["syscall_names_from"] = lib.name
            dest = args.out / f"scap-{table['driver_version']}.json"
            refuse_overwrite(dest, table)
            dest.write_text(json.dumps(table, indent=None, separators=(",", ":")) + "\n")
            print(f"{dest}: {len(table['events'])} events, {len(table['ppm_sc'])} syscall codes")


if __name__ == "__main__":
    main()
