"""Objects too wide for one REST URL, and objects Bulk API 2.0 does not support."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sfpipe.salesforce import soql
from sfpipe.salesforce.client import QueryPage, SalesforceClient
from sfpipe_extractor.engine import Extractor, joined_pages

WIDE_ROWS = 150


def test_column_groups_fit_the_url_and_each_carries_the_keys():
    fields = ["Id", "SystemModstamp", *[f"Some_Long_Custom_Field_Name_{i:03d}__c" for i in range(700)]]
    where = "SystemModstamp >= 2026-01-01T00:00:00Z"
    assert not soql.fits_url(soql.select("Wide__c", fields, where))
    groups = soql.column_groups("Wide__c", fields, where, keys=["Id", "SystemModstamp"])
    assert len(groups) > 1
    assert all(g[:2] == ["Id", "SystemModstamp"] for g in groups)
    assert all(soql.fits_url(soql.select("Wide__c", g, where, order_by="Id")) for g in groups)
    assert [f for g in groups for f in g[2:]] == fields[2:]
    assert soql.column_groups("Account", ["Id", "Name"]) == [["Id", "Name"]]


@dataclass
class _Pages:
    pages: dict[str, list[list[dict]]]

    def query_pages(self, query, include_deleted=False):
        group = next(k for k in self.pages if f" {k} " in query or f", {k} " in query)
        for records in self.pages[group]:
            yield QueryPage(records, 0, False, None)


def test_joined_pages_join_by_id_and_leave_out_records_that_changed_between_groups():
    a = [[{"Id": "1", "S": 1, "A": "a1"}, {"Id": "2", "S": 1, "A": "a2"}], [{"Id": "3", "S": 1, "A": "a3"}]]
    b = [[{"Id": "1", "S": 1, "B": "b1"}], [{"Id": "2", "S": 2, "B": "b2"}]]  # 2 changed, 3 gone (changed)
    client = _Pages({"A": a, "B": b})
    rows = [r for page in joined_pages(client, "X", [["Id", "S", "A"], ["Id", "S", "B"]], "", "S") for r in page]
    assert rows == [{"Id": "1", "S": 1, "A": "a1", "B": "b1"}]


@pytest.fixture(scope="module")
def wide_simulator(tmp_path_factory):
    from sfpipe_simulator.server import SimulatorConfig, SimulatorProcess

    config = SimulatorConfig(seed=13, scale=1_000, data_dir=tmp_path_factory.mktemp("wide"),
                             counts={"Wide__c": WIDE_ROWS})
    sim = SimulatorProcess(config).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.mark.integration
@pytest.mark.parametrize("bulk", ["supported", "unsupported"])
def test_a_wide_object_arrives_whole_over_bulk_or_over_rest_column_groups(
    bulk, wide_simulator, configure, object_store, lake, completed_events, caplog
):
    settings = configure(wide_simulator.url, wide_simulator.verify, SFPIPE_BULK_THRESHOLD="100000")
    if bulk == "unsupported":
        wide_simulator.admin.set_faults(bulk_unsupported_objects=["Wide__c"])
    try:
        with caplog.at_level("INFO"):
            report = Extractor(SalesforceClient.from_settings(settings), object_store, settings).run(
                ["Wide__c"], mode="full"
            )
    finally:
        wide_simulator.admin.clear_faults()
    assert report.status == "completed", report.summary()
    result = report.objects["Wide__c"]
    # too wide for one REST URL: Bulk first, even under the Bulk threshold
    assert result.api == ("bulk" if bulk == "supported" else "rest")
    if bulk == "unsupported":
        assert "not supported by the Bulk API" in caplog.text and "column groups" in caplog.text
    truth, _ = wide_simulator.admin.truth("Wide__c")
    fields = [f.name for f in result.entry.fields]
    assert len(fields) > 800
    expected = {row["Id"]: tuple(row[c] for c in fields) for row in truth.select(fields).to_pylist()}
    got = lake.latest("Wide__c", fields)
    assert got == expected
