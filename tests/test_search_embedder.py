"""The default MiniLM embedder, the embedder recorded per index, and catch-up cost (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from lakenodes import Lake, LakenodesUserError, TimeIndexMetaTable
from lakenodes.catalog.catalog import save_table_record
from lakenodes.catalog.records import TableRecord
from lakenodes.cli import app
from lakenodes.lake.ledger import Ledger
from lakenodes.search import (
    EmbedderMismatchError,
    MiniLMEmbedder,
    SearchArgumentError,
    SearchIndex,
    embedder_for,
    get_embedder,
    rebuild_index,
    search_index,
)
from lakenodes.search import sync as search_sync
from lakenodes.search.minilm import MODEL_DIR


def add_table(lake: Lake, name: str, description: str, columns=()) -> None:
    save_table_record(lake, TableRecord(
        uid=f"uid-{name}", storage_hash=f"hash_{name}", identifier=name, description=description,
        columns=[{"column_name": c, "dtype": "Float64"} for c in columns], table_uri=lake.table_uri(f"hash_{name}")))


@pytest.fixture
def catalog_lake(local_lake):
    add_table(local_lake, "us_cpi_monthly", "US consumer price index, headline and core", ["cpi_yoy"])
    add_table(local_lake, "mortgage_rates_weekly", "Average 30 year fixed mortgage rates", ["rate_30y"])
    add_table(local_lake, "equity_prices_daily", "End-of-day prices of listed stocks", ["close"])
    return local_lake


def identifiers(page) -> list[str]:
    return [hit["identifier"] for hit in page["results"]]


# ------------------------------------------------------------------------------------------ the model
def test_minilm_ships_with_its_licence_and_embeds_offline():
    assert {"model.int8.onnx", "tokenizer.json", "LICENSE", "README.md"} <= {p.name for p in MODEL_DIR.iterdir()}
    assert "Apache License" in (MODEL_DIR / "LICENSE").read_text()
    embedder = get_embedder(None)
    assert isinstance(embedder, MiniLMEmbedder)
    texts = ["home loan interest", "Average 30 year fixed mortgage rates", "End-of-day prices of listed stocks",
             "home loan interest"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1  # meaning, not shared words
    assert np.array_equal(vectors[0], vectors[3])
    assert np.array_equal(embedder.embed(texts[:1])[0], vectors[0])  # batch composition does not matter
    assert embedder.embed([]).shape == (0, 384)


def test_minilm_cuts_long_texts_and_names_the_cut():
    short, long = MiniLMEmbedder(16), get_embedder("minilm")
    assert short.name != long.name
    text = "daily close prices " + "filler words " * 200
    assert np.allclose(short.embed([text]), short.embed([text + " more and more words"]))


def test_one_embedder_object_per_spec_and_per_recorded_name():
    assert get_embedder("minilm") is get_embedder(None) is embedder_for(get_embedder(None).name)
    assert embedder_for("hashing-v1-64") is get_embedder("hashing:64")
    assert embedder_for("sentence-transformers:/models/x") is get_embedder("sentence-transformers:/models/x")
    assert embedder_for("someone-elses-model").name == get_embedder(None).name


# ------------------------------------------------------------------------------------------ per index
def test_the_index_keeps_its_embedder_for_description_column_search_and_cli(catalog_lake):
    assert rebuild_index(catalog_lake, "hashing") == 3
    index = search_index(catalog_lake)
    assert index.embedder.name == "hashing-v1-384"
    version = index.version()
    page = TimeIndexMetaTable.description_search("mortgage", lake=catalog_lake)
    assert identifiers(page)[0] == "mortgage_rates_weekly" and page["results"][0]["embedding_score"] > 0
    assert identifiers(TimeIndexMetaTable.column_search("cpi_yoy", lake=catalog_lake))[0] == "us_cpi_monthly"
    result = CliRunner().invoke(app, ["--lake", catalog_lake.uri, "search", "close", "--json"])
    assert result.exit_code == 0, result.stdout
    assert search_index(catalog_lake).version() == version  # nothing was rebuilt
    assert search_index(catalog_lake).embedder.name == "hashing-v1-384"


def test_another_embedder_is_an_explicit_rebuild_never_a_silent_one(catalog_lake):
    rebuild_index(catalog_lake, "hashing")
    version = search_index(catalog_lake).version()
    for call in (lambda: TimeIndexMetaTable.description_search("cpi", embedding_model="minilm", lake=catalog_lake),
                 lambda: TimeIndexMetaTable.column_search("cpi", embedding_model="minilm", lake=catalog_lake)):
        with pytest.raises(EmbedderMismatchError, match="built with embedder 'hashing-v1-384'.*rebuild"):
            call()
    result = CliRunner().invoke(app, ["--lake", catalog_lake.uri, "search", "cpi", "--embedder", "minilm"])
    assert result.exit_code != 0 and "rebuild" in result.output
    assert search_index(catalog_lake).version() == version  # the index is unchanged
    # the explicit switch: `lakenodes search --refresh --embedder minilm`
    result = CliRunner().invoke(app, ["--lake", catalog_lake.uri, "search", "--refresh", "--embedder", "minilm",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert search_index(catalog_lake).embedder.name == get_embedder(None).name
    page = TimeIndexMetaTable.description_search("home loan interest", embedding_model="minilm", lake=catalog_lake)
    assert identifiers(page)[0] == "mortgage_rates_weekly"


def test_unknown_embedder_spec_in_the_cli_is_a_clear_error(catalog_lake):
    result = CliRunner().invoke(app, ["--lake", catalog_lake.uri, "search", "--refresh", "--embedder", "word2vec"])
    assert result.exit_code != 0 and "unknown embedding model 'word2vec'" in result.output


# ------------------------------------------------------------------------------------------ catch-up
def test_catch_up_costs_what_changed(catalog_lake, monkeypatch):
    reads = []  # "full" (every record) or "since" (the records saved since the last catch-up)
    real = search_sync.tables_since

    def spy(lake, seen_files):
        records, files = real(lake, seen_files)
        reads.append(f"since: {len(records)}" if seen_files else "full")
        return records, files

    monkeypatch.setattr(search_sync, "tables_since", spy)
    assert identifiers(TimeIndexMetaTable.description_search("mortgage", lake=catalog_lake))[0] == \
        "mortgage_rates_weekly"
    assert reads == ["full"]  # the first search builds the index
    for q in ("mortgage", "cpi", "stock prices"):
        TimeIndexMetaTable.description_search(q, lake=catalog_lake)
        TimeIndexMetaTable.column_search(q, lake=catalog_lake)
    assert reads == ["full"]  # nothing changed: two version checks per search, no catalog read
    add_table(catalog_lake, "uk_cpi_monthly", "United Kingdom consumer price index", ["cpih_yoy"])
    assert "uk_cpi_monthly" in identifiers(TimeIndexMetaTable.description_search("uk cpi", lake=catalog_lake))
    assert reads == ["full", "since: 1"]  # only the new record
    # a table deleted from the catalog leaves the index the same way
    record = TimeIndexMetaTable.get(identifier="mortgage_rates_weekly", lake=catalog_lake)
    save_table_record(catalog_lake, record.model_copy(update={"deleted": True}))
    assert "mortgage_rates_weekly" not in identifiers(
        TimeIndexMetaTable.description_search("mortgage rates", lake=catalog_lake))
    assert reads == ["full", "since: 1", "since: 1"] and search_index(catalog_lake).count() == 3
    # a write to the index made elsewhere (another process, a repair) makes the next search compare all
    SearchIndex(catalog_lake.catalog_uri("search")).delete_tables(["uid-uk_cpi_monthly"])
    assert "uk_cpi_monthly" in identifiers(TimeIndexMetaTable.description_search("uk cpi", lake=catalog_lake))
    assert reads == ["full", "since: 1", "since: 1", "full"]


def test_a_garbled_version_marker_only_costs_a_catch_up(catalog_lake):
    TimeIndexMetaTable.description_search("cpi", lake=catalog_lake)
    marker = f"{catalog_lake.catalog_uri('search')}/{search_sync._MARKER}"
    with open(marker, "w") as f:
        f.write("{not json")
    assert identifiers(TimeIndexMetaTable.description_search("cpi", lake=catalog_lake))[0] == "us_cpi_monthly"
    with open(marker) as f:
        assert json.load(f)["index"] == search_index(catalog_lake).version()


# ------------------------------------------------------------------------------------------ seeds' API
def test_any_catalog_lookup_filters_a_search_and_results_carry_the_seeds_fields(catalog_lake):
    def search(**filters):
        return identifiers(TimeIndexMetaTable.description_search("prices rates", lake=catalog_lake, limit=10,
                                                                 **filters))

    assert set(search()) == {"us_cpi_monthly", "mortgage_rates_weekly", "equity_prices_daily"}
    assert search(identifier__contains="rates") == ["mortgage_rates_weekly"]
    assert set(search(storage_hash__in=["hash_us_cpi_monthly", "hash_equity_prices_daily"])) == {
        "us_cpi_monthly", "equity_prices_daily"}
    assert search(description__icontains="MORTGAGE", namespace="") == ["mortgage_rates_weekly"]
    assert search(identifier__startswith="nothing") == []
    page = TimeIndexMetaTable.column_search("close", lake=catalog_lake, identifier__contains="equity")
    assert identifiers(page) == ["equity_prices_daily"]
    hit = page["results"][0]
    assert hit["physical_table_name"] == hit["storage_hash"] == "hash_equity_prices_daily"
    assert hit["cadence"] == hit["data_frequency_id"] and "index_names" in hit
    with pytest.raises(LakenodesUserError, match="unknown search filter.*'colour'"):
        TimeIndexMetaTable.description_search("x", lake=catalog_lake, colour="red")
    with pytest.raises(LakenodesUserError, match="a lake is one data source: search another one with lake="):
        TimeIndexMetaTable.description_search("daily close price", lake=catalog_lake, data_source__id=2)  # seed 002


def test_q_embedding_is_the_query_vector(catalog_lake):
    embedder = get_embedder(None)
    vector = embedder.embed(["home loan interest"])[0]
    page = TimeIndexMetaTable.description_search("zzz", q_embedding=vector.tolist(), w_trgm=0.0, w_emb=1.0,
                                                 lake=catalog_lake)
    assert identifiers(page)[0] == "mortgage_rates_weekly"
    assert page["results"][0]["embedding_score"] == pytest.approx(1.0)
    with pytest.raises(SearchArgumentError, match="q_embedding must be 384 finite numbers"):
        TimeIndexMetaTable.description_search("x", q_embedding=[0.1, 0.2], lake=catalog_lake)


def test_column_search_takes_q_embedding_and_checks_the_embedder(catalog_lake):
    by_text = TimeIndexMetaTable.column_search("close price", lake=catalog_lake)
    vector = get_embedder(None).embed(["close price"])[0].tolist()
    by_vector = TimeIndexMetaTable.column_search("close price", q_embedding=vector, lake=catalog_lake)
    assert identifiers(by_vector) == identifiers(by_text) and identifiers(by_text)
    assert [hit["score"] for hit in by_vector["results"]] == pytest.approx([hit["score"] for hit in by_text["results"]])
    with pytest.raises(SearchArgumentError, match="q_embedding must be 384 finite numbers"):
        TimeIndexMetaTable.column_search("close", q_embedding=[0.1, 0.2], lake=catalog_lake)
    with pytest.raises(EmbedderMismatchError):
        TimeIndexMetaTable.column_search("close", embedding_model="hashing", lake=catalog_lake)


def test_ledger_latest_since_a_file_list(local_lake):
    """What the catch-up reads after catalog changes: the latest rows of the files it has not seen."""
    ledger = Ledger(local_lake, "notes", pa.schema([("name", pa.string()), ("value", pa.string())]), key=("name",))
    assert ledger.latest_since(()) == (ledger.schema.empty_table(), [])
    ledger.append([{"name": "a", "value": "1"}])
    rows, files = ledger.latest_since(())
    assert rows.column("name").to_pylist() == ["a"]
    ledger.append([{"name": "b", "value": "2"}])
    ledger.append([{"name": "a", "value": "3"}])
    rows, newer = ledger.latest_since(files)
    assert sorted(zip(rows.column("name").to_pylist(), rows.column("value").to_pylist(), strict=True)) == [
        ("a", "3"), ("b", "2")]
    assert ledger.latest_since(newer)[0].num_rows == 0
    ledger.tidy()  # compaction rewrites the files: every row is new again
    rows, _ = ledger.latest_since(newer)
    assert sorted(rows.column("value").to_pylist()) == ["2", "3"]
