"""The local devstack: `sfpipe up` / `down` times, the Pub/Sub emulator's own figures, and sfpipe's event path.

Targets (issue 15): `sfpipe up` from a cold home to every health check green ≤ 15 s;
`sfpipe down` ≤ 5 s; sfpipe's publisher and push-handler wrapper add ≤ 10 % to the
emulator's own publish→push latency at a steady 500 messages/s. The reference runs in
the same process, against the same emulator, alternating with sfpipe's path.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import BenchResult, peak_rss_mb

UP_RUNS = 3
RATE = 500  # messages per second for the latency runs
STEADY_SECONDS = 8
ROUNDS = 3  # alternating reference / sfpipe runs; the median of each side counts
PUBLISH_N = 20_000
PULL_N = 10_000
PUSH_N = 5_000


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 2)


# ---- sfpipe up / down, as a user runs them ---------------------------------------------------


def _stack_env(home: Path) -> dict[str, str]:
    from sfpipe.config import Settings
    from sfpipe_devstack.emulators import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFPIPE_", "PUBSUB_", "STORAGE_EMULATOR"))}
    env.update({"SFPIPE_HOME": str(home), "SFPIPE_PROJECT": "sfpipe-bench", "COLUMNS": "200"})
    for name in Settings.model_fields:
        if name.endswith("_port"):
            env[f"SFPIPE_{name.upper()}"] = str(free_port())
    return env


def _group_usage(pgid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MiB) of every live process in a group."""
    from sfpipe_devstack import procs

    ticks = os.sysconf("SC_CLK_TCK")
    cpu = rss = 0.0
    for pid in procs.group_members(pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    rss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return cpu, rss


def _lifecycle_once() -> dict[str, Any]:
    from sfpipe_devstack import procs

    home = Path(tempfile.mkdtemp(prefix="sfpipe-bench-home-"))
    env = _stack_env(home)
    cli = [sys.executable, "-m", "sfpipe"]
    try:
        started = time.perf_counter()
        up = subprocess.run([*cli, "up"], env=env, capture_output=True, text=True, timeout=300, check=False)
        up_seconds = time.perf_counter() - started
        if up.returncode != 0:
            msg = f"sfpipe up failed: {up.stderr[-3000:]}"
            raise RuntimeError(msg)
        status = json.loads(
            subprocess.run(
                [*cli, "status", "--json", "--no-backlog"], env=env, capture_output=True, text=True, check=False
            ).stdout
        )
        running = [p for p in status["processes"] if p["state"] == "running"]
        records = {n: procs.PidDir(home / "run").read(n) for n in procs.PidDir(home / "run").names()}
        usage = {n: _group_usage(r.pgid) for n, r in records.items() if r is not None}
        started = time.perf_counter()
        down = subprocess.run([*cli, "down"], env=env, capture_output=True, text=True, timeout=120, check=False)
        down_seconds = time.perf_counter() - started
        left = [n for n, r in records.items() if r is not None and procs.group_alive(r.pgid)]
        return {
            "up_seconds": round(up_seconds, 2),
            "down_seconds": round(down_seconds, 2),
            "down_ok": down.returncode == 0 and not left,
            "processes": sorted(p["name"] for p in running),
            "cpu_seconds_to_healthy": {n: round(u[0], 2) for n, u in usage.items()},
            "peak_rss_mb": {n: round(u[1], 1) for n, u in usage.items()},
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _lifecycle(result: BenchResult) -> None:
    runs = [_lifecycle_once() for _ in range(UP_RUNS)]
    ups = [r["up_seconds"] for r in runs]
    downs = [r["down_seconds"] for r in runs]
    result.figures["up_down_runs"] = runs
    result.figures["up_seconds_median"] = statistics.median(ups)
    result.figures["down_seconds_median"] = statistics.median(downs)
    result.figures["up_cpu_seconds_total_median"] = statistics.median(
        sum(r["cpu_seconds_to_healthy"].values()) for r in runs
    )
    result.figures["devstack_peak_rss_mb_total"] = round(max(sum(r["peak_rss_mb"].values()) for r in runs), 1)
    result.figures["cpus"] = os.cpu_count()
    result.figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    result.target(
        "sfpipe up, cold home to all healthy (median s)", statistics.median(ups), 15.0, higher_is_better=False, unit="s"
    )
    result.target("sfpipe down (median s)", statistics.median(downs), 5.0, higher_is_better=False, unit="s")
    result.target("down leaves no process", float(all(r["down_ok"] for r in runs)), 1.0, higher_is_better=True)


# ---- the emulator's own figures and sfpipe's event path ---------------------------------------


@contextmanager
def _emulator() -> Iterator[str]:
    from sfpipe_devstack.emulators import free_port, start_pubsub_emulator

    root = Path(tempfile.mkdtemp(prefix="sfpipe-bench-pubsub-"))
    port = free_port()
    emulator = start_pubsub_emulator("127.0.0.1", port, root / "data", root / "pubsub.log")
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        emulator.stop()
        if previous is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous
        shutil.rmtree(root, ignore_errors=True)


def _now() -> float:
    """One clock for every process on the machine (CLOCK_MONOTONIC is system-wide on Linux)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def serve_endpoint(kind: str, port_file: str, scratch: str = "") -> None:
    """A push endpoint in its own process, as a service runs: ``bare``, ``wrapper`` or ``ledger``.

    It notes when each message arrived (by its ``seq`` attribute, or the event id) and
    hands the notes back on ``GET /arrivals``.
    """
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def mark(key: str) -> None:
        at = _now()
        with lock:
            arrivals.setdefault(key, at)

    def report(query: str) -> bytes:
        with lock:
            if query.startswith("count"):
                return json.dumps({"count": len(arrivals)}).encode()
            return json.dumps(arrivals).encode()

    if kind == "bare":

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            if environ["REQUEST_METHOD"] == "GET":
                start_response("200 OK", [("Content-Type", "application/json")])
                return [report(environ.get("QUERY_STRING", ""))]
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            mark(json.loads(body)["message"]["attributes"]["seq"])
            start_response("204 No Content", [])
            return [b""]

        wsgi: Any = app
    else:
        import flask

        from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
        from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
        from sfpipe.config import load_settings
        from sfpipe.events import CloudEvent, EventType
        from sfpipe.service import EventService, HandlerContext, Outcome, create_app

        def handler(event: CloudEvent, ctx: HandlerContext) -> Outcome:
            mark(event.id)
            return Outcome(200, {})

        if kind == "ledger":
            wh = DuckDBWarehouse(EmbeddedSession(Path(scratch) / "ledger.duckdb"), scratch=Path(scratch))

            def warehouse() -> Any:
                return wh
        else:

            def warehouse() -> Any:
                raise AssertionError("the wrapper run keeps no ledger")

        service = EventService(
            "transform",
            handler,
            accepts=[EventType.LOAD_COMPLETED],
            warehouse=warehouse,
            settings=load_settings(),
            idempotent=kind == "ledger",
        )
        if kind == "ledger":
            service.warehouse  # noqa: B018 - the ops tables exist before anything is timed

        def arrivals_route(app: flask.Flask) -> None:
            @app.get("/arrivals")
            def _arrivals() -> flask.Response:
                return flask.Response(report(flask.request.query_string.decode()), mimetype="application/json")

        wsgi = create_app(service, extra=arrivals_route)
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    Path(port_file).write_text(str(server.server_port))
    server.serve_forever()


class Endpoint:
    """A push endpoint process and what it received."""

    def __init__(self, kind: str) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix=f"sfpipe-bench-{kind}-"))
        port_file = self.scratch / "port"
        code = (
            "from bench.bench_devstack import serve_endpoint; "
            f"serve_endpoint({kind!r}, {str(port_file)!r}, {str(self.scratch)!r})"
        )
        env = {
            **os.environ,
            "SFPIPE_LOG_FORMAT": "json",
            "SFPIPE_LOG_LEVEL": "WARNING",
            "SFPIPE_HOME": str(self.scratch),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.scratch / "log").open("wb"),
        )
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                msg = f"{kind} endpoint did not start: {(self.scratch / 'log').read_text()[-2000:]}"
                raise RuntimeError(msg)
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}/"

    def _get(self, query: str) -> Any:
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{self.url}arrivals?{query}", timeout=30) as response:
            return json.loads(response.read())

    def arrivals(self) -> dict[str, float]:
        return dict(self._get("all"))

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._get("count")["count"] < count and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.scratch, ignore_errors=True)


def _steady(publish: Callable[[str], Any], endpoint: Endpoint, prefix: str, before: int) -> dict[str, float]:
    """Publish at RATE per second for STEADY_SECONDS; latency from publish call to arrival."""
    sent: dict[str, float] = {}
    futures = []
    total = RATE * STEADY_SECONDS
    start = _now()
    for i in range(total):
        pause = start + i / RATE - _now()
        if pause > 0:
            time.sleep(pause)
        key = f"{prefix}-{i}"
        sent[key] = _now()
        futures.append(publish(key))
    achieved = total / (_now() - start)
    for future in futures:
        future.result(timeout=60)
    endpoint.wait(before + total, timeout=60)
    arrived = endpoint.arrivals()
    latencies = [arrived[k] - t for k, t in sent.items() if k in arrived]
    return {
        "sent": len(sent),
        "received": len(latencies),
        "p50_ms": _ms(latencies, 0.5),
        "p99_ms": _ms(latencies, 0.99),
        "achieved_rate": round(achieved, 1),
    }


def _reference_throughput(result: BenchResult, project: str) -> None:
    from google.cloud import pubsub_v1

    batch = pubsub_v1.types.BatchSettings(max_messages=500, max_bytes=10_000_000, max_latency=0.05)
    publisher = pubsub_v1.PublisherClient(batch_settings=batch)
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(project, "throughput")
    publisher.create_topic(name=topic)
    pull_sub = subscriber.subscription_path(project, "throughput-pull")
    subscriber.create_subscription(request={"name": pull_sub, "topic": topic, "ack_deadline_seconds": 60})

    payload = b"x" * 100
    started = time.perf_counter()
    futures = [publisher.publish(topic, payload) for _ in range(PUBLISH_N)]
    for future in futures:
        future.result(timeout=120)
    publish_rate = PUBLISH_N / (time.perf_counter() - started)

    received = threading.Event()
    count = [0]
    lock = threading.Lock()

    def callback(message: Any) -> None:
        message.ack()
        with lock:
            count[0] += 1
            if count[0] >= PULL_N:
                received.set()

    started = time.perf_counter()
    flow = pubsub_v1.types.FlowControl(max_messages=2000)
    streaming = subscriber.subscribe(pull_sub, callback, flow_control=flow)
    received.wait(timeout=180)
    pull_rate = count[0] / (time.perf_counter() - started)
    streaming.cancel()
    try:
        streaming.result(timeout=10)
    except Exception:  # cancelling a streaming pull ends it with an error, by design
        pass

    endpoint = Endpoint("bare")
    try:
        push_topic = publisher.topic_path(project, "push-throughput")
        publisher.create_topic(name=push_topic)
        subscriber.create_subscription(
            request={
                "name": subscriber.subscription_path(project, "push-throughput"),
                "topic": push_topic,
                "push_config": {"push_endpoint": endpoint.url},
            }
        )
        futures = [publisher.publish(push_topic, payload, seq=str(i)) for i in range(PUSH_N)]
        for future in futures:
            future.result(timeout=120)
        endpoint.wait(PUSH_N, timeout=180)
        times = sorted(endpoint.arrivals().values())
    finally:
        endpoint.close()
    push_rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    subscriber.close()
    result.figures["emulator_publish_msgs_per_s_batches_of_500"] = round(publish_rate)
    result.figures["emulator_streaming_pull_msgs_per_s"] = round(pull_rate)
    result.figures["emulator_push_msgs_per_s"] = round(push_rate)
    result.figures["emulator_streaming_pull_received"] = count[0]
    result.figures["emulator_push_received"] = len(times)


def _event_paths(result: BenchResult, project: str, host: str) -> None:
    from google.cloud import pubsub_v1

    from sfpipe.adapters.bus import EventPublisher
    from sfpipe.adapters.factory import publisher_client
    from sfpipe.config import load_settings
    from sfpipe.events import EventType, LoadCompleted, make_event
    from sfpipe.ids import new_run_id
    from sfpipe.topology import load_topology

    settings = load_settings(project=project, host=host.split(":")[0], pubsub_port=int(host.split(":")[1]))
    raw_publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topology = load_topology()
    library = EventPublisher(publisher_client(settings), project, topology)
    data = LoadCompleted(run_id=new_run_id(), manifest_uri="gs://lake/salesforce/_runs/x/_manifest.json", objects={})

    def subscribe(name: str, topic: str, url: str) -> str:
        path = raw_publisher.topic_path(project, topic)
        raw_publisher.create_topic(name=path)
        subscriber.create_subscription(
            request={
                "name": subscriber.subscription_path(project, name),
                "topic": path,
                "push_config": {"push_endpoint": url},
            }
        )
        return path

    def reference_publish(topic: str) -> Callable[[str], Any]:
        def publish(seq: str) -> Any:
            return raw_publisher.publish(topic, b'{"run_id":"x"}', seq=seq)

        return publish

    def library_publish(topic: str | None = None) -> Callable[[str], Any]:
        def publish(seq: str) -> Any:
            event = make_event(EventType.LOAD_COMPLETED, data, service="loader", event_id=seq)
            return library.publish_async(event, topic=topic)

        return publish

    bare, wrapper, ledger = Endpoint("bare"), Endpoint("wrapper"), Endpoint("ledger")
    runs: dict[str, list[dict[str, float]]] = {"reference": [], "sfpipe": []}
    try:
        ref_topic = subscribe("reference-push", "reference", bare.url)
        subscribe("transform", topology.topic_for(EventType.LOAD_COMPLETED), wrapper.url)
        warm = 200  # JIT, connection pools, Flask's first requests
        for i in range(warm):
            reference_publish(ref_topic)(f"warm-{i}")
            library_publish()(f"warm-{i}")
        bare.wait(warm, 30)
        wrapper.wait(warm, 30)
        done = warm
        for round_no in range(ROUNDS):  # alternate, so drift on a shared machine hits both
            runs["reference"].append(_steady(reference_publish(ref_topic), bare, f"r{round_no}", done))
            runs["sfpipe"].append(_steady(library_publish(), wrapper, f"s{round_no}", done))
            done += RATE * STEADY_SECONDS

        # the idempotency ledger: one DuckDB transaction per event on the same push path
        subscribe("ledger-push", "ledger", ledger.url)
        drain_n = 500
        futures = [library_publish("ledger")(f"l-{i}") for i in range(drain_n)]
        for future in futures:
            future.result(timeout=60)
        ledger.wait(drain_n, timeout=300)
        times = sorted(ledger.arrivals().values())
    finally:
        for endpoint in (bare, wrapper, ledger):
            endpoint.close()
        subscriber.close()

    def median(which: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[which]), 2)

    ref_p50, lib_p50 = median("reference", "p50_ms"), median("sfpipe", "p50_ms")
    ref_p99, lib_p99 = median("reference", "p99_ms"), median("sfpipe", "p99_ms")
    result.figures["steady_rate_msgs_per_s"] = RATE
    result.figures["steady_runs"] = runs
    result.figures["emulator_push_latency_p50_ms"] = ref_p50
    result.figures["emulator_push_latency_p99_ms"] = ref_p99
    result.figures["sfpipe_event_path_latency_p50_ms"] = lib_p50
    result.figures["sfpipe_event_path_latency_p99_ms"] = lib_p99
    result.figures["sfpipe_added_latency_p99_ratio"] = round(lib_p99 / ref_p99, 3) if ref_p99 else None
    result.figures["ledger_push_drain_msgs_per_s"] = (
        round((len(times) - 1) / (times[-1] - times[0]), 1) if len(times) > 1 else 0.0
    )
    result.figures["ledger_events_received"] = len(times)
    lost = sum(r["sent"] - r["received"] for rs in runs.values() for r in rs)
    result.target("sfpipe event path p50 / emulator p50", lib_p50 / ref_p50, 1.10, higher_is_better=False, unit="ratio")
    result.target("messages lost in the latency runs", float(lost), 0.0, higher_is_better=False)


def run() -> BenchResult:
    """Every figure of the devstack benchmark."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    result = BenchResult("devstack")
    result.figures["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    _lifecycle(result)
    with _emulator() as host:
        _reference_throughput(result, "sfpipe-bench-reference")
        _event_paths(result, "sfpipe-bench-events", host)
    result.figures["bench_process_peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


if __name__ == "__main__":
    path = run().write()
    print(path.read_text())
