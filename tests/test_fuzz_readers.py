"""The readers under a bounded mutation campaign (tools/fuzz_readers.py; the long one is run
by hand, README "Reading captures"): every mutant of a real capture gives a result, a warning
or a one-line KitError, under a 4 GiB address-space limit and a 10 s watchdog."""

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("fuzz_readers", ROOT / "tools" / "fuzz_readers.py")
fz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fz)

SEED = "ci-1"
MUTANTS = 400  # ~1 min on 2 busy cores


def test_bounded_campaign():
    st = fz.campaign(MUTANTS, SEED, workers=2)
    repro = [f"python3 tools/fuzz_readers.py --seed {f['seed']} --only {f['index']} --keep m "
             f"# {f['format']}/{f['kind']} from {f['origin']}: {f['outcome']}: {f['detail']}"
             for f in st["failures"]]
    assert not repro, "mutants that broke a reader:\n" + "\n".join(repro)
    # the mutants reach every outcome and every format: the campaign tests something
    assert all(st["outcomes"][o] > 0 for o in ("result", "warning", "kiterror")), st["outcomes"]
    assert {"scap", "text", "json"} <= set(st["by_format"]), st["by_format"]


def test_mutants_are_reproducible_from_seed_and_index():
    pool = fz.seeds()
    a, b = fz.mutant(SEED, 17, pool), fz.mutant(SEED, 17, pool)
    assert a == b
    assert len({fz.mutant(SEED, i, pool)["data"] for i in range(20)}) > 15
    formats = {s[1] for s in pool}
    assert formats == {"scap", "text", "json"}
    assert any(s[2][:2] == b"\x1f\x8b" for s in pool if s[1] == "scap")  # gzip seeds too


def test_the_harness_reports_other_exceptions(monkeypatch, tmp_path):
    import importlib

    reader = importlib.import_module("sysdig_kit.read")  # the package, not sysdig_kit.read()
    p = tmp_path / "x.scap"
    p.write_bytes((ROOT / "tests/data/fuzz/old-era-zsh.head.scap").read_bytes())
    assert fz.run_one(str(p), 1000)["outcome"] == "result"

    def boom(*a, **kw):
        raise ValueError("not a KitError")

    monkeypatch.setattr(reader, "read", boom)
    got = fz.run_one(str(p), 1000)
    assert got["outcome"] == "failure" and "ValueError" in got["detail"]


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = fz.Worker(tmp_path_factory.mktemp("fuzz"), 0)
    yield lambda data: w.run({"data": data, "kind": "x"}, 1000)
    w.stop()


