"""A ptrace recorder for the host tests: runs a command as `sysdig-kit capture -- CMD` would
(seized before its exec, vDSO hidden, no ASLR) and writes a replay log with what the policy's
`writes` name, read out of the tracee's memory at each syscall exit. It stands in for sysdig on
this x86_64 host, which has no driver: the replayer's handling of real programs (fork, exec,
wait4, signals, pipes, dynamic linking) is then tested here, in seconds, before the board.
Not part of the kit: sysdig is the recorder; this is a test double for it on a driverless host."""

from __future__ import annotations

import os

from sysdig_kit.replay import log as logmod
from sysdig_kit.replayer import ptrace as pt
from sysdig_kit.replayer.engine import OPTIONS, WALL, _which
from sysdig_kit.replayer.policy import Policy

# Bytes the kernel writes for each (syscall, param) on x86_64; "res" = the return value.
SIZES = {("fstat", "stat"): 144, ("newfstatat", "stat"): 144, ("stat", "stat"): 144,
         ("lstat", "stat"): 144, ("uname", "out"): 390, ("clock_gettime", "out"): 16,
         ("gettimeofday", "out"): 16, ("gettimeofday", "out2"): 8,
         ("wait4", "out"): 4, ("wait4", "out2"): 144,
         ("rt_sigprocmask", "out"): 8, ("rt_sigaction", "out"): 32, ("getrusage", "out"): 144,
         ("sysinfo", "out"): 112, ("statx", "out"): 256, ("ioctl", "out"): 0}


def record(argv: list[str], out_path, env=None) -> int:
    arch = pt.ARCHS["x86_64"]
    pol = Policy("x86_64")
    path = _which(argv[0])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        pt.personality(pt.ADDR_NO_RANDOMIZE)
        os.execve(path, argv, env if env is not None else os.environ)
    os.close(r)
    pt.seize(pid, OPTIONS | pt.O_TRACEEXIT)
    os.write(w, b"g")
    os.close(w)
    rows, seq, evt, inflight, status = [], {}, [100], {}, None

    def add(tid, name, nr, res, args, bufs, flags=()):
        evt[0] += 1
        rows.append({"thread_tid": tid, "proc_pid": tid, "proc_name": None,
                     "seq": seq.setdefault(tid, 0), "kind": "syscall", "syscall": name, "nr": nr,
                     # like sysdig: exit_group has no exit event, so no evt_num
                     "evt_num": None if "never_returns" in flags else evt[0], "enter_evt_num": None, "enter_ts": None, "exit_ts": None,
                     "res": res, "errno": None, "args": [{"name": k, "value": str(v)}
                                                          for k, v in args.items()],
                     "buffers": bufs, "flags": list(flags)})
        seq[tid] += 1

    while True:
        try:
            tid, st = os.waitpid(-1, WALL)
        except ChildProcessError:
            break
        if os.WIFEXITED(st) or os.WIFSIGNALED(st):
            if tid == pid:
                status = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
            continue
        sig, event = os.WSTOPSIG(st), st >> 16
        if event == pt.EVENT_EXIT:  # in do_exit, before the parent hears of it (sysdig's procexit)
            code = pt.geteventmsg(tid)
            evt[0] += 1
            rows.append({"thread_tid": tid, "proc_pid": tid, "seq": seq.get(tid, 0),
                         "kind": "procexit", "syscall": "procexit", "evt_num": evt[0],
                         "res": (code >> 8) & 0xFF, "args": [], "buffers": [], "flags": []})
        if event == pt.EVENT_EXEC:
            pt.hide_vdso(tid, arch)
            if tid == pid and tid not in seq:
                add(tid, "execve", 59, 0, {}, [])
                inflight.pop(tid, None)
        if event or sig != (5 | 0x80):
            pt.syscall(tid, 0 if event else sig)
            continue
        info = pt.syscall_info(tid)
        if info.op == pt.INFO_ENTRY:
            rule = pol.rule(info.nr)
            if rule.syscall in ("exit", "exit_group"):
                add(tid, rule.syscall, info.nr, None, {}, [], ["never_returns"])
            else:
                args = {}
                for c in rule.checks:
                    if c.kind == "n":
                        args[c.name] = info.args[c.arg]
                    elif c.kind == "s":
                        args[c.name] = pt.read_cstr(tid, info.args[c.arg]).decode(errors="replace")
                inflight[tid] = (info, rule, args)
        elif info.op == pt.INFO_EXIT and tid in inflight:
            ent, rule, args = inflight.pop(tid)
            bufs = []
            for c in rule.checks:
                if c.kind == "b":
                    n = max(0, info.rval)
                    bufs.append({"name": c.name, "data": pt.read_mem(tid, ent.args[c.arg], n),
                                 "captured_len": n, "reported_len": None, "output": False})
            for sp in pol.writes(rule, rule.syscall) if rule.action != "execute" else ():
                ptr = ent.args[sp.arg]
                n = SIZES.get((rule.syscall, sp.param), info.rval)
                if ptr and sp.applies(info.rval) and n > 0 and sp.type == "bytes" \
                        and not sp.to_fd and sp.param:
                    data = pt.read_mem(tid, ptr + sp.offset, n)
                    bufs.append({"name": sp.param, "data": data, "captured_len": len(data),
                                 "reported_len": info.rval if sp.length == "res" else None,
                                 "output": True})
            add(tid, rule.syscall, ent.nr, info.rval, args, bufs)
        pt.syscall(tid)
    logmod.write(logmod.make_log(rows, arch="x86_64", source="ptrace recorder"), out_path)
    return status
