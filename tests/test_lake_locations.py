"""A lake in a folder (or S3 prefix) whose name holds spaces, accents or other characters URLs
encode works like any other: delta-rs hands back each table's URI percent-encoded ("My%20Documents"),
and lakenodes' own reads of its files (statistics, file facts, scans, the catalog) used to look
for the encoded name and fail, as ``pl.scan_delta`` still does (lazy scans read the files
themselves there). Locations delta-rs cannot open a table under are refused up front."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from pyarrow import fs as pafs
from test_polars_scan import FrameConfig, FrameNode, read_both, rows

from lakenodes import DataNodeMetaData, Lake, LakeConfigurationError, TimeIndexMetaTable, run_many, use_lake
from lakenodes._internal.caches import clear_caches
from lakenodes.cli import main
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import optimize_table

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "tutorial_nodes.py"
LOCAL_NAMES = ["My Documents", "é ü", "q?", "c{a,b}*"]
S3_NAMES = ["My Documents", "é ü"]


def a_users_day(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    with use_lake(lake):
        node = FrameNode(FrameConfig(name="located", node_metadata=DataNodeMetaData(identifier="located_prices")))
        node.run_with(rows(range(1, 3)))
        node.run_with(rows(range(3, 5)))
        node.run_with(rows(range(2, 3)).with_columns(price=pl.lit(-1.0)))  # a restatement (MERGE)
        clear_caches()  # a fresh process: statistics from the persisted facts
        assert node.compute_update_statistics().max_time_index_value == rows(range(4, 5))["time_index"][0]
        fast, plain, _ = read_both(node, monkeypatch, start_date=rows(range(2, 3))["time_index"][0])
        assert fast.equals(plain) and fast.height == 3 * 40
        assert fast.filter(pl.col("price") == -1.0).height == 40
        # the lazy scan too (pl.scan_delta cannot open such a table's files: lakenodes scans them itself)
        assert node.scan().collect().equals(node.get_df_between_dates())
        assert node.scan(as_of=0).collect().height == 2 * 40  # version 0: the first run's two days
        assert TimeIndexMetaTable.get(identifier="located_prices").scan().collect().height == 4 * 40
        optimize_table(lake, node.storage_hash, cross_section=True)
        one_day = rows(range(3, 4))["time_index"][0]
        assert node.get_df_between_dates(one_day, one_day).height == 40
        assert TimeIndexMetaTable.get(identifier="located_prices").storage_hash == node.storage_hash


@pytest.mark.parametrize("name", LOCAL_NAMES)
def test_a_local_lake_in_a_folder_with_url_characters(tmp_path, monkeypatch, capsys, name: str) -> None:
    lake = Lake(tmp_path / name / "lake")
    assert name in lake.uri
    a_users_day(lake, monkeypatch)
    capsys.readouterr()
    assert main(["--lake", lake.uri, "--json", "data-node", "list"], standalone_mode=False) == 0
    assert [row["identifier"] for row in json.loads(capsys.readouterr().out)["results"]] == ["located_prices"]


@pytest.mark.parametrize("name", S3_NAMES)
def test_an_s3_lake_under_a_prefix_with_url_characters(s3_server, monkeypatch, name: str) -> None:
    bucket = s3_server.new_lake()
    a_users_day(Lake(f"{bucket.uri}/{name}/lake", storage_options=bucket.storage_options), monkeypatch)


@pytest.mark.parametrize(("location", "character"), [
    ("{tmp}/run [2024]/lake", "["), ("{tmp}/pct%20x/lake", "%"), ("{tmp}/h#1/lake", "#"),
    ("s3://bucket/team]/lake", "]"), ("s3://bucket/q?/lake", "?"), ("s3://bucket/a#b/lake", "#"),
    # regression: delta-rs panicked on its first write under "|" or "^" (a Rust panic and a traceback), and
    # wrote under a "\\" as if it were "/" (another folder); a tab or newline panicked as well
    ("{tmp}/a|b/lake", "|"), ("{tmp}/a^b/lake", "^"), ("{tmp}/a\\b/lake", "\\"), ("{tmp}/a\tb/lake", "\t"),
    ("{tmp}/a\nb/lake", "\n"), ("s3://bucket/a|b/lake", "|"), ("s3://bucket/a^b/lake", "^"),
    ("s3://bucket/a\\b/lake", "\\"),
])
def test_locations_delta_rs_cannot_open_are_refused(tmp_path, location: str, character: str) -> None:
    with pytest.raises(LakeConfigurationError, match=re.escape(f"holds {character!r}")):
        Lake(location.format(tmp=tmp_path))
    assert not any(tmp_path.iterdir())  # nothing created


def test_a_lake_location_delta_rs_cannot_open_is_one_line_from_the_cli(tmp_path, capsys) -> None:
    """Regression: `lakenodes --lake '/data/a|b' run ...` printed Rust panics and a Python traceback."""
    assert main(["--lake", str(tmp_path / "a|b" / "lake"), "run", "examples.tutorial_nodes:DailyRandomNumber",
                 "--config", '{"mean": 0}'], standalone_mode=False) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: the lake location '{tmp_path}/a|b/lake' holds '|', which Delta Lake's Rust engine cannot open a "
        "table under: choose a location without '[', ']', '%', '#', '|', '^', '\\\\' or control characters"]
    assert not any(tmp_path.iterdir())


def test_a_file_url_names_its_decoded_folder(tmp_path) -> None:
    assert Lake(f"file://{tmp_path}/My%20Documents/lake").uri == str(tmp_path / "My Documents" / "lake")


@pytest.mark.parametrize("spelling", ["file://localhost{path}", "FILE://{path}", "file://LOCALHOST{path}"])
def test_every_spelling_of_a_local_file_url_names_the_same_folder(tmp_path, monkeypatch, capsys, spelling: str) -> None:
    """Regression: `--lake file://localhost/data/lake` (RFC 8089's spelling of file:///data/lake) wrote the lake
    to ./localhost/data/lake under the working directory; `FILE:///data/lake` was refused as an unsupported
    scheme."""
    folder = tmp_path / "My Documents" / "lake"
    uri = spelling.format(path=str(folder).replace(" ", "%20"))
    assert Lake(uri).uri == str(folder)
    monkeypatch.chdir(tmp_path)
    assert main(["--lake", uri, "run", f"{EXAMPLES}:DailyRandomNumber", "--config", '{"mean": 0}'],
                standalone_mode=False) == 0
    capsys.readouterr()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["My Documents"]  # no ./localhost, no ./file:
    assert main(["--lake", str(folder), "--json", "updates", "list"], standalone_mode=False) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 1


@pytest.mark.parametrize("uri", ["file://fileserver/data/lake", "file://lake", "file:lake", "file:/data/lake"])
def test_a_file_url_of_another_host_or_no_absolute_path_is_refused(tmp_path, monkeypatch, capsys, uri: str) -> None:
    """Regression: `file://fileserver/data/lake` (a share of another machine) and `file://lake` wrote a lake
    under the working directory (./fileserver/data/lake, ./lake) as if the host were a folder; `file:lake`
    and `file:/data/lake` were refused as "a local folder of that name is ./file:lake"."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LakeConfigurationError, match="file URL"):
        Lake(uri)
    assert main(["--lake", uri, "run", f"{EXAMPLES}:DailyRandomNumber", "--config", '{"mean": 0}'],
                standalone_mode=False) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: the lake URI {uri!r} ") and "file:///" in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("uri", ["s3:/bucket/lake", "s3:bucket/lake", "S3A:/bucket/lake"])
def test_a_scheme_missing_its_slashes_is_refused_not_taken_for_a_folder(tmp_path, uri: str) -> None:
    """Regression: `LAKENODES_URI=s3:/bucket/lake lakenodes run ...` (one '/' short) wrote the lake to a
    local folder ./s3:/bucket/lake, the job reporting success, the bucket receiving nothing."""
    env = {**os.environ, "LAKENODES_URI": uri}
    done = subprocess.run([sys.executable, "-m", "lakenodes", "run", f"{EXAMPLES}:DailyRandomNumber",
                           "--config", '{"mean": 0}'], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    scheme = uri.split(":")[0]
    assert done.stderr.strip().splitlines() == [
        f"error: the lake URI {uri!r} has no '//' after '{scheme}:' (an S3 lake is s3://bucket/prefix; "
        f"a local folder of that name is ./{uri})"]
    assert not any(tmp_path.iterdir())  # nothing written anywhere
    assert Lake(tmp_path / uri).uri == f"{tmp_path}/{uri}"  # a path that only contains one is a folder


@pytest.mark.s3
def test_a_lake_uri_with_a_trailing_newline_is_refused_not_a_second_lake(tmp_path, s3_server) -> None:
    """Regression: LAKENODES_URI from a Kubernetes secret made with `--from-file` keeps the file's final
    newline: `s3://bucket/lake\\n` wrote a second lake under the prefix 'lake\\n', beside the real one."""
    bucket = s3_server.create_bucket()
    for uri in (f"s3://{bucket}/lake\n", f"s3://{bucket}/lake ", f" {tmp_path}/lake"):
        env = {**os.environ, **s3_server.env, "LAKENODES_URI": uri}
        done = subprocess.run([sys.executable, "-m", "lakenodes", "run", f"{EXAMPLES}:DailyRandomNumber",
                               "--config", '{"mean": 0}'], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert (done.returncode, done.stderr) == (2, f"error: the lake URI {uri!r} starts or ends with whitespace: "
                                                     "remove it (a value read from a file or a secret keeps its "
                                                     "trailing newline)\n")
    filesystem, root = lake_filesystem(Lake(f"s3://{bucket}", storage_options=s3_server.storage_options),
                                       f"s3://{bucket}")
    assert filesystem.get_file_info(pafs.FileSelector(root, recursive=True)) == []  # nothing written
    assert not any(tmp_path.iterdir())


def test_a_lake_under_a_file_is_refused_before_a_python_run_writes(tmp_path) -> None:
    """Regression: `Lake("notes.txt/lake")` then `node.run()` failed late with a delta-rs NotADirectory
    error; it is now the CLI's one line, before anything is written (run_many and update_tree=False too)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a lake")
    node = FrameNode(FrameConfig(name="under a file"), lake=Lake(notes / "lake"))
    node.output = rows(range(1, 2))
    message = (f"{notes} is a file (and {notes / 'lake'} would be under it): a lake is a folder "
               "(or s3://bucket/prefix)")
    for run in (node.run, lambda: node.run(update_tree=False), lambda: run_many([node])):
        with pytest.raises(LakeConfigurationError) as refused:
            run()
        assert str(refused.value) == message
    with use_lake(Lake(notes)), pytest.raises(LakeConfigurationError, match=f"^{re.escape(str(notes))} is a file: "):
        FrameNode(FrameConfig(name="a file")).run_with(rows(range(1, 2)))
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"] and notes.read_text() == "not a lake"


@pytest.mark.parametrize(("options", "env_uri", "folder"), [
    (["--lake", "lake"], None, "lake"), ([], "lake", "lake"), ([], None, "./lake"),
], ids=["--lake", "LAKENODES_URI", "default"])
def test_a_relative_lake_from_a_working_directory_that_is_gone_is_one_line(
        tmp_path, options: list[str], env_uri: str | None, folder: str) -> None:
    """Regression: a job left in a directory a deploy removed or replaced (`lakenodes data-node list`
    with the default ./lake, `--lake lake` or `LAKENODES_URI=lake`) failed with a bare
    `error: FileNotFoundError: [Errno 2] No such file or directory`, naming neither the lake nor the cause."""
    gone = tmp_path / "release"
    gone.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "LAKENODES_URI"}
    if env_uri is not None:
        env["LAKENODES_URI"] = env_uri
    command = " ".join([sys.executable, "-m", "lakenodes", *options, "data-node", "list"])
    done = subprocess.run(["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec {command}'], env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (2, (
        f"error: the lake folder {folder!r} is relative to the working directory, which no longer exists (removed "
        "or replaced since this process entered it): run from an existing directory, or give the lake as an "
        "absolute path or an s3:// URI (--lake, LAKENODES_URI)\n"))
    assert not any(tmp_path.iterdir())


@pytest.mark.s3
@pytest.mark.slow
def test_two_stores_holding_the_same_bucket_and_prefix_each_get_their_catalog(s3_server) -> None:
    """Regression: a script ran one node into s3://lake/prod on a MinIO (staging) and then on AWS
    (production): the second lake got the rows but no catalog record, identifier claim or updater
    (this process had registered them for the URI already), so `data-node list`, search and
    `APIDataNode.build_from_identifier` there found nothing."""
    from lakenodes import APIDataNode
    from lakenodes.testing import start_s3_server

    other = start_s3_server()
    try:
        lakes = []
        for server in (s3_server, other):
            server.create_bucket("same-name")
            lakes.append(Lake("s3://same-name/prod", storage_options=server.storage_options))
        metadata = DataNodeMetaData(identifier="shared_prices", description="prices in two stores")
        for lake in lakes:
            FrameNode(FrameConfig(name="twice", node_metadata=metadata), lake=lake).run_with(rows(range(1, 3)))
        for lake in lakes:
            with use_lake(lake):
                [record] = TimeIndexMetaTable.filter()
                assert record.identifier == "shared_prices"
                assert APIDataNode.build_from_identifier("shared_prices").get_df_between_dates().height == 2 * 40
            updates = json.loads(subprocess.run(
                [sys.executable, "-m", "lakenodes", "--lake", lake.uri, "--json", "updates", "list"],
                env={**os.environ, **{key: value for key, value in lake.storage_options.items()
                                      if key.startswith("AWS_")}},
                capture_output=True, text=True, timeout=120).stdout)
            assert updates["count"] == 1, updates
    finally:
        other.stop()


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("inside", ["tables", "_catalog", "tables/{table}", "_catalog/tables"])
def test_a_lake_location_inside_another_lake_is_refused_before_anything_is_written(
        tmp_path, capsys, inside: str) -> None:
    """Regression: `--lake /data/lake/_catalog` (or `.../tables`, or a table's folder from `data-node detail`)
    ran the node and wrote a second lake inside the first: its table inside the folder of the catalog's own
    Delta table `_catalog/tables` (where that table's vacuum deletes files it does not list), a `_catalog`
    inside `_catalog`; `data-node list` there listed nothing and advised running the DataNodes again."""
    lake = Lake(tmp_path / "lake")
    node = FrameNode(FrameConfig(name="outer", node_metadata=DataNodeMetaData(identifier="outer_prices")), lake=lake)
    node.run_with(rows(range(1, 2)))
    before = _files(tmp_path)
    location = f"{lake.uri}/{inside.format(table=node.storage_hash)}"
    expected = (f"{location} is inside the lake {lake.uri} (in its {inside.split('/')[0]}/ folder): give the "
                f"lake's own folder, {lake.uri}")
    assert main(["--lake", location, "run", f"{EXAMPLES}:DailyRandomNumber", "--config", '{"mean": 0}'],
                standalone_mode=False) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {expected}: check --lake / LAKENODES_URI"]
    assert main(["--lake", location, "data-node", "list"], standalone_mode=False) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {expected}: check --lake / LAKENODES_URI"]
    inner = FrameNode(FrameConfig(name="inner"), lake=Lake(location))
    with pytest.raises(LakeConfigurationError) as refused:
        inner.run_with(rows(range(1, 2)))
    assert str(refused.value) == expected
    assert _files(tmp_path) == before  # nothing written anywhere


@pytest.mark.s3
def test_an_s3_lake_location_inside_another_lake_is_refused_by_the_cli(s3_server, capsys, monkeypatch) -> None:
    lake = s3_server.new_lake()
    FrameNode(FrameConfig(name="outer"), lake=lake).run_with(rows(range(1, 2)))
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    location = f"{lake.uri}/_catalog"
    assert main(["--lake", location, "run", f"{EXAMPLES}:DailyRandomNumber", "--config", '{"mean": 0}'],
                standalone_mode=False) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {location} is inside the lake {lake.uri} (in its _catalog/ folder): give the lake's own folder, "
        f"{lake.uri}: check --lake / LAKENODES_URI"]
    filesystem, root = lake_filesystem(lake, location)
    assert not [info for info in filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
                if "/_catalog/_catalog" in info.path or "/_catalog/tables/dailyrandomnumber" in info.path]
