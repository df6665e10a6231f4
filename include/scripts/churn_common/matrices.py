"""The transformed splits read as the forest wants them: float32 features, with no float64 copy.

A split CSV (written by preprocessing: the 0/1 label first, then the features, with a header) is
parsed by Arrow straight into float32 columns, in parallel, and the columns are copied once into a
float32 matrix: row-major for scoring, column-major for fitting (the layout the trees split fastest
on). scikit-learn's forest works in float32: handed float64 it first makes a float32 copy of the
whole matrix, so reading float64 cost a full matrix in the wrong type plus the copy, at 8 bytes a
cell instead of 4.

Scoring the held-out customers reads them batch by batch (``iter_record_batches``), so evaluation
holds their scores and labels, never a second copy of the records in another form.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from churn_common.container import ContractError, find_single_file
from churn_common.tables import TARGET_LABEL

FEATURE_TYPE = "float32"  # what scikit-learn's trees split on (sklearn.tree._tree.DTYPE)
RECORD_BATCH_ROWS = 65_536  # held-out records scored per batch: a few MB of features at a time
SCORING_BLOCK_ROWS = 16_384  # rows one thread scores at a time: enough to keep each tree's walk busy


def _header(path: Path) -> list[str]:
    """The split's column names: Arrow's streaming reader reads only its first block to learn them."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        reader = pacsv.open_csv(str(path))
    except pa.ArrowInvalid as error:
        raise ContractError(str(path), [f"the split cannot be parsed: {error}"]) from None
    names = list(reader.schema.names)
    reader.close()
    return names


@dataclass(frozen=True)
class ParsedSplit:
    """A split CSV as Arrow parsed it (float32 features), before it is copied into a matrix."""

    path: Path
    table: Any

    @property
    def feature_names(self) -> list[str]:
        return list(self.table.column_names[1:])

    def matrix(self, order: Literal["C", "F"] = "C") -> tuple[Any, Any]:
        """(float32 features, int64 labels), the features row-major (``order="C"``, for scoring) or
        column-major (``"F"``, for fitting). Peak memory is the Arrow columns (4 bytes a cell) plus
        the matrix they are copied into: twice the float32 matrix, half of what one float64 copy
        alone would take."""
        import numpy as np

        table = self.table
        features = np.empty((table.num_rows, table.num_columns - 1), dtype=FEATURE_TYPE, order=order)
        for index in range(1, table.num_columns):
            column = table.column(index)
            if column.null_count:
                raise ContractError(str(self.path), [f"the split has {column.null_count} empty cell(s) in column "
                                                     f"'{table.column_names[index]}'; preprocessing writes every cell"])
            start = 0
            for chunk in column.chunks:  # chunk by chunk: combining them first would copy the column again
                features[start:start + len(chunk), index - 1] = chunk.to_numpy(zero_copy_only=False)
                start += len(chunk)
        return features, table.column(0).to_numpy()


def parse_split(folder: Path) -> ParsedSplit:
    """The single split CSV in ``folder`` (label first, then features), parsed by Arrow straight into
    float32 columns. A few calls that release the GIL: it can run on a thread beside pure Python
    work (importing scikit-learn) without either waiting for the other."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = find_single_file(folder, "*.csv")
    names = _header(path)
    if len(names) < 2 or names[0] != TARGET_LABEL:
        raise ContractError(str(path), [f"expected a '{TARGET_LABEL}' column first and at least one feature; "
                                        "was it written by preprocessing.py?"])
    types = {name: pa.float32() for name in names[1:]}
    types[TARGET_LABEL] = pa.int64()
    try:
        table = pacsv.read_csv(str(path), convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as error:
        raise ContractError(str(path), [f"the split holds values that are not numbers: {error}"]) from None
    if table.num_rows == 0:
        raise ContractError(str(path), ["the split has a header but no data rows; was it written by preprocessing.py?"])
    return ParsedSplit(path, table)


def read_float32_split(folder: Path, order: Literal["C", "F"] = "C") -> tuple[Any, Any]:
    """The single split CSV in ``folder``: (float32 features, int64 labels), as ``ParsedSplit.matrix``."""
    return parse_split(folder).matrix(order)


def count_parquet_rows(folder: Path) -> int:
    """Rows of the single Parquet file in ``folder``, from its footer (nothing else is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = find_single_file(folder, "*.parquet")
    try:
        return int(pq.ParquetFile(str(path)).metadata.num_rows)
    except (pa.ArrowInvalid, OSError) as error:
        raise ContractError(str(path), [f"the records cannot be read: {error}"]) from None


def iter_record_batches(folder: Path, batch_rows: int = RECORD_BATCH_ROWS) -> Iterator[Any]:
    """The raw records of the single Parquet file in ``folder`` (written by ``tables.write_records``),
    as DataFrames of at most ``batch_rows`` rows, in the file's order."""
    return _record_batches(find_single_file(folder, "*.parquet"), batch_rows)


def iter_part_record_batches(folder: Path, batch_rows: int = RECORD_BATCH_ROWS) -> Iterator[Any]:
    """The raw records of every Parquet file in ``folder``, in name order: preprocessing.py's one
    file, or the part files Spark writes (``part-00000-....parquet``; its ``_SUCCESS`` marker aside)."""
    parts = sorted(Path(folder).glob("*.parquet"))
    if not parts:
        raise ContractError(str(folder), ["expected the held-out records as Parquet files, found none"])
    for path in parts:
        yield from _record_batches(path, batch_rows, empty_allowed=True)  # Spark may write an empty part


def _record_batches(path: Path, batch_rows: int, empty_allowed: bool = False) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(str(path))
        empty = parquet.metadata.num_rows == 0
        if TARGET_LABEL not in parquet.schema_arrow.names or (empty and not empty_allowed):
            raise ContractError(str(path), [f"expected a '{TARGET_LABEL}' column and rows; was it written by "
                                            "preprocessing.py?"])
        for batch in parquet.iter_batches(batch_size=batch_rows, use_pandas_metadata=True):
            yield batch.to_pandas()
    except (pa.ArrowInvalid, OSError) as error:
        raise ContractError(str(path), [f"the records cannot be read: {error}"]) from None


def forest_probabilities(forest: Any, features: Any, workers: int | None = None) -> Any:
    """The forest's churn probability of each row, on all cores, the same to the last bit on every run.

    scikit-learn's own ``n_jobs`` adds the trees' answers into one array as the threads finish, so
    the sum's order, and its last bits, change from run to run. Here each thread scores its own
    block of rows with every tree in order (the trees release the GIL while they walk), so a row's
    score never depends on the threads.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    workers = workers or os.cpu_count() or 1
    rows = features.shape[0]  # a sparse matrix has no len()
    if workers == 1 or rows < SCORING_BLOCK_ROWS:
        return forest.predict_proba(features)[:, 1]
    single = forest.get_params().get("n_jobs")
    forest.set_params(n_jobs=1)
    # blocks of about SCORING_BLOCK_ROWS, as many for each thread (an odd one out would leave the
    # other threads idle while it finishes); a row's score does not depend on its block
    count = max(1, rows // SCORING_BLOCK_ROWS // workers) * workers
    block = -(-rows // count)
    try:
        starts = range(0, rows, block)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            blocks = list(pool.map(lambda start: forest.predict_proba(features[start:start + block])[:, 1], starts))
    finally:
        forest.set_params(n_jobs=single)
    return np.concatenate(blocks)
