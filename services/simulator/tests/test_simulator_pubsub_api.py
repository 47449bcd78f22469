"""The simulator's Salesforce Pub/Sub API over real gRPC: auth, topics, schemas, Subscribe semantics,
and a Pub/Sub API client from PyPI (pysfpubsub) decoding its events."""

import json
import os
import subprocess
import sys
import textwrap
import time

import grpc
import pytest

from sfpipe.salesforce.pubsub._generated import pubsub_api_pb2 as pb2
from sfpipe.salesforce.pubsub._generated import pubsub_api_pb2_grpc as pb2_grpc
from sfpipe.salesforce.pubsub.bitmap import SchemaIndex
from sfpipe.salesforce.pubsub.client import (
    AUTH_ERROR,
    REPLAY_CORRUPTED,
    PubSubAuthError,
    PubSubClient,
    ReplayIdInvalid,
    open_channel,
)
from sfpipe_simulator.pubsub_api import replay
from sfpipe_simulator.pubsub_api.schemas import encoder
from sfpipe_simulator.pubsub_api.server import start_pubsub_api
from sfpipe_simulator.pubsub_api.service import PubSubConfig
from sfpipe_simulator.server import Simulator, SimulatorConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    config = SimulatorConfig(seed=11, scale=2_000, data_dir=tmp_path_factory.mktemp("pubsub-org"))
    with Simulator(config) as sim:
        yield sim


@pytest.fixture(scope="module")
def api(org):
    server = start_pubsub_api(org.runtime, security="tls", config=PubSubConfig(keepalive_seconds=0.5))
    yield server
    server.stop()


class Tokens:
    def __init__(self, sim, tenant=None):
        self.sim = sim
        self.token = sim.login()
        self.tenant = tenant or sim.runtime.org_id
        self.refreshed = 0

    def credentials(self):
        return self.token, self.sim.url, self.tenant

    def refresh(self):
        self.refreshed += 1
        self.token = self.sim.login()


@pytest.fixture
def client(org, api):
    c = PubSubClient(open_channel(api.endpoint, "tls", api.ca_file), Tokens(org))
    yield c
    c.close()


def _collect(stream, count, timeout=20.0):
    events, deadline = [], time.monotonic() + timeout
    for response in stream:
        events.extend(response.events)
        if len(events) >= count or time.monotonic() > deadline:
            break
    return events


