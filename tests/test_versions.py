"""The version registry (sysdig_kit/data/versions.yaml) is the one place that knows the
sysdig/driver pairs: its rows agree with the generated tables, and a version added as data only
(a registry row + its table) is picked for a capture with its parameter counts."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_patches import synthesise

from sysdig_kit import profiles, read, versions
from sysdig_kit.errors import KitError
from sysdig_kit.read import eventtable
from sysdig_kit.read.args import decode_args

DATA = Path(__file__).resolve().parent / "data"
STOCK = DATA / "stock-0.23.2-zsh-s80.scap"


def test_rows_agree_with_the_tables():
    reg = versions.registry()
    on_disk = {p.stem for p in reg.tables_dir.glob("*.json")}
    assert set(versions.tables()) == on_disk  # every table registered, every row has its table
    for p in versions.pairs():
        t = json.loads((reg.tables_dir / f"{p.event_table}.json").read_text())
        assert (t["driver_version"], t["era"]) == (p.driver, p.era), p.name
        for s in p.patch_sets.values():
            pt = json.loads((reg.tables_dir / f"{s.event_table}.json").read_text())
            assert (pt["base"], pt["patch_set"], pt["driver_version"]) == (
                p.event_table, s.name, s.module_version)
        assert p.dkms["package"] == "falcosecurity-scap-dkms" and len(p.dkms["sha256"]) == 64
    assert [p.name for p in versions.pairs()] == ["2022", "current"]
    assert versions.default().name == "current"
    assert profiles.pair(profiles.load("qemu-arm64"))["driver"] == versions.default().driver


def _future_registry(root: Path) -> tuple[int, list]:
    """A copy of the registry plus a made-up pair `future` (sysdig 0.99.0, driver 0.99.0) whose
    table is 0.23.2's with one parameter appended to the openat exit. Returns that event code
    and the new table's events."""
    reg = versions.registry()
    shutil.copytree(reg.tables_dir, root / "event_tables")
    doc = yaml.safe_load(reg.path.read_text())
    cur = doc["pairs"]["current"]
    doc["pairs"]["future"] = {**cur, "sysdig": "0.99.0", "driver": "0.99.0",
                              "event_table": "scap-0.99.0", "patch_sets": {}}
    (root / "versions.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    table = json.loads((reg.tables_dir / "scap-0.23.2.json").read_text())
    code = max(e["code"] for e in table["events"] if (e["name"], e["dir"]) == ("openat", "<"))
    table["events"][code]["params"].append(
        {"name": "future", "type": "PT_UINT64", "fmt": "PF_DEC", "info": None})
    table.update(driver="scap-0.99.0", driver_version="0.99.0")
    (root / "event_tables" / "scap-0.99.0.json").write_text(json.dumps(table))
    return code, table["events"]


def test_a_third_version_added_as_data_is_picked(tmp_path, monkeypatch):
    code, events = _future_registry(tmp_path / "reg")
    cap = tmp_path / "future.scap"
    grown = synthesise(STOCK, cap, {code: ["future"]}, events)
    assert grown[code] > 0

    # The shipped registry does not know it: the closest table, the extra value as arg<i>.
    before = read(cap)
    assert before.attrs["event_table"] == "scap-0.23.2"

    monkeypatch.setenv("SYSDIG_KIT_VERSIONS", str(tmp_path / "reg" / "versions.yaml"))
    assert [p.name for p in versions.pairs()][-1] == "future"
    df = read(cap)
    assert df.attrs["event_table"] == "scap-0.99.0"
    opens = df[(df["evt_type"] == "openat") & (df["evt_dir"] == "<")]
    assert len(opens) == grown[code]
    row = opens.iloc[0]
    args = dict(decode_args("openat", "<", row["evt_args"], table=df.attrs["event_table"]))
    assert args["future"] == 0xA5A5A5A5A5A5A5A5  # synthesise's stand-in value, typed by the new table
    # The same frame otherwise: every event, type and result as the stock read gives.
    for col in ("evt_num", "evt_type", "evt_rawres", "thread_tid"):
        assert before[col].tolist() == df[col].tolist(), col
    # Captures of the known versions still get their own tables.
    assert read(STOCK).attrs["event_table"] == "scap-0.23.2"
    assert read(DATA / "replay-complete-zsh-s80.scap").attrs["event_table"] == \
        "scap-0.23.2+replay-complete.1"
    assert read(DATA / "arm64" / "old-era-zsh-s4096.scap").attrs["event_table"] == eventtable.OLD
    # A board profile can name it.
    prof = tmp_path / "b.yaml"
    prof.write_text("arch: arm64\ncross_prefix: aarch64-linux-gnu-\nssh: {host: h}\n"
                    "sysdig: {pair: future}\n")
    assert profiles.pair(profiles.load(prof)) == {"debian_release": "sid", "sysdig": "0.99.0",
                                                  "driver": "0.99.0"}


def test_bad_registry_is_one_line(tmp_path, monkeypatch):
    f = tmp_path / "versions.yaml"
    monkeypatch.setenv("SYSDIG_KIT_VERSIONS", str(f))
    with pytest.raises(KitError, match="no version registry"):
        versions.pairs()
    f.write_text("pairs:\n  x: {sysdig: 1, driver: 2, event_table: t, era: sideways, "
                 "debian_release: sid}\n")
    with pytest.raises(KitError, match="era must be one of"):
        versions.pairs()
    f.write_text("pairs:\n  x: {sysdig: 1}\n")
    with pytest.raises(KitError, match="missing key"):
        versions.pairs()
