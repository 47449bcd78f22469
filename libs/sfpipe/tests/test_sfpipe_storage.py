import threading

import pytest

from sfpipe.errors import ConflictError, NotFoundError

pytestmark = pytest.mark.integration


def test_streaming_write_and_read(object_store, local_settings):
    uri = f"gs://{local_settings.lake_bucket}/salesforce/Account/part-00000.parquet"
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with object_store.open_write(uri) as stream:
        for _ in range(20):
            stream.write(chunk)
    stat = object_store.stat(uri)
    assert stat is not None and stat.size == 20 * len(chunk)
    with object_store.open_read(uri) as stream:
        assert stream.read(len(chunk)) == chunk
        stream.seek(19 * len(chunk))
        assert stream.read() == chunk


def test_listing_by_prefix(object_store, local_settings):
    bucket = local_settings.lake_bucket
    for name in ["a/1", "a/2", "b/1"]:
        object_store.put_bytes(f"gs://{bucket}/{name}", b"x")
    assert sorted(o.name for o in object_store.list(bucket, "a/")) == ["a/1", "a/2"]


def test_missing_object_is_not_found(object_store, local_settings):
    with pytest.raises(NotFoundError, match="does not exist"):
        object_store.get_bytes(f"gs://{local_settings.lake_bucket}/nope")


def test_conditional_write_loses_race_and_says_so(object_store, local_settings):
    uri = f"gs://{local_settings.state_bucket}/salesforce/watermarks/Account.json"
    first = object_store.put_json(uri, {"watermark": "a"}, if_generation_match=0)
    with pytest.raises(ConflictError, match="another writer got there first"):
        object_store.put_json(uri, {"watermark": "b"}, if_generation_match=0)
    value, generation = object_store.get_json(uri)
    assert value == {"watermark": "a"} and generation == first.generation


def test_eight_way_race_has_exactly_one_winner(object_store, local_settings):
    uri = f"gs://{local_settings.state_bucket}/race.json"
    base = object_store.put_json(uri, {"n": 0}, if_generation_match=0)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            object_store.put_json(uri, {"n": i}, if_generation_match=base.generation)
            outcomes.append("won")
        except ConflictError:
            outcomes.append("lost")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1
    assert outcomes.count("lost") == 7
