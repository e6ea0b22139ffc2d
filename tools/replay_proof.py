"""Issue 13's proof on a board: record each workload with `capture -- CMD`, change the world the
program sees (hostname, a new file in /etc, time moved on, other pids, other random bytes),
replay it with `replay --board`, and compare stdout, stderr and exit status byte for byte.

    python3 tools/replay_proof.py --board qemu-arm64 -o out/replay-proof [--only python3]

Uses the driver deployed on the board (stock, or replay-complete); writes OUT/<driver>.json
(one row per workload: records, injected/executed/restored, outcome, where it stopped) and the
captures. tests/test_replay_board.py runs it in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = {
    "zsh-demo": ["zsh", "-c", "echo hi > /tmp/x; cat /tmp/x; exit 3"],
    "ls-etc": ["ls", "-l", "/etc"],
    "date-uname-hostname": ["sh", "-c", "date; uname -a; cat /etc/hostname"],
    "urandom-od": ["sh", "-c", "head -c 16 /dev/urandom | od -x"],
    "python3": ["python3", "-c",
                "import os, time; print(os.getpid(), time.time(), os.urandom(8).hex())"],
}
# What changes between the recording and the replay (undone afterwards).
CHANGE = "hostname sk-replayed; touch /etc/sk-replay-new"
UNDO = "hostname \"$(cat /etc/hostname)\"; rm -f /etc/sk-replay-new"


def run(profile, out: Path, only=None, log=print, timeout: float = 300) -> dict:
    from sysdig_kit import board
    from sysdig_kit.replayer import host

    out.mkdir(parents=True, exist_ok=True)
    with board.platform(profile).connect() as c:
        driver = c.sh("cat /sys/module/scap/version 2>/dev/null || echo none", timeout=30,
                      check=False).stdout.strip()
    kind = "replay-complete" if "replay-complete" in driver else "stock"
    rows = []
    for name, argv in WORKLOADS.items():
        if only and name not in only:
            continue
        scap = out / f"{kind}-{name}.scap"
        t0 = time.monotonic()
        cap = host.capture_command(argv, scap, profile=profile, quiet=True)
        rec_out, rec_err = cap.output
        rec_rc = cap.manifest["workload"]["rc"]
        t_cap = time.monotonic() - t0
        with tempfile.TemporaryDirectory() as tmp:
            jl = host.to_jsonl(scap, Path(tmp))
            jl_keep = out / f"{kind}-{name}.jsonl"
            jl_keep.write_bytes(jl.read_bytes())
            with board.platform(profile).connect() as c:
                c.sh(CHANGE, timeout=30)
            try:
                time.sleep(1)  # time moves on
                t0 = time.monotonic()
                rc, summary = host.replay_board(profile, jl_keep, argv, out / f"{kind}-{name}"
                                                ".replay.json", timeout=timeout)
                t_rep = time.monotonic() - t0
            finally:
                with board.platform(profile).connect() as c:
                    c.sh(UNDO, timeout=30, check=False)
        rep_out, rep_err = host.replay_board.output
        s = summary or {}
        t = s.get("totals", {})
        rep = s.get("report") or {}
        row = {
            "workload": name, "argv": argv, "driver": driver,
            "records": t.get("records"), "replayed": t.get("replayed"),
            "injected": t.get("injected"), "executed": t.get("executed"),
            "restored": t.get("restored"), "unverified": t.get("unverified"),
            "outcome": s.get("outcome"), "replay_rc": rc,
            "recorded_rc": rec_rc, "replayed_rc": s.get("exit_status"),
            "stdout_identical": rec_out == rep_out, "stderr_identical": rec_err == rep_err,
            "recorded_stdout": rec_out.decode(errors="replace")[:400],
            "replayed_stdout": rep_out.decode(errors="replace")[:400],
            "stopped_at": ({k: rep.get(k) for k in ("thread", "seq", "evt_num", "detail")}
                           | {"syscall": (rep.get("recorded") or {}).get("syscall")})
            if rep else None,
            "kernel_copies": len(s.get("kernel_copies") or []),
            "capture_seconds": round(t_cap, 1), "replay_seconds": round(t_rep, 1),
        }
        rows.append(row)
        (out / f"{kind}.json").write_text(json.dumps({"driver": driver, "kind": kind,
                                                      "workloads": rows}, indent=1) + "\n")
        log(f"{kind} {name}: {row['outcome']} ({row['replayed']}/{row['records']} records, "
            f"stdout identical {row['stdout_identical']}, rc {row['recorded_rc']}->"
            f"{row['replayed_rc']}){'; ' + rep.get('detail', '') if rep else ''}")
    result = {"driver": driver, "kind": kind, "workloads": rows}
    (out / f"{kind}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> int:
    from sysdig_kit import profiles

    ap = argparse.ArgumentParser()
    ap.add_argument("--board", default="qemu-arm64")
    ap.add_argument("-o", "--out", default="out/replay-proof")
    ap.add_argument("--only", action="append")
    ap.add_argument("--timeout", type=float, default=300, help="replay: seconds without progress")
    a = ap.parse_args()
    res = run(profiles.load(a.board), Path(a.out), a.only, log=lambda m: print(m, file=sys.stderr),
              timeout=a.timeout)
    return 0 if all(r["outcome"] == "replayed" for r in res["workloads"]) else 1


if __name__ == "__main__":
    sys.exit(main())
