"""The prefetching iterator: order, errors where they happened, and a producer that stops."""

from __future__ import annotations

import threading
import time

import pytest

from sfpipe_extractor.pipeline import prefetch


def test_items_arrive_in_order_and_ahead_of_the_consumer():
    produced: list[int] = []

    def source():
        for i in range(10):
            produced.append(i)
            yield i

    got = []
    for item in prefetch(source(), depth=2):
        time.sleep(0.01)
        got.append(item)
        assert len(produced) <= len(got) + 3  # bounded: depth queued + one in hand
    assert got == list(range(10))


def test_a_producer_error_is_raised_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("page 3 is malformed")

    got = []
    with pytest.raises(ValueError, match="page 3 is malformed"):
        for item in prefetch(source()):
            got.append(item)
    assert got == [1, 2]


def test_abandoning_the_consumer_stops_and_closes_the_producer():
    closed = threading.Event()

    def source():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    items = prefetch(source(), depth=1)
    assert next(items) == 0
    items.close()
    assert closed.wait(5)
