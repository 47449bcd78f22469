import pytest

from sfpipe.errors import ConflictError


@pytest.mark.integration
def test_roundtrip(object_store, local_settings):
    uri = f"gs://{local_settings.lake_bucket}/a/b.bin"
    with object_store.open_write(uri) as f:
        for _ in range(3):
            f.write(b"x" * (5 * 1024 * 1024))
    with object_store.open_read(uri) as f:
        assert len(f.read()) == 15 * 1024 * 1024
    first = object_store.put_json(f"gs://{local_settings.state_bucket}/w.json", {"a": 1}, if_generation_match=0)
    with pytest.raises(ConflictError):
        object_store.put_json(f"gs://{local_settings.state_bucket}/w.json", {"a": 2}, if_generation_match=0)
    second = object_store.put_json(f"gs://{local_settings.state_bucket}/w.json", {"a": 3}, if_generation_match=first.generation)
    assert second.generation != first.generation
