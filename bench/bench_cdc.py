"""CDC benchmark: cdc-publisher throughput, and commit-to-queryable latency at a sustained rate.

Everything real and local: Google's Pub/Sub emulator, fake-gcs-server (checkpoints), a simulated
org in a process of its own (``bench.cdc_org``: REST, the Pub/Sub API over TLS, a load generator
writing through the org store's transactions), the cdc-publisher, the local CDC stream into DuckDB.

1. Throughput: 30,000 change events waiting in the org's log; the publisher drains them into
   ``sfpipe-cdc`` (acknowledged by the emulator). Reference, same run: the emulator taking the
   same number of same-sized messages from a bare publisher that only publishes (no Pub/Sub API,
   no decoding).
2. Latency: the raw layer batch-loaded from the org; the publisher as a process of its own, the
   stream in this one; the org commits 500 single-record changes per second for 60 s. Each
   change's latency is its commit timestamp to the commit of the warehouse transaction that made
   it queryable. Reference, same run: the emulator's own publish-to-pull latency at 500/s.

Targets (issue 10): ≥ 5,000 events/s; p50 ≤ 1 s and p99 ≤ 3 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import BenchResult, peak_rss_mb

THROUGHPUT_EVENTS = int(os.environ.get("SFPIPE_BENCH_CDC_EVENTS", "30000"))
RATE = float(os.environ.get("SFPIPE_BENCH_CDC_RATE", "500"))
SECONDS = float(os.environ.get("SFPIPE_BENCH_CDC_SECONDS", "60"))
SCALE = int(os.environ.get("SFPIPE_BENCH_CDC_SCALE", "10000"))
BEAM_SECONDS = float(os.environ.get("SFPIPE_BENCH_CDC_BEAM_SECONDS", "40"))
"""How long Beam's local streaming runner is fed at RATE/s for the comparison (0 skips it)."""
ORDERED = os.environ.get("SFPIPE_BENCH_CDC_ORDERED", "0") != "0"
"""Whether the stream's subscription has message ordering on (the topology's cdc-stream has not: ADR 0096)."""
DUCKDB_THREADS = int(os.environ.get("SFPIPE_BENCH_CDC_DUCKDB_THREADS", "1"))
PER_COMMIT = int(os.environ.get("SFPIPE_BENCH_CDC_PER_COMMIT", "5"))
"""Records per org transaction in the latency run: 500 changes/s as 100 commits/s of 5 records."""


