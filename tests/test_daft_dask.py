"""daft (``daft.read_deltalake``) and Dask (``dask-deltatable``) read every lakenodes table exactly.

The snippets are docs/interop.md's own (its "daft" and "Dask" sections, which
``tests/test_docs_snippets.py`` also runs on its docs table): here each runs after every stage of
every table kind (``engine_tables.table_life``) and over the catalog, on a local lake and on the
moto S3 server (with the standard ``AWS_*`` variables set, as a user's shell would).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from engine_tables import (
    DIMENSIONS,
    KINDS,
    STAGE_NAMES,
    assert_same_rows,
    catalog_tables,
    identities,
    table_life,
)
from test_docs_snippets import SNIPPETS, Snippet, as_polars

from lakenodes import Lake

ENGINES = ("daft", "dask")
LAKES = pytest.mark.parametrize("any_lake", ["local", pytest.param("s3", marks=pytest.mark.s3)], indirect=True)


def engine_snippets(lake: Lake) -> dict[str, Snippet]:
    """The docs' daft and Dask snippet for this kind of lake."""
    wanted = "local" if lake.is_local else "s3"
    found = {s.heading.lower(): s for s in SNIPPETS if s.heading.lower() in ENGINES and s.lake == wanted}
    assert sorted(found) == sorted(ENGINES), f"docs/interop.md needs a daft and a Dask snippet for {wanted}"
    return found


def engine_read(snippet: Snippet, lake: Lake, table_uri: str) -> pl.DataFrame:
    namespace: dict[str, Any] = {"__name__": "docs_snippet", "LAKE_URI": lake.uri, "TABLE_URI": table_uri}
    exec(compile(snippet.code, f"interop.md:{snippet.line}", "exec"), namespace)  # noqa: S102
    return as_polars(namespace["df"])


@LAKES
@pytest.mark.parametrize("kind", KINDS)
def test_daft_and_dask_read_every_stage_exactly(aws_env: Lake, kind: str) -> None:
    snippets = engine_snippets(aws_env)
    seen = []
    for stage in table_life(aws_env, kind):
        for engine, snippet in snippets.items():
            got = engine_read(snippet, aws_env, stage.node.table_uri)
            assert_same_rows(got, stage.ours, stage.index, f"{engine} after {stage.name}")
        seen.append(stage.name)
    assert seen == STAGE_NAMES
    assert got["time_index"].dt.microsecond().n_unique() > 1
    for dim in DIMENSIONS[kind]:
        assert set(got[dim]) == {identity[dim] for identity in identities(kind)}


@LAKES
def test_daft_and_dask_read_the_catalog_exactly(aws_env: Lake) -> None:
    for uri in catalog_tables(aws_env):
        ours = pl.from_arrow(DeltaTable(uri, storage_options=aws_env.storage_options or None).to_pyarrow_table())
        for engine, snippet in engine_snippets(aws_env).items():
            assert_same_rows(engine_read(snippet, aws_env, uri), ours, sorted(ours.columns), f"{engine}: {uri}")
