"""The hashes the split and the duplicate check rest on: CRC-32 exactly as zlib (and so Spark SQL's
``crc32``) computes it, whatever the cells' lengths, nulls or offsets; 64-bit cell hashes that agree
on equal text and numbers and tell the rest apart; and the cut points of the split."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pytest

from churn_common import hashing

CELLS = ["", "a", "C000001", "Männlich", "x" * 300, None, "Fiber optic", "7590-VHVEG", "日本"]


def test_crc32_is_zlibs_for_every_kind_of_cell() -> None:
    array = pa.array(CELLS * 3)
    expected = [zlib.crc32((cell or "").encode("utf-8")) for cell in CELLS * 3]
    assert hashing.crc32_of_text(array).tolist() == expected
    # a slice of a larger array (an offset into its buffers), as a batch's column may be
    assert hashing.crc32_of_text(array.slice(4, 7)).tolist() == expected[4:11]
    # cells all of one length, as ids often are (hashed as one matrix)
    ids = [f"C{number:07d}" for number in range(1000, 1300)]
    assert hashing.crc32_of_text(pa.array(ids).slice(5)).tolist() == [zlib.crc32(i.encode()) for i in ids[5:]]
    assert (hashing.hash64_of_text(pa.array(ids + ["x"]))[:-1] == hashing.hash64_of_text(pa.array(ids))).all()


def test_cell_hashes_agree_on_equal_cells_only() -> None:
    text = hashing.hash64_of_text(pa.array(["No", "Yes", "No", None, None, "no"]))
    assert text[0] == text[2] and text[3] == text[4]
    assert len({int(value) for value in text[[0, 1, 3, 5]]}) == 4
    # the few-values path gives the same hashes as hashing every cell
    assert (hashing.hash64_of_categories(pa.array(["No", "Yes", "No", None, None, "no"])) == text).all()
    numbers = hashing.hash64_of_numbers(np.array([30.0, 30.0, -0.0, 0.0, np.nan, -np.nan, 30.5]))
    assert numbers[0] == numbers[1] and numbers[2] == numbers[3] and numbers[4] == numbers[5]
    assert len({int(value) for value in numbers[[0, 2, 4, 6]]}) == 4


def test_the_order_of_the_columns_counts_in_a_row_hash() -> None:
    first, second = hashing.hash64_of_text(pa.array(["a"])), hashing.hash64_of_text(pa.array(["b"]))
    start = np.zeros(1, dtype=np.uint64)
    assert hashing.combine64(hashing.combine64(start, first), second) != \
        hashing.combine64(hashing.combine64(start, second), first)


@pytest.mark.parametrize("fractions, cuts", [((0.7, 0.1, 0.2), (70, 80)), ((0.6, 0.2, 0.2), (60, 80)),
                                             ((0.8, 0.1, 0.1), (80, 90))])
def test_fractions_become_cut_points_of_the_hash_buckets(fractions, cuts) -> None:
    import preprocessing
    from churn_common import split

    assert split.cut_points(fractions) == cuts
    buckets = np.arange(100, dtype=np.uint32)
    codes = preprocessing.split_codes(buckets, cuts)
    assert (codes[:cuts[0]] == preprocessing.TRAIN).all() and (codes[cuts[1]:] == preprocessing.TEST).all()
    assert (codes[cuts[0]:cuts[1]] == preprocessing.VALIDATION).all()


def test_fractions_that_are_not_whole_percents_are_refused() -> None:
    from churn_common import split
    from churn_common.container import UsageError

    with pytest.raises(UsageError, match="whole percents"):
        split.cut_points((0.705, 0.095, 0.2))