def _quiet(bench: BenchResult, phase: str, limit: float = 600.0) -> None:
    """Wait (up to ``limit`` s) until the machine's 1-minute load is under 1.5 per core; record what it was.

    The figures are absolute (latency in seconds); other work on the machine would be measured
    with them. A run that had to start anyway says so in its figures.
    """
    cores = os.cpu_count() or 1
    started = time.monotonic()
    while os.getloadavg()[0] > 1.5 * cores and time.monotonic() - started < limit:
        time.sleep(5)
    bench.figures[f"{phase}_load_average_at_start"] = round(os.getloadavg()[0], 2)
    bench.figures[f"{phase}_waited_for_quiet_seconds"] = round(time.monotonic() - started, 1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Org:
    """The org child process and its command channel."""

    def __init__(self, root: Path) -> None:
        env = {**os.environ, "SFPIPE_BENCH_ORG_DIR": str(root / "org"), "SFPIPE_BENCH_ORG_SCALE": str(SCALE),
               "SFPIPE_LOG_LEVEL": "WARNING"}  # fmt: skip
        self.log = (root / "org.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.cdc_org"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
                                     cwd=Path(__file__).resolve().parents[1])  # fmt: skip
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            msg = f"the benchmark org exited ({self.proc.poll()}); see {self.log.name}"
            raise RuntimeError(msg)
        result: dict[str, Any] = json.loads(line)
        return result

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call(cmd="stop")
            except (OSError, RuntimeError, ValueError):
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _emulator_reference(settings: Any, count: int, payload: bytes) -> dict[str, float]:
    """The emulator alone: publish ``count`` messages in requests of 1,000 (rate), and its latency at RATE/s."""
    from google.pubsub_v1.types import PublishRequest, PubsubMessage

    from sfpipe.adapters.factory import publisher_client, subscriber_client

    pub, sub = publisher_client(settings), subscriber_client(settings)
    topic = pub.topic_path(settings.project, "bench-reference")
    pub.create_topic(name=topic)
    pb = PubsubMessage.pb()
    messages = [pb(data=payload, attributes={"n": str(i)}, ordering_key=f"k{i % 5000}") for i in range(count)]
    started = time.perf_counter()
    for i in range(0, count, 1000):
        request = PublishRequest.pb()(topic=topic, messages=messages[i : i + 1000])
        pub.api.publish(request=PublishRequest.wrap(request), timeout=60)
    rate = count / (time.perf_counter() - started)
    path = sub.subscription_path(settings.project, "bench-reference-latency")
    sub.create_subscription(name=path, topic=topic)
    lags: list[float] = []

    def received(message: Any) -> None:
        lags.append((time.time() - float(message.attributes["t"])) * 1000.0)
        message.ack()

    future = sub.subscribe(path, callback=received)
    time.sleep(1.0)
    plain = publisher_client(settings, ordering=False)
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < 10:
        due = int((time.monotonic() - t0) * RATE) - sent
        for _ in range(max(0, due)):
            plain.publish(topic, payload, t=repr(time.time()))
            sent += 1
        time.sleep(0.002)
    time.sleep(2)
    future.cancel()
    return {"publish_per_second": rate, "latency_p50_ms": _percentile(lags, 0.5),
            "latency_p99_ms": _percentile(lags, 0.99), "latency_samples": len(lags)}  # fmt: skip


def run() -> BenchResult:
    bench = BenchResult("cdc")
    bench.figures["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    from sfpipe_devstack.emulators import free_port, start_fake_gcs, start_pubsub_emulator

    root = Path(tempfile.mkdtemp(prefix="sfpipe-bench-cdc-"))
    host = "127.0.0.1"
    pubsub_port, gcs_port = free_port(host), free_port(host)
    started = [start_pubsub_emulator(host, pubsub_port, root / "pubsub", root / "pubsub.log")]
    org: Org | None = None
    try:
        started.append(start_fake_gcs(host, gcs_port, root / "gcs.log"))
        t = time.perf_counter()
        org = Org(root)
        bench.figures["org_start_seconds"] = round(time.perf_counter() - t, 2)
        env = {
            "SFPIPE_MODE": "local", "SFPIPE_HOME": str(root / "home"), "SFPIPE_PROJECT": "sfpipe-bench-cdc",
            "SFPIPE_HOST": host, "SFPIPE_PUBSUB_PORT": str(pubsub_port), "SFPIPE_GCS_PORT": str(gcs_port),
            "SFPIPE_STATE_BUCKET": "bench-state", "SFPIPE_LAKE_BUCKET": "bench-lake",
            "SFPIPE_SF_LOGIN_URL": org.info["url"], "SFPIPE_SF_VERIFY_TLS": org.info["ca"],
            "SFPIPE_SF_PUBSUB_ENDPOINT": org.info["endpoint"], "SFPIPE_SF_CLIENT_ID": org.info["client_id"],
            "SFPIPE_SF_CLIENT_SECRET": org.info["client_secret"], "SFPIPE_LOG_FORMAT": "text",
            "SFPIPE_LOG_LEVEL": "WARNING", "SFPIPE_CDC_PUBLISHER_PORT": str(free_port(host)),
        }  # fmt: skip
        os.environ.update(env)
        from sfpipe.config import load_settings, reset_settings

        reset_settings()
        settings = load_settings()
        _topology(settings)
        _quiet(bench, "throughput")
        throughput = _throughput(bench, org, settings)
        reference = _emulator_reference(settings, THROUGHPUT_EVENTS, b"x" * throughput["message_bytes"])
        bench.figures["reference"] = {k: round(v, 2) for k, v in reference.items()}
        bench.figures["publisher_vs_bare_publish"] = round(throughput["events_per_second"]
                                                           / reference["publish_per_second"], 3)  # fmt: skip
        _quiet(bench, "latency")
        latency = _latency(bench, org, settings, env, root, started[0].proc.pid)
        if BEAM_SECONDS > 0:
            bench.figures["beam_direct_runner"] = _beam_direct(settings, root)
        bench.figures["latency_p50_vs_emulator_p50"] = round(latency["p50_ms"] / reference["latency_p50_ms"], 2)
        bench.target("publisher_events_per_second", throughput["events_per_second"], 5_000, higher_is_better=True,
                     unit="events/s")  # fmt: skip
        bench.target("commit_to_queryable_p50_seconds", latency["p50_ms"] / 1000, 1.0, higher_is_better=False,
                     unit="s")  # fmt: skip
        bench.target("commit_to_queryable_p99_seconds", latency["p99_ms"] / 1000, 3.0, higher_is_better=False,
                     unit="s")  # fmt: skip
        bench.figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        bench.figures["peak_rss_mb"] = {"bench_process": round(peak_rss_mb(), 1),
                                        "children": round(peak_rss_mb(children=True), 1)}  # fmt: skip
    finally:
        if org is not None:
            org.stop()
        for proc in reversed(started):
            proc.stop()
    return bench


def _topology(settings: Any) -> None:
    from sfpipe.adapters.factory import object_store, publisher_client, subscriber_client
    from sfpipe.topology import load_topology
    from sfpipe_devstack.topology_apply import apply_topology

    apply_topology(load_topology(), settings.project, lambda _: f"http://{settings.host}:9/",
                   publisher=publisher_client(settings), subscriber=subscriber_client(settings))  # fmt: skip
    object_store(settings).ensure_bucket(settings.state_bucket, versioned=True)


def _checkpoint(settings: Any, position: int) -> None:
    from sfpipe.adapters.factory import object_store
    from sfpipe_cdc_publisher.checkpoint import Checkpoints, Position

    Checkpoints(object_store(settings), settings.state_bucket).save(
        settings.cdc_topic, Position(position.to_bytes(8, "big"))
    )


def _throughput(bench: BenchResult, org: Org, settings: Any) -> dict[str, Any]:
    from sfpipe_cdc_publisher.publisher import build

    before = org.info["latest"]
    t = time.perf_counter()
    filled = org.call(cmd="fill", events=THROUGHPUT_EVENTS)
    bench.figures["fill_seconds"] = round(time.perf_counter() - t, 2)
    latest = int(filled["latest"])
    _checkpoint(settings, before)
    publisher = build(settings)
    thread = threading.Thread(target=publisher.run, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    first: float | None = None
    first_count = 0
    while True:
        m = publisher.metrics
        if first is None and m.messages_published:
            first, first_count = time.perf_counter(), m.messages_published
        if m.replay_id and int(m.replay_id, 16) >= latest:
            break
        if time.perf_counter() - t0 > 600:
            msg = f"the publisher did not drain {THROUGHPUT_EVENTS} events in 10 minutes: {m.as_dict()}"
            raise RuntimeError(msg)
        time.sleep(0.01)
    done = time.perf_counter()
    publisher.stop()
    thread.join(60)
    m = publisher.metrics
    assert first is not None
    rate = (m.messages_published - first_count) / max(done - first, 1e-9)
    bench.figures["throughput"] = {
        "events": latest - before, "messages_published": m.messages_published,
        "publish_requests": m.publish_requests, "seconds_first_to_last_ack": round(done - first, 3),
        "seconds_with_startup": round(done - t0, 3), "events_per_second": round(rate, 1),
    }  # fmt: skip
    return {"events_per_second": rate, "message_bytes": 900}


def _latency(
    bench: BenchResult, org: Org, settings: Any, env: dict[str, str], root: Path, emulator_pid: int
) -> dict[str, float]:
    import pyarrow.parquet as pq

    from sfpipe.adapters.factory import subscriber_client
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
    from sfpipe.raw import RawLayer
    from sfpipe_beam.cdc.stream import CdcStream

    session = EmbeddedSession(root / "warehouse.duckdb")
    # on two cores the org, the emulator and the publisher are busy too: DuckDB's one thread per core only
    # adds waiting on descheduled workers to statements this small (ADR 0094 has both measurements)
    session.conn.execute(f"SET threads = {DUCKDB_THREADS}")
    wh = DuckDBWarehouse(session, scratch=root / "scratch")
    truth = org.call(cmd="truth", folder=str(root / "truth"))
    layer = RawLayer(wh)
    for path in sorted((root / "truth").glob("*.parquet")):
        table = pq.read_table(path)
        if table.num_rows:
            layer.apply_arrow(path.stem, table, source="batch", run_id="20260101T000000Z-00000000")
    _checkpoint(settings, int(truth["replay_id"]))
    sub = subscriber_client(settings)
    path = sub.subscription_path(settings.project, "cdc-bench-latency")
    topic = f"projects/{settings.project}/topics/sfpipe-cdc"
    sub.create_subscription(request={"name": path, "topic": topic, "enable_message_ordering": ORDERED,
                                     "ack_deadline_seconds": 60})  # fmt: skip
    stream = CdcStream(settings, wh, sub, subscription="cdc-bench-latency")
    stream.keep_lags = True
    streaming = threading.Thread(target=stream.run, daemon=True)
    streaming.start()
    log = (root / "publisher.log").open("ab")
    publisher = subprocess.Popen([sys.executable, "-m", "sfpipe_cdc_publisher"], env={**os.environ, **env},
                                 stdout=log, stderr=log)  # fmt: skip
    try:
        time.sleep(5.0)  # publisher up and subscribed, stream pulling
        stream.metrics.lags_ms.clear()
        stream.metrics.stages_ms.clear()
        applied_before = stream.metrics.applied
        pids = {"org": org.proc.pid, "publisher": publisher.pid, "bench_stream": os.getpid(), "emulator": emulator_pid}
        cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        done = org.call(cmd="rate", per_second=RATE, seconds=SECONDS, per_commit=PER_COMMIT)
        cpu = {name: round((_cpu_seconds(pid) - cpu_before[name]) / done["seconds"], 2) for name, pid in pids.items()}
        deadline = time.monotonic() + 120
        while stream.metrics.applied - applied_before < done["committed"] and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        publisher.terminate()
        publisher.wait(30)
        log.close()
        stream.stop()
        streaming.join(30)
    lags = list(stream.metrics.lags_ms)
    stages = stream.metrics.stages_ms
    for i, name in enumerate(("commit_to_published", "published_to_pulled", "pulled_to_queryable")):
        values = [s[i] for s in stages]
        bench.figures[f"stage_{name}_ms"] = {"p50": round(_percentile(values, 0.5), 1),
                                             "p99": round(_percentile(values, 0.99), 1)}  # fmt: skip
    result = {
        "p50_ms": _percentile(lags, 0.5), "p95_ms": _percentile(lags, 0.95), "p99_ms": _percentile(lags, 0.99),
        "max_ms": max(lags) if lags else float("nan"), "mean_ms": statistics.fmean(lags) if lags else 0.0,
    }  # fmt: skip
    bench.figures["latency"] = {
        **{k: round(v, 1) for k, v in result.items()}, "samples": len(lags),
        "committed": done["committed"], "achieved_rate_per_second": round(done["achieved_per_second"], 1),
        "records_per_commit": PER_COMMIT, "duckdb_threads": DUCKDB_THREADS, "ordered_subscription": ORDERED,
        "batches": stream.metrics.batches, "applied_messages": stream.metrics.applied - applied_before,
        "cpu_cores_busy_during_load": cpu,
    }  # fmt: skip
    wh.close()
    return result


def _beam_direct(settings: Any, root: Path) -> dict[str, Any]:
    """Publish-to-DoFn latency of Beam's DirectRunner in streaming mode at RATE/s (no warehouse at all)."""
    from sfpipe.adapters.factory import publisher_client, subscriber_client

    pub, sub = publisher_client(settings, ordering=False), subscriber_client(settings)
    topic = pub.topic_path(settings.project, "bench-beam")
    pub.create_topic(name=topic)
    path = sub.subscription_path(settings.project, "bench-beam")
    sub.create_subscription(name=path, topic=topic)
    output = root / "beam-lags.txt"
    log = (root / "beam.log").open("ab")
    child = subprocess.Popen([sys.executable, "-m", "bench.cdc_beam_direct", path, str(output)], stdout=log,
                             stderr=log, env={**os.environ, "PUBSUB_EMULATOR_HOST": settings.pubsub_emulator_host},
                             cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    started = time.monotonic()
    try:
        while not output.exists() and time.monotonic() - started < 120:  # until the runner delivers a first message
            pub.publish(topic, b"warm-up", t=repr(time.time())).result(timeout=30)
            time.sleep(1.0)
        warmup = time.monotonic() - started
        output.unlink(missing_ok=True)
        t0, sent = time.monotonic(), 0
        while time.monotonic() - t0 < BEAM_SECONDS:
            due = int((time.monotonic() - t0) * RATE) - sent
            for _ in range(max(0, due)):
                pub.publish(topic, b"x" * 900, t=repr(time.time()))
                sent += 1
            time.sleep(0.002)
        time.sleep(10)
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
        log.close()
    lags = [float(x) for x in output.read_text().split()] if output.exists() else []
    return {"seconds_to_first_message": round(warmup, 1), "sent": sent, "received_within_10s_after": len(lags),
            "p50_ms": round(_percentile(lags, 0.5), 1), "p99_ms": round(_percentile(lags, 0.99), 1)}  # fmt: skip