def test_unknown_token_is_unauthenticated_with_salesforce_error_code(org, api):
    stub = pb2_grpc.PubSubStub(open_channel(api.endpoint, "tls", api.ca_file))
    metadata = (("accesstoken", "00Dbogus!token"), ("instanceurl", org.url), ("tenantid", org.runtime.org_id))
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetTopic(pb2.TopicRequest(topic_name="/data/ChangeEvents"), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("error-code", AUTH_ERROR) in tuple(caught.value.trailing_metadata())
    assert "rpcId:" in caught.value.details()


def test_another_orgs_tenant_id_is_refused(org, api):
    c = PubSubClient(open_channel(api.endpoint, "tls", api.ca_file), Tokens(org, tenant="00D000000000000AAA"))
    with pytest.raises(PubSubAuthError):
        c.get_topic("/data/ChangeEvents")


def test_expired_session_logs_in_again(org, api, client):
    org.admin.expire_sessions()
    info = client.get_topic("/data/AccountChangeEvent")
    assert client.tokens.refreshed == 1
    assert info.can_subscribe and not info.can_publish
    assert info.tenant_guid == org.runtime.org_id


def test_topics_and_schemas(client):
    one = client.get_topic("/data/OpportunityChangeEvent")
    assert one.schema_id == encoder("Opportunity").schema_id
    schema = json.loads(client.get_schema(one.schema_id))
    assert schema["name"] == "OpportunityChangeEvent" and schema["fields"][0]["name"] == "ChangeEventHeader"
    assert client.get_topic("/data/ChangeEvents").schema_id == ""
    with pytest.raises(Exception, match="NOT_FOUND"):
        client.get_topic("/data/NoSuchObjectChangeEvent")
    with pytest.raises(Exception, match="NOT_FOUND"):
        client.get_schema("nope")


def test_publishing_to_change_events_is_refused(org, client):
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.Publish(pb2.PublishRequest(topic_name="/data/ChangeEvents"), metadata=client.metadata())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_events_follow_the_change_log(org, client):
    start = org.store.changes.latest()
    org.runtime.activity.apply(150)
    expected = org.store.changes.read(start, 10_000)
    events = _collect(client.subscribe("/data/ChangeEvents", preset="CUSTOM", replay_id=replay.to_bytes(start)),
                      len(expected))
    assert [replay.from_bytes(e.replay_id) for e in events] == [e.replay_id for e in expected]
    for consumer, entry in zip(events, expected, strict=True):
        assert len(consumer.replay_id) == 8
        decoded = client.decoder(consumer.event.schema_id).decode(consumer.event.payload)
        assert (decoded.entity, decoded.change_type, decoded.record_ids) == (
            entry.entity, entry.change_type, list(entry.record_ids))
        assert decoded.commit_number == entry.commit_number and decoded.transaction_key == entry.transaction_key
        assert decoded.commit_timestamp == entry.commit_timestamp
        enc = encoder(entry.entity)
        carried = [c for c in entry.changed_fields if enc.path(c)]
        assert sorted(decoded.changed_fields) == sorted(carried)
        assert sorted(decoded.nulled_fields) == sorted(c for c in entry.nulled_fields if enc.path(c))
        for name, value in entry.values.items():
            if enc.path(name) and value is not None and not isinstance(value, str | bool):
                assert decoded.values[name] == value, name


def test_flow_control_sends_no_more_than_requested(org, client):
    start = org.store.changes.latest()
    org.runtime.activity.apply(60)
    stub = client.stub
    requests = [pb2.FetchRequest(topic_name="/data/ChangeEvents", replay_preset=pb2.ReplayPreset.CUSTOM,
                                 replay_id=replay.to_bytes(start), num_requested=7)]

    def gen():
        yield from requests
        time.sleep(3)  # no more requests for a while: the server must stop at 7

    received, keepalives = [], []
    for response in stub.Subscribe(gen(), metadata=client.metadata()):
        received.extend(response.events)
        if not response.events:
            keepalives.append(response)
            if len(keepalives) >= 2:
                break
    assert len(received) == 7
    assert keepalives[0].pending_num_requested == 0
    assert replay.from_bytes(keepalives[0].latest_replay_id) == replay.from_bytes(received[-1].replay_id)


def test_outstanding_requests_are_capped_at_one_hundred(org, client):
    start = org.store.changes.latest()
    org.runtime.activity.apply(400)

    def gen():
        yield pb2.FetchRequest(topic_name="/data/ChangeEvents", replay_preset=pb2.ReplayPreset.CUSTOM,
                               replay_id=replay.to_bytes(start), num_requested=1000)
        yield pb2.FetchRequest(num_requested=1000)
        time.sleep(3)

    received = []
    for response in client.stub.Subscribe(gen(), metadata=client.metadata()):
        if not response.events:
            break
        received.extend(response.events)
    assert len(received) == 100


def test_keepalive_carries_the_latest_replay_id_on_a_quiet_stream(org, client):
    latest = org.store.changes.latest()
    stream = client.subscribe("/data/ChangeEvents", preset="LATEST")
    first = next(stream)
    stream.close()
    assert list(first.events) == []
    assert replay.from_bytes(first.latest_replay_id) == latest


def test_one_object_channel_filters_and_moves_past_other_objects(org, client):
    start = org.store.changes.latest()
    org.runtime.activity.apply(200)
    expected = [e for e in org.store.changes.read(start, 10_000) if e.entity == "Opportunity"]
    assert expected
    stream = client.subscribe("/data/OpportunityChangeEvent", preset="CUSTOM", replay_id=replay.to_bytes(start))
    got = []
    for response in stream:
        got.extend(response.events)
        if not response.events:
            assert replay.from_bytes(response.latest_replay_id) == org.store.changes.latest()
            break
    stream.close()
    assert [replay.from_bytes(e.replay_id) for e in got] == [e.replay_id for e in expected]


def test_earliest_and_replay_ids_outside_retention(org, client):
    earliest = org.store.changes.earliest()
    first = _collect(client.subscribe("/data/ChangeEvents", preset="EARLIEST", fetch_size=5), 5)
    assert replay.from_bytes(first[0].replay_id) == earliest
    with pytest.raises(ReplayIdInvalid, match="replayid.corrupted"):
        next(client.subscribe("/data/ChangeEvents", preset="CUSTOM", replay_id=b"\x01\x02"))
    with pytest.raises(ReplayIdInvalid):
        next(client.subscribe("/data/ChangeEvents", preset="CUSTOM", replay_id=replay.to_bytes(10**12)))


def test_a_purged_position_is_too_old(tmp_path):
    with Simulator(SimulatorConfig(seed=3, scale=1_000, data_dir=tmp_path, tls=False)) as sim:
        server = start_pubsub_api(sim.runtime, security="insecure", config=PubSubConfig(keepalive_seconds=0.5))
        try:
            c = PubSubClient(open_channel(server.endpoint, "insecure"), Tokens(sim))
            sim.runtime.activity.apply(20)
            old = sim.store.changes.latest() - 10
            sim.admin.advance_clock(73 * 3600)
            sim.runtime.activity.apply(5)
            with pytest.raises(ReplayIdInvalid) as caught:
                next(c.subscribe("/data/ChangeEvents", preset="CUSTOM", replay_id=replay.to_bytes(old)))
            assert REPLAY_CORRUPTED in str(caught.value)
            fresh = _collect(c.subscribe("/data/ChangeEvents", preset="EARLIEST"), 5)
            assert replay.from_bytes(fresh[0].replay_id) == sim.store.changes.earliest() > old
        finally:
            server.stop()


def test_gap_events_are_header_only(tmp_path):
    with Simulator(SimulatorConfig(seed=5, scale=1_000, data_dir=tmp_path, tls=False)) as sim:
        config = PubSubConfig(keepalive_seconds=0.5, gap_every=4, overflow_every=10)
        server = start_pubsub_api(sim.runtime, security="local", config=config)
        try:
            c = PubSubClient(open_channel(server.endpoint, "local"), Tokens(sim))
            start = sim.store.changes.latest()
            sim.runtime.activity.apply(40)
            events = _collect(c.subscribe("/data/ChangeEvents", preset="CUSTOM", replay_id=replay.to_bytes(start)), 20)
            kinds = {}
            for e in events:
                d = c.decoder(e.event.schema_id).decode(e.event.payload)
                kinds[replay.from_bytes(e.replay_id)] = d
            for position, d in kinds.items():
                if position % 10 == 0:
                    assert d.change_type == "GAP_OVERFLOW" and d.record_ids == []
                elif position % 4 == 0:
                    assert d.change_type.startswith("GAP_") and d.values == {} and d.record_ids
                else:
                    assert not d.change_type.startswith("GAP_")
        finally:
            server.stop()


PYSFPUBSUB = textwrap.dedent(
    """
    import json, sys
    import grpc
    import pysfpubsub.pubsub as ps

    url, grpc_host, grpc_port, ca, username, password, wanted = sys.argv[1:8]
    ps.secure_channel_credentials = grpc.ssl_channel_credentials(open(ca, "rb").read())
    client = ps.Client(url, username, password, grpc_host, int(grpc_port), api_version="62.0")
    client.auth()
    out = []

    class Done(Exception):
        pass

    def callback(response, c):
        for e in response.events:
            schema = c.get_schema_json(e.event.schema_id)
            record = c.decode(schema, e.event.payload)
            header = record["ChangeEventHeader"]
            out.append({"replay": e.replay_id.hex(), "entity": header["entityName"],
                        "type": header["changeType"], "ids": header["recordIds"],
                        "changed": header["changedFields"], "nulled": header["nulledFields"],
                        "diff": header["diffFields"], "commit": header["commitNumber"],
                        "schema_id": e.event.schema_id,
                        "values": {k: v for k, v in record.items() if k != "ChangeEventHeader" and v is not None}})
        if response.events:
            c.release_subscription_semaphore()
        if len(out) >= int(wanted):
            raise Done

    try:
        client.subscribe("/data/ChangeEvents", "EARLIEST", b"", 50, callback)
    except Done:
        pass
    print(json.dumps(out, default=str))
    """
)


def test_pysfpubsub_subscribes_and_decodes(org, api, tmp_path):
    org.runtime.activity.apply(80)
    wanted = 120
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(api.ca_file)}
    c = org.config
    done = subprocess.run(
        [sys.executable, "-c", PYSFPUBSUB, org.url, api.host, str(api.port), str(api.ca_file), c.username,
         c.password + c.security_token, str(wanted)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    events = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(events) >= wanted
    log = {e.replay_id: e for e in org.store.changes.read(org.store.changes.earliest() - 1, len(events))}
    for got in events:
        entry = log[int(got["replay"], 16)]
        assert (got["entity"], got["type"], got["ids"], got["commit"]) == (
            entry.entity, entry.change_type, list(entry.record_ids), entry.commit_number)
        for key in ("changed", "nulled", "diff"):
            assert isinstance(got[key], list) and all(isinstance(x, str) for x in got[key])
        index = SchemaIndex.from_schema(json.loads(encoder(entry.entity).schema_json))
        enc = encoder(entry.entity)
        assert sorted(index.names(got["changed"])) == sorted(
            p for c in entry.changed_fields if (p := enc.path(c)))
        if entry.change_type == "CREATE":
            assert got["values"]["Id"] == entry.values["Id"]
