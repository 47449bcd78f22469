"""The publisher loop: Subscribe → decode → publish to ``sfpipe-cdc`` → checkpoint, with repairs.

Two threads. The subscriber reads the Pub/Sub API stream (at most ``SFPIPE_CDC_FETCH_SIZE``
events requested), decodes each event with its schema's decoder and turns it into messages. The
publisher sends them, in order, in publish requests of up to ``SFPIPE_CDC_PUBLISH_BATCH``
messages — in a few lanes by ordering key, each lane one request at a time, so that every
record's messages reach Pub/Sub in commit order — and only once Pub/Sub acknowledged all of them
moves the position past their events. The
checkpoint is written from that position (at most every ``SFPIPE_CDC_CHECKPOINT_SECONDS``), so a
crash at any point replays events that may already be in Pub/Sub and never skips one; the stream
into the raw layer is idempotent for exactly that reason.

Gap events are replaced by re-read records; a checkpoint Salesforce no longer retains starts a
catch-up: subscribe at the tip, re-read everything changed since the checkpoint's last commit,
publish it, then continue from the tip.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.pubsub_v1.types import PublishRequest, PubsubMessage

from sfpipe.errors import SfpipeError, TerminalError, TransientError
from sfpipe.ids import new_run_id
from sfpipe.salesforce.pubsub.client import Preset, PubSubAuthError, PubSubClient, ReplayIdInvalid
from sfpipe.salesforce.pubsub.events import GAP_TYPES, DecodedChange
from sfpipe_cdc_publisher.checkpoint import Checkpoints, Position
from sfpipe_cdc_publisher.messages import OutgoingMessage, change_messages
from sfpipe_cdc_publisher.repair import GapRepair

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1

    from sfpipe.config import Settings
    from sfpipe.salesforce.client import SalesforceClient

log = logging.getLogger(__name__)

CDC_TOPIC = "sfpipe-cdc"
FULL_ROW = frozenset({"CREATE", "UNDELETE"})
MAX_REQUEST_BYTES = 8 << 20
QUEUE_RESPONSES = 64
PUBLISH_LANES = 4
PUBLISH_ATTEMPTS = 8
CATCH_UP_MARGIN = timedelta(seconds=1)
_TRANSIENT_PUBLISH = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.Aborted,
                      gexc.TooManyRequests, gexc.ResourceExhausted, gexc.Unknown)  # fmt: skip


@dataclass
class Metrics:
    """What ``/healthz`` and ``/metrics`` report."""

    started_at: float = field(default_factory=time.time)
    state: str = "starting"
    subscribed: bool = False
    events_received: int = 0
    gap_events: int = 0
    messages_published: int = 0
    publish_requests: int = 0
    records_repaired: int = 0
    catch_ups: int = 0
    checkpoints: int = 0
    resubscribes: int = 0
    errors: int = 0
    last_error: str | None = None
    replay_id: str | None = None
    last_commit_timestamp: datetime | None = None
    last_published_at: float | None = None
    lag_seconds: float | None = None
    """Commit → Pub/Sub acknowledgement of the newest published change."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out = dict(self.__dict__)
        out["last_commit_timestamp"] = self.last_commit_timestamp.isoformat() if self.last_commit_timestamp else None
        out["uptime_seconds"] = round(time.time() - self.started_at, 3)
        return out


@dataclass
class _Work:
    """One response's worth of work, in stream order."""

    items: list[OutgoingMessage | DecodedChange]
    replay_id: bytes
    events: int
    commit_timestamp: datetime | None = None


@dataclass
class _CatchUp:
    """Re-read everything since a commit timestamp, then stand at ``replay_id``."""

    since: datetime
    replay_id: bytes


