"""The ``lakenodes`` CLI over a lake built by the tutorial nodes: every command, human and --json,
exit codes 0/1/2 and one-line errors."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakenodes import Asset, Lake, LakeConfigurationError, TimeIndexMetaTable, use_lake
from lakenodes.cli import app

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from examples.run_tutorial import TUTORIAL_ASSETS  # noqa: E402
from examples.tutorial_nodes import (  # noqa: E402
    PROJECT_ID,
    SIMULATED_PRICES_IDENTIFIER,
    DailyRandomNumber,
    PriceSimulConfig,
    RandomDataNodeConfig,
    SimulatedPrices,
    VolatilityConfig,
)

RANDOM_ID = f"example_random_number_{PROJECT_ID}"
DAYS = 5  # simulated days per asset: offset_start + 1 day .. yesterday
runner = CliRunner()
search_wired = pytest.mark.skipif(
    not hasattr(TimeIndexMetaTable, "description_search"), reason="search not wired"
)


def cli(*args: str, lake: Lake | None = None, input: str | None = None, env: dict | None = None):
    prefix = ["--lake", lake.uri] if lake is not None else []
    return runner.invoke(app, [*prefix, *args], input=input, env=env)


def ok(*args: str, lake: Lake | None = None, **kwargs) -> str:
    result = cli(*args, lake=lake, **kwargs)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def ok_json(*args: str, lake: Lake | None = None, **kwargs):
    return json.loads(ok(*args, "--json", lake=lake, **kwargs))


def assert_one_line_error(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def build_tutorial_lake(path: Path) -> Lake:
    """Seed 001/000: two DailyRandomNumber updaters (std is update_only) and two SimulatedPrices
    asset batches, each pair writing one table."""
    lake = Lake(path)
    start = datetime.datetime.now(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with use_lake(lake):
        for std in (VolatilityConfig(center=0.5, skew=False), VolatilityConfig(center=2.0, skew=True)):
            DailyRandomNumber(config=RandomDataNodeConfig(mean=0.0, std=std)).run()
        Asset.batch_get_or_register_custom_assets(TUTORIAL_ASSETS)
        for tickers in (["NVDA", "AAPL"], ["JPM", "GS", "BRK.B"]):
            config = PriceSimulConfig(asset_list=Asset.filter(ticker__in=tickers),
                                      offset_start=start - datetime.timedelta(days=DAYS + 1))
            SimulatedPrices(config=config).run()
    return lake


@pytest.fixture(scope="module")
def tutorial_lake(tmp_path_factory) -> Lake:
    """A tutorial lake shared by the read-only tests."""
    return build_tutorial_lake(tmp_path_factory.mktemp("cli") / "lake")


@pytest.fixture
def lake_copy(tmp_path, monkeypatch) -> Lake:
    """A private tutorial lake for commands that change it (built, not copied: the catalog
    records absolute table URIs); every run is folded into ``_catalog/runs`` at once (one file each)."""
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "1")
    return build_tutorial_lake(tmp_path / "lake")


def table(lake: Lake, identifier: str) -> TimeIndexMetaTable:
    return TimeIndexMetaTable.get(identifier=identifier, lake=lake)


# -- data-node list / detail / identifiers ------------------------------------------------------
def test_list_filters_by_identifier_human_and_json(tutorial_lake):
    random = table(tutorial_lake, RANDOM_ID)
    human = ok("data-node", "list", "--filter", "identifier__contains=example_random_number_", lake=tutorial_lake)
    for value in (random.uid, RANDOM_ID, random.storage_hash, "1d", "time_index", "random_number"):
        assert value in human
    assert SIMULATED_PRICES_IDENTIFIER not in human

    document = ok_json("data-node", "list", "--filter", "identifier__contains=example_random_number_", lake=tutorial_lake)
    assert document["count"] == 1
    [row] = document["results"]
    assert (row["uid"], row["identifier"], row["storage_hash"]) == (random.uid, RANDOM_ID, random.storage_hash)
    assert row["last_index_value"] == random.stats()["last_time_index_value"] and row["row_count"] == 1

    everything = ok_json("data-node", "list", lake=tutorial_lake)
    assert {r["identifier"] for r in everything["results"]} == {RANDOM_ID, SIMULATED_PRICES_IDENTIFIER}
    assert ok_json("data-node", "list", "-f", "namespace=test", lake=tutorial_lake)["count"] == 0


@pytest.mark.parametrize("output", ["table", "--json"])
def test_a_reader_closing_stdout_ends_the_command_quietly(tutorial_lake, output):
    """``lakenodes ... | head -1``: rich's console turned the closed pipe into SystemExit(1), reported
    as "sys.exit(1) was called while the command ran"."""
    arguments = ["--lake", tutorial_lake.uri, *([output] if output == "--json" else []), "data-node", "detail",
                 SIMULATED_PRICES_IDENTIFIER]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes a byte
    try:
        done = subprocess.run([sys.executable, "-m", "lakenodes", *arguments], cwd=REPO, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == "", done.stderr


def test_list_filters_by_recording_time_and_column(tutorial_lake):
    """Date filters and column names typed as text (bug: a TypeError and exit 1; no match)."""
    assert ok_json("data-node", "list", "-f", "recorded_at__gte=2000-01-01", lake=tutorial_lake)["count"] == 2
    assert ok_json("data-node", "list", "-f", "recorded_at__gt=2999-01-01T00:00:00Z", lake=tutorial_lake)["count"] == 0
    listed = ok_json("data-node", "list", "-f", "columns__contains=random_number", lake=tutorial_lake)
    assert [row["identifier"] for row in listed["results"]] == [RANDOM_ID]
    refused = cli("data-node", "list", "-f", "recorded_at__gt=soon", lake=tutorial_lake)
    assert refused.exit_code == 2 and refused.stderr.strip().splitlines() == [
        "error: lookup recorded_at__gt='soon' is not an ISO-8601 date or datetime (e.g. '2026-01-31' or "
        "'2026-01-31T00:00:00Z')"]


def test_global_options_work_after_the_command_too(tutorial_lake):
    result = runner.invoke(app, ["data-node", "list", "--json", "--lake", tutorial_lake.uri])
    assert result.exit_code == 0 and json.loads(result.stdout)["count"] == 2
    result = runner.invoke(app, ["data-node", "list"], env={"LAKENODES_URI": tutorial_lake.uri})
    assert result.exit_code == 0 and RANDOM_ID in result.stdout


def test_detail_by_uid_identifier_or_storage_hash(tutorial_lake):
    prices = table(tutorial_lake, SIMULATED_PRICES_IDENTIFIER)
    documents = [ok_json("data-node", "detail", ref, lake=tutorial_lake)
                 for ref in (prices.uid, SIMULATED_PRICES_IDENTIFIER, prices.storage_hash)]
    assert all(document["table"]["uid"] == prices.uid for document in documents)
    document = documents[0]
    assert document["table_uri"] == prices.table_uri
    assert document["stats"]["row_count"] == 5 * DAYS and set(document["stats"]["multi_index_stats"]) == {
        "NVDA", "AAPL", "JPM", "GS", "BRK/B"}
    assert len(document["update_processes"]) == 2
    snippets = document["read_snippets"]
    assert f'pl.scan_delta("{prices.table_uri}")' in snippets["polars"]
    assert f"delta_scan('{prices.table_uri}')" in snippets["duckdb"]
    assert f'spark.read.format("delta").load("{prices.table_uri}")' in snippets["spark"]

    human = ok("data-node", "detail", SIMULATED_PRICES_IDENTIFIER, lake=tutorial_lake)
    for value in (prices.uid, prices.storage_hash, prices.table_uri, "close", "BRK/B", "pl.scan_delta",
                  "delta_scan", 'spark.read.format("delta")', "unique_identifier"):
        assert value in human


def test_org_unique_identifiers(tutorial_lake):
    document = ok_json("data-node", "org-unique-identifiers", lake=tutorial_lake)
    pairs = {(row["identifier"], row["namespace"], row["storage_hash"]) for row in document["results"]}
    assert pairs == {(t.identifier, "", t.storage_hash) for t in TimeIndexMetaTable.filter(lake=tutorial_lake)}
    human = ok("data-node", "org-unique-identifiers", lake=tutorial_lake)
    assert RANDOM_ID in human and SIMULATED_PRICES_IDENTIFIER in human


# -- run-query ------------------------------------------------------------------------------------
def test_run_query_human_json_and_refusals(tutorial_lake):
    sql = f"SELECT unique_identifier, count(*) AS n FROM {SIMULATED_PRICES_IDENTIFIER} GROUP BY 1 ORDER BY 1"
    human = ok("data-node", "run-query", SIMULATED_PRICES_IDENTIFIER, sql, lake=tutorial_lake)
    assert "BRK/B" in human and "5 row(s)" in human

    envelope = ok_json("data-node", "run-query", SIMULATED_PRICES_IDENTIFIER, sql, "--max-rows", "2", lake=tutorial_lake)
    assert envelope["ok"] and envelope["truncated"] and envelope["row_count"] == 2
    assert envelope["results"] == [{"unique_identifier": "AAPL", "n": DAYS}, {"unique_identifier": "BRK/B", "n": DAYS}]
    assert envelope["meta_table_uid"] == table(tutorial_lake, SIMULATED_PRICES_IDENTIFIER).uid

    refused = cli("data-node", "run-query", SIMULATED_PRICES_IDENTIFIER, "DROP TABLE x", lake=tutorial_lake)
    assert_one_line_error(refused, 2, "forbidden_statement")
    refused_json = cli("data-node", "run-query", SIMULATED_PRICES_IDENTIFIER, "DELETE FROM x", "--json", lake=tutorial_lake)
    assert refused_json.exit_code == 2
    envelope = json.loads(refused_json.stdout)
    assert envelope["ok"] is False and envelope["error"]["kind"] == "forbidden_statement"


# -- delete-after-date ----------------------------------------------------------------------------
def test_delete_after_date_asks_unless_yes_and_scopes_by_dimension(lake_copy):
    prices = table(lake_copy, SIMULATED_PRICES_IDENTIFIER)
    before = prices.stats()
    last = datetime.datetime.fromisoformat(before["last_time_index_value"].replace("Z", "+00:00"))
    cutoff = (last - datetime.timedelta(days=1)).date().isoformat()
    args = ("data-node", "delete-after-date", SIMULATED_PRICES_IDENTIFIER, cutoff, "--dimension-filter", "unique_identifier=AAPL")

    declined = cli(*args, lake=lake_copy, input="n\n")
    assert declined.exit_code == 1 and "nothing was deleted" in declined.stderr
    assert f"Delete 2 row(s) of {SIMULATED_PRICES_IDENTIFIER} with time_index >= {cutoff}" in declined.stderr  # counted first
    dry = ok(*args, "--dry-run", lake=lake_copy)
    assert dry.strip() == (f"would delete 2 row(s) of {SIMULATED_PRICES_IDENTIFIER} with time_index >= {cutoff}T00:00:00Z "
                           "where {'unique_identifier': ['AAPL']} (unique_identifier=AAPL: 2 row(s))")
    dry_json = ok_json(*args, "--dry-run", lake=lake_copy)
    assert dry_json["dry_run"] is True and dry_json["deleted_count"] == 2
    nothing = ok(*args[:3], "2100-01-01", lake=lake_copy)  # no row matches: no question, no stdin needed
    assert nothing.startswith("deleted 0 row(s)")
    no_stdin = cli(*args, lake=lake_copy)  # e.g. under cron: refuse rather than hang or guess
    assert no_stdin.exit_code == 2 and no_stdin.stderr.strip().splitlines()[-1].startswith("error: no confirmation")
    assert table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats() == before

    # regression: --json skipped the confirmation (and deleted without --yes)
    every_asset = ("data-node", "delete-after-date", SIMULATED_PRICES_IDENTIFIER, cutoff)
    json_no_stdin = cli(*every_asset, "--json", lake=lake_copy)
    assert json_no_stdin.exit_code == 2 and json.loads(json_no_stdin.stdout)["ok"] is False
    assert json_no_stdin.stdout.startswith("{")  # regression: click's prompt put a space before the document
    assert "no confirmation on stdin: pass --yes" in json_no_stdin.stderr
    json_declined = cli(*every_asset, "--json", lake=lake_copy, input="n\n")
    assert json_declined.exit_code == 1 and json.loads(json_declined.stdout)["ok"] is False
    assert json_declined.stdout.startswith("{") and "[y/N]" in json_declined.stderr
    assert table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats() == before

    accepted = ok(*args, lake=lake_copy, input="y\n")
    assert "deleted 2 row(s)" in accepted
    result = ok_json(*every_asset, "--yes", lake=lake_copy)
    assert result["ok"] and result["deleted_count"] == 4 * 2 and result["table_empty"] is False
    after = table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats()
    assert after["row_count"] == before["row_count"] - 10
    assert after["last_time_index_value"] < before["last_time_index_value"]

    random_result = ok("data-node", "delete-after-date", RANDOM_ID, "2000-01-01", "--yes", lake=lake_copy)
    assert "deleted 1 row(s)" in random_result and "(table is empty)" in random_result


def test_a_comma_list_in_a_dimension_filter_deletes_any_of_its_values(lake_copy):
    """Regression: `-d unique_identifier=NVDA,AAPL` was one identity 'NVDA,AAPL' and deleted 0 rows, silently."""
    before = table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats()
    args = ("data-node", "delete-after-date", SIMULATED_PRICES_IDENTIFIER, "2000-01-01", "-d")
    dry = ok_json(*args, "unique_identifier=NVDA, AAPL,ZZZ", "--dry-run", lake=lake_copy)
    assert dry["deleted_count"] == 2 * DAYS and dry["dimension_filters"] == {"unique_identifier": ["NVDA", "AAPL", "ZZZ"]}
    assert dry["matched"] == {"unique_identifier": {"NVDA": DAYS, "AAPL": DAYS, "ZZZ": 0}}
    asked = cli(*args, "unique_identifier=NVDA,AAPL", lake=lake_copy, input="n\n")
    assert asked.exit_code == 1 and "(unique_identifier=NVDA: 5 row(s); unique_identifier=AAPL: 5 row(s))?" in asked.stderr
    assert table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats() == before
    nothing = ok(*args, "unique_identifier=ZZZ,YYY", "--yes", lake=lake_copy)
    assert nothing.strip().endswith("no row matched, the table is unchanged")
    assert table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats() == before
    assert "a comma list means any of its values" in " ".join(ok(*args[:2], "--help").split())
    assert ok_json(*args, "unique_identifier=NVDA,AAPL", "--yes", lake=lake_copy)["deleted_count"] == 2 * DAYS
    assert table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats()["row_count"] == before["row_count"] - 2 * DAYS


def test_delete_after_date_rejects_bad_input_and_keeps_data(lake_copy):
    before = table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats()
    cases = [
        (("2026-13-45",), "is not an ISO-8601 date"),
        (("2026-01-01", "--dimension-filter", "ticker=AAPL"), "not an identity dimension"),
        (("2026-01-01", "--dimension-filter", "unique_identifier"), "is not K=V"),
        # regression: taken as the value '' (matching nothing, so deleting nothing, said as a success)
        (("2026-01-01", "-d", "unique_identifier="), "unique_identifier='': a value is empty"),
    ]
    for extra, message in cases:
        result = cli("data-node", "delete-after-date", SIMULATED_PRICES_IDENTIFIER, *extra, "--yes", lake=lake_copy)
        assert_one_line_error(result, 2, message)
    assert table(lake_copy, SIMULATED_PRICES_IDENTIFIER).stats() == before


# -- labels ---------------------------------------------------------------------------------------
def test_add_and_remove_label(lake_copy):
    assert "labels of" in ok("data-node", "add-label", RANDOM_ID, "daily", lake=lake_copy)
    document = ok_json("data-node", "add-label", RANDOM_ID, "tutorial", lake=lake_copy)
    assert document["ok"] is True and document["labels"] == ["daily", "tutorial"]
    listed = ok_json("data-node", "list", "--filter", "labels__contains=daily", lake=lake_copy)
    assert [row["identifier"] for row in listed["results"]] == [RANDOM_ID]
    assert ok_json("data-node", "remove-label", RANDOM_ID, "daily", lake=lake_copy)["labels"] == ["tutorial"]
    assert ok_json("data-node", "list", "--filter", "labels__contains=daily", lake=lake_copy)["count"] == 0
    assert table(lake_copy, RANDOM_ID).storage_hash == table(lake_copy, RANDOM_ID).storage_hash
    assert_one_line_error(cli("data-node", "add-label", RANDOM_ID, " ", lake=lake_copy), 2, "LABEL")


def test_a_label_with_surrounding_whitespace_or_a_line_break_is_refused_and_nothing_stored(lake_copy):
    """Regression: `add-label T "daily "` (a stray space in a script) or a label holding a newline was
    stored as typed: `data-node list -f labels__contains=daily` no longer found the table,
    `remove-label T daily` said it had no such label while the listing showed it, and the label
    broke every table that printed it into two lines."""
    ok("data-node", "add-label", RANDOM_ID, "daily", lake=lake_copy)
    for label in ("daily ", " weekly", "end\nof day", "tab\there"):
        assert_one_line_error(cli("data-node", "add-label", RANDOM_ID, label, lake=lake_copy), 2, f"LABEL {label!r}")
        assert table(lake_copy, RANDOM_ID).labels == ["daily"]
    assert ok_json("data-node", "add-label", RANDOM_ID, "end of day", lake=lake_copy)["labels"] == ["daily", "end of day"]


def test_removing_a_label_the_table_lacks_warns_naming_it(lake_copy):
    """Regression: `remove-label` of a label the table does not have (a typo) exited 0 and printed
    the labels without a word about it."""
    ok("data-node", "add-label", RANDOM_ID, "daily", lake=lake_copy)
    removed = cli("data-node", "remove-label", RANDOM_ID, "dialy", lake=lake_copy)
    assert removed.exit_code == 0 and "labels of" in removed.stdout and "daily" in removed.stdout
    assert removed.stderr.strip().splitlines() == [f"warning: {RANDOM_ID} has no label 'dialy': nothing removed"]
    document = json.loads(cli("data-node", "remove-label", RANDOM_ID, "dialy", "--json", lake=lake_copy).stdout)
    assert document["ok"] is True and document["labels"] == ["daily"]
    assert document["warnings"] == [f"{RANDOM_ID} has no label 'dialy': nothing removed"]
    present = cli("data-node", "remove-label", RANDOM_ID, "daily", "--json", lake=lake_copy)
    assert present.stderr == "" and "warnings" not in json.loads(present.stdout)


# -- updates and assets ---------------------------------------------------------------------------
def test_updates_list_shows_two_updaters_for_one_storage(tutorial_lake):
    random = table(tutorial_lake, RANDOM_ID)
    document = ok_json("updates", "list", lake=tutorial_lake)
    random_updaters = [p for p in document["results"] if p["storage_hash"] == random.storage_hash]
    assert len(random_updaters) == 2 and len({p["update_hash"] for p in random_updaters}) == 2
    assert all(p["identifier"] == RANDOM_ID and p["last_status"] == "success" and p["runs"] == 1
               for p in random_updaters)
    assert sorted(p["last_rows_written"] for p in random_updaters) == [0, 1]

    human = ok("updates", "list", lake=tutorial_lake)
    assert human.count(random.storage_hash) == 2
    for updater in random_updaters:
        assert updater["update_hash"] in human


def test_updates_runs(tutorial_lake):
    document = ok_json("updates", "runs", lake=tutorial_lake)
    assert document["count"] == 4 and {run["status"] for run in document["results"]} == {"success"}
    assert (document["total"], document["truncated"]) == (4, False)
    # regression: --limit cut the history without a word, under --json too
    last_two = ok_json("updates", "runs", "--limit", "2", lake=tutorial_lake)
    assert (last_two["count"], last_two["total"], last_two["truncated"]) == (2, 4, True)
    assert last_two["results"] == document["results"][-2:]
    assert "the last 2 of 4 runs (--limit N shows more)" in ok("updates", "runs", "--limit", "2", lake=tutorial_lake)
    update_hash = document["results"][0]["update_hash"]
    only = ok_json("updates", "runs", update_hash, lake=tutorial_lake)
    assert [run["update_hash"] for run in only["results"]] == [update_hash]
    assert update_hash in ok("updates", "runs", "--limit", "1", update_hash, lake=tutorial_lake)
    assert_one_line_error(cli("updates", "runs", "nope_123", lake=tutorial_lake), 2, "lakenodes updates list")


def test_assets_list(tutorial_lake):
    document = ok_json("assets", "list", "--filter", "ticker__in=NVDA,BRK.B", lake=tutorial_lake)
    assert [asset["unique_identifier"] for asset in document["results"]] == ["BRK/B", "NVDA"]
    human = ok("assets", "list", lake=tutorial_lake)
    assert all(name in human for name in ("NVIDIA", "Goldman Sachs", "BRK/B"))


def test_a_comma_list_with_spaces_matches_every_value(tutorial_lake):
    """Regression: `--filter 'ticker__in=NVDA, AAPL'` listed NVDA alone: ' AAPL' (with its space) matched nothing."""
    for args in (("assets", "list", "--filter", "ticker__in=NVDA, AAPL"),
                 ("data-node", "list", "--filter", f"identifier__in= {RANDOM_ID} , {SIMULATED_PRICES_IDENTIFIER}")):
        done = _lakenodes("--lake", tutorial_lake.uri, "--json", *args)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["count"] == 2


def test_in_filters_take_a_json_list(tutorial_lake):
    """Regression: `ticker__in=["NVDA","AAPL"]` was split on commas and silently matched nothing."""
    document = ok_json("assets", "list", "--filter", 'ticker__in=["NVDA", "AAPL"]', lake=tutorial_lake)
    assert [asset["unique_identifier"] for asset in document["results"]] == ["AAPL", "NVDA"]
    assert ok_json("assets", "list", "--filter", "ticker__in=[]", lake=tutorial_lake)["count"] == 0
    listed = ok_json("data-node", "list", "--filter", f'identifier__in=["{RANDOM_ID}", "nope"]', lake=tutorial_lake)
    assert [row["identifier"] for row in listed["results"]] == [RANDOM_ID]
    comma = ok_json("data-node", "list", "--filter", f"identifier__in={RANDOM_ID},nope", lake=tutorial_lake)
    assert comma["results"] == listed["results"]
    refused = [
        ("assets", 'ticker__in=["NVDA","AAPL"', "is not a JSON list"),
        ("assets", 'ticker__in=[["NVDA"]]', "must be a list of strings or numbers"),
        ("assets", 'ticker__in=[{"a": 1}]', "must be a list of strings or numbers"),
        ("data-node", "identifier__in=[nope]", "is not a JSON list"),
    ]
    for group, bad, fragment in refused:
        assert_one_line_error(cli(group, "list", "--filter", bad, lake=tutorial_lake), 2, bad.partition("=")[0],
                              fragment)


def test_seed_spellings_are_hidden_aliases(tutorial_lake):
    """The seeds write `data_node ...` and `data-node run_query UID SQL` (seed 002)."""
    sql = f"SELECT count(*) AS n FROM {RANDOM_ID}"
    expected = ok_json("data-node", "run-query", RANDOM_ID, sql, lake=tutorial_lake)
    assert expected["results"] == [{"n": 1}]
    for spelling in (("data_node", "run_query"), ("data_node", "run-query"), ("data-node", "run_query")):
        assert ok_json(*spelling, RANDOM_ID, sql, lake=tutorial_lake)["results"] == expected["results"]
    assert ok_json("data_node", "list", lake=tutorial_lake)["count"] == 2
    assert "data_node" not in ok("--help") and "run_query" not in ok("data-node", "--help")
    missing = cli("data_node", "run_query", lake=tutorial_lake)  # usage errors name the canonical command
    assert_one_line_error(missing, 2, "Missing argument", "lakenodes data-node run-query --help")
    assert_one_line_error(cli("data_node", "no_such", lake=tutorial_lake), 2, "No such command 'no_such'")


def test_the_seeds_project_data_node_updates_spelling_lists_the_updaters(tutorial_lake):
    """Regression: the README said the seeds' `project data-node-updates list` (seeds 000, 001)
    works; it was "No such command 'project'"."""
    expected = ok_json("updates", "list", lake=tutorial_lake)
    assert expected["count"] >= 2
    for spelling in (("project", "data-node-updates"), ("project", "data_node_updates"), ("data-node-updates",)):
        assert ok_json(*spelling, "list", lake=tutorial_lake) == expected
    assert "project" not in ok("--help") and "data-node-updates" not in ok("--help")
    assert_one_line_error(cli("project", "refresh_token", lake=tutorial_lake), 2, "No such command 'refresh_token'")


def test_usage_errors_with_json_still_print_one_json_document(tutorial_lake):
    """Regression: a mistake the option parser catches printed no JSON with --json (other errors do)."""
    for args in (("updates", "runs", "--limit", "0", "--json"), ("--json", "data-node", "list", "--no-such-option")):
        result = cli(*args, lake=tutorial_lake)
        assert_one_line_error(result, 2)
        document = json.loads(result.stdout)
        assert document["ok"] is False and document["error"]["kind"] == "usage_error"
        assert document["error"]["message"] == result.stderr.strip().removeprefix("error: ")


@pytest.mark.parametrize("group", [("data-node",), ("updates",), ("assets",), ("project", "data-node-updates")])
def test_a_group_without_its_command_prints_a_json_document_with_json(tmp_path, group):
    """Regression: `lakenodes --json data-node` printed the group's help on stderr and nothing on stdout."""
    done = subprocess.run([sys.executable, "-m", "lakenodes", "--json", *group], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert json.loads(done.stdout) == {"ok": False, "error": {
        "kind": "usage_error", "message": f"Missing command. (see `lakenodes {' '.join(group)} --help`)"}}
    assert done.stderr.startswith(f"Usage: lakenodes {' '.join(group)} [OPTIONS] COMMAND")  # the help, as without --json
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args", [
    ("data-node", "list"), ("data-node", "detail", RANDOM_ID), ("data-node", "org-unique-identifiers"),
    ("data-node", "history", RANDOM_ID), ("data-node", "diff", RANDOM_ID, "--from", "0"),
    ("data-node", "run-query", RANDOM_ID, f"SELECT count(*) AS n FROM {RANDOM_ID}"),
    ("updates", "list"), ("updates", "runs"), ("updates", "reconcile"), ("assets", "list"), ("vacuum", "--dry-run"),
])
def test_every_json_document_says_ok(tutorial_lake, args):
    """Regression: `data-node diff`, `detail` and `history` (and the listings) printed documents
    without the "ok" that `run`, `optimize`, `vacuum` and `delete-after-date` carry."""
    assert next(iter(ok_json(*args, lake=tutorial_lake).items())) == ("ok", True)


