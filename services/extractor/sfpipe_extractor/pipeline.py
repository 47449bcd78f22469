"""Overlapping network and CPU: an iterator consumed one step ahead in a worker thread.

While the caller converts and encodes one page, the next page is already being fetched:
``requests`` and pyarrow both release the GIL for their heavy parts, so the two stages
run side by side on two cores. At most ``depth`` items wait in the queue, which bounds
memory whatever the object's size.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(source: Iterable[T], depth: int = 2, name: str = "prefetch") -> Iterator[T]:
    """Yield ``source``'s items, producing them in a background thread up to ``depth`` ahead.

    An exception in the producer is raised in the consumer at the point it would have
    occurred; abandoning the consumer stops the producer and closes ``source``.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()
    iterator = iter(source)

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterator:
                if not put(item):
                    break
            else:
                put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if stop.is_set() and close is not None:
                close()

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(produce,), name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        # a producer blocked in a slow call is left to finish on its own (it is a daemon)
        deadline = time.monotonic() + 30.0
        while worker.is_alive() and time.monotonic() < deadline:
            try:
                items.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.1)