def _blocks(name):
    data = (ROOT / "tests/data/fuzz" / name).read_bytes()
    return bytearray(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def test_block_length_past_the_end_is_a_truncation_not_a_4gib_read(worker):
    b = _blocks("old-era-zsh.head.scap")
    off = fz.blocks(bytes(b))[-1][0]  # the last block says it holds 4 GiB
    b[off + 4: off + 8] = (0xFFFFFFF0).to_bytes(4, "little")
    got = worker(bytes(b))
    assert got["outcome"] == "warning" and "truncated" in got["detail"], got


@pytest.mark.parametrize("cut", [True, False])
def test_a_damaged_gzip_capture_is_a_kiterror_or_a_cut(worker, cut):
    z = gzip.compress(bytes(_blocks("old-era-zsh.head.scap")))
    if cut:  # cut inside the first 4 KiB of data: sniffing must not fail
        got = worker(z[:200])
        assert got["outcome"] in ("warning", "kiterror"), got
    else:
        z = bytearray(z)
        z[100] ^= 0xFF
        got = worker(bytes(z))
        assert got["outcome"] == "kiterror" and "gzip" in got["detail"], got


def _json_lines():
    return (ROOT / "tests/data/fuzz/json-0.41.json").read_text().splitlines()


def test_json_nested_too_deep_or_with_a_5000_digit_number(worker):
    ls = _json_lines()
    got = worker("\n".join(ls[:5] + ["[" * 100_000 + "]" * 100_000]).encode())
    assert got["outcome"] == "kiterror" and "nested too deeply" in got["detail"], got
    obj = json.loads(ls[3])
    text = json.dumps(obj).replace(f'"evt.num": {obj["evt.num"]}', '"evt.num": ' + "9" * 5000)
    got = worker("\n".join(ls[:3] + [text]).encode())
    assert got["outcome"] == "kiterror" and "line 4" in got["detail"], got
    obj["thread.tid"] = 1 << 64  # a number JSON holds but int64 does not
    got = worker("\n".join(ls[:3] + [json.dumps(obj)]).encode())
    assert got["outcome"] == "kiterror" and "thread_tid" in got["detail"], got


def test_surrogates_and_stray_bytes_in_names_are_kept_readable(tmp_path):
    from sysdig_kit.read import read

    ls = _json_lines()
    obj = json.loads(ls[0])
    obj["proc.name"] = "zsh\udc80\ud800"
    p = tmp_path / "s.json"
    p.write_text("\n".join([json.dumps(obj)] + ls[1:4]) + "\n")
    name = read(p)["proc_name"].iloc[0]  # JSON escapes of lone surrogates: shown as bytes
    assert name.startswith("zsh\\x") and name.encode("utf-8")
    t = (ROOT / "tests/data/fuzz/text-0.41.txt").read_bytes().replace(b" zsh (", b" z\xffsh (", 1)
    (tmp_path / "s.txt").write_bytes(t)
    df = read(tmp_path / "s.txt")
    assert df["proc_name"].iloc[0] == "z\\xffsh"


def test_an_event_line_continued_by_junk_is_a_kiterror(worker):
    # seen in the long campaign (seed long1, mutant 1111): a default-format event with no
    # parameters, then a line of another format glued to it
    t = (ROOT / "tests/data/fuzz/text-0.29.txt").read_text().splitlines()
    i = next(k for k, line in enumerate(t) if line.endswith("< getpid "))
    got = worker("\n".join(t[:i] + [t[i].rstrip(), '{"evt.cpu":0}'] + t[i + 1:]).encode())
    assert got["outcome"] == "kiterror" and "malformed" in got["detail"], got


@pytest.mark.parametrize("value", ["0x" + "f" * 4000, "9" * 5000, "-0x" + "f" * 20],
                         ids=["hex4000", "dec5000", "hex20"])
def test_a_printed_number_longer_than_64_bits_is_na_not_a_crash(worker, value):
    # a parameter (size=, mode=) or a result (res=) no 64-bit field can hold: NA, as any
    # value the text reader cannot decode; before, str() of it failed in the replay log
    import re

    t = (ROOT / "tests/data/fuzz/text-0.41.txt").read_text().splitlines()
    out = [re.sub(r"\b(size|mode|res)=([0-9a-fx]+)", rf"\1={value}", line) for line in t]
    got = worker(("\n".join(out) + "\n").encode())  # sysdig ends every line with one
    assert got["outcome"] == "warning" and "no date" in got["detail"], got


# Mutants that broke the fd-table walk (show, fd.name) and events() when those joined the
# campaign: an integer parameter of no integer width, undecodable path bytes in a scap and in a
# text capture; then text values decoded by their print format: a number printed in octal
# with the digits 8 or 9 (raw5 430, 4631), a date followed by bytes that are not UTF-8 (raw5
# 2285), a JSON number wider than 64 bits in the replay log (raw6 2036). Each failed before
# its fix; run in-process (no limits needed for these).
@pytest.mark.parametrize("seed,index", [("fd2", 685), ("fd2", 2398), ("fd2", 382), ("fd1", 16),
                                        ("raw5", 430), ("raw5", 4631), ("raw5", 2285),
                                        ("raw6", 2036)])
def test_mutants_that_broke_show_fd_name_and_events(seed, index, tmp_path):
    m = fz.mutant(seed, index, fz.seeds())
    path = tmp_path / "m"
    path.write_bytes(m["data"])
    out = fz.run_one(str(path), batch_size=997)
    assert out["outcome"] in ("result", "warning", "kiterror"), out