def test_version():
    """Regression: `lakenodes --version` was an unknown option (exit 2)."""
    expected = f"lakenodes {importlib.metadata.version('lakenodes')}"
    assert ok("--version").strip() == expected
    process = _lakenodes("--version")
    assert (process.returncode, process.stdout.strip(), process.stderr) == (0, expected, "")
    # regression: --version printed text under --json (it ran before --json was read)
    for args in (("--json", "--version"), ("--version", "--json")):
        assert json.loads(ok(*args)) == {"ok": True, "name": "lakenodes",
                                         "version": importlib.metadata.version("lakenodes")}


# -- run ------------------------------------------------------------------------------------------
FAILING_NODES = textwrap.dedent('''
    from lakenodes import DataNode, DataNodeConfiguration

    class BrokenConfig(DataNodeConfiguration):
        source: str = "api"

    class Broken(DataNode):
        def __init__(self, config: BrokenConfig, **kwargs):
            super().__init__(config, **kwargs)

        def dependencies(self):
            return {}

        def update(self):
            raise RuntimeError("upstream API is down")
''')


@pytest.mark.parametrize("workers", [1, 2])
def test_run_reports_what_each_dependency_wrote(tmp_path, monkeypatch, workers):
    """Regression: `lakenodes run` printed (and put in --json) only the root node's rows, so a
    scheduled job never showed that its dependency wrote rows, or none."""
    monkeypatch.chdir(REPO)
    lake = Lake(tmp_path / "lake")
    target = "examples.tutorial_nodes:DailyRandomAddition"
    config = '{"mean": 0, "std": 1}'
    first = ok_json("run", target, "--config", config, "--workers", str(workers), lake=lake)
    [dependency] = first["dependencies"]
    assert dependency["node"] == "examples.tutorial_nodes.DailyRandomNumber" and dependency["rows_written"] == 1
    assert dependency["storage_hash"] == table(lake, RANDOM_ID).storage_hash and dependency["table_version"] is not None
    assert first["rows_written"] == 1
    lines = ok("run", target, "--config", config, "--workers", str(workers), lake=lake).splitlines()
    assert [line.split()[0] for line in lines] == ["DailyRandomNumber", "DailyRandomAddition"]
    assert all(line.endswith(": 0 row(s) written") for line in lines)


