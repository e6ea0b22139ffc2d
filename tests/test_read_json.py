"""The JSON reader (`sysdig -j`) against the real sysdig 0.29.3 (live, every public capture and
the old-era arm64 one) and 0.41.4 (its stored -j output, and live in the sid chroot).
Runtime: about 8 s.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_read_text import (
    ARM64,
    CACHE,
    NEW_ERA,
    OLD_ERA,
    PUBLIC,
    PUBLIC_READ,
    TextReader,
    args_of,
    assert_matches_oracle,
    oracle,
    sysdig_out,
)

from sysdig_kit.errors import KitError
from sysdig_kit.read import read
from sysdig_kit.read.frame import check_frame
from sysdig_kit.read.jsonl import JsonReader
from sysdig_kit.read.text import KIT_SYSDIG_ARGS

FIELDS = ("*%evt.num %evt.rawtime %evt.cpu %thread.tid %proc.pid %evt.dir %evt.type %evt.rawres "
          "%proc.name %evt.info")


@pytest.mark.oracle
@pytest.mark.parametrize("name", PUBLIC_READ)
def test_json_matches_sysdig_0293(name):
    cap = PUBLIC / name
    df = JsonReader.read(sysdig_out(cap, "-j"))
    check_frame(df)
    assert df.attrs["format"] == "json" and df.attrs["args_encoding"] == "text"
    assert_matches_oracle(df, oracle(cap))  # times too: -j prints ns since the epoch


@pytest.mark.oracle
def test_json_old_era_arm64():
    df = JsonReader.read(sysdig_out(OLD_ERA, "-j"))
    assert_matches_oracle(df, oracle(OLD_ERA, stored=ARM64 / "old-era-zsh-s4096.oracle.txt"))


def test_json_of_sysdig_0414_matches_its_oracle():
    df = JsonReader.read(ARM64 / "new-era-zsh-name.sysdig-0.41.4.json")
    assert_matches_oracle(df, oracle(NEW_ERA, stored=ARM64 / "new-era-zsh-name.oracle.txt"))
    ex = df.index[(df["evt_type"] == "execve") & (df["evt_dir"] == "<")][0]
    env = args_of(df, ex)["env"]  # JSON keeps what the text output cuts with "..."
    assert b"SSH_CONNECTION=10.0.2.2 35430 10.0.2.15 22." in env
    txt = TextReader.read(ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt", date="2026-11-26")
    for col in ("evt_num", "evt_rawtime", "evt_type", "evt_rawres", "proc_name"):
        assert df[col].equals(txt[col]), col


@pytest.mark.oracle
def test_json_live_sysdig_0414():
    df = read(sysdig_out(NEW_ERA, "-j", new=True))  # through the format detection
    assert df.attrs["format"] == "json"
    assert_matches_oracle(df, oracle(NEW_ERA, new=True))


@pytest.mark.oracle
def test_json_with_fields_and_base64_buffers():
    """-j with -p: rawres and pid from sysdig's own fields; -b buffers back to bytes."""
    out = sysdig_out(OLD_ERA, "-j", "-b", "-p", FIELDS)
    df = JsonReader.read(out, b64=True)
    assert_matches_oracle(df, oracle(OLD_ERA, stored=ARM64 / "old-era-zsh-s4096.oracle.txt"))
    assert df["proc_pid"].notna().all()
    kit = TextReader.read(sysdig_out(OLD_ERA, *KIT_SYSDIG_ARGS))
    assert df["proc_pid"].equals(kit["proc_pid"])
    assert df["evt_args"].tolist() == kit["evt_args"].tolist()


@pytest.mark.oracle
def test_json_batches():
    path = sysdig_out(PUBLIC / "bencer__example4_example4-1.scap", "-j")
    parts = list(JsonReader.iter_batches(path, batch_size=2000))
    assert [len(p) for p in parts] == [2000, 2000, 2000, 255]
    whole = JsonReader.read(path)
    assert pd.concat(parts, ignore_index=True)["evt_num"].tolist() == whole["evt_num"].tolist()


def test_json_bad_lines():
    CACHE.mkdir(parents=True, exist_ok=True)
    good = (ARM64 / "new-era-zsh-name.sysdig-0.41.4.json").read_text().splitlines()[:3]
    p = CACHE / "bad.json"
    p.write_text("\n".join(good + ['{"evt.num": 1, oops']) + "\n")
    with pytest.raises(KitError, match="line 4 is not JSON"):
        JsonReader.read(p)
    p.write_text('{"evt.num": 1, "evt.type": "read"}\n')
    with pytest.raises(KitError, match="lacks evt.cpu"):
        JsonReader.read(p)


def test_json_sniff():
    assert JsonReader.sniff((ARM64 / "new-era-zsh-name.sysdig-0.41.4.json").read_bytes()[:4096])
    assert not JsonReader.sniff((ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt").read_bytes()[:4096])
    assert not JsonReader.sniff(b'{"a": 1}\n')