class CdcPublisher:
    """One channel's change events → the ``sfpipe-cdc`` topic."""

    def __init__(
        self,
        settings: Settings,
        *,
        salesforce: SalesforceClient,
        pubsub: PubSubClient,
        publisher: pubsub_v1.PublisherClient,
        checkpoints: Checkpoints,
        entities: Sequence[str] = (),
        run_id: str | None = None,
        topic: str = CDC_TOPIC,
        reconnect: Callable[[], PubSubClient] | None = None,
    ) -> None:
        self.settings = settings
        self.channel = settings.cdc_topic
        self.salesforce = salesforce
        self.pubsub = pubsub
        self.reconnect = reconnect
        self.client = publisher
        self.topic_path = publisher.topic_path(settings.project, topic)
        self.checkpoints = checkpoints
        self.repair = GapRepair(salesforce)
        self.entities = list(entities) or [e.strip() for e in settings.extract_objects.split(",") if e.strip()]
        self.run_id = run_id or new_run_id()
        self.metrics = Metrics()
        self.stop_event = threading.Event()
        self._queue: queue.Queue[_Work | _CatchUp | None] = queue.Queue(maxsize=QUEUE_RESPONSES)
        self._failure: BaseException | None = None
        self._position: Position | None = None
        self._received: bytes | None = None
        self._last_checkpoint = 0.0
        self._pb_message = PubsubMessage.pb()
        self._pb_request = PublishRequest.pb()
        self._lanes = ThreadPoolExecutor(max_workers=PUBLISH_LANES, thread_name_prefix="sfpipe-cdc-lane")
        self._metrics_lock = threading.Lock()

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Subscribe and publish until :meth:`stop` (or a terminal error); the checkpoint is saved on the way out."""
        self._position = self.checkpoints.load(self.channel)
        self._received = self._position.replay_id if self._position else None
        worker = threading.Thread(target=self._publish_loop, name="sfpipe-cdc-publish", daemon=True)
        worker.start()
        backoff = 0.5
        try:
            while not self.stop_event.is_set() and self._failure is None:
                try:
                    self._subscribe_once()
                    backoff = 0.5
                except ReplayIdInvalid as exc:
                    log.warning("resume position is gone (%s): catching up through the REST API", exc)
                    self._catch_up()
                except PubSubAuthError:
                    log.info("Pub/Sub API session refused: logging in again")
                    self.salesforce.login()
                    time.sleep(min(backoff, 5.0))
                    backoff *= 2
                except (TransientError, OSError) as exc:
                    self._error(exc)
                    self.metrics.state = "backoff"
                    self.stop_event.wait(min(backoff, 30.0))
                    backoff = min(backoff * 2, 30.0)
                    if self.reconnect is not None and backoff >= 4.0:
                        # a fresh channel: the endpoint or its certificate may only now be there
                        self.pubsub.close()
                        self.pubsub = self.reconnect()
                self.metrics.subscribed = False
        finally:
            self._queue.put(None)
            worker.join()
            self._lanes.shutdown(wait=True)
            self.metrics.state = "stopped"
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """Ask the loop to finish: queued work is still published and checkpointed."""
        self.stop_event.set()

    def _error(self, exc: BaseException) -> None:
        self.metrics.errors += 1
        self.metrics.last_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("CDC publisher: %s", self.metrics.last_error)

    def _put(self, item: _Work | _CatchUp) -> None:
        while not self.stop_event.is_set() or isinstance(item, _CatchUp):
            if self._failure is not None:
                raise self._failure
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _subscribe_once(self) -> None:
        if self._received is not None:
            stream = self.pubsub.subscribe(self.channel, preset="CUSTOM", replay_id=self._received,
                                           fetch_size=self.settings.cdc_fetch_size)  # fmt: skip
        else:
            preset: Preset = "EARLIEST" if self.settings.cdc_start == "earliest" else "LATEST"
            stream = self.pubsub.subscribe(self.channel, preset=preset, fetch_size=self.settings.cdc_fetch_size)
        self.metrics.resubscribes += 1
        try:
            for response in stream:
                self.metrics.subscribed = True
                self.metrics.state = "streaming"
                self._put(self._work(response))
                if self.stop_event.is_set():
                    return
        finally:
            stream.close()

    def _work(self, response: Any) -> _Work:
        items: list[OutgoingMessage | DecodedChange] = []
        commit: datetime | None = None
        for consumer in response.events:
            decoder = self.pubsub.decoder(consumer.event.schema_id)
            change = decoder.decode(consumer.event.payload)
            replay_hex = consumer.replay_id.hex()
            self.metrics.events_received += 1
            commit = change.commit_timestamp
            if change.change_type in GAP_TYPES:
                self.metrics.gap_events += 1
                items.append(change)
                continue
            extra = self.repair.audit_types(change.entity)
            if change.change_type in FULL_ROW:
                # a full row sets every column its schema has: name them all, as far as describe knows them
                described = self.repair.types(change.entity)
                extra = {**{c: t for c, t in decoder.columns.items() if c in described}, **extra}
            items.extend(change_messages(change, run_id=self.run_id, replay_id=replay_hex, extra_types=extra))
        if response.events:
            replay_id = bytes(response.events[-1].replay_id)
        else:
            replay_id = bytes(response.latest_replay_id) or (self._received or b"")
        self._received = replay_id or self._received
        return _Work(items, replay_id, len(response.events), commit)

    def _catch_up(self) -> None:
        """Stand at the tip first, then re-read what the lost stretch changed, then go on from the tip."""
        self.metrics.state = "repairing"
        self.metrics.catch_ups += 1
        stream = self.pubsub.subscribe(self.channel, preset="LATEST", fetch_size=1)
        try:
            first = next(stream)
        finally:
            stream.close()
        tip = bytes(first.latest_replay_id)
        position = self._position
        since = position.commit_timestamp if position and position.commit_timestamp else None
        if since is None:
            since = datetime.now(UTC) - timedelta(hours=72)
        self._put(_CatchUp(since - CATCH_UP_MARGIN, tip))
        self._received = tip

    # ------------------------------------------------------------------ publishing

    def _publish_loop(self) -> None:
        try:
            pending: _Work | _CatchUp | None = None
            while True:
                item = pending or self._queue.get()
                pending = None
                if item is None:
                    break
                if isinstance(item, _CatchUp):
                    self._publish_catch_up(item)
                    continue
                # what else is already waiting goes out in the same publish requests
                batch = [item]
                size = len(item.items)
                while size < self.settings.cdc_publish_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if not isinstance(more, _Work):
                        pending = more
                        break
                    batch.append(more)
                    size += len(more.items)
                self._publish_work(batch)
            self._checkpoint(force=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the subscriber thread, which re-raises it
            self._error(exc)
            self._failure = exc
            self.stop_event.set()

    def _publish_work(self, works: Sequence[_Work]) -> None:
        batch: list[OutgoingMessage] = []
        for work in works:
            for item in work.items:
                if isinstance(item, OutgoingMessage):
                    batch.append(item)
                    continue
                batch.extend(self._repaired([item], self.repair.for_gap(item)))
        self._send(batch)
        commits = [w.commit_timestamp for w in works if w.commit_timestamp is not None]
        self._advance(works[-1].replay_id, commits[-1] if commits else None, sum(w.events for w in works))

    def _repaired(self, gaps: Sequence[DecodedChange], changes: Iterable[DecodedChange]) -> list[OutgoingMessage]:
        out = []
        key = gaps[0].transaction_key if gaps else "repair"
        for change in changes:
            self.metrics.records_repaired += 1
            event_key = f"repair.{key}.{change.sequence_number}.{change.commit_number}"
            extra = self.repair.audit_types(change.entity)
            out.extend(
                change_messages(change, run_id=self.run_id, replay_id=None, extra_types=extra, event_key=event_key)
            )
        return out

    def _publish_catch_up(self, item: _CatchUp) -> None:
        batch: list[OutgoingMessage] = []
        entities = self._channel_entities()
        for change in self.repair.since_position(entities, item.since):
            self.metrics.records_repaired += 1
            batch.extend(change_messages(change, run_id=self.run_id, replay_id=None,
                                         extra_types=self.repair.audit_types(change.entity),
                                         event_key=f"catchup.{change.commit_timestamp.isoformat()}"))  # fmt: skip
            if len(batch) >= self.settings.cdc_publish_batch:
                self._send(batch)
                batch = []
        self._send(batch)
        self._advance(item.replay_id, None, 0)
        self._checkpoint(force=True)

    def _channel_entities(self) -> list[str]:
        prefix, suffix = "/data/", "ChangeEvent"
        if self.channel.startswith(prefix) and self.channel.endswith(suffix) and self.channel != "/data/ChangeEvents":
            return [self.channel[len(prefix) : -len(suffix)]]
        return self.entities

    def _send(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish and return once Pub/Sub acknowledged all of them.

        Messages are split into lanes by ordering key; the lanes' requests run side by side and each
        lane's requests go one after the other, so every record's messages still reach Pub/Sub in
        commit order (a key always falls into the same lane).
        """
        if not messages:
            return
        lanes: list[list[OutgoingMessage]] = [[] for _ in range(PUBLISH_LANES)]
        for m in messages:
            lanes[zlib.crc32(m.ordering_key.encode()) % PUBLISH_LANES].append(m)
        busy = [lane for lane in lanes if lane]
        if len(busy) == 1:
            self._send_lane(busy[0])
            return
        for future in [self._lanes.submit(self._send_lane, lane) for lane in busy]:
            future.result()

    def _send_lane(self, messages: Sequence[OutgoingMessage]) -> None:
        size = self.settings.cdc_publish_batch
        start = 0
        while start < len(messages):
            chunk: list[OutgoingMessage] = []
            nbytes = 0
            while start < len(messages) and len(chunk) < size:
                m = messages[start]
                nbytes += len(m.data) + 200
                if chunk and nbytes > MAX_REQUEST_BYTES:
                    break
                chunk.append(m)
                start += 1
            self._publish_request(chunk)

    def _publish_request(self, chunk: Sequence[OutgoingMessage]) -> None:
        pb = self._pb_message
        request = self._pb_request(
            topic=self.topic_path,
            messages=[pb(data=m.data, attributes=m.attributes, ordering_key=m.ordering_key) for m in chunk],
        )
        delay = 0.2
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                self.client.api.publish(request=PublishRequest.wrap(request), timeout=60)
                break
            except _TRANSIENT_PUBLISH as exc:
                if attempt == PUBLISH_ATTEMPTS - 1:
                    msg = f"publishing {len(chunk)} changes to {self.topic_path} failed {PUBLISH_ATTEMPTS} times: {exc}"
                    raise TransientError(msg) from exc
                self._error(exc)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            except gexc.GoogleAPICallError as exc:
                msg = f"Pub/Sub refused the publish to {self.topic_path}: {exc}"
                raise TerminalError(msg) from exc
        now = time.time()
        with self._metrics_lock:
            self.metrics.publish_requests += 1
            self.metrics.messages_published += len(chunk)
            self.metrics.last_published_at = now
            newest = chunk[-1].commit_timestamp
            self.metrics.lag_seconds = max(0.0, now - newest.timestamp())

    def _advance(self, replay_id: bytes, commit: datetime | None, events: int) -> None:
        if not replay_id:
            return
        previous = self._position
        self._position = Position(
            replay_id=replay_id,
            commit_timestamp=commit or (previous.commit_timestamp if previous else None),
            published=(previous.published if previous else 0) + events,
        )
        self.metrics.replay_id = replay_id.hex()
        if commit is not None:
            self.metrics.last_commit_timestamp = commit
        self._checkpoint()

    def _checkpoint(self, force: bool = False) -> None:
        position = self._position
        if position is None:
            return
        now = time.monotonic()
        if not force and now - self._last_checkpoint < self.settings.cdc_checkpoint_seconds:
            return
        self.checkpoints.save(self.channel, position)
        self._last_checkpoint = now
        self.metrics.checkpoints += 1


