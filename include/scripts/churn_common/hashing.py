"""Hashes of Arrow columns computed with numpy, a whole column at a time.

Two kinds, for two purposes:

    crc32        of a text cell's UTF-8 bytes: the split key. CRC-32 (zlib's, IEEE 802.3) because
                 every engine has it built in (Python's ``zlib.crc32``, Spark SQL's ``crc32``), so a
                 customer lands in the same split whichever engine prepares the data.
    64-bit       of every cell of a row, combined: how duplicate rows and ids are found. 64 bits make
                 a false match among ten million rows about a one-in-a-hundred-thousand event, and a
                 row hash is 8 bytes where the row's text would be a hundred.

Both walk the bytes of all cells position by position, with the cells ordered longest first, so
that each numpy operation handles every cell that still has a byte at that position: the work is
the column's bytes plus a small cost per position, never a Python loop per cell. pyarrow has no
scalar hash kernel to hand this to.
"""

from __future__ import annotations

from typing import Any

FNV_OFFSET = 0xCBF29CE484222325  # FNV-1a 64: simple, byte at a time, no table
FNV_PRIME = 0x100000001B3
NULL_HASH = 0x9E3779B97F4A7C15  # a missing cell: distinct from the hash of any text
CRC32_POLYNOMIAL = 0xEDB88320  # reflected IEEE polynomial, as zlib


def _crc32_table() -> Any:
    import numpy as np

    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(CRC32_POLYNOMIAL), table >> 1).astype(np.uint32)
    return table


_CRC_TABLE: Any = None


def _crc_table() -> Any:
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _crc32_table()
    return _CRC_TABLE


def _cells(array: Any) -> tuple[Any, Any, Any]:
    """A string array's (data bytes, start offsets, lengths) as numpy views, nulls as length 0."""
    import numpy as np
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = pa.concat_arrays(array.chunks) if array.num_chunks != 1 else array.chunk(0)
    if array.type != pa.string():
        array = array.cast(pa.string())
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[array.offset:array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    return data, starts, lengths


def _walk_bytes(array: Any, initial: int, dtype: Any, step: Any) -> Any:
    """Fold ``step(state, byte)`` over each cell's bytes, all cells at once; returns the states."""
    import numpy as np

    data, starts, lengths = _cells(array)
    count = len(lengths)
    state = np.full(count, initial, dtype=dtype)
    if count == 0 or not lengths.any():
        return state
    width = int(lengths[0])
    if (lengths == width).all():  # ids are often all of one length: the cells then form a matrix
        cells = data[starts[0]:starts[0] + count * width].reshape(count, width)
        for position in range(width):
            state = step(state, cells[:, position])
        return state
    order = np.argsort(-lengths, kind="stable")  # longest first: cells with a byte at j come first
    sorted_starts, sorted_lengths = starts[order], lengths[order]
    walked = state[order]
    # the cells with more than j bytes are a prefix of the sorted cells; how long, for every j at once
    ascending = sorted_lengths[::-1]
    active_counts = count - np.searchsorted(ascending, np.arange(int(sorted_lengths[0])), side="right")
    for position, active in enumerate(active_counts.tolist()):
        head = walked[:active]
        walked[:active] = step(head, data[sorted_starts[:active] + position])
    state[order] = walked
    return state


def crc32_of_text(array: Any) -> Any:
    """zlib's CRC-32 of each cell's UTF-8 bytes, as uint32 (a missing cell as the empty text: 0)."""
    import numpy as np

    table = _crc_table()

    def step(crc: Any, byte: Any) -> Any:
        return table[(crc ^ byte) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))

    return _walk_bytes(array, 0xFFFFFFFF, np.uint32, step) ^ np.uint32(0xFFFFFFFF)


def hash64_of_text(array: Any) -> Any:
    """A 64-bit hash of each text cell (FNV-1a, then mixed); missing cells all hash alike."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    prime = np.uint64(FNV_PRIME)

    def step(state: Any, byte: Any) -> Any:
        return (state ^ byte.astype(np.uint64)) * prime

    with np.errstate(over="ignore"):
        hashes = mix64(_walk_bytes(array, FNV_OFFSET, np.uint64, step))
    if array.null_count:
        missing = pc.is_null(array)
        if isinstance(missing, pa.ChunkedArray):
            missing = pa.concat_arrays(missing.chunks)
        hashes[missing.to_numpy(zero_copy_only=False)] = np.uint64(NULL_HASH)
    return hashes


def hash64_of_categories(array: Any) -> Any:
    """``hash64_of_text`` for a column with few distinct values: each value hashed once."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = pa.concat_arrays(array.chunks) if array.num_chunks != 1 else array.chunk(0)
    return hash64_of_encoded(array.dictionary_encode())


def hash64_of_encoded(encoded: Any) -> Any:
    """``hash64_of_text`` of a dictionary-encoded text column, from its dictionary's hashes."""
    import numpy as np

    value_hashes = np.append(hash64_of_text(encoded.dictionary), np.uint64(NULL_HASH))
    indices = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    return value_hashes[indices]


def hash64_of_numbers(values: Any) -> Any:
    """A 64-bit hash of float64 values: -0.0 as 0.0, every NaN (missing) alike."""
    import numpy as np

    canonical = np.where(np.isnan(values), np.nan, values + 0.0).astype(np.float64)
    return mix64(canonical.view(np.uint64).copy())


def mix64(values: Any) -> Any:
    """splitmix64's finaliser: spreads every input bit over the output, so that combined hashes of
    similar cells do not collide."""
    import numpy as np

    with np.errstate(over="ignore"):
        values = values ^ (values >> np.uint64(30))
        values = values * np.uint64(0xBF58476D1CE4E5B9)
        values = values ^ (values >> np.uint64(27))
        values = values * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def combine64(row_hashes: Any, cell_hashes: Any) -> Any:
    """Fold one more column's cell hashes into the row hashes; the order of the columns counts."""
    import numpy as np

    with np.errstate(over="ignore"):
        return mix64(row_hashes * np.uint64(0x9E3779B97F4A7C15) + cell_hashes)
