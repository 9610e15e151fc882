"""Catalog: table records, lookups, labels, identifiers (incl. a real-process race), run history, tail deletes."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import Field

from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    IdentifierConflictError,
    Lake,
    LakenodesUserError,
    NodeRunError,
    NotFoundError,
    RecordDefinition,
    TimeIndexMetaTable,
    clear_caches,
    hash_namespace,
    repoint_identifier,
    use_lake,
)
from lakenodes.catalog import catalog
from lakenodes.catalog.catalog import claim_identifier, resolve_identifier
from lakenodes.catalog.records import table_uid
from lakenodes.lake import ledger

UTC = dt.timezone.utc
DAYS = [dt.datetime(2024, 1, day, tzinfo=UTC) for day in range(1, 11)]


class QuoteConfig(DataNodeConfiguration):
    source: str = "vendor_a"
    uids: list[str] = ["AAPL", "BRK/B"]
    records: list[RecordDefinition] = [
        RecordDefinition(column_name="close", dtype="float64", label="Close", description="Official close price"),
    ]
    node_metadata: DataNodeMetaData | None = None


class Quotes(DataNode):
    """Daily quotes for a handful of assets."""

    def dependencies(self):
        return {}

    def update(self) -> pl.DataFrame:
        stats = self.update_statistics
        rows = [(day, uid) for uid in self.config.uids for day in DAYS
                if day > stats.get_last_update_index_2d(uid)]
        return pl.DataFrame({
            "time_index": [day for day, _ in rows],
            "unique_identifier": [uid for _, uid in rows],
            "close": [float(day.day) for day, _ in rows],
        }, schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String, "close": pl.Float64})


class FailingQuotes(Quotes):
    def update(self) -> pl.DataFrame:
        raise RuntimeError("vendor API down")


def quotes(identifier: str | None = "quotes_daily", **config) -> Quotes:
    metadata = DataNodeMetaData(identifier=identifier, description="Daily quotes", data_frequency_id="1d",
                                labels=["prices"]) if identifier else None
    return Quotes(QuoteConfig(node_metadata=metadata, offset_start=DAYS[0] - dt.timedelta(days=1), **config))


def test_run_registers_table_with_metadata(any_lake):
    node = quotes()
    node.run()
    record = TimeIndexMetaTable.get(identifier="quotes_daily")
    assert record.storage_hash == node.storage_hash
    assert record.uid == table_uid(node.storage_hash)
    assert record.description == "Daily quotes" and record.data_frequency_id == "1d"
    assert record.labels == ["prices"]
    assert record.index_names == ["time_index", "unique_identifier"]
    close = next(column for column in record.columns if column.column_name == "close")
    assert (close.dtype, close.label, close.description) == ("float64", "Close", "Official close price")
    assert record.source_class.endswith("test_catalog.Quotes")
    assert record.source_doc == "Daily quotes for a handful of assets."
    assert record.build_configuration["source"] == "vendor_a"
    assert record.table_uri == any_lake.table_uri(node.storage_hash)
    stats = record.stats()
    assert stats["last_time_index_value"] == "2024-01-10T00:00:00Z"
    assert stats["earliest_index_value"] == "2024-01-01T00:00:00Z"
    assert stats["row_count"] == 20
    assert set(stats["multi_index_stats"]) == {"AAPL", "BRK/B"}


class DocumentedQuotes(Quotes):
    """Daily quotes for a handful of assets.

    From the vendor's end-of-day file, one row per asset and day.
    """


def documented_quotes() -> DocumentedQuotes:
    return DocumentedQuotes(QuoteConfig(node_metadata=DataNodeMetaData(identifier="documented_quotes"),
                                        offset_start=DAYS[0] - dt.timedelta(days=1)))


def test_a_docstring_is_stored_alike_by_every_python_version(local_lake):
    """Regression: Python 3.13 strips a docstring's indentation when it compiles it, 3.11 and 3.12 do not, and
    the catalog stored ``__doc__`` as it came: the same class's record differed by the Python that ran it (a
    3.13 run after a 3.11 cron job rewrote it), its later lines indented before 3.13."""
    documented_quotes().run()
    record = TimeIndexMetaTable.get(identifier="documented_quotes")
    assert record.source_doc == ("Daily quotes for a handful of assets.\n\n"
                                 "From the vendor's end-of-day file, one row per asset and day.")


def test_a_run_under_python_oo_keeps_the_stored_docstring(local_lake, tmp_path):
    """Regression: ``python -OO`` (or ``PYTHONOPTIMIZE=2``, set in some production images) strips docstrings, and
    a run there stored the table's record without its ``source_doc``: the docstring was gone from
    ``data-node detail``, search results and the search index for good, since the record of each interpreter
    was then marked as registered."""
    documented_quotes().run()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_catalog import documented_in
        assert sys.flags.optimize == 2
        documented_in({local_lake.uri!r})
    """)
    run = subprocess.run([sys.executable, "-OO", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    clear_caches()
    assert TimeIndexMetaTable.get(identifier="documented_quotes").source_doc == (
        "Daily quotes for a handful of assets.\n\nFrom the vendor's end-of-day file, one row per asset and day.")


def documented_in(uri: str) -> None:
    """Run DocumentedQuotes on the lake at ``uri`` (the ``-OO`` process of the test above)."""
    assert DocumentedQuotes.__doc__ is None  # stripped
    with use_lake(Lake(uri)):
        err, _ = documented_quotes().run()
    assert err is False


def test_filter_lookups(local_lake):
    quotes().run()
    quotes(identifier="quotes_vendor_b", source="vendor_b").run()
    assert {t.identifier for t in TimeIndexMetaTable.filter(identifier__contains="quotes_")} == {
        "quotes_daily", "quotes_vendor_b"}
    assert [t.identifier for t in TimeIndexMetaTable.filter(identifier="quotes_daily")] == ["quotes_daily"]
    assert len(TimeIndexMetaTable.filter(identifier__in=["quotes_daily", "nope"])) == 1
    # regression: an __in generator was used up by the first table read (none matched after it)
    assert len(TimeIndexMetaTable.filter(identifier__in=(name for name in ["quotes_daily", "quotes_vendor_b"]))) == 2
    assert len(TimeIndexMetaTable.filter(identifier__icontains="QUOTES_VENDOR")) == 1
    assert len(TimeIndexMetaTable.filter(labels__contains="prices")) == 2
    assert TimeIndexMetaTable.filter(labels__contains="rates") == []
    assert len(TimeIndexMetaTable.filter(namespace="")) == 2
    with pytest.raises(LakenodesUserError, match="unknown field 'colour'"):
        TimeIndexMetaTable.filter(colour="red")
    with pytest.raises(LakenodesUserError, match="unknown lookup"):
        TimeIndexMetaTable.filter(identifier__regex="q.*")
    with pytest.raises(NotFoundError):
        TimeIndexMetaTable.get(identifier="missing")
    with pytest.raises(LakenodesUserError, match="2 tables match"):
        TimeIndexMetaTable.get(labels__contains="prices")


def test_filter_lookups_read_text_as_the_fields_type(local_lake):
    """Filters typed on a command line are text: a date compares with ``recorded_at`` as a date, a
    column name matches ``columns`` (bug: ``recorded_at__gt="..."`` raised a bare TypeError, and
    ``columns__contains="close"`` matched nothing)."""
    quotes().run()
    [record] = TimeIndexMetaTable.filter(identifier="quotes_daily")
    recorded = record.recorded_at
    before, after = recorded - dt.timedelta(seconds=1), recorded + dt.timedelta(seconds=1)
    for text in (before.isoformat(), before.isoformat().replace("+00:00", "Z"),
                 before.replace(tzinfo=None).isoformat(), (recorded - dt.timedelta(days=1)).date().isoformat()):
        assert len(TimeIndexMetaTable.filter(recorded_at__gt=text)) == 1, text
    assert TimeIndexMetaTable.filter(recorded_at__gt=after.isoformat()) == []
    assert len(TimeIndexMetaTable.filter(recorded_at__lte=after, recorded_at__gte=before)) == 1  # datetimes as they are
    assert len(TimeIndexMetaTable.filter(recorded_at=recorded.isoformat())) == 1
    assert len(TimeIndexMetaTable.filter(columns__contains="close")) == 1
    assert len(TimeIndexMetaTable.filter(columns__icontains="CLOSE")) == 1
    assert TimeIndexMetaTable.filter(columns__contains="open") == []
    with pytest.raises(LakenodesUserError, match=r"^lookup recorded_at__gt='yesterday' is not an ISO-8601 date or datetime"):
        TimeIndexMetaTable.filter(recorded_at__gt="yesterday")
    with pytest.raises(LakenodesUserError, match="cannot compare"):
        TimeIndexMetaTable.filter(recorded_at__gt=3)
    # regressions: a naive datetime or a date from Python failed "cannot compare" (text of them worked);
    # a flag given as text matched nothing
    assert len(TimeIndexMetaTable.filter(recorded_at__gt=before.replace(tzinfo=None))) == 1
    assert len(TimeIndexMetaTable.filter(recorded_at__gt=(recorded - dt.timedelta(days=1)).date())) == 1
    assert len(TimeIndexMetaTable.filter(deleted="false")) == 1 and TimeIndexMetaTable.filter(deleted="true") == []
    with pytest.raises(LakenodesUserError, match="lookup deleted='maybe': expected true or false"):
        TimeIndexMetaTable.filter(deleted="maybe")


def test_labels_never_touch_identity(local_lake):
    node = quotes()
    node.run()
    record = TimeIndexMetaTable.get(identifier="quotes_daily")
    record.add_label("equities").remove_label("prices")
    assert TimeIndexMetaTable.get(identifier="quotes_daily").labels == ["equities"]
    again = quotes()
    assert (again.storage_hash, again.update_hash) == (node.storage_hash, node.update_hash)
    again.run()  # a rerun keeps labels added from outside the code
    assert "equities" in TimeIndexMetaTable.get(identifier="quotes_daily").labels


def test_identifier_conflict_names_owner_and_writes_nothing(any_lake):
    owner = quotes()
    owner.run()
    intruder = quotes(source="vendor_b")  # another storage, same identifier
    with pytest.raises(NodeRunError, match="registration") as raised:
        intruder.run()
    assert isinstance(raised.value.cause, IdentifierConflictError)
    assert owner.storage_hash in str(raised.value)
    assert intruder.store.table() is None
    # its updater was registered (in a thread, while the claim was refused) once, with the failed run
    registered = [row["update_hash"] for row in catalog.updates_ledger(any_lake).read().to_pylist()]
    assert registered.count(intruder.update_hash) == 1
    assert catalog.run_history(any_lake, intruder.update_hash)[0]["error"].startswith("registration: IdentifierConflict")
    owner.run()  # re-running the owner is never an error


def test_namespaced_run_keeps_identifier_in_its_own_namespace(local_lake):
    production = quotes()
    production.run()
    with hash_namespace("pytest_ns"):
        isolated = quotes()
        isolated.run()
    assert isolated.storage_hash != production.storage_hash
    assert TimeIndexMetaTable.get(identifier="quotes_daily").storage_hash == production.storage_hash
    assert TimeIndexMetaTable.get(identifier="quotes_daily", namespace="pytest_ns").storage_hash == isolated.storage_hash


def test_repoint_identifier_without_rotating_hashes(local_lake):
    old = quotes()
    old.run()
    new = quotes(identifier=None, source="vendor_b")
    new.run()
    hashes = (new.storage_hash, new.update_hash)
    repoint_identifier("quotes_daily", new.storage_hash)
    assert resolve_identifier(local_lake, "quotes_daily") == new.storage_hash
    assert TimeIndexMetaTable.get(identifier="quotes_daily").storage_hash == new.storage_hash
    assert (new.storage_hash, new.update_hash) == hashes
    with pytest.raises(NotFoundError):
        repoint_identifier("quotes_daily", "missing_0000")


def test_a_fresh_process_reads_an_unrepointed_claim_from_its_first_commit(any_lake, monkeypatch):
    """Claim version 0 records its row in its commit info: while nothing repointed the claim, a
    fresh process reads that (one listing and one small read) instead of opening the claim table;
    once repointed it reads the table again and sees the repoint."""
    lake = any_lake
    old, new = quotes(), quotes(identifier=None, source="vendor_b")
    old.run()
    new.run()
    clear_caches()
    with monkeypatch.context() as patched:
        patched.setattr(ledger, "read_unpartitioned", lambda *a, **k: pytest.fail("the claim table was read"))
        assert claim_identifier(lake, "quotes_daily", "", old.storage_hash)
        with pytest.raises(IdentifierConflictError):
            claim_identifier(lake, "quotes_daily", "", new.storage_hash)
    repoint_identifier("quotes_daily", new.storage_hash, lake=lake)
    clear_caches()
    assert claim_identifier(lake, "quotes_daily", "", new.storage_hash)
    assert not claim_identifier(lake, "quotes_daily", "", old.storage_hash)  # repointed away: no longer its name
    assert resolve_identifier(lake, "quotes_daily") == new.storage_hash


def _claim_in_process(uri: str, storage_hash: str, start, results) -> None:
    start.wait()
    try:
        claim_identifier(Lake(uri), "contested_identifier", "", storage_hash)
        results.put(("won", storage_hash))
    except IdentifierConflictError as error:
        results.put(("lost", str(error)))


@pytest.mark.parametrize("attempt", range(3))
def test_identifier_race_between_processes_has_one_winner(tmp_path, attempt):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(4), context.Queue()
    uri = str(tmp_path / "lake")
    processes = [context.Process(target=_claim_in_process, args=(uri, f"storage_{i}", start, results))
                 for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    outcomes = [results.get(timeout=5) for _ in processes]
    winners = [detail for outcome, detail in outcomes if outcome == "won"]
    assert len(winners) == 1, outcomes
    losers = [detail for outcome, detail in outcomes if outcome == "lost"]
    assert all(winners[0] in message for message in losers)
    assert resolve_identifier(Lake(uri), "contested_identifier") == winners[0]


@pytest.mark.s3
def test_identifier_race_on_s3(s3_server):
    context = multiprocessing.get_context("spawn")
    lake = s3_server.new_lake()
    start, results = context.Barrier(3), context.Queue()
    processes = []
    for i in range(3):
        processes.append(context.Process(target=_claim_on_s3, args=(lake.uri, s3_server.env, f"s_{i}", start, results)))
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    outcomes = [results.get(timeout=5) for _ in processes]
    assert [outcome for outcome, _ in outcomes].count("won") == 1, outcomes


def _claim_on_s3(uri, env, storage_hash, start, results) -> None:
    start.wait()
    try:
        claim_identifier(Lake(uri, storage_options=env), "contested_identifier", "", storage_hash)
        results.put(("won", storage_hash))
    except IdentifierConflictError as error:
        results.put(("lost", str(error)))


def test_run_history_records_success_and_failure(any_lake):
    node = quotes()
    node.run()
    node.run()  # nothing new
    failing = FailingQuotes(QuoteConfig(source="broken"))
    with pytest.raises(NodeRunError, match="update"):
        failing.run()
    history = catalog.run_history(any_lake, node.update_hash)
    assert [(run["status"], run["rows_written"]) for run in history] == [("success", 20), ("success", 0)]
    assert all(run["finished_at"] >= run["started_at"] for run in history)
    failed = catalog.run_history(any_lake, failing.update_hash)
    assert failed[0]["status"] == "error" and "vendor API down" in failed[0]["error"]
    processes = {p["update_hash"]: p for p in catalog.update_processes(any_lake)}
    assert processes[node.update_hash]["runs"] == 2
    assert processes[node.update_hash]["storage_hash"] == node.storage_hash
    assert processes[failing.update_hash]["last_status"] == "error"


class ScopedQuoteConfig(QuoteConfig):
    uids: list[str] = Field(default=["AAPL"], json_schema_extra={"update_only": True})


def test_two_updaters_one_storage_show_as_two_update_processes(local_lake):
    first, second = (Quotes(ScopedQuoteConfig(uids=[uid], offset_start=DAYS[0] - dt.timedelta(days=1)))
                     for uid in ("AAPL", "BRK/B"))
    assert first.storage_hash == second.storage_hash and first.update_hash != second.update_hash
    first.run()
    second.run()
    processes = [p for p in catalog.update_processes(local_lake) if p["storage_hash"] == first.storage_hash]
    assert {p["update_hash"] for p in processes} == {first.update_hash, second.update_hash}
    assert all(p["last_status"] == "success" and p["last_rows_written"] == 10 for p in processes)


def test_delete_after_date_envelope_and_next_run(any_lake):
    node = quotes()
    node.run()
    table = TimeIndexMetaTable.get(identifier="quotes_daily")
    result = table.delete_after_date("2024-01-08T00:00:00Z", dimension_filters={"unique_identifier": ["BRK/B"]})
    assert result["ok"] is True and result["meta_table_uid"] == table.uid
    assert result["deleted_count"] == 3  # 8th, 9th, 10th inclusive
    assert result["table_empty"] is False
    assert result["dimension_filters"] == {"unique_identifier": ["BRK/B"]}
    assert result["stats"]["multi_index_stats"]["BRK/B"]["max"] == "2024-01-07T00:00:00Z"
    assert result["stats"]["multi_index_stats"]["AAPL"]["max"] == "2024-01-10T00:00:00Z"
    stats = node.compute_update_statistics()
    assert stats.get_last_update_index_2d("BRK/B") == dt.datetime(2024, 1, 7, tzinfo=UTC)
    _, written = node.run()  # the updater recomputes from the new watermark: restores 3 rows, duplicates none
    assert node.get_df_between_dates().height == 20
    everything = table.delete_after_date(dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert everything["deleted_count"] == 20 and everything["table_empty"] is True


def test_delete_after_date_dry_run_counts_and_changes_nothing(any_lake):
    """A dry run says how many rows the same call would delete (with the same scopes) and writes
    nothing; the scopes are echoed back."""
    node = quotes()
    node.run()
    table = TimeIndexMetaTable.get(identifier="quotes_daily")
    version, before = node.store.table().version(), node.get_df_between_dates()
    scoped = table.delete_after_date("2024-01-08", dimension_filters={"unique_identifier": "BRK/B"}, dry_run=True)
    assert scoped["dry_run"] is True and scoped["deleted_count"] == 3 and scoped["table_empty"] is False
    coordinates = [{"unique_identifier": "AAPL"}]
    pointed = table.delete_after_date("2024-01-09", index_coordinates=coordinates, dry_run=True)
    assert pointed["deleted_count"] == 2 and pointed["index_coordinates"] == coordinates
    assert table.delete_after_date("2024-01-01", dry_run=True)["deleted_count"] == 20
    assert table.delete_after_date("2030-01-01", dry_run=True)["deleted_count"] == 0
    assert node.store.table().version() == version
    assert_frame_equal(node.get_df_between_dates(), before)
    done = table.delete_after_date("2024-01-09", index_coordinates=coordinates)
    assert done["dry_run"] is False and done["deleted_count"] == 2 and done["index_coordinates"] == coordinates


def test_delete_after_date_bad_input_changes_nothing(local_lake):
    node = quotes()
    node.run()
    table = TimeIndexMetaTable.get(identifier="quotes_daily")
    version = node.store.table().version()
    with pytest.raises(LakenodesUserError, match="not an ISO-8601"):
        table.delete_after_date("next tuesday")
    with pytest.raises(LakenodesUserError, match="'portfolio_uid' is not an identity dimension"):
        table.delete_after_date("2024-01-01", dimension_filters={"portfolio_uid": ["p1"]})
    with pytest.raises(LakenodesUserError, match="non-empty"):
        table.delete_after_date("2024-01-01", dimension_filters={"unique_identifier": []})
    assert node.store.table().version() == version


def test_catalog_tables_readable_by_duckdb(local_lake):
    node = quotes()
    node.run()
    connection = duckdb.connect()
    table = local_lake.catalog_uri("tables")
    arrow = __import__("deltalake").DeltaTable(table).to_pyarrow_dataset()
    connection.register("catalog_tables", arrow)
    rows = connection.execute("SELECT identifier, storage_hash FROM catalog_tables").fetchall()
    assert ("quotes_daily", node.storage_hash) in rows


def test_get_table_of_another_lake_does_not_leak(tmp_path):
    with use_lake(tmp_path / "a"):
        quotes().run()
    with use_lake(tmp_path / "b"):
        assert TimeIndexMetaTable.filter() == []


def test_moved_lake_operates_on_its_new_location(tmp_path):
    import shutil

    with use_lake(tmp_path / "original"):
        quotes().run()
    shutil.copytree(tmp_path / "original", tmp_path / "moved")
    moved = Lake(tmp_path / "moved")
    with use_lake(moved):
        record = TimeIndexMetaTable.get(identifier="quotes_daily")
        assert record.table_uri == moved.table_uri(record.storage_hash)
        assert record.delete_after_date("2024-01-01")["deleted_count"] == 20
        record.add_label("moved")
    with use_lake(tmp_path / "original"):
        original = TimeIndexMetaTable.get(identifier="quotes_daily")
        assert original.stats()["row_count"] == 20 and "moved" not in original.labels


def test_a_fresh_process_finds_a_registered_updater_without_reading_the_updates(local_lake, monkeypatch):
    from lakenodes.lake.ledger import Ledger

    catalog.register_updater(local_lake, "quotes_1", "quotes_2", "", "tests.Quotes", {"source": "a"})
    clear_caches()  # a new process: only the lake is left

    def no_read(*args, **kwargs):
        raise AssertionError("the updates ledger was read")

    monkeypatch.setattr(Ledger, "latest", no_read)
    catalog.register_updater(local_lake, "quotes_1", "quotes_2", "", "tests.Quotes", {"source": "a"})
    assert catalog.updater_registered(local_lake, "quotes_1")


def test_an_updater_recorded_without_its_mark_is_marked_not_recorded_again(local_lake):
    import shutil
    from pathlib import Path

    from lakenodes.lake.ledger import MARKS_DIR

    catalog.register_updater(local_lake, "quotes_1", "quotes_2", "", "tests.Quotes", {})
    shutil.rmtree(Path(local_lake.catalog_uri("updates")) / MARKS_DIR)  # a lake from before marks, or a crash
    clear_caches()
    catalog.register_updater(local_lake, "quotes_1", "quotes_2", "", "tests.Quotes", {})
    assert [row["update_hash"] for row in catalog.updates_ledger(local_lake).read().to_pylist()] == ["quotes_1"]
    assert catalog.updates_ledger(local_lake).marked("quotes_1")


def test_a_fresh_process_registers_an_unchanged_table_without_reading_the_tables(local_lake, monkeypatch):
    from lakenodes.catalog.records import TableRecord
    from lakenodes.lake.ledger import Ledger

    def record(description: str) -> TableRecord:
        return TableRecord(uid=table_uid("quotes_2"), storage_hash="quotes_2", identifier="marked_quotes",
                           description=description, index_names=["time_index"],
                           table_uri=local_lake.table_uri("quotes_2"))

    assert catalog.register_table(local_lake, record("first"))
    clear_caches()  # a new process: only the lake is left
    reads = []
    original = Ledger.latest
    monkeypatch.setattr(Ledger, "latest", lambda self, *a, **k: reads.append(self.name) or original(self, *a, **k))
    assert not catalog.register_table(local_lake, record("first"))
    assert "tables" not in reads
    assert catalog.register_table(local_lake, record("second"))  # a changed record is stored
    assert catalog.table_record(local_lake, "quotes_2").description == "second"


def test_a_new_version_of_a_table_takes_over_the_identifier_when_repointed_before_its_first_run(any_lake):
    """Regression: the run claimed the identifier before creating its table and repoint_identifier
    needed the table to exist, so a schema change could not keep its published name."""
    from lakenodes import repoint_identifier

    old = quotes()
    old.run()
    successor = quotes(source="vendor_v2")  # another storage hash, the same identifier
    with pytest.raises(NodeRunError, match=r"repoint_identifier\('quotes_daily', node\)"):
        successor.run()
    with pytest.raises(NotFoundError, match="pass the node itself"):
        repoint_identifier("quotes_daily", successor.storage_hash, lake=any_lake)  # a hash with no table yet
    repoint_identifier("quotes_daily", successor)
    successor.run()
    assert TimeIndexMetaTable.get(identifier="quotes_daily").storage_hash == successor.storage_hash
    assert catalog.table_record(any_lake, successor.storage_hash).identifier == "quotes_daily"
    assert catalog.table_record(any_lake, old.storage_hash).identifier is None
    old.run()  # the old updater keeps writing its own table, no longer under that name
    assert TimeIndexMetaTable.get(identifier="quotes_daily").storage_hash == successor.storage_hash


def test_cli_repoint_moves_an_identifier_between_written_tables(local_lake):
    from typer.testing import CliRunner

    from lakenodes.cli import app

    old, new, named = quotes(), quotes(source="vendor_v2", identifier=None), quotes(source="c", identifier="quotes_c")
    for node in (old, new, named):
        node.run()
    invoke = lambda *args: CliRunner().invoke(app, ["--lake", local_lake.uri, "data-node", *args])  # noqa: E731
    # regression (review): a table published under another name lost it (its record names one identifier)
    refused = invoke("repoint", "quotes_daily", named.storage_hash)
    assert refused.exit_code == 2 and "is published as 'quotes_c'" in refused.stderr
    assert TimeIndexMetaTable.get(identifier="quotes_c").storage_hash == named.storage_hash
    moved = invoke("repoint", "quotes_daily", new.storage_hash, "--json")
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout) == {"ok": True, "identifier": "quotes_daily", "storage_hash": new.storage_hash,
                                        "previous": old.storage_hash}
    assert TimeIndexMetaTable.get(identifier="quotes_daily").storage_hash == new.storage_hash
    missing = invoke("repoint", "quotes_daily", "no_such_table")
    assert missing.exit_code == 2 and "no_such_table" in missing.stderr


@pytest.mark.parametrize("identifier, problem", [
    ("", "1-255 printable characters"), ("   ", "not only spaces"), (None, "an identifier is a string"),
    ("x" * 256, "1-255 printable characters"), ("bad\nname", "1-255 printable characters"),
])
def test_repoint_refuses_an_identifier_no_table_could_carry_and_changes_nothing(local_lake, identifier, problem):
    """Regression: ``None`` failed with AttributeError and "" was claimed as a name."""
    from lakenodes import ConfigurationError

    old = quotes()
    old.run()
    with pytest.raises(ConfigurationError, match=re.escape(problem)):
        repoint_identifier(identifier, old.storage_hash)
    assert resolve_identifier(local_lake, "quotes_daily") == old.storage_hash
    assert catalog.table_record(local_lake, old.storage_hash).identifier == "quotes_daily"


@pytest.mark.parametrize("own", ["quotes_v2", None])
def test_repoint_to_a_node_publishing_another_name_is_refused_before_anything_moves(local_lake, own):
    """Regression: the node's run then recorded its table under its own name (or none), and the
    repointed identifier pointed at a table no catalog record named."""
    from lakenodes import ConfigurationError

    old = quotes()
    old.run()
    successor = quotes(identifier=own, source="vendor_v2")
    publishes = "publishes identifier 'quotes_v2'" if own else "publishes no identifier"
    with pytest.raises(ConfigurationError, match=f"Quotes {publishes}: give it node_metadata identifier='quotes_daily'"):
        repoint_identifier("quotes_daily", successor)
    assert resolve_identifier(local_lake, "quotes_daily") == old.storage_hash
    with pytest.raises(ConfigurationError, match="takes a DataNode or a storage hash, got int"):
        repoint_identifier("quotes_daily", 42)
    with pytest.raises(ConfigurationError, match="only whitespace"):  # regression (review): recorded as is
        repoint_identifier("quotes_daily", old.storage_hash, namespace="  ")
    assert catalog.table_record(local_lake, old.storage_hash).namespace == ""


def test_a_run_publishing_no_metadata_keeps_the_tables_identifier(local_lake):
    """A second job of the same updater (a backfill, a manual `lakenodes run`) whose configuration
    leaves out the runtime-only node_metadata used to record the table without its identifier,
    description and frequency: `data-node detail quotes_daily` then found no table."""
    published, bare = quotes(), quotes(identifier=None)
    assert published.storage_hash == bare.storage_hash
    published.run()
    clear_caches()  # the backfill is another process
    bare.run()
    clear_caches()
    record = TimeIndexMetaTable.get(identifier="quotes_daily")
    assert record.storage_hash == published.storage_hash
    assert (record.description, record.data_frequency_id, record.labels) == ("Daily quotes", "1d", ["prices"])
    assert [r.identifier for r in TimeIndexMetaTable.filter(storage_hash=published.storage_hash)] == ["quotes_daily"]


def test_each_updaters_last_run_and_count_are_its_own_among_the_lakes_runs(local_lake):
    """``updates list`` and ``updates runs`` read one updater's runs out of every run of the lake
    (the runs of runs started at the same moment in the order they were recorded): the same answers
    whether the runs are folded or pending, and whichever updater recorded in between."""
    first, second = (Quotes(ScopedQuoteConfig(uids=[uid], offset_start=DAYS[0] - dt.timedelta(days=1)))
                     for uid in ("AAPL", "BRK/B"))
    first.run()
    second.run()
    moment = dt.datetime(2030, 1, 1, tzinfo=UTC)
    for status, updater, pending in (("success", first, False), ("success", second, True),
                                     ("error", first, True), ("success", second, False)):
        catalog.record_run(local_lake, {
            "run_id": f"{status}-{updater.update_hash}-{pending}", "update_hash": updater.update_hash,
            "storage_hash": updater.storage_hash, "started_at": moment, "finished_at": moment, "status": status,
            "rows_written": 0, "error": "boom" if status == "error" else None, "host": "h"}, pending=pending)
    processes = {p["update_hash"]: p for p in catalog.update_processes(local_lake)}
    assert (processes[first.update_hash]["runs"], processes[first.update_hash]["last_status"]) == (3, "error")
    assert processes[first.update_hash]["last_error"] == "boom"
    assert (processes[second.update_hash]["runs"], processes[second.update_hash]["last_status"]) == (3, "success")
    history = catalog.run_history(local_lake, first.update_hash)
    assert [run["status"] for run in history] == ["success", "success", "error"]
    assert {run["update_hash"] for run in history} == {first.update_hash}
    assert len(catalog.run_history(local_lake)) == 6