def build(settings: Settings) -> CdcPublisher:
    """A publisher wired from settings: the REST client's login, the Pub/Sub API, Google Pub/Sub, GCS."""
    from sfpipe.adapters.factory import object_store, publisher_client
    from sfpipe.salesforce.client import SalesforceClient

    salesforce = SalesforceClient.from_settings(settings)

    def connect() -> PubSubClient:
        return PubSubClient.from_settings(settings, salesforce, ca_file=local_ca(settings))

    checkpoints = Checkpoints(object_store(settings), settings.state_bucket)
    return CdcPublisher(settings, salesforce=salesforce, pubsub=connect(), publisher=publisher_client(settings),
                        checkpoints=checkpoints, reconnect=connect)  # fmt: skip


def local_ca(settings: Settings) -> str | None:
    """The CA that verifies the Pub/Sub API: ``SFPIPE_SF_VERIFY_TLS`` when a path, else the simulator's own.

    gRPC cannot skip certificate checks the way ``verify=false`` does for REST; a simulator's
    generated CA next to its data is what a local org is signed with.
    """
    if isinstance(settings.sf_verify_tls, str) and settings.sf_verify_tls.lower() not in {"true", "false"}:
        return settings.sf_verify_tls
    folder = settings.simulator_data_dir or settings.home / "simulator"
    candidate = folder / "tls" / "ca.pem"
    return str(candidate) if candidate.exists() else None


__all__ = ["CDC_TOPIC", "CdcPublisher", "Metrics", "SfpipeError", "build", "local_ca"]
