#!/usr/bin/env python3
"""Generate sysdig_kit/data/flag_tables/<driver>.json: the names sysdig prints for flag and
enum parameters (`flags=4097(O_RDONLY|O_CLOEXEC)`), from the driver's own flags_table.c.

Same inputs as tools/gen_event_table.py (a falcosecurity-scap-dkms .deb or driver source dir):

    apt-get download falcosecurity-scap-dkms            # bookworm: 0.1.1dev+git20220316
    python3 tools/gen_flag_tables.py falcosecurity-scap-dkms_0.1.1dev*.deb \
        $SYSDIG_KIT_CACHE/src/falcosecurity-scap-dkms_0.23.2-6_all.deb

The driver's event_table.c is compiled with a dumper that walks each PT_FLAGS*/PT_ENUMFLAGS*
parameter's `info` array of {name, value}, so no C has to be parsed by hand. Output:
{"params": {"<event>|<dir>|<param>": "<table id>"}, "tables": {"<id>": [[value, name], ...]}}
(tables deduplicated; value order as the driver lists them, which is the order sysdig prints).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_event_table import driver_dir, enum_values

OUT = Path(__file__).resolve().parent.parent / "sysdig_kit" / "data" / "flag_tables"

DUMPER = r"""
#include <stdio.h>
#include "ppm_events_public.h"
extern const struct ppm_event_info g_event_info[];
int main(void) {
    for (int i = 0; i < PPM_EVENT_MAX; i++) {
        const struct ppm_event_info *e = &g_event_info[i];
        for (unsigned j = 0; j < e->nparams; j++) {
            const struct ppm_param_info *p = &e->params[j];
            int t = p->type;
            if (!(FLAG_TYPES))
                continue;
            printf("P\t%d\t%s\t%s\t%d\n", i, e->name, p->name, t);
            const struct ppm_name_value *nv = p->info;
            for (; nv && nv->name; nv++)
                printf("V\t%u\t%s\n", nv->value, nv->name);
        }
    }
    return 0;
}
"""


def generate(src: Path, tmp: Path) -> tuple[str, dict]:
    import shutil

    work = tmp / "build" / src.name / "driver"
    shutil.copytree(src, work)
    (work.parent / "userspace" / "common").mkdir(parents=True)
    (work.parent / "userspace" / "common" / "types.h").write_text(
        "#include <stdint.h>\n#include <stdbool.h>\n")
    ptypes = enum_values((src / "ppm_events_public.h").read_text(), "ppm_param_type")
    # the 2022 driver has no PT_ENUMFLAGS*: test the type numbers this header defines
    cond = " || ".join(f"t == {v}" for v, n in ptypes.items()
                       if n.startswith(("PT_FLAGS", "PT_ENUMFLAGS")))
    (work / "dump_flags.c").write_text(DUMPER.replace("FLAG_TYPES", cond))
    exe = work / "dump_flags"
    srcs = [str(work / f) for f in ("event_table.c", "flags_table.c", "dynamic_params_table.c")
            if (work / f).is_file()]
    subprocess.run(["cc", "-w", "-O0", "-I", str(work), "-o", str(exe),
                    str(work / "dump_flags.c"), *srcs], check=True)
    dump = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    params: dict[str, list] = {}
    cur = None
    for line in dump.splitlines():
        f = line.split("\t")
        if f[0] == "P":
            cur = f"{f[2]}|{'>' if int(f[1]) % 2 == 0 else '<'}|{f[3]}"
            params[cur] = [ptypes.get(int(f[4]), f[4]), []]
        else:
            params[cur][1].append([int(f[1]), f[2]])
    tables: dict[str, list] = {}
    ids: dict[str, str] = {}
    out_params = {}
    for key, (ptype, values) in params.items():
        k = json.dumps(values)
        if k not in ids:
            ids[k] = str(len(ids))
            tables[ids[k]] = values
        out_params.setdefault(key, [ptype, ids[k]])
    version = re.search(r"^PACKAGE_VERSION=\"?([^\"\n]+)", (src / "dkms.conf").read_text(),
                        re.MULTILINE)
    version = version.group(1) if version else src.name
    return version, {"driver_version": version, "generated_by": "tools/gen_flag_tables.py",
                     "params": out_params, "tables": tables}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sources", nargs="+")
    ap.add_argument("-o", "--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        for s in args.sources:
            version, table = generate(driver_dir(s, Path(t)), Path(t))
            dest = args.out / f"scap-{version}.json"
            dest.write_text(json.dumps(table, separators=(",", ":")) + "\n")
            print(f"{dest}: {len(table['params'])} flag parameters, {len(table['tables'])} tables")


if __name__ == "__main__":
    main()
