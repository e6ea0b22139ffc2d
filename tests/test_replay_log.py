"""Replay log files (Parquet, JSON Lines), the replayer API, tables, decode-hooklog and the CLI
exit codes. Uses sysdig 0.41.4's text of the new-era arm64 capture. Runs in ~10 s."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from oracle import DATA

from sysdig_kit.cli import main
from sysdig_kit.errors import KitError
from sysdig_kit.read import read
from sysdig_kit.replay import Divergence, ReplayLog, build, read_log, write
from sysdig_kit.replay import syscalls as sc
from sysdig_kit.replay.hooklog import decode
from sysdig_kit.replay.log import JSONL_KEY

ARM64 = DATA / "arm64"
NEW_TXT = ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt"


@pytest.fixture(scope="module")
def log():
    return build(read(NEW_TXT), arch="arm64")


def test_tables_come_from_the_kernel_headers():
    assert sc.number("arm64", "read") == 63 and sc.number("x86_64", "read") == 0
    assert [sc.name("arm64", n) for n in (0x3F, 0x42, 0x39, 0x16)] == [
        "read", "writev", "close", "epoll_pwait"]
    assert sc.name("arm64", 293) == "rseq" and sc.number("x86_64", "openat") == 257
    assert sc.errno_name(-2) == "ENOENT" and sc.errno_name(-11) == "EAGAIN"
    assert sc.errno_name(5) is None
    with pytest.raises(KitError):
        sc.normalize_arch("mips")


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_round_trip_keeps_every_column_and_the_header(log, tmp_path, suffix):
    path = write(log, tmp_path / f"zsh{suffix}")
    back = read_log(path)
    pd.testing.assert_frame_equal(back, log)
    assert back.attrs["format"] == "sysdig-kit-replay-log" and back.attrs["version"] == 1
    assert back.attrs["arch"] == "arm64"


def test_jsonl_is_readable_with_base64_buffers(log, tmp_path):
    path = write(log, tmp_path / "zsh.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == len(log)  # every line a record: no header line
    assert json.loads(lines[0])[JSONL_KEY]["format"] == "sysdig-kit-replay-log"
    assert not any(JSONL_KEY in json.loads(x) for x in lines[1:])
    rec = next(json.loads(x) for x in lines[1:] if '"syscall":"read"' in x)
    assert rec["buffers"][0]["data"].isascii()


def test_jsonl_reads_with_standard_json_lines_readers(log, tmp_path):
    """pandas and DuckDB (and polars, by hand: docs/replay-log.md) count records, not a
    header: the header rides in the first record's own key."""
    import duckdb

    path = write(log, tmp_path / "zsh.jsonl")
    df = pd.read_json(path, lines=True)
    assert len(df) == len(log) and df["thread_tid"].tolist() == log["thread_tid"].tolist()
    assert df[JSONL_KEY].notna().sum() == 1
    n, res = duckdb.sql(f"select count(*), sum(res) from read_json_auto('{path}')").fetchall()[0]
    assert (n, res) == (len(log), int(log["res"].sum()))


def test_empty_jsonl_log_keeps_its_header(log, tmp_path):
    path = write(log.iloc[:0], tmp_path / "empty.jsonl")
    back = read_log(path)
    assert len(back) == 0 and back.attrs["arch"] == "arm64"


def test_jsonl_with_a_header_line_still_reads(log, tmp_path):
    """Logs written before the header moved: line 1 was the header alone."""
    path = write(log, tmp_path / "zsh.jsonl")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    head = lines[0].pop(JSONL_KEY)
    path.write_text("\n".join(json.dumps(x) for x in [head, *lines]) + "\n")
    pd.testing.assert_frame_equal(read_log(path), log)


def test_a_record_without_its_thread_is_a_clear_error(log, tmp_path):
    """A hand-edited log whose record lost thread_tid (or seq): one KitError, not a pandas
    conversion error."""
    path = write(log, tmp_path / "zsh.jsonl")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[3]["thread_tid"] = None
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    with pytest.raises(KitError, match="1 records have no thread_tid"):
        read_log(path)


def test_newer_format_version_is_refused(log, tmp_path):
    path = write(log, tmp_path / "zsh.jsonl")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[0][JSONL_KEY]["version"] = 99
    path.write_text("\n".join(json.dumps(x) for x in lines))
    with pytest.raises(KitError, match="version 99"):
        read_log(path)


def test_replayer_walks_a_thread_and_diverges_clearly(log, tmp_path):
    rl = ReplayLog.open(write(log, tmp_path / "zsh.parquet"))
    cur = rl.cursor(365)
    assert cur.next("execve").res == 0
    assert cur.next("brk").res == 187651814756352
    assert cur.next(222).syscall == "mmap"              # by number (arm64)
    rec = cur.next("faccessat")
    assert rec.res is None and not rec.complete and "no_return_value" in rec.flags
    assert cur.next("openat", fd=3).res == 3
    with pytest.raises(Divergence, match=r"asked for write but the log recorded fstat \(nr 80\)"):
        cur.next("write")
    assert cur.peek().syscall == "fstat"             # a divergence consumes nothing
    assert cur.exit_status == 3                      # `exit 3` from procexit
    reads = [r for r in ReplayLog(log).records(365) if r.syscall == "read"]
    assert reads[0].res == 832 and len(reads[0].output["data"]) == 80
    assert reads[0].reported_len["data"] == 832 and "truncated_buffer" in reads[0].flags
    with pytest.raises(KitError):
        rl.cursor(999999)


