"""Lakes written by older lakenodes releases, opened by this one (docs/upgrading.md).

Each fixture under tests/data/ is a lake an old commit wrote with tests/upgrade_nodes.py (its
README.md says how): days 2026-01-01..05 of three tables, two updaters on one of them, a failed
run, a search index, optimize and vacuum. This code must continue every table from its watermark
(same storage, no lost or duplicated row), read it through lakenodes and other engines, and answer
every CLI command a user tries first. The first release hashed classes by import path: its nodes
continue only with ``HASH_NAME`` set, and without it are refused before they write anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import upgrade_nodes
from typer.testing import CliRunner
from upgrade_nodes import Numbers, NumbersConfig, Prices, PricesConfig, Sums, SumsConfig, value_of

from lakenodes import Lake, clear_caches, use_lake
from lakenodes.cli import app

DATA = Path(__file__).parent / "data"
ERAS = ("f3ab3ad", "0c7a6ca", "f8e7dee", "ed6c62e", "57a891a")  # oldest first
MIXED = "mixed_ed6c62e"  # ed6c62e and this release took turns (tests/data/README.md)
IMPORT_PATH_ERAS = ("f3ab3ad",)  # hashed classes by module.qualname (docs/identity.md)
WRITTEN_UNTIL = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
UIDS = ("AAPL", "BRK/B", "NVDA")


def unpack(era: str, where: Path) -> Lake:
    """A fresh copy of the era's fixture lake under ``where``, its files as new as a copy's (the
    archive's fixed mtimes would make every commit older than the Delta log retention)."""
    root = where / f"lake-{era}"
    with tarfile.open(DATA / f"upgrade_lake_{era}.tar.gz") as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
            tar.extractall(root, filter="data")
        else:
            tar.extractall(root)  # noqa: S202 - the repository's own fixture
    for path in root.rglob("*"):
        os.utime(path)
    clear_caches()
    return Lake(str(root))


def keep_old_hashes(monkeypatch: pytest.MonkeyPatch, era: str) -> None:
    """What docs/upgrading.md tells a first-release user to add: HASH_NAME = the old import path."""
    if era in IMPORT_PATH_ERAS:
        for cls in (Numbers, Sums, Prices):
            monkeypatch.setattr(cls, "HASH_NAME", f"upgrade_nodes.{cls.__name__}", raising=False)


@pytest.fixture(params=ERAS)
def old_lake(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    keep_old_hashes(monkeypatch, request.param)
    monkeypatch.setenv("UPGRADE_TODAY", "2026-01-05")
    lake = unpack(request.param, tmp_path)
    with use_lake(lake):
        yield lake
    clear_caches()


def table_folders(lake: Lake) -> list[str]:
    return sorted(p.name for p in (Path(lake.uri) / "tables").iterdir())


def cli_json(lake: Lake, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--lake", lake.uri, "--json", *args])
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def days(last: str) -> list[dt.datetime]:
    end = dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC)
    return [end - dt.timedelta(days=n) for n in range((end.day - 1), -1, -1)]


def assert_complete(until: str) -> None:
    """Every table holds each day up to ``until`` exactly once, with the value of that day."""
    expected = days(until)
    numbers = Numbers(NumbersConfig()).get_df_between_dates()
    assert numbers["time_index"].to_list() == expected
    assert numbers["value"].to_list() == [value_of(d) for d in expected]
    sums = Sums(SumsConfig()).get_df_between_dates()
    assert sums["total"].to_list() == [value_of(d) + 1 for d in expected]
    prices = Prices(PricesConfig(asset_list=[])).get_df_between_dates()
    assert prices.height == len(expected) * len(UIDS)
    for uid in UIDS:
        one = prices.filter(pl.col("unique_identifier") == uid)
        assert one["time_index"].to_list() == expected, uid
        assert one["close"].to_list() == [value_of(d, len(uid)) for d in expected], uid


def test_the_next_days_continue_the_old_tables(old_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    before = table_folders(old_lake)
    assert len(before) == 3
    assert_complete("2026-01-05")
    node = Numbers(NumbersConfig())
    assert node.update_statistics.max_time_index_value == WRITTEN_UNTIL

    monkeypatch.setenv("UPGRADE_TODAY", "2026-01-07")
    upgrade_nodes.run_day("2026-01-07")
    upgrade_nodes.run_day("2026-01-07")  # the same day again writes nothing
    assert table_folders(old_lake) == before
    assert_complete("2026-01-07")
    batches = upgrade_nodes.batches()
    prices = Prices(PricesConfig(asset_list=batches[0]))
    stats = prices.update_statistics
    assert sorted(a.unique_identifier for a in stats.asset_list) == ["AAPL", "NVDA"]
    assert stats.get_last_update_index_2d("NVDA") == WRITTEN_UNTIL + dt.timedelta(days=2)
    updates = cli_json(old_lake, "updates", "list")
    assert updates["count"] == 4  # the old updaters, no new ones beside them


def test_other_engines_read_the_old_tables(old_lake: Lake) -> None:
    import duckdb
    from test_interop import extension_path

    duck = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    duck.execute(f"LOAD '{extension_path('delta')}'")
    for folder, rows in zip(table_folders(old_lake), (5, 15, 5), strict=True):
        uri = f"{old_lake.uri}/tables/{folder}"
        assert pl.read_delta(uri).height == rows, folder
        assert duck.execute(f"SELECT count(*) FROM delta_scan('{uri}')").fetchone()[0] == rows, folder


def test_the_cli_answers_on_an_old_lake(old_lake: Lake) -> None:
    listed = cli_json(old_lake, "data-node", "list")
    assert sorted(r["identifier"] for r in listed["results"]) == ["upgrade_numbers", "upgrade_prices", "upgrade_sums"]
    detail = cli_json(old_lake, "data-node", "detail", "upgrade_prices")
    prices_folder = next(f for f in table_folders(old_lake) if f.startswith("prices_"))
    assert detail["table"]["storage_hash"] == prices_folder
    assert detail["table_uri"] == f"{old_lake.uri}/tables/{prices_folder}"  # where the lake is now
    assert detail["stats"]["row_count"] == 15
    assert len(detail["update_processes"]) == 2
    runs = cli_json(old_lake, "updates", "runs")["results"]
    assert [r["status"] for r in runs].count("error") == 1
    assert any("numbers source is down" in (r["error"] or "") for r in runs)
    assert cli_json(old_lake, "assets", "list")["count"] == 3
    found = cli_json(old_lake, "search", "daily close prices")["description"]["results"]
    assert found[0]["identifier"] == "upgrade_prices"
    history = cli_json(old_lake, "data-node", "history", "upgrade_prices")
    assert history["results"]
    assert cli_json(old_lake, "updates", "reconcile")["count"] == 0
    cli_json(old_lake, "optimize")
    cli_json(old_lake, "vacuum")
    assert_complete("2026-01-05")


def test_restore_and_drop_work_on_an_old_lake(old_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    version = cli_json(old_lake, "data-node", "history", "upgrade_prices")["results"][0]["version"]
    monkeypatch.setenv("UPGRADE_TODAY", "2026-01-06")
    upgrade_nodes.run_day("2026-01-06")
    cli_json(old_lake, "data-node", "restore", "upgrade_prices", "--to-version", str(version), "--yes")
    assert Prices(PricesConfig(asset_list=[])).get_df_between_dates().height == 15
    upgrade_nodes.run_day("2026-01-06")  # the restored table catches up again
    dropped = cli_json(old_lake, "data-node", "drop", "upgrade_sums", "--yes")
    assert dropped["ok"]
    assert [f[:4] for f in table_folders(old_lake)] == ["numb", "pric"]
    assert sorted(r["identifier"] for r in cli_json(old_lake, "data-node", "list")["results"]) == [
        "upgrade_numbers", "upgrade_prices"]
    assert Prices(PricesConfig(asset_list=[])).get_df_between_dates().height == 18


@pytest.mark.parametrize("era", IMPORT_PATH_ERAS)
def test_a_first_release_node_without_hash_name_is_refused_naming_the_line_to_add(
    era: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = unpack(era, tmp_path)
    monkeypatch.setenv("UPGRADE_TODAY", "2026-01-06")
    with use_lake(lake):
        before = {f: pl.read_delta(f"{lake.uri}/tables/{f}").height for f in table_folders(lake)}
        with pytest.raises(Exception, match=r"HASH_NAME: ClassVar\[str\] = 'upgrade_nodes.Numbers'"):
            Sums(SumsConfig()).run()
        with pytest.raises(Exception, match=r"HASH_NAME: ClassVar\[str\] = 'upgrade_nodes.Prices'"):
            Prices(PricesConfig(asset_list=upgrade_nodes.batches()[0])).run()
        after = {f: pl.read_delta(f"{lake.uri}/tables/{f}").height for f in table_folders(lake)}
        assert after == before
    clear_caches()


@pytest.mark.parametrize("era", ERAS[1:])  # the eras that mark table records (without the table's id)
def test_a_drop_removes_the_marks_an_older_release_left(era: str, tmp_path: Path) -> None:
    """An older machine marked each table record it registered, by a digest that leaves out the
    Delta table's id. While its mark stayed, that machine's next run re-created a dropped table but
    never recorded it again: the rows were there, and list, detail and search said the table was
    gone. The drop now removes every mark, so an older machine records the table it re-creates."""
    lake = unpack(era, tmp_path)
    marks = Path(lake.uri) / "_catalog" / "tables" / "_lakenodes" / "marks"
    old_marks = sorted(p.name for p in marks.iterdir())
    assert len(old_marks) == 3
    cli_json(lake, "data-node", "drop", "upgrade_sums", "--yes")
    assert not set(old_marks) & {p.name for p in marks.iterdir()}
    with use_lake(lake):
        listed = sorted(r["identifier"] for r in cli_json(lake, "data-node", "list")["results"])
        assert listed == ["upgrade_numbers", "upgrade_prices"]
        Sums(SumsConfig()).run()  # this release's next run records it again, as before
    listed = sorted(r["identifier"] for r in cli_json(lake, "data-node", "list")["results"])
    assert listed == ["upgrade_numbers", "upgrade_prices", "upgrade_sums"]
    clear_caches()


def test_every_fixture_era_is_in_the_upgrading_doc_and_the_data_readme() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "upgrading.md").read_text(encoding="utf-8")
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    archives = sorted(p.name for p in DATA.glob("upgrade_lake_*.tar.gz"))
    assert archives == sorted(f"upgrade_lake_{era}.tar.gz" for era in (*ERAS, MIXED))
    for era in ERAS:
        assert f"`{era}`" in doc and f"`upgrade_lake_{era}.tar.gz`" in readme, era


def test_a_lake_an_older_release_wrote_after_this_one_dropped_a_table(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """ed6c62e wrote days 1-4, this release day 5 and dropped upgrade_sums, ed6c62e day 6 (creating
    upgrade_sums again from its start) and a failed run: every table is listed and complete, the
    dropped table's old runs are gone, and this release's next day continues all three."""
    lake = unpack(MIXED, tmp_path)
    monkeypatch.setenv("UPGRADE_TODAY", "2026-01-07")
    with use_lake(lake):
        before = table_folders(lake)
        listed = sorted(r["identifier"] for r in cli_json(lake, "data-node", "list")["results"])
        assert listed == ["upgrade_numbers", "upgrade_prices", "upgrade_sums"]
        assert_complete("2026-01-06")
        runs = cli_json(lake, "updates", "runs")["results"]
        assert [r["status"] for r in runs if r["storage_hash"].startswith("sums_")] == ["success"]
        assert [r["status"] for r in runs].count("error") == 1
        upgrade_nodes.run_day("2026-01-07")
        assert table_folders(lake) == before
        assert_complete("2026-01-07")
    clear_caches()


@pytest.mark.slow
@pytest.mark.parametrize("era", ["f3ab3ad", "57a891a"])  # the oldest and the newest era
def test_an_old_lake_synced_to_s3_continues_there(era: str, s3_lake: Lake, s3_server, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same day after the upgrade on S3 (the moto server): the old lake uploaded as it is."""
    from lake_copies import upload

    for key, value in s3_server.env.items():  # the CLI finds the server as a user's shell would
        monkeypatch.setenv(key, value)
    keep_old_hashes(monkeypatch, era)
    upload(Path(unpack(era, tmp_path).uri), s3_lake)
    clear_caches()
    monkeypatch.setenv("UPGRADE_TODAY", "2026-01-06")
    with use_lake(s3_lake):
        assert_complete("2026-01-05")
        upgrade_nodes.run_day("2026-01-06")
        assert_complete("2026-01-06")
        listed = cli_json(s3_lake, "data-node", "list")["results"]
        assert sorted(r["identifier"] for r in listed) == ["upgrade_numbers", "upgrade_prices", "upgrade_sums"]
        assert cli_json(s3_lake, "updates", "list")["count"] == 4
    clear_caches()
