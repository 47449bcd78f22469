"""The load pipeline on FnApiRunner against a lake on fake-gcs-server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfpipe import raw
from sfpipe.adapters.pipelines import LoadRequest
from sfpipe.lake import parse_staged
from sfpipe_beam.load import LoadOptions, main
from sfpipe_loader import lakegen
from sfpipe_loader.testing import Lake, opp_id, opportunities

pytestmark = pytest.mark.integration
BEAM = Path(__file__).parents[1]


@pytest.fixture
def lake(object_store, local_settings) -> Lake:
    return Lake(object_store, local_settings.lake_bucket)


def run_pipeline(uri: str, out: Path, *extra: str) -> tuple[int, dict]:
    result = out / "_staged.json"
    code = main(["--runner=FnApiRunner", f"--manifest={uri}", f"--staging={out / 'staging'}", f"--result={result}", *extra])
    return code, json.loads(result.read_text())


def staged_rows(document: dict, sobject: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(f["uri"]) for f in document["objects"][sobject]["files"]])


def test_stages_the_newest_version_per_id_with_its_source_file(lake, tmp_path):
    first = opportunities(range(0, 50), [1] * 25 + [3] * 25, seed=1)
    second = opportunities(range(25, 75), [2] * 50, seed=2)
    manifest, uri = lake.run({"Opportunity": [first, second]})
    code, document = run_pipeline(uri, tmp_path, "--bucket_rows=20")
    assert code == 0, document
    staged = parse_staged(json.dumps(document))
    part = staged.objects["Opportunity"]
    assert (part.input_rows, part.rows) == (100, 75)
    assert len(part.files) == 2 and all(f.uri.startswith(str(tmp_path / "staging" / "Opportunity")) for f in part.files)
    assert staged.timings["startup"] > 0 and staged.timings["run"] > 0
    table = staged_rows(document, "Opportunity")
    assert table.num_rows == 75 and len(set(table["Id"].to_pylist())) == 75
    files = {f.uri for f in manifest.objects["Opportunity"].files}
    by_id = {r["Id"]: r for r in table.to_pylist()}
    # 0-24 only in the first file; 25-49 newer in the first file (3h > 2h); 50-74 only in the second
    assert {by_id[opp_id(i)]["_source_file"] for i in range(0, 50)} == {sorted(files)[0]}
    assert {by_id[opp_id(i)]["_source_file"] for i in range(50, 75)} == {sorted(files)[1]}
    assert by_id[opp_id(30)]["Name"] == first.column("Name")[30].as_py()
    assert by_id[opp_id(60)]["Name"] == second.column("Name")[35].as_py()
    # describe's types, then the source file
    expected = raw.normalise(first, raw.declared_types(lakegen.OPPORTUNITY_FIELDS)).schema
    assert table.schema.remove(table.schema.get_field_index("_source_file")) == expected
    assert not list(Path("/tmp").glob(f"sfpipe-beam-{os.getpid()}"))


def test_types_are_normalised_to_describe(lake, tmp_path):
    table = opportunities([1, 2], [1, 2])
    narrow = table.set_column(
        table.schema.get_field_index("SystemModstamp"), "SystemModstamp",
        pa.array([datetime(2026, 3, 1, 1), datetime(2026, 3, 1, 2)], pa.timestamp("ms")),
    )
    narrow = narrow.set_column(narrow.schema.get_field_index("FiscalYear"), "FiscalYear", pa.array([2026, 2027], pa.int32()))
    _, uri = lake.run({"Opportunity": [narrow]})
    code, document = run_pipeline(uri, tmp_path)
    assert code == 0, document
    staged = staged_rows(document, "Opportunity")
    assert staged.schema.field("SystemModstamp").type == raw.TIMESTAMP
    assert staged.schema.field("FiscalYear").type == pa.int64()
    assert staged["SystemModstamp"][1].as_py() == datetime(2026, 3, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("problem", ["corrupt", "missing"])
def test_bad_files_fail_as_bad_input_and_still_leave_a_result(lake, tmp_path, problem):
    part = lakegen.ObjectPart([opportunities([1], [1]), opportunities([2], [1])], **{problem: {1}})
    manifest, uri = lake.run({"Opportunity": part})
    code, document = run_pipeline(uri, tmp_path)
    assert code == 3
    assert document["terminal"] is True and document["objects"] == {}
    assert document["run_id"] == manifest.run_id
    bad = manifest.objects["Opportunity"].files[1].uri
    assert bad in document["error"]
    assert {"corrupt": "not readable Parquet", "missing": "does not exist"}[problem] in document["error"]


def test_unknown_objects_and_a_changed_manifest_are_bad_input(lake, tmp_path):
    _, uri = lake.run({"Opportunity": [opportunities([1], [1])]})
    code, document = run_pipeline(uri, tmp_path, "--objects=Lead")
    assert code == 3 and "Lead" in document["error"]
    generation = lake.store.stat(uri).generation
    code, document = run_pipeline(uri, tmp_path / "b", f"--manifest_generation={generation + 1}")
    assert code == 3 and "generation" in document["error"]


@pytest.mark.slow
def test_python_m_sfpipe_beam_is_the_entry(lake, tmp_path, local_settings):
    _, uri = lake.run({"Opportunity": [opportunities(range(10), [1] * 10)], "Account": []})
    env = {**os.environ, "STORAGE_EMULATOR_HOST": local_settings.storage_emulator_host}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "sfpipe_beam", "--runner=FnApiRunner", f"--manifest={uri}",
         f"--staging={out}/", f"--result={out}/_staged.json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    staged = parse_staged((out / "_staged.json").read_text())
    assert staged.objects["Opportunity"].rows == 10
    assert staged.objects["Account"].files == [] and staged.objects["Account"].rows == 0


def test_flex_template_metadata_declares_exactly_the_pipeline_parameters():
    metadata = json.loads((BEAM / "metadata.json").read_text())
    declared = {p["name"]: p for p in metadata["parameters"]}
    import argparse

    parser = argparse.ArgumentParser()
    LoadOptions._add_argparse_args(parser)
    options = {a.dest for a in parser._actions if a.dest != "help"}
    assert set(declared) == options
    required = {a.dest for a in parser._actions if a.required}
    assert {n for n, p in declared.items() if not p.get("isOptional")} == required
    # what the loader sends passes the template's validation; wrong values do not
    request = LoadRequest(
        "20260331T010203Z-0a1b2c3d", "gs://sfpipe-lake/salesforce/_runs/20260331T010203Z-0a1b2c3d/_manifest.json",
        1743382923000000, ("Account", "Opportunity"),
    )
    sent = request.parameters("gs://b-dataflow/staging/load/r/staging/", "gs://b-dataflow/staging/load/r/_staged.json")
    for name, value in sent.items():
        assert any(re.fullmatch(rx, value) for rx in declared[name]["regexes"]), (name, value)
    bad = {"manifest": "gs://lake/other.json", "objects": "Account;drop", "manifest_generation": "-1", "staging": "/tmp/x/"}
    for name, value in bad.items():
        assert not any(re.fullmatch(rx, value) for rx in declared[name]["regexes"]), (name, value)


def test_template_image_lints_and_points_at_the_entry_file():
    dockerfile = (BEAM / "Dockerfile").read_text()
    lint = subprocess.run([str(Path(sys.executable).parent / "hadolint"), str(BEAM / "Dockerfile")], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    entry = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=(\S+)", dockerfile).group(1)
    assert entry == "/template/sfpipe_beam/__main__.py"
    assert (BEAM / "sfpipe_beam" / "__main__.py").exists()
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, flags=re.M):
        assert (BEAM.parent / source).exists(), source
