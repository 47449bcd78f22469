import numpy as np
import pytest

from sfpipe_simulator.ids import (
    decode_number,
    encode_number,
    is_valid_id,
    make_id,
    make_ids,
    suffix,
    to18,
)


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        # examples from Salesforce's own documentation and support articles
        ("001D000000IqhSL", "001D000000IqhSLIAZ"),
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),
        ("00000000000000a", "00000000000000aAAA"),
        ("AAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAA555"),
    ],
)
def test_suffix_matches_salesforce(id15, id18):
    assert id15 + suffix(id15) == id18
    assert to18(id15) == id18
    assert is_valid_id(id18)


def test_wrong_suffix_is_rejected():
    assert not is_valid_id("001D000000IqhSLAAA")
    assert not is_valid_id("001D000000IqhS")
    assert not is_valid_id("001D000000IqhSL!AZ")


def test_vectorised_ids_equal_scalar_ids():
    numbers = np.array([1, 2, 61, 62, 3843, 10_000_000, 62**9 - 1], dtype=np.int64)
    vector = make_ids("006", "5g", numbers).to_pylist()
    assert vector == [make_id("006", "5g", int(n)) for n in numbers]
    assert all(is_valid_id(i) and i.startswith("0065g0") for i in vector)
    assert [decode_number(i) for i in vector] == numbers.tolist()


def test_id_byte_order_is_creation_order():
    ids = make_ids("001", "5g", np.arange(1, 5000, dtype=np.int64)).to_pylist()
    assert ids == sorted(ids)


def test_record_number_range():
    assert encode_number(0) == "000000000"
    with pytest.raises(ValueError):
        encode_number(62**9)
