"""A client of the Salesforce Pub/Sub API: topics, schemas, and flow-controlled subscriptions.

Authentication is the REST client's: the access token, instance URL and org id of a
:class:`~sfpipe.salesforce.client.SalesforceClient` login go out as the ``accesstoken``,
``instanceurl`` and ``tenantid`` metadata of every call, and an UNAUTHENTICATED answer logs in
again once before it counts as an error.

:meth:`PubSubClient.subscribe` keeps at most ``fetch_size`` events requested: it asks for that
many when the stream opens and, each time a response arrives, for as many as that response
carried. Nothing is read while the caller holds a response, so a slow caller slows the stream
instead of filling memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

import grpc

from sfpipe.errors import SfpipeError, TerminalError, TransientError
from sfpipe.salesforce.pubsub._generated import pubsub_api_pb2 as pb2
from sfpipe.salesforce.pubsub._generated import pubsub_api_pb2_grpc as pb2_grpc
from sfpipe.salesforce.pubsub.events import ChangeEventDecoder

if TYPE_CHECKING:
    from sfpipe.config import Settings
    from sfpipe.salesforce.client import SalesforceClient

log = logging.getLogger(__name__)

REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
ChannelKind = Literal["tls", "insecure", "local"]
Preset = Literal["LATEST", "EARLIEST", "CUSTOM"]
MAX_FETCH = 100
_T = TypeVar("_T")


class PubSubError(TransientError):
    """A Pub/Sub API call failed in a way a new call may not (network, server, limits)."""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, error_code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code


class PubSubAuthError(PubSubError):
    """The API refused the session even after a fresh login."""


class ReplayIdInvalid(TerminalError):
    """The replay id cannot be resumed from (older than the retention window, or not this stream's)."""


class Tokens(Protocol):
    """Where the metadata of every call comes from."""

    def credentials(self) -> tuple[str, str, str]:
        """Access token, instance URL, tenant (org) id."""
        ...

    def refresh(self) -> None:
        """Log in again (the session expired)."""
        ...


class SalesforceTokens:
    """The REST client's login as Pub/Sub API metadata."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client

    def credentials(self) -> tuple[str, str, str]:
        """Access token, instance URL and org id of the current login."""
        token = self.client.token
        return token.access_token, token.instance_url, token.org_id or ""

    def refresh(self) -> None:
        """A new login."""
        self.client.login()


def channel_credentials(kind: ChannelKind, ca_file: str | Path | None = None) -> grpc.ChannelCredentials | None:
    """Credentials of a channel kind: TLS (optionally with a CA file), local, or none (insecure)."""
    if kind == "insecure":
        return None
    if kind == "local":
        return grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    roots = Path(ca_file).read_bytes() if ca_file else None
    return grpc.ssl_channel_credentials(root_certificates=roots)


def open_channel(endpoint: str, kind: ChannelKind = "tls", ca_file: str | Path | None = None) -> grpc.Channel:
    """A channel to the API; messages up to 64 MiB (Salesforce sends batches of large events)."""
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.keepalive_time_ms", 60_000)]
    creds = channel_credentials(kind, ca_file)
    if creds is None:
        return grpc.insecure_channel(endpoint, options=options)
    return grpc.secure_channel(endpoint, creds, options=options)


def _trailer(exc: grpc.RpcError, key: str) -> str | None:
    metadata = exc.trailing_metadata() if isinstance(exc, grpc.Call) else None
    for item in metadata or ():
        if item[0] == key:
            value = item[1]
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def classify(exc: grpc.RpcError, what: str) -> SfpipeError:
    """One place that turns a gRPC failure into an error that says whether a retry helps."""
    code = exc.code() if isinstance(exc, grpc.Call) else None
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    error_code = _trailer(exc, "error-code")
    message = f"{what} failed: {code.name if code else 'error'}: {details}" + (f" ({error_code})" if error_code else "")
    if error_code == REPLAY_CORRUPTED:
        return ReplayIdInvalid(message)
    if code == grpc.StatusCode.UNAUTHENTICATED or error_code == AUTH_ERROR:
        return PubSubAuthError(message, code=code, error_code=error_code)
    if code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNIMPLEMENTED}:  # fmt: skip
        return TerminalError(message)
    return PubSubError(message, code=code, error_code=error_code)


class PubSubClient:
    """Calls of ``eventbus.v1.PubSub`` with sfpipe's auth, error mapping and schema cache."""

    def __init__(self, channel: grpc.Channel, tokens: Tokens, timeout: float = 30.0) -> None:
        self.channel = channel
        self.stub = pb2_grpc.PubSubStub(channel)
        self.tokens = tokens
        self.timeout = timeout
        self._schemas: dict[str, str] = {}
        self._decoders: dict[str, ChangeEventDecoder] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, client: SalesforceClient, *, ca_file: str | Path | None = None
    ) -> PubSubClient:
        """A client of the configured endpoint, logged in through the REST client."""
        channel = open_channel(settings.pubsub_api_endpoint, settings.sf_pubsub_channel, ca_file)
        return cls(channel, SalesforceTokens(client))

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The auth metadata of a call (keys lower case, as gRPC requires)."""
        token, instance_url, tenant = self.tokens.credentials()
        return (("accesstoken", token), ("instanceurl", instance_url), ("tenantid", tenant))

    def _unary(self, call: Callable[..., _T], request: object, what: str) -> _T:
        for attempt in range(2):
            try:
                return call(request, metadata=self.metadata(), timeout=self.timeout)
            except grpc.RpcError as exc:
                error = classify(exc, what)
                if isinstance(error, PubSubAuthError) and attempt == 0:
                    self.tokens.refresh()
                    continue
                raise error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def get_topic(self, topic: str) -> pb2.TopicInfo:
        """A topic's description (GetTopic)."""
        return self._unary(self.stub.GetTopic, pb2.TopicRequest(topic_name=topic), f"GetTopic {topic}")

    def get_schema(self, schema_id: str) -> str:
        """A schema's JSON by id, asked for once per id (ids never change meaning)."""
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        info = self._unary(self.stub.GetSchema, pb2.SchemaRequest(schema_id=schema_id), f"GetSchema {schema_id}")
        with self._lock:
            self._schemas[schema_id] = info.schema_json
        return str(info.schema_json)

    def decoder(self, schema_id: str) -> ChangeEventDecoder:
        """The decoder of a schema id (built once)."""
        with self._lock:
            found = self._decoders.get(schema_id)
        if found is not None:
            return found
        decoder = ChangeEventDecoder(self.get_schema(schema_id))
        with self._lock:
            self._decoders[schema_id] = decoder
        return decoder

    def subscribe(
        self,
        topic: str,
        *,
        preset: Preset = "LATEST",
        replay_id: bytes | None = None,
        fetch_size: int = MAX_FETCH,
    ) -> Generator[pb2.FetchResponse, None, None]:
        """The responses of one Subscribe stream (events and keepalives) until it fails or is closed.

        Closing the iterator cancels the stream. A failure raises the classified error (an expired
        session is a :class:`PubSubAuthError`: refresh the tokens and subscribe again from the last
        replay id).
        """
        if preset == "CUSTOM" and not replay_id:
            msg = "a CUSTOM subscription needs the replay id to resume after"
            raise TerminalError(msg)
        size = max(1, min(fetch_size, MAX_FETCH))
        requests: queue.SimpleQueue[pb2.FetchRequest | None] = queue.SimpleQueue()
        requests.put(
            pb2.FetchRequest(
                topic_name=topic,
                replay_preset=getattr(pb2.ReplayPreset, preset),
                replay_id=replay_id or b"",
                num_requested=size,
            )
        )

        def outgoing() -> Iterator[pb2.FetchRequest]:
            while True:
                item = requests.get()
                if item is None:
                    return
                yield item

        stream = self.stub.Subscribe(outgoing(), metadata=self.metadata())
        try:
            for response in stream:
                # ask again as soon as events arrive, so the server prepares the next ones while these are
                # handled; the caller still paces the stream, since nothing is read while it holds a response
                if response.events:
                    requests.put(pb2.FetchRequest(num_requested=len(response.events)))
                yield response
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise classify(exc, f"Subscribe {topic}") from None
        finally:
            requests.put(None)
            stream.cancel()