def test_decode_hooklog_names_and_counts_malformed(tmp_path):
    p = tmp_path / "dmesg.txt"
    p.write_text(
        "[  207.532130] [my_sysdig:] call syscall 0x122bbec0, 2: 0x3f, 3:0x8d66090\n"
        "[  207.532131] [my_sysdig:] call syscall 0x122bbec0, 2: 0x42, 3:0x1\n"
        "random noise\n"
        "[  207.532133] [my_sysdig:] call syscall 0xffff80001234abcd, 2: 0x39, 3:0x3\n"
        "[  207.532134] [my_sysdig:] call syscall 0x122bbec0, 2: 0x16, 3:0x4\n"
        "[  207.532135] [my_sysdig:] call syscall 0x122bbec0, 2: 0xZZ, 3:0x4\n")
    df = decode(p, arch="arm64")
    assert list(df["syscall"]) == ["read", "writev", "close", "epoll_pwait"]
    assert df.attrs["malformed"] == 2 and df.attrs["lines"] == 6
    assert df["ctx"].iloc[2] == 0xFFFF80001234ABCD and list(df["f3"]) == [0x8D66090, 1, 3, 4]
    assert list(decode(p, nr_field=3)["nr"]) == [0x8D66090, 1, 3, 4]
    assert list(decode(p, arch="x86_64")["syscall"]) == ["uname", "semctl", "fork", "pipe"]
    q = tmp_path / "custom.txt"
    q.write_text("nr=63 a=1\nnr=64 a=2\n")
    df = decode(q, pattern=r"nr=(?P<nr>\d+) a=(?P<a>\d+)", base=10)
    assert list(df["syscall"]) == ["read", "write"] and list(df["a"]) == ["1", "2"]
    r = CliRunner().invoke(main, ["decode-hooklog", str(p), "--arch", "arm64"])
    assert r.exit_code == 0 and "2 malformed" in r.output and "epoll_pwait" in r.output
    r = CliRunner().invoke(main, ["decode-hooklog", str(p), "--pattern", "no-group"])
    assert r.exit_code == 2 and "named group" in r.output


def test_cli_replay_log_and_check_exit_codes(tmp_path):
    out = tmp_path / "z.parquet"
    r = CliRunner().invoke(main, ["replay-log", str(NEW_TXT), "-o", str(out), "--arch", "arm64",
                                  "--tid", "365"])
    assert r.exit_code == 0, r.output
    assert set(read_log(out)["thread_tid"]) == {365}
    r = CliRunner().invoke(main, ["check", str(NEW_TXT), "--arch", "arm64", "--json"])
    assert r.exit_code == 1, r.output                    # insufficient
    res = json.loads(r.stdout)
    nores = next(x for x in res["reasons"] if x["code"] == "no_return_value")
    assert (nores["count"], nores["total"], nores["percent"]) == (354, 1118, 31.7)
    assert nores["per_syscall"]["rt_sigprocmask"] == 222
    r = CliRunner().invoke(main, ["check", str(NEW_TXT), "--arch", "arm64", "--json",
                                  "--tid", "365"])
    assert json.loads(r.stdout)["threads"] == 1
    r = CliRunner().invoke(main, ["check", str(tmp_path / "missing.scap")])
    assert r.exit_code == 2
    junk = tmp_path / "junk.scap"
    junk.write_bytes(b"\x00\x01not a capture")
    assert CliRunner().invoke(main, ["check", str(junk)]).exit_code == 2
    ok = ARM64.parent / "public" / "falco__trace_files_connect_localhost.scap"
    r = CliRunner().invoke(main, ["check", str(ok)])
    assert r.exit_code == 0 and r.stdout.startswith("SUFFICIENT"), r.output
    r = CliRunner().invoke(main, ["replay-log", str(NEW_TXT), "-o", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and ".parquet or .jsonl" in r.output


@pytest.mark.parametrize("name", ["old-era-zsh-s4096.scap", "new-era-zsh-name.scap"])
def test_streamed_log_equals_the_whole_one(name, tmp_path):
    """replay-log streams captures batch by batch; the records must not depend on it."""
    from sysdig_kit.read import iter_batches
    from sysdig_kit.replay import build_batches, write_stream

    key = ["thread_tid", "seq"]
    whole = build(read(ARM64 / name)).sort_values(key).reset_index(drop=True)
    for size in (97, 500):
        path, n = write_stream(build_batches(iter_batches(ARM64 / name, batch_size=size)),
                               tmp_path / f"s{size}.parquet")
        got = read_log(path).sort_values(key).reset_index(drop=True)
        assert n == len(whole) and got.attrs["era"] == whole.attrs["era"]
        pd.testing.assert_frame_equal(got, whole)