TREE_NODES = """
import datetime as dt
import polars as pl
from lakenodes import DataNode, DataNodeConfiguration

DAY = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

class Upstream(DataNode):
    config: DataNodeConfiguration

    def dependencies(self):
        return {}

    def update(self):
        return pl.DataFrame({"time_index": [DAY], "v": [1.0]})

class Downstream(DataNode):
    def __init__(self, config: DataNodeConfiguration):  # builds its dependency; takes no hash_namespace=
        self.upstream = Upstream(DataNodeConfiguration())
        super().__init__(config)

    def dependencies(self):
        return {"upstream": self.upstream}

    def update(self):
        return self.upstream.get_df_between_dates()
"""


def test_run_namespace_isolates_the_dependencies_a_node_builds(local_lake, tmp_path):
    """Regression: `lakenodes run -n ci` passed hash_namespace= to the root node only: a dependency
    its __init__ built (as the seeds' nodes do) wrote the production table, and a node whose __init__
    takes no hash_namespace= could not be run with -n at all. The node is now built inside the
    namespace, as the seeds' `with hash_namespace(...)` form does."""
    (tmp_path / "tree_nodes.py").write_text(TREE_NODES)
    ran = ok_json("run", f"{tmp_path / 'tree_nodes.py'}:Downstream", "--namespace", "ci", lake=local_lake)
    assert ran["namespace"] == "ci" and ran["rows_written"] == 1
    assert [dependency["rows_written"] for dependency in ran["dependencies"]] == [1]
    tables = ok_json("data-node", "list", lake=local_lake)["results"]
    assert sorted((record["source_class"], record["namespace"]) for record in tables) == [
        ("tree_nodes.Downstream", "ci"), ("tree_nodes.Upstream", "ci")]


def test_a_namespace_with_a_stray_space_is_refused_in_one_line(lake_copy, monkeypatch):
    """Regression: `lakenodes run ... -n "ci "` was not the namespace `ci`; now one line, exit 2, nothing written."""
    monkeypatch.chdir(REPO)
    before = sorted(str(path.relative_to(lake_copy.uri)) for path in Path(lake_copy.uri).rglob("*"))
    for namespace in ("ci ", " ci"):
        assert_one_line_error(cli("run", "examples.tutorial_nodes:DailyRandomNumber", "--config", '{"mean": 0.0}',
                                  "-n", namespace, lake=lake_copy),
                              2, f"hash namespace {namespace!r} starts or ends with whitespace: pass 'ci'")
        assert_one_line_error(cli("data-node", "detail", RANDOM_ID, "-n", namespace, lake=lake_copy),
                              2, f"hash namespace {namespace!r} starts or ends with whitespace")
    assert sorted(str(path.relative_to(lake_copy.uri)) for path in Path(lake_copy.uri).rglob("*")) == before


def test_run_exit_codes(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    lake = Lake(tmp_path / "fresh")  # `run` creates the lake
    target = "examples.tutorial_nodes:DailyRandomNumber"
    first = ok_json("run", target, "--config", '{"mean": 0.0}', lake=lake)
    assert first["ok"] and first["rows_written"] == 1 and first["namespace"] == ""
    assert first["storage_hash"] == table(lake, RANDOM_ID).storage_hash
    assert "0 row(s) written" in ok("run", target, "--config", '{"mean": 0.0}', lake=lake)
    namespaced = ok_json("run", "examples/tutorial_nodes.py:DailyRandomNumber", "--config", '{"mean": 0.0}',
                         "--namespace", "ci", lake=lake)
    assert namespaced["namespace"] == "ci" and namespaced["rows_written"] == 1
    assert namespaced["storage_hash"] != first["storage_hash"]
    config_file = tmp_path / "config.json"
    config_file.write_text('{"mean": 0.0}')
    assert ok_json("run", target, "--config", f"@{config_file}", lake=lake)["update_hash"] == first["update_hash"]

    (tmp_path / "cli_failing_nodes.py").write_text(FAILING_NODES)
    failed = cli("run", f"{tmp_path / 'cli_failing_nodes.py'}:Broken", lake=lake)
    assert_one_line_error(failed, 1, "update", "upstream API is down")
    failed_json = cli("run", f"{tmp_path / 'cli_failing_nodes.py'}:Broken", "--json", lake=lake)
    assert failed_json.exit_code == 1 and json.loads(failed_json.stdout)["error"]["kind"] == "run_error"
    runs = ok_json("updates", "runs", lake=lake)["results"]
    assert [run["status"] for run in runs].count("error") == 2

    mistakes = [
        (("run", target, "--config", '{"mean": "high"}'), "mean"),
        (("run", target, "--config", '{"mean": 0, "std": {"center": -1, "skew": true}}'), "std.center"),
        (("run", target, "--config", '{"mean": 0, "colour": 1}'), "colour"),
        (("run", target, "--config", "{not json"), "not valid JSON"),
        (("run", target, "--config", "[1]"), "JSON object"),
        (("run", target), "mean: Field required"),
        (("run", "examples.tutorial_nodes:Nope"), "DailyRandomNumber"),
        (("run", "examples.tutorial_nodes:PriceSimulConfig"), "not a DataNode class"),
        (("run", "no_such_module_xyz:Node"), "cannot import"),
        (("run", "DailyRandomNumber"), "MODULE:CLASS"),
        (("run", target, "--config", "@/nonexistent/config.json"), "cannot read --config file"),
        # regression: exit 1 ("retry later") for a configuration whose identifier another table holds
        (("run", target, "--config", '{"mean": 1.0}'), "IdentifierConflictError"),
    ]
    for args, fragment in mistakes:
        assert_one_line_error(cli(*args, lake=lake), 2, fragment)
    # regression: --verbose (docs/scheduling.md's Kubernetes job) turned a user mistake into tracebacks
    verbose = cli("--verbose", "run", target, "--config", '{"mean": 1.0}', lake=lake)
    assert verbose.exit_code == 2 and "Traceback" not in verbose.stderr
    assert [line for line in verbose.stderr.splitlines() if line.startswith("error:")] == [
        verbose.stderr.strip().splitlines()[-1]]
    failed_verbose = cli("--verbose", "run", f"{tmp_path / 'cli_failing_nodes.py'}:Broken", lake=lake)
    assert failed_verbose.exit_code == 1 and "Traceback" in failed_verbose.stderr  # a failure keeps its traceback


def test_a_lake_that_is_a_file_or_a_folder_of_other_things_is_a_one_line_mistake(tmp_path, monkeypatch):
    """Regressions: `--lake FILE run` failed with exit 1 and a Rust "NotADirectory" message; reading
    commands took any folder for an empty lake, and `search` wrote its index into it."""
    monkeypatch.chdir(REPO)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a lake")
    assert_one_line_error(cli("run", "examples.tutorial_nodes:DailyRandomNumber", "--config", '{"mean": 0.0}',
                              lake=Lake(a_file)), 2, "is a file")
    # regression: a lake under a file (`--lake notes.txt/lake`) failed the run in its write phase, exit 1
    under = subprocess.run([sys.executable, "-m", "lakenodes", "--lake", str(a_file / "lake"), "run",
                            "examples.tutorial_nodes:DailyRandomNumber", "--config", '{"mean": 0.0}'],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert (under.returncode, under.stderr) == (2, f"error: {a_file} is a file (and {a_file / 'lake'} would be under "
                                                   "it): a lake is a folder (or s3://bucket/prefix): check --lake / "
                                                   "LAKENODES_URI\n")
    assert a_file.read_text() == "not a lake"
    project = tmp_path / "project"
    project.mkdir()
    (project / "file.txt").write_text("x")
    for args in (("search", "price"), ("data-node", "list"), ("vacuum",), ("updates", "list")):
        assert_one_line_error(cli(*args, lake=Lake(project)), 2, "no lake at", "no _catalog")
    assert sorted(path.name for path in project.iterdir()) == ["file.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ok_json("data-node", "list", lake=Lake(empty))["count"] == 0  # a folder made for a lake


README_NODES = textwrap.dedent('''
    import datetime as dt
    import polars as pl
    from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, RecordDefinition

    class RatesConfig(DataNodeConfiguration):
        currency: str = "EUR"
        records: list[RecordDefinition] = [RecordDefinition(column_name="rate", dtype="float64")]
        node_metadata: DataNodeMetaData = DataNodeMetaData(identifier="fx_rates_daily", data_frequency_id="1d")

    class Undeclared(DataNode):
        """The README's DailyRates as it was: nothing says which configuration class it takes."""

        def dependencies(self):
            return {}

        def update(self) -> pl.DataFrame:
            last = self.update_statistics.max_time_index_value
            today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
            if last is not None and last >= today:
                return pl.DataFrame()
            return pl.DataFrame({"time_index": [today], "rate": [1.08]})

    class DailyRates(Undeclared):
        """The README's DailyRates: no __init__ of its own, `config: RatesConfig` on the class."""
        config: RatesConfig
''')


@pytest.fixture
def readme_nodes(tmp_path, monkeypatch):
    """The README's nodes as an importable module ``cli_readme_nodes`` (cwd = its folder)."""
    (tmp_path / "cli_readme_nodes.py").write_text(README_NODES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("cli_readme_nodes")
    sys.modules.pop("cli_readme_nodes", None)


def test_run_builds_the_configuration_class_the_node_declares(readme_nodes, tmp_path):
    """Regression: a node without its own __init__ was validated against the base
    DataNodeConfiguration: `{"currency": "USD"}` was refused and `{}` wrote a second, unnamed table."""
    lake = Lake(tmp_path / "lake")
    ran = ok_json("run", "cli_readme_nodes:DailyRates", "--config", "{}", lake=lake)
    in_python = readme_nodes.DailyRates(readme_nodes.RatesConfig())  # same module, same launch mode
    assert (ran["storage_hash"], ran["update_hash"]) == (in_python.storage_hash, in_python.update_hash)
    with use_lake(lake):
        _, written = in_python.run()
    assert written.height == 0  # the CLI run already wrote today's row to this very table
    [listed] = ok_json("data-node", "list", lake=lake)["results"]
    assert (listed["identifier"], listed["storage_hash"]) == ("fx_rates_daily", in_python.storage_hash)

    usd = ok_json("run", "cli_readme_nodes:DailyRates", "--config",
                  '{"currency": "USD", "node_metadata": {"identifier": "fx_rates_usd", "data_frequency_id": "1d"}}',
                  lake=lake)
    assert usd["rows_written"] == 1 and usd["storage_hash"] != in_python.storage_hash
    detail = ok_json("data-node", "detail", "fx_rates_usd", lake=lake)
    assert detail["table"]["build_configuration"]["currency"] == "USD"

    before = ok_json("data-node", "list", lake=lake)
    for config in ('{"currency": "USD"}', "{}"):
        refused = cli("run", "cli_readme_nodes:Undeclared", "--config", config, lake=lake)
        assert_one_line_error(refused, 2, "Undeclared", "annotate `config: MyConfig`", "Config = MyConfig")
    assert_one_line_error(cli("run", "cli_readme_nodes:DailyRates", "--config", '{"currency": 1}', lake=lake),
                          2, "not a valid RatesConfig", "currency")
    assert ok_json("data-node", "list", lake=lake) == before


def test_run_refuses_pathological_config_input(tmp_path, monkeypatch):
    """Regression: deep nesting and huge integers exited 1 (as a failed run); `@/dev/zero` read
    until MemoryError. All are bad input now: exit 2, one line, nothing written."""
    monkeypatch.chdir(REPO)
    lake = Lake(tmp_path / "fresh")
    target = "examples.tutorial_nodes:DailyRandomNumber"
    padded = '{"mean": 0.0' + " " * (1024 * 1024) + "}"
    (tmp_path / "big.json").write_text(padded)
    (tmp_path / "latin1.json").write_bytes(b'{"mean": 0.0, "x": "\xe9"}')
    deep = '{"mean": 0.0, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    cases = [
        ("@/dev/zero", "--config file '/dev/zero' is larger than 1 MiB"),
        (f"@{tmp_path / 'big.json'}", "is larger than 1 MiB"),
        (padded, "--config is larger than 1 MiB"),
        (deep, "nested too deeply"),
        ('{"mean": 0.0, "x": ' + "[" * 150 + "]" * 150 + "}", "nested too deeply"),
        ('{"mean": ' + "9" * 5000 + "}", "integer with more than 4300 digits"),
        (f"@{tmp_path / 'latin1.json'}", "not UTF-8"),
        (f"@{tmp_path}", "cannot read --config file"),
        ("@", "--config '@' names no file: write --config @path/to/config.json"),  # was "'': Is a directory"
        ("@ ", "--config '@ ' names no file"),
    ]
    for config, fragment in cases:
        assert_one_line_error(cli("run", target, "--config", config, lake=lake), 2, fragment)
    assert not Path(lake.uri).exists()


def test_a_config_file_with_a_byte_order_mark_runs_the_node(tmp_path):
    """Regression: a --config file saved with a UTF-8 byte order mark (Windows Notepad, PowerShell 5's
    `Out-File -Encoding utf8`) was refused as 'not valid JSON: Unexpected UTF-8 BOM'."""
    (tmp_path / "config.json").write_bytes(b'\xef\xbb\xbf{"mean": 0.0}')
    done = subprocess.run([sys.executable, "-m", "lakenodes", "--lake", str(tmp_path / "lake"), "--json", "run",
                           "examples.tutorial_nodes:DailyRandomNumber", "--config", f"@{tmp_path / 'config.json'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout)
    assert ran["rows_written"] == 1
    with use_lake(Lake(tmp_path / "lake")):
        assert ran["storage_hash"] == DailyRandomNumber(RandomDataNodeConfig(mean=0.0)).storage_hash


# -- errors ---------------------------------------------------------------------------------------
def test_user_mistakes_print_one_line_and_exit_2(tutorial_lake, tmp_path):
    cases = [
        (cli("data-node", "detail", "nope", lake=tutorial_lake), "lakenodes data-node list"),
        (cli("data-node", "detail", RANDOM_ID, "--namespace", "other", lake=tutorial_lake), "namespace 'other'"),
        (cli("data-node", "list", "--filter", "identifier", lake=tutorial_lake), "is not K=V"),
        (cli("data-node", "list", "--filter", "colour=red", lake=tutorial_lake), "unknown field 'colour'"),
        (cli("data-node", "list", "--filter", "identifier__near=x", lake=tutorial_lake), "unknown lookup operator"),
        (cli("--lake", "ftp://host/lake", "data-node", "list"), "unsupported lake URI scheme"),
        (cli("--lake", str(tmp_path / "missing"), "data-node", "list"), "no lake at"),
        (cli("data-node", "detail", lake=tutorial_lake), "Missing argument"),
        (cli("data-node", "run-query", RANDOM_ID, "SELECT 1", "--max-rows", "x", lake=tutorial_lake), "--max-rows"),
        (cli("no-such-command", lake=tutorial_lake), "No such command"),
    ]
    for result, fragment in cases:
        assert_one_line_error(result, 2, fragment)


def test_a_malformed_option_value_is_refused_naming_the_option_as_typed(tutorial_lake):
    """Regression: `data-node restore --to-timestamp 31/12/2024` said "to_timestamp='31/12/2024' is not
    an ISO-8601 date", `updates clean --before 12/31/2024` "before=...", `--older-than 3x` "older-than
    '3x'", no option at all "give exactly one of before ... and older-than", and `run-query --max-rows 0`
    "max_rows must be ...": the library's argument names, not the options the user typed (as
    `--as-of`, `--from` and DATE are named). Nothing is changed."""
    random = table(tutorial_lake, RANDOM_ID)
    versions = len(random.history())
    cases = [
        (("data-node", "restore", RANDOM_ID, "--to-timestamp", "31/12/2024", "--yes"), "--to-timestamp='31/12/2024'"),
        (("updates", "clean", "--before", "12/31/2024", "--yes"), "--before='12/31/2024'"),
        (("updates", "clean", "--older-than", "3x", "--yes"), "--older-than '3x' is not a duration"),
        (("updates", "clean", "--older-than", "-3d", "--yes"), "--older-than -3 days"),
        (("updates", "clean", "--yes"), "give exactly one of --before DATE"),
        (("data-node", "run-query", RANDOM_ID, "SELECT 1", "--max-rows", "0"), "'--max-rows'"),
    ]
    runs = ok_json("updates", "runs", lake=tutorial_lake)["total"]
    for args, fragment in cases:
        assert_one_line_error(cli(*args, lake=tutorial_lake), 2, fragment)
    assert len(random.history()) == versions and ok_json("updates", "runs", lake=tutorial_lake)["total"] == runs


def test_a_mistyped_or_cut_short_reference_is_refused_naming_the_close_match(tutorial_lake):
    """Regression: a typo of an identifier, a storage hash or uid cut short when copied from a narrow
    table, or an identifier typed in capitals got "no table with uid, identifier or storage hash ...",
    with no hint of the table meant; the operator had to list every table and compare by eye."""
    prices = table(tutorial_lake, SIMULATED_PRICES_IDENTIFIER)
    for ref, meant in [(RANDOM_ID.replace("number", "numbr"), RANDOM_ID), (RANDOM_ID.upper(), RANDOM_ID),
                       (prices.storage_hash[:22], prices.storage_hash), (prices.uid[:8], prices.uid)]:
        for args in (("data-node", "detail", ref), ("data-node", "history", ref), ("vacuum", "--dry-run", ref)):
            assert_one_line_error(cli(*args, lake=tutorial_lake), 2, f"no table with uid, identifier or storage hash "
                                  f"{ref!r}", f"did you mean {meant!r}?", "lakenodes data-node list")
    unrelated = assert_one_line_error(cli("data-node", "detail", "volumes", lake=tutorial_lake), 2, "no table")
    assert "did you mean" not in unrelated
    [updater, *_] = [p["update_hash"] for p in ok_json("updates", "list", lake=tutorial_lake)["results"]]
    assert_one_line_error(cli("updates", "runs", updater[:-6], lake=tutorial_lake), 2,
                          f"no update process {updater[:-6]!r}", f"did you mean {updater!r}?")


# -- maintenance ------------------------------------------------------------------------------------
def test_optimize_and_vacuum_commands(lake_copy):
    prices = table(lake_copy, SIMULATED_PRICES_IDENTIFIER)
    data_before = ok_json("data-node", "run-query", prices.storage_hash,
                          f"SELECT * FROM {prices.storage_hash} ORDER BY time_index, unique_identifier", lake=lake_copy)

    everything = ok_json("optimize", lake=lake_copy)
    names = [result["table"] for result in everything["results"]]
    assert everything["ok"] and names[:2] == sorted([prices.storage_hash, table(lake_copy, RANDOM_ID).storage_hash])
    assert names[2:] == ["_catalog/tables", "_catalog/runs", "_catalog/updates", "_catalog/assets"]
    runs = next(result for result in everything["results"] if result["table"] == "_catalog/runs")
    assert runs["files_before"] == 4 and runs["files_after"] == 1

    human = ok("optimize", SIMULATED_PRICES_IDENTIFIER, "_catalog/runs", "--target-size", "64", lake=lake_copy)
    assert prices.storage_hash in human and "_catalog/runs" in human
    data_after = ok_json("data-node", "run-query", prices.storage_hash,
                         f"SELECT * FROM {prices.storage_hash} ORDER BY time_index, unique_identifier", lake=lake_copy)
    assert data_after["results"] == data_before["results"]

    dry = ok_json("vacuum", "--dry-run", lake=lake_copy)
    assert dry["ok"] and all(result["files"] == [] for result in dry["results"])
    assert "would delete 0 file(s)" in ok("vacuum", "--dry-run", "_catalog/runs", lake=lake_copy)
    assert_one_line_error(cli("vacuum", "--retention-hours", "1", lake=lake_copy), 2, "--force-unsafe-retention")
    forced = cli("vacuum", "_catalog/runs", "--retention-hours", "0", "--force-unsafe-retention", "--dry-run",
                 lake=lake_copy)
    assert forced.exit_code == 0 and "UNSAFE" in forced.stderr and "would delete 4 file(s)" in forced.stdout
    forced_json = ok_json("vacuum", "_catalog/runs", "--retention-hours", "0", "--force-unsafe-retention", "--dry-run",
                          lake=lake_copy)
    assert forced_json["warnings"] and all("UNSAFE" in warning for warning in forced_json["warnings"])
    dry_unforced = cli("vacuum", "_catalog/runs", "--retention-hours", "0", "--dry-run", lake=lake_copy)
    assert dry_unforced.exit_code == 0 and "would delete 4 file(s)" in dry_unforced.stdout  # lists, deletes nothing
    for bad in ("-5", "0", "inf", "nan", "1e-9", "1e308"):  # regression: inf raised OverflowError, 1e-9 gave 0 bytes
        assert_one_line_error(cli("optimize", "--target-size", bad, lake=lake_copy), 2,
                              f"--target-size must be a number of MB from one byte (1e-06) to 2^63 bytes, "
                              f"got {float(bad):g}")
    assert_one_line_error(cli("optimize", "_catalog/nope", lake=lake_copy), 2, "unknown catalog table")
    assert_one_line_error(cli("optimize", "nope", lake=lake_copy), 2, "lakenodes data-node list")


# -- search -----------------------------------------------------------------------------------------
@search_wired
def test_search_commands(lake_copy):
    ok("search", "--refresh", lake=lake_copy)
    for group in ([], ["data-node"]):
        document = ok_json(*group, "search", "simulated close prices", "--limit", "5", lake=lake_copy)
        assert document["ok"] and document["description"]["results"] and document["column"] is not None
        assert len(document["description"]["results"]) <= 5
    only = ok_json("search", "daily random number", "--mode", "description", "--w-trgm", "1", "--w-emb", "0",
                   "--trigram-k", "50", "--embed-k", "0", "--filter", "namespace=", lake=lake_copy)
    assert "column" not in only and only["description"]["count"] >= 1
    assert "close" in ok("search", "close price", "--mode", "column", lake=lake_copy)
    assert ok_json("data-node", "refresh-search-index", RANDOM_ID, lake=lake_copy)["ok"]
    assert_one_line_error(cli("search", "x", "--filter", "colour=red", lake=lake_copy), 2, "colour")
    assert_one_line_error(cli("search", lake=lake_copy), 2, "query")
    # the DataNode guide's `mainsequence data_node search "..." --data-source-id 2`
    assert_one_line_error(cli("data_node", "search", "close", "--data-source-id", "2", lake=lake_copy), 2,
                          "--data-source-id has no counterpart: a lake is one data source; search another one with --lake")


@pytest.mark.slow
def test_searches_in_several_processes_at_once_all_build_and_answer(lake_copy):
    """Each search catches a missing index up; run at once, LanceDB refused the commits of all but
    one ("Retryable commit conflict ... preempted", "incompatible with concurrent transaction
    Overwrite") and those searches failed (exit 1): a lost commit is redone."""
    search = [sys.executable, "-m", "lakenodes", "--lake", lake_copy.uri, "--json", "search", "close price",
              "--mode", "description"]
    for _ in range(3):
        shutil.rmtree(Path(lake_copy.uri) / "_catalog" / "search", ignore_errors=True)
        searches = [subprocess.Popen(search, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(4)]
        for process in searches:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            assert SIMULATED_PRICES_IDENTIFIER in {row["identifier"] for row in json.loads(out)["description"]["results"]}


def test_search_shows_the_docstring_of_a_node_without_a_description(tmp_path):
    """Regression: the README's node (a docstring, no description) showed an empty Description."""
    import polars as pl

    from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData

    class OnlyDoc(DataNode):
        """Daily FX fixing for one currency.

        More words that stay out of the table."""

        def dependencies(self):
            return {}

        def update(self):
            return pl.DataFrame({"time_index": [datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)], "rate": [1.08]})

    class OnlyDocConfig(DataNodeConfiguration):
        node_metadata: DataNodeMetaData = DataNodeMetaData(identifier="fx_only_doc")

    lake = Lake(tmp_path / "lake")
    OnlyDoc(OnlyDocConfig(), lake=lake).run()
    shown = ok("search", "fx fixing", "--mode", "description", lake=lake)
    assert "Daily FX fixing for one currency." in shown and "More words" not in shown


# -- real processes and S3 ---------------------------------------------------------------------------
def _lakenodes(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lakenodes", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def test_python_m_lakenodes_in_a_real_process(tutorial_lake):
    listed = _lakenodes("--lake", tutorial_lake.uri, "--json", "data-node", "list",
                        "--filter", "identifier__contains=example_random_number_")
    assert listed.returncode == 0, listed.stderr
    assert [row["identifier"] for row in json.loads(listed.stdout)["results"]] == [RANDOM_ID]
    missing = _lakenodes("--lake", tutorial_lake.uri, "data-node", "detail", "nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: ") and "data-node list" in missing.stderr


HUGE = "99999999999999999999"  # 20 digits: beyond 64-bit integers


def test_huge_counts_are_read_as_everything_or_refused_in_one_line(tutorial_lake):
    """Regression: a count option given 20 digits failed with exit 1 "OverflowError: int too big to
    convert" (history --limit, diff --max-rows, vacuum --retention-hours on every table; search
    --trigram-k / --embed-k: "out of range integral type conversion attempted")."""
    lake, prices = ("--lake", tutorial_lake.uri), SIMULATED_PRICES_IDENTIFIER
    history = _lakenodes(*lake, "--json", "data-node", "history", prices, "--limit", HUGE)
    assert history.returncode == 0, history.stderr
    assert json.loads(history.stdout) == json.loads(_lakenodes(*lake, "--json", "data-node", "history", prices).stdout)
    diff = _lakenodes(*lake, "--json", "data-node", "diff", prices, "--from", "0", "--max-rows", HUGE)
    assert diff.returncode == 0, diff.stderr
    document = json.loads(diff.stdout)
    assert document["truncated"] is False and len(document["added_rows"]) == document["added"] > 0
    for option in ("--trigram-k", "--embed-k"):
        found = _lakenodes(*lake, "--json", "search", "simulated prices", option, HUGE)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["description"]["results"][0]["identifier"] == prices
    vacuum = _lakenodes(*lake, "vacuum", "--dry-run", "--retention-hours", HUGE)
    assert (vacuum.returncode, vacuum.stdout, vacuum.stderr) == (
        2, "", f"error: --retention-hours must be at most 1000000 (about 114 years), got {HUGE}\n")


def test_a_huge_worker_count_is_a_usage_error(tmp_path):
    """Regression: `lakenodes run ... --workers 99999999999999999999` failed with exit 1
    "OverflowError: Python int too large to convert to C int" from the process pool."""
    done = _lakenodes("--lake", str(tmp_path / "lake"), "run", "examples.tutorial_nodes:DailyRandomNumber",
                      "--config", '{"mean": 0}', "--workers", HUGE)
    assert (done.returncode, done.stdout) == (2, "")
    wording = ("Input should be less than or equal to 1024",  # typer >= 0.29
               f"{HUGE} is not in the range 1<=x<=1024.")  # typer < 0.29 (the lowest allowed is 0.20)
    assert done.stderr in {f"error: Invalid value for '--workers' / '-w': {text} (see `lakenodes run --help`)\n"
                           for text in wording}
    assert not (tmp_path / "lake").exists()


def test_vacuum_of_a_lake_without_tables_says_so(tmp_path):
    """Regression: `lakenodes vacuum` (and `--dry-run`) in a new, empty lake printed nothing at all."""
    (tmp_path / "lake").mkdir()
    for args in (("vacuum",), ("vacuum", "--dry-run")):
        done = _lakenodes("--lake", str(tmp_path / "lake"), *args)
        assert (done.returncode, done.stdout, done.stderr) == (0, f"no tables in {tmp_path / 'lake'}\n", "")
    assert not any((tmp_path / "lake").iterdir())


def test_listings_of_an_empty_lake_say_so_in_one_line(tmp_path):
    """Regression: in a new lake `updates list`, `updates runs`, `assets list`, `optimize` and
    `data-node org-unique-identifiers` printed a box of column headers and no row, `search` two
    (after its "0 match(es)" lines), where `data-node list` and `vacuum` said "no tables in <lake>"."""
    (tmp_path / "lake").mkdir()
    lake = Lake(str(tmp_path / "lake"))
    expected = {
        ("updates", "list"): f"no update processes in {lake.uri}\n",
        ("updates", "runs"): f"no runs recorded in {lake.uri}\n",
        ("assets", "list"): f"no assets in {lake.uri}\n",
        ("assets", "list", "-f", "ticker=NVDA"): f"no assets in {lake.uri} match ticker=NVDA\n",
        ("optimize",): f"no tables in {lake.uri}\n",
        ("data-node", "org-unique-identifiers"): f"no identifiers in use in {lake.uri}\n",
        ("search", "prices", "--mode", "description"): "description search for 'prices': 0 match(es)\n",
    }
    for args, line in expected.items():
        assert ok(*args, lake=lake) == line, args
        document = ok_json(*args, lake=lake)  # the JSON document is as it was: an empty result
        assert document["ok"] and (document.get("count") == 0 or document["description"]["count"] == 0), args


def _in_a_terminal(columns: int, *args: str, environment: dict[str, str] | None = None) -> str:
    """What ``python -m lakenodes ARGS`` shows in a terminal ``columns`` wide (a pseudo-terminal;
    colours and styles stripped), with ``environment`` added to this process's (less a notebook's)."""
    import fcntl
    import pty
    import struct
    import termios

    # a subprocess on a new pseudo-terminal, not pty.fork(): forking this multi-threaded process may deadlock
    terminal, child_end = pty.openpty()
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))  # size it before it starts
    inherited = {key: value for key, value in os.environ.items()
                 if key not in ("COLUMNS", "LINES", "JPY_PARENT_PID", "MPLBACKEND")}
    child = subprocess.Popen([sys.executable, "-m", "lakenodes", *args], cwd=REPO, stdin=child_end,
                             stdout=child_end, stderr=child_end, start_new_session=True,
                             env={**inherited, "TERM": "xterm", "NO_COLOR": "1", **(environment or {})})
    os.close(child_end)
    output = b""
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    child.wait()
    os.close(terminal)
    return re.sub(r"\x1b\[[0-9;]*m", "", output.decode()).replace("\r\n", "\n")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_tables_show_every_column_and_whole_values_in_a_narrow_terminal(tutorial_lake):
    """In a terminal too narrow for a table's columns, each row is shown as a record (bug: rich
    squeezed the table, cutting hashes and timestamps and hiding whole columns at 120 columns)."""
    updaters = ok_json("updates", "list", lake=tutorial_lake)["results"]
    for columns in (80, 120):
        shown = _in_a_terminal(columns, "--lake", tutorial_lake.uri, "updates", "list")
        assert max(len(line) for line in shown.splitlines()) <= columns
        for name in ("Update hash", "Storage hash", "Identifier", "Namespace", "Last run", "Status", "Rows", "Runs"):
            assert shown.count(name) == len(updaters), (name, shown)
        for updater in updaters:
            assert updater["update_hash"] in shown and updater["storage_hash"] in shown
        assert updaters[0]["last_run_at"] in shown
    listed = _in_a_terminal(80, "--lake", tutorial_lake.uri, "data-node", "list")
    assert all(name in listed for name in ("Namespace", "Frequency", "Index", "Columns", RANDOM_ID))
    wide = _in_a_terminal(1000, "--lake", tutorial_lake.uri, "updates", "list")
    assert wide.count("Update hash") == 1  # it fits: one table, one header



@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_run_in_a_notebook_draws_no_live_progress_bar(tmp_path):
    """Regression: ``!lakenodes run ...`` in a notebook cell drew rich's live bar (IPython gives ``!``
    commands a pseudo-terminal), and the cell kept every carriage-return repaint. Under a Jupyter
    kernel (what its commands inherit: ``JPY_PARENT_PID``, ipykernel's inline ``MPLBACKEND``) no bar
    is drawn; in a terminal it still is."""
    args = ("--lake", str(tmp_path / "lake"), "run", "examples.tutorial_nodes:DailyRandomNumber",
            "--config", '{"mean": 0.0}')
    in_terminal = _in_a_terminal(120, *args)
    assert "━" in in_terminal and "\r\x1b[2K" in in_terminal and "1 row(s) written" in in_terminal
    for kernel in ({"JPY_PARENT_PID": "4242"}, {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}):
        in_cell = _in_a_terminal(120, *args, environment=kernel)
        assert "━" not in in_cell and "\r" not in in_cell and "row(s) written" in in_cell, in_cell

def test_run_reports_the_absolute_lake_a_relative_lake_resolved_to(tmp_path, monkeypatch):
    """Two cron jobs with different working directories and `--lake lake` write two lakes: the help
    says a relative folder is resolved against the working directory, and a run says which lake it used."""
    monkeypatch.chdir(REPO)
    target = "examples.tutorial_nodes:DailyRandomNumber"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        ran = runner.invoke(app, ["--lake", "lake", "--json", "--verbose", "run", target, "--config", '{"mean": 0.0}'])
        assert ran.exit_code == 0, (ran.stdout, ran.stderr)
        assert json.loads(ran.stdout)["lake"] == str(tmp_path / folder / "lake")
        assert (f"INFO lakenodes.cli.run: lake {tmp_path / folder / 'lake'} (--lake 'lake', relative to the working "
                f"directory {tmp_path / folder})") in ran.stderr
    monkeypatch.delenv("LAKENODES_URI", raising=False)
    ran = runner.invoke(app, ["--json", "run", target, "--config", '{"mean": 0.0}'])
    assert json.loads(ran.stdout)["lake"] == str(tmp_path / "b" / "lake")  # the default ./lake, here
    assert "resolved against the working directory" in " ".join(ok("--help").split())


@pytest.mark.s3
def test_cli_on_s3(s3_server, monkeypatch):
    monkeypatch.chdir(REPO)
    lake = f"s3://{s3_server.create_bucket()}/lake"
    env = s3_server.env
    ran = runner.invoke(app, ["--lake", lake, "--json", "run", "examples.tutorial_nodes:DailyRandomNumber",
                              "--config", '{"mean": 0.0}'], env=env)
    assert ran.exit_code == 0, (ran.stdout, ran.stderr)
    assert json.loads(ran.stdout)["rows_written"] == 1
    listed = json.loads(ok("--json", "data-node", "list", "--lake", lake, env=env))
    assert [row["identifier"] for row in listed["results"]] == [RANDOM_ID]
    detail = ok("data-node", "detail", RANDOM_ID, "--lake", lake, env=env)
    assert f"{lake}/tables/" in detail and "s3a://" in detail
    query = json.loads(ok("--json", "data-node", "run-query", RANDOM_ID, f"SELECT count(*) AS n FROM {RANDOM_ID}",
                          "--lake", lake, env=env))
    assert query["results"] == [{"n": 1}]
    assert json.loads(ok("--json", "optimize", "--lake", lake, env=env))["ok"]
    assert json.loads(ok("--json", "updates", "list", "--lake", lake, env=env))["count"] == 1


@search_wired
def test_search_filters_are_read_as_data_node_list_reads_them(tutorial_lake):
    """Regression: `lakenodes search Q -f identifier__in=A,B` (or a JSON list) failed with
    `error: __in expects a list, got 'A,B'`, and `-f identifier__isnull=false` matched nothing (the
    text 'false' was taken as true), while `data-node list` read both."""
    def identifiers(*filters: str) -> list[str]:
        args = [arg for f in filters for arg in ("--filter", f)]
        document = ok_json("search", "close", "--mode", "description", *args, lake=tutorial_lake)
        return sorted(hit["identifier"] or "" for hit in document["description"]["results"])

    both = sorted([RANDOM_ID, SIMULATED_PRICES_IDENTIFIER])
    assert identifiers(f"identifier__in={RANDOM_ID},{SIMULATED_PRICES_IDENTIFIER}") == both
    assert identifiers(f'identifier__in=["{RANDOM_ID}", "nope"]') == [RANDOM_ID]
    for flag in ("false", "true"):
        listed = ok_json("data-node", "list", "--filter", f"identifier__isnull={flag}", lake=tutorial_lake)
        assert identifiers(f"identifier__isnull={flag}") == sorted(row["identifier"] or "" for row in listed["results"])
    assert identifiers("identifier__isnull=false") == both
    assert_one_line_error(cli("search", "close", "--filter", "identifier__isnull=maybe", lake=tutorial_lake), 2,
                          "expected true or false")


@search_wired
def test_values_that_look_like_rich_markup_print_as_they_are(tmp_path):
    """Regression: a description such as 'Closes in [USD] [/bold]' made `lakenodes search` and
    `data-node detail` fail with exit 1, `error: MarkupError: closing tag '[/bold]' ... doesn't match
    any open tag`, as did a query holding '[/x]' and a `run-query` value; '[red]x[/red]' printed as a
    red x: the tables' text was read as rich markup."""
    from lakenodes import DataNodeMetaData

    lake = Lake(str(tmp_path / "lake"))
    description = "Closes in [USD] [/bold] [red]not red[/red]"
    metadata = DataNodeMetaData(identifier="markup_closes", description=description)
    with use_lake(lake):
        assert DailyRandomNumber(RandomDataNodeConfig(mean=0.0, node_metadata=metadata)).run()[0] is False
    assert description in ok("search", "closes [/x]", "--mode", "description", lake=lake)
    assert "'closes [/x]'" in ok("search", "closes [/x]", "--mode", "description", lake=lake)
    assert description in ok("data-node", "detail", "markup_closes", lake=lake)
    rows = ok("data-node", "run-query", "markup_closes", "SELECT '[/x] a' AS s, '[bold]b[/bold]' AS t", lake=lake)
    assert "[/x] a" in rows and "[bold]b[/bold]" in rows


@pytest.mark.parametrize("option, command", [("TableFilterOption", ("data-node", "list")),
                                             ("AssetFilterOption", ("assets", "list"))])
def test_every_filter_example_in_the_help_is_accepted(tutorial_lake, option, command):
    """Regression: `data-node list --help` suggested ticker__in=... and `assets list --help`
    identifier__contains=...: fields of the other command, refused as unknown."""
    from lakenodes.cli import _session

    help_text = typing.get_args(getattr(_session, option))[1].help
    examples = re.findall(r"(\w+=(?:'[^']*'|[^\s,)]*(?:,[A-Z0-9]\w*)*))", help_text)
    assert len(examples) >= 2, help_text
    for example in examples:
        ok(*command, "--filter", example.replace("'", ""), lake=tutorial_lake)


def test_verbose_logs_the_runs_of_spawned_workers(tmp_path):
    """Regression: `lakenodes run ... --workers 2 --verbose` logged nothing (docs/scheduling.md's own
    example): the spawned workers' logging was never set up."""
    config = json.dumps({"asset_list": [{"unique_identifier": "NVDA"}, {"unique_identifier": "AAPL"}]})
    done = _lakenodes("--lake", str(tmp_path / "lake"), "run", "examples.tutorial_nodes:SimulatedPrices",
                      "--config", config, "--workers", "2", "--verbose")
    assert done.returncode == 0, done.stderr
    assert re.search(r"INFO lakenodes.node.SimulatedPrices: \[[0-9a-f]{8}\] wrote", done.stderr), done.stderr


PRINTING_NODES = textwrap.dedent('''
    import datetime as dt
    import polars as pl
    from lakenodes import DataNode, DataNodeConfiguration

    class LeafConfig(DataNodeConfiguration):
        branch: int = 0

    class Leaf(DataNode):
        config: LeafConfig

        def dependencies(self):
            return {}

        def update(self):
            print(f"leaf {self.config.branch} computing")
            return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], "v": [1.0]})

    class Both(Leaf):
        def __init__(self, config: LeafConfig, **kwargs):
            self.leaves = {f"leaf{branch}": Leaf(LeafConfig(branch=branch)) for branch in (1, 2)}
            super().__init__(config, **kwargs)

        def dependencies(self):
            return self.leaves
''')


def test_json_run_with_workers_keeps_what_nodes_print_off_stdout(tmp_path):
    """Regression: with --workers 2 the nodes run in spawned workers, whose print() wrote to stdout
    ahead of the document: `lakenodes --json run ... --workers 2` printed invalid JSON."""
    (tmp_path / "printing_nodes.py").write_text(PRINTING_NODES)
    done = subprocess.run([sys.executable, "-m", "lakenodes", "--json", "run", "printing_nodes.py:Both", "--workers",
                           "2"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is True and len(document["dependencies"]) == 2
    assert sorted(line for line in done.stderr.splitlines() if "computing" in line) == [
        "leaf 0 computing", "leaf 1 computing", "leaf 2 computing"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_json_run_keeps_what_subprocesses_and_c_code_write_off_stdout(tmp_path, workers):
    """Regression: a node whose update() ran a subprocess (a download tool, a shell script) or C code
    writing to file descriptor 1 wrote ahead of the document: `lakenodes --json run ... | jq` failed
    with "Extra data"/"Expecting value", only Python's print() was kept off stdout."""
    (tmp_path / "shelling_nodes.py").write_text(PRINTING_NODES + textwrap.dedent('''
        import os
        import subprocess
        import sys

        class Shells(Leaf):
            def update(self):
                subprocess.run([sys.executable, "-c", "print('from a subprocess')"], check=True)
                os.write(1, b"from file descriptor 1\\n")
                return super().update()
    '''))
    done = subprocess.run([sys.executable, "-m", "lakenodes", "--json", "run", "shelling_nodes.py:Shells", "--workers",
                           workers], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_written"] == 1, done.stdout
    assert "from a subprocess" in done.stderr and "from file descriptor 1" in done.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_json_run_of_a_node_calling_sys_exit_prints_its_document(tmp_path, workers):
    """Regression: `lakenodes --json run` of a node whose update() called sys.exit(3) exited 3 with an
    empty stdout (no JSON document) and no `error:` line."""
    (tmp_path / "exiting_nodes.py").write_text(PRINTING_NODES + textwrap.dedent('''
        import sys

        class Exits(Leaf):
            def update(self):
                sys.exit(3)
    '''))
    done = subprocess.run([sys.executable, "-m", "lakenodes", "--json", "run", "exiting_nodes.py:Exits", "--workers",
                           workers], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    message = ("sys.exit(3) was called while the command ran: what finished before it stands (commits); "
               "no commit is half-made")
    assert (done.returncode, done.stderr) == (3, f"error: {message}\n")
    assert json.loads(done.stdout) == {"ok": False, "error": {"kind": "exit", "message": message}}
    runs = json.loads(_lakenodes("--lake", str(tmp_path / "lake"), "--json", "updates", "runs").stdout)["results"]
    where = f" (at {tmp_path / 'exiting_nodes.py'}:31 in update)"  # the user's line (errors.raised_at)
    assert [(run["status"], run["error"]) for run in runs] == [("error", f"update: SystemExit: 3{where}")]


def test_a_module_that_exits_when_imported_is_a_one_line_mistake(tmp_path):
    """Regression: `lakenodes run script.py:Node` of a script whose top level calls sys.exit(0) (its
    launcher code not under `if __name__ == "__main__":`) exited 0 having run nothing, and printed nothing."""
    (tmp_path / "launcher.py").write_text("import sys\n\nsys.exit(0)\n")
    done = subprocess.run([sys.executable, "-m", "lakenodes", "run", "launcher.py:Node"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: cannot import 'launcher.py' (from {tmp_path}): SystemExit: 0\n"
    assert not (tmp_path / "lake").exists()


TWIN_NODES = textwrap.dedent('''
    import datetime as dt
    import polars as pl
    from lakenodes import DataNode, DataNodeConfiguration

    class SrcConfig(DataNodeConfiguration):
        offset: float = 0.0

    class Src(DataNode):
        def __init__(self, config: SrcConfig, **kwargs):
            super().__init__(config, **kwargs)

        def dependencies(self):
            return {}

        def update(self):
            days = [dt.datetime(2024, 1, day, tzinfo=dt.timezone.utc) for day in (1, 2)]
            return pl.DataFrame({"time_index": days, "value": [self.config.offset] * 2})

    class Both(Src):
        def dependencies(self):
            return {"a": Src(SrcConfig(offset=1.0)), "b": Src(SrcConfig(offset=2.0))}
''')


def test_verbose_node_lines_name_the_instance_that_wrote(tmp_path):
    """Regression: two dependencies of one class both logged `lakenodes.node.Src: wrote 2 rows`; the
    update hash was only in the record's extra, which the formatter does not show."""
    (tmp_path / "cli_twin_nodes.py").write_text(TWIN_NODES)
    lake = Lake(tmp_path / "lake")
    done = cli("--verbose", "run", f"{tmp_path / 'cli_twin_nodes.py'}:Both", lake=lake)
    assert done.exit_code == 0, (done.stdout, done.stderr)
    wrote = [line.split(" INFO ", 1)[1] for line in done.stderr.splitlines() if "lakenodes.node.Src: " in line
             and " wrote 2 rows" in line]
    hashes = {row["update_hash"] for row in ok_json("updates", "list", lake=lake)["results"]
              if row["update_hash"].startswith("src_")}
    assert len(wrote) == 2 and len(set(wrote)) == 2, done.stderr
    assert {line.split("[", 1)[1].split("]", 1)[0] for line in wrote} == {h.split("_")[-1][:8] for h in hashes}


def test_an_s3_lake_without_credentials_is_one_line_naming_the_fix(tmp_path):
    """Regression: three Rust "WARN aws_config::imds" lines, then "OSError: Kernel error -> Operation
    not supported ↳ an error occurred while loading credentials ↳ ...", on any machine outside EC2."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_") and key != "RUST_LOG"}
    (tmp_path / "empty").write_text("")  # no profile on this machine either
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "empty"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "empty")}
    done = _lakenodes("--lake", "s3://no-such-bucket-lakenodes/lake", "data-node", "list", env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: StoragePermissionError"), done.stderr
    assert "no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass them" in lines[0]


@pytest.mark.s3
def test_an_s3_lake_read_with_an_aws_profile_and_an_endpoint_is_told_the_switch_that_works(tmp_path, s3_server):
    """Regression: a user whose keys live in ~/.aws/credentials ran `AWS_PROFILE=lake lakenodes data-node list`
    against an endpoint (MinIO here: moto), as the error of a run without keys advised ("set ... or AWS_PROFILE"):
    it failed with the same advice, since delta-rs skips the AWS SDK's profiles once an endpoint is set, unless
    AWS_FORCE_CREDENTIAL_LOAD is set too. The error now names that switch, and following it works, as
    AWS_FORCE_CREDENTIAL_LOAD as a storage option does (it was refused as unknown); storage_options={"profile":
    ...} says to set AWS_PROFILE in the environment, with the same switch."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        f"[lake]\naws_access_key_id = {s3_server.env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {s3_server.env['AWS_SECRET_ACCESS_KEY']}\n")
    (home / ".aws" / "config").write_text("[profile lake]\nregion = us-east-1\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_") and key != "RUST_LOG"}
    env |= {"HOME": str(home), "AWS_PROFILE": "lake", "AWS_ENDPOINT_URL": s3_server.endpoint_url,
            "AWS_ALLOW_HTTP": "true"}
    bucket = s3_server.create_bucket()
    with_keys = {**env, **s3_server.env}
    assert _lakenodes("--lake", f"s3://{bucket}/lake", "run", "examples.tutorial_nodes:DailyRandomNumber",
                      "--config", '{"mean": 0}', env=with_keys).returncode == 0
    done = _lakenodes("--lake", f"s3://{bucket}/lake", "data-node", "list", env=env)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: StoragePermissionError: open failed: no S3 credentials found (set "
                           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass them in the lake's storage_options; "
                           "AWS_PROFILE='lake' is set: with an endpoint set, Delta Lake's Rust engine reads AWS "
                           "profiles only when AWS_FORCE_CREDENTIAL_LOAD=true is set too: set it, or export the "
                           "profile's keys: eval \"$(aws configure export-credentials --profile lake --format env)\""), line
    followed = _lakenodes("--lake", f"s3://{bucket}/lake", "--json", "data-node", "list",
                          env={**env, "AWS_FORCE_CREDENTIAL_LOAD": "true"})
    assert followed.returncode == 0, followed.stderr
    [table] = json.loads(followed.stdout)["results"]
    assert table["storage_hash"].startswith("dailyrandomnumber_")
    forced = Lake(f"s3://{bucket}/lake", storage_options={"force_credential_load": "true"})
    assert forced.storage_options["AWS_FORCE_CREDENTIAL_LOAD"] == "true"
    with pytest.raises(LakeConfigurationError, match=r"set AWS_PROFILE=lake in the environment instead \(with an "
                                                     r"endpoint set, also AWS_FORCE_CREDENTIAL_LOAD=true\)"):
        Lake(f"s3://{bucket}/lake", storage_options={"profile": "lake"})


def test_a_mistyped_bucket_or_prefix_on_s3_is_a_one_line_mistake(s3_server, s3_lake):
    """Regressions: on S3 a prefix with no lake listed as an empty lake (exit 0) and `search` wrote
    its index marker there; a bucket that does not exist failed with exit 1 ("retry later") and
    moto's XML error in one 1,000-character line."""
    env = {**{key: value for key, value in os.environ.items() if not key.startswith("AWS_")}, **s3_server.env}
    bucket = s3_lake.uri.split("/")[2]
    for lake_uri, message in ((f"s3://{bucket}/no_lake_here", "error: no lake at s3://"),
                              ("s3://no-such-bucket-lakenodes/lake", "error: no bucket 'no-such-bucket-lakenodes'")):
        for args in (("data-node", "list"), ("search", "prices"), ("updates", "list")):
            done = _lakenodes("--lake", lake_uri, *args, env=env)
            assert done.returncode == 2 and done.stderr.startswith(message), (args, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    missing_bucket_run = _lakenodes("--lake", "s3://no-such-bucket-lakenodes/lake", "run",
                                    "examples.tutorial_nodes:DailyRandomNumber", "--config", '{"mean": 0.0}', env=env)
    assert missing_bucket_run.returncode == 2 and "no bucket" in missing_bucket_run.stderr
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    assert not [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])
                if item["Key"].startswith("no_lake_here")]


SLOW_NODE = textwrap.dedent('''
    import datetime as dt, os, pathlib, time
    import polars as pl
    from lakenodes import DataNode, DataNodeConfiguration

    class WaitConfig(DataNodeConfiguration):
        marker: str

    class Waiting(DataNode):
        Config = WaitConfig

        def dependencies(self):
            return {}

        def update(self):
            pathlib.Path(self.config.marker).write_text(str(os.getpid()))  # the test interrupts once update() runs
            time.sleep(60)
            return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "v": [1.0]})
''')


def _run_waiting_in_update(tmp_path: Path) -> subprocess.Popen:
    """``lakenodes run`` of the SLOW_NODE, returned once its update() is asleep."""

    (tmp_path / "waiting_node.py").write_text(SLOW_NODE)
    marker = tmp_path / "in_update"
    process = _start_waiting_run(tmp_path, "waiting_node:Waiting", marker)
    _wait_for_markers(process, [marker])
    return process


def _start_waiting_run(tmp_path: Path, node: str, marker: Path, *options: str) -> subprocess.Popen:
    """``lakenodes run`` of ``node`` (SLOW_NODE's) in a session of its own, Python's fault handler on in
    it and its workers: a run that does not stop prints every process's stacks on SIGABRT."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen([sys.executable, "-m", "lakenodes", "--lake", str(tmp_path / "lake"), "run", node,
                             "--config", json.dumps({"marker": str(marker)}), *options], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def _wait_for_markers(process: subprocess.Popen, markers: list[Path]) -> list[int]:
    """The pids of the processes whose update() wrote ``markers`` (their pid), once all of them did."""
    import time

    deadline = time.monotonic() + 120
    while not all(marker.exists() and marker.read_text() for marker in markers) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    return [int(marker.read_text()) for marker in markers]


def _assert_stopped(process: subprocess.Popen, seconds: int, stop: str, code: int, said: str) -> None:
    """The run ended within ``seconds`` of ``stop`` with exit ``code`` and the one stop line ``said``;
    when it did not end, the stacks of its processes' threads are the failure (the hang was seen under
    loaded full runs)."""
    import signal

    try:
        stdout, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGABRT)  # workers too: they hold the output pipes open
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"the run did not stop within {seconds} s of {stop}; its threads then:\n{stderr}")
    assert process.returncode == code, (stdout, stderr)
    assert stderr.strip().splitlines() == [
        f"error: {said}: what finished before it stands (commits, files a vacuum deleted); no commit is half-made"]


@pytest.mark.parametrize(("stop", "code", "said", "recorded"), [
    ("SIGINT", 130, "interrupted", "update: KeyboardInterrupt"),
    # regression: a scheduler's SIGTERM ended the process at once: exit -15, nothing said, no run recorded
    ("SIGTERM", 143, "terminated (SIGTERM)", "update: Terminated"),
])
def test_ctrl_c_or_sigterm_during_a_run_is_one_line_and_recorded(tmp_path, stop, code, said, recorded):
    """Regression: typer turned Ctrl-C into a silent exit 130 (nothing on stderr); scheduling.md's
    table had no such code."""
    import signal

    process = _run_waiting_in_update(tmp_path)
    process.send_signal(getattr(signal, stop))
    _assert_stopped(process, 50, stop, code, said)  # update() sleeps 60 s: the stop must cut it short
    from lakenodes.catalog.catalog import run_history

    [record] = run_history(Lake(str(tmp_path / "lake")))  # the interrupted run is recorded (scheduling.md)
    assert record["status"] == "error" and record["error"].startswith(recorded)


WAITING_PAIR = SLOW_NODE + textwrap.dedent('''
    class Pair(DataNode):
        Config = WaitConfig

        def dependencies(self):
            return {side: Waiting(WaitConfig(marker=f"{self.config.marker}-{side}")) for side in ("a", "b")}

        def update(self):
            return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "v": [1.0]})
''')


FAILING_ROOT = textwrap.dedent('''
    import datetime as dt
    import polars as pl
    from lakenodes import DataNode, DataNodeConfiguration

    class Stored(DataNode):
        def dependencies(self):
            return {}

        def update(self):
            return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "v": [1.0]})

    class NaiveRoot(DataNode):
        Config = DataNodeConfiguration

        def dependencies(self):
            return {"stored": Stored(DataNodeConfiguration())}

        def update(self):  # a user mistake: naive times
            return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1)], "v": [1.0]})
''')


def test_a_user_mistake_after_other_nodes_stored_rows_is_no_nothing_written_exit(tmp_path):
    """Regression: exit 2 ("a user mistake: no row was written", scheduling.md) although the tree's
    dependency had committed its rows before the root's mistake; nothing said so."""
    (tmp_path / "failing_root.py").write_text(FAILING_ROOT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "lakenodes", "--lake", str(tmp_path / "lake"), "run",
                           "failing_root:NaiveRoot"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "NaiveRoot" in line and "timezone-naive" in line
    assert line.endswith("; the tree's nodes that finished before it stored 1 row(s)")


@pytest.mark.slow
def test_sigterm_to_a_run_with_workers_stops_them_and_records_their_runs(tmp_path):
    """Regression: the SIGTERM a scheduler sends the command reached it alone: it said "terminated"
    and then waited for its spawn workers, whose nodes ran on to their commits (exit after ~12 s
    here, both runs recorded as successes); with the whole group signalled, the workers died without
    a run record."""
    import signal

    process, _ = _run_pair_waiting_in_workers(tmp_path)
    process.send_signal(signal.SIGTERM)
    _assert_stopped(process, 30, "SIGTERM", 143, "terminated (SIGTERM)")  # update() sleeps 60 s in both
    _assert_both_runs_terminated(tmp_path)


def _run_pair_waiting_in_workers(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """``lakenodes run --workers 2`` of WAITING_PAIR, once both its dependencies' update() are asleep,
    with the pids of the two workers running them."""
    (tmp_path / "waiting_pair.py").write_text(WAITING_PAIR)
    marker = tmp_path / "in_update"
    process = _start_waiting_run(tmp_path, "waiting_pair:Pair", marker, "--workers", "2")
    return process, _wait_for_markers(process, [Path(f"{marker}-{side}") for side in "ab"])


def _assert_both_runs_terminated(tmp_path: Path) -> None:
    from lakenodes.catalog.catalog import run_history

    records = run_history(Lake(str(tmp_path / "lake")))
    assert sorted((record["status"], record["error"].split(":")[:2]) for record in records) == [
        ("error", ["update", " Terminated"])] * 2


_TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine) if sys.platform == "linux" else None


@pytest.mark.skipif(_TGKILL is None, reason="tgkill(2) is called by its Linux syscall number (x86_64, aarch64)")
@pytest.mark.parametrize(("stop", "code", "said"), [("SIGINT", 130, "interrupted"),
                                                    ("SIGTERM", 143, "terminated (SIGTERM)")])
def test_a_stop_caught_by_another_thread_still_stops_the_run(tmp_path, stop, code, said):
    """Regression: the kernel may hand a signal sent to the process to any of its 20-odd threads
    (delta-rs' tokio workers, polars', pyarrow's); Python runs the handler in the main thread only, so
    a stop caught elsewhere waited for update()'s blocking call to end (here a 60 s sleep: the run
    went on, the test timed out). The signal is sent to one such thread with tgkill(2)."""
    import signal

    process = _run_waiting_in_update(tmp_path)
    name = _signal_another_thread(process.pid, getattr(signal, stop))
    _assert_stopped(process, 30, f"{stop} sent to thread {name}", code, said)


def _signal_another_thread(pid: int, number: int) -> str:
    """Send signal ``number`` to one thread of process ``pid`` that is not its main thread, nor the
    stop relay, and does not block it (delta-rs' tokio workers preferred); that thread's name.
    Threads come and go while the process runs (a CI failure: one ended between the listing of
    /proc/<pid>/task and the read of its name), so one that is gone is passed over."""
    import ctypes
    import errno

    def read(thread: str, entry: str) -> str | None:
        try:
            return Path(f"/proc/{pid}/task/{thread}/{entry}").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return None

    def catches(thread: str) -> bool:  # a thread that does not block the signal (jemalloc's block all)
        status = read(thread, "status")
        if status is None:
            return False
        blocked = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
        return not blocked & (1 << (number - 1))

    names = {thread: name.strip() for thread in os.listdir(f"/proc/{pid}/task")
             if int(thread) != pid and (name := read(thread, "comm")) is not None}
    preference = ("tokio", "polars", "")  # delta-rs' runtime starts with the catalog's first call: maybe not yet
    libc = ctypes.CDLL(None, use_errno=True)
    for thread in (thread for prefix in preference for thread, name in sorted(names.items())
                   if name.startswith(prefix) and name != "lakenodes-stops"):
        if not catches(thread):
            continue
        if libc.syscall(_TGKILL, pid, int(thread), number) == 0:
            return names[thread]
        assert ctypes.get_errno() == errno.ESRCH, os.strerror(ctypes.get_errno())  # gone since: try another
    raise AssertionError(f"no thread of process {pid} besides its main one takes signal {number}: {names}")


@pytest.mark.skipif(_TGKILL is None, reason="tgkill(2) is called by its Linux syscall number (x86_64, aarch64)")
def test_a_sigterm_a_worker_thread_caught_stops_the_run_with_workers(tmp_path):
    """Regression (a CI failure: the command and both workers ran on for 60 s after a SIGTERM): the
    command relays a SIGTERM to its spawn workers, and in a worker, as in the command, the kernel may
    hand it to any thread; the worker had no relay, so its update()'s 60 s sleep went on. Here one
    worker's tokio thread gets the SIGTERM: its run ends, and the command stops the other one."""
    import signal

    process, (worker, _) = _run_pair_waiting_in_workers(tmp_path)
    name = _signal_another_thread(worker, signal.SIGTERM)
    _assert_stopped(process, 30, f"SIGTERM sent to thread {name} of a worker", 143, "terminated (SIGTERM)")
    _assert_both_runs_terminated(tmp_path)


def test_ctrl_c_during_the_commit_says_the_rows_are_stored(local_lake, tmp_path, monkeypatch):
    """Regression: Ctrl-C while delta-rs wrote a run's rows (Python raises it once the commit is
    made) said only "interrupted", and the run was recorded with 0 rows: the rows were stored."""
    import signal

    import deltalake

    import lakenodes.lake._create as create_module
    import lakenodes.lake.store as store_module

    (tmp_path / "one_row.py").write_text(
        "import datetime as dt\nimport polars as pl\nfrom lakenodes import DataNode, DataNodeConfiguration\n\n"
        "class OneRow(DataNode):\n    config: DataNodeConfiguration\n\n    def dependencies(self):\n"
        "        return {}\n\n    def update(self):\n"
        "        return pl.DataFrame({'time_index': [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], 'v': [1.0]})\n")

    def commit_then_ctrl_c(*args, **kwargs):
        deltalake.write_deltalake(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)

    for module in (store_module, create_module):  # the first write creates its table holding its rows
        monkeypatch.setattr(module, "write_deltalake", commit_then_ctrl_c)
    result = cli("--json", "run", f"{tmp_path / 'one_row.py'}:OneRow", lake=local_lake)
    message = assert_one_line_error(result, 130, "error: interrupted: ", "was stopped after its commit",
                                    "its 1 row(s) ARE stored")
    assert json.loads(result.stdout)["error"]["message"] == message.removeprefix("error: ")


def test_a_naive_datetime_cell_is_utc_whatever_the_machine_time_zone(monkeypatch):
    """Regression (review): a naive datetime was shown converted from the machine's local time."""
    import datetime as dt
    import time

    from lakenodes.cli._render import text

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert text(dt.datetime(2024, 1, 2, 9, 30)) == "2024-01-02T09:30:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_detail_lists_the_first_identities_and_says_how_many_more(local_lake):
    """Regression: a table of 10,000 assets printed 10,000 lines; --json keeps every identity."""
    import polars as pl
    from test_frames import FrameNode, day

    uids = [f"A{number:03d}" for number in range(25)]
    node = FrameNode()
    node.run_with(pl.DataFrame({"time_index": [day(1)] * 25, "unique_identifier": uids, "value": [1.0] * 25}))
    human = ok("data-node", "detail", node.storage_hash, lake=local_lake)
    listed = [uid for uid in uids if re.search(rf"\b{uid}\b", human)]
    assert listed == uids[:20]
    assert "… and 5 more of 25 identities (--limit N lists more; --json lists them all)" in human
    everything = ok("data-node", "detail", node.storage_hash, "--limit", "25", lake=local_lake)
    assert all(uid in everything for uid in uids) and "more of" not in everything
    document = ok_json("data-node", "detail", node.storage_hash, lake=local_lake)
    assert sorted(document["stats"]["multi_index_stats"]) == uids
    assert_one_line_error(cli("data-node", "detail", node.storage_hash, "--limit", "0", lake=local_lake), 2, "--limit")


def test_updates_runs_of_a_table_name_names_its_update_processes(tutorial_lake):
    """A team knows its tables by identifier: `updates runs team_prices` said only "no update
    process 'team_prices'", with no way from there to the update hashes that write it."""
    random = table(tutorial_lake, RANDOM_ID)
    writers = [p["update_hash"] for p in ok_json("updates", "list", lake=tutorial_lake)["results"]
               if p["storage_hash"] == random.storage_hash]
    assert writers
    for ref in (RANDOM_ID, random.storage_hash):
        assert_one_line_error(cli("updates", "runs", ref, lake=tutorial_lake), 2, f"no update process {ref!r}",
                              f"that is a table, written by {', '.join(writers)}", "lakenodes updates list")
