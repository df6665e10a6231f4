"""Preprocessing step (SageMaker Processing job).

Reads every ``.csv`` (or every ``.parquet``) file under the input folder as one table, in batches, and
makes two passes. The first, over the input, checks it against the data contract (the schema), finds
rows without a target and duplicate rows / ids, assigns every customer a split by a stable hash of
their id (of the whole row where the schema has no id) and gathers the training split's statistics
(medians, means and spreads, modes, category sets). The second, over what the first kept, transforms
block by block with those statistics (imputation, one-hot encoding, scaling: fitted on the training
split only) and writes:

    OUT/train/train.csv            label first, then the transformed features (float32, with a header)
    OUT/validation/validation.csv
    OUT/test/test.csv
    OUT/preprocessor/preprocessor.json     the fitted preprocessor: those statistics, from which training
                                           builds the scikit-learn ColumnTransformer that the packaged
                                           model scores raw records with (churn_common/preprocessor.py)
    OUT/preprocessor/schema.json           the contract it was fitted under
    OUT/quality/data_quality.json          counts of what was read, dropped and written
    OUT/holdout/holdout.parquet            the test split's customers as raw records (id, features, label):
                                           what evaluation scores every model on, each through its own
                                           packaged preprocessor
    OUT/profile/statistics.json            the training split's raw features profiled in Model Monitor's
    OUT/profile/constraints.json           formats: the baseline later runs measure drift against

The input is read once. Memory holds a batch and, per customer, what the second pass needs: a few
numbers (hashes, split, label), the numeric cells as parsed, each category as a one- or two-byte code
and, for the test split, the id: a fraction of the table's text, from which the second pass builds
the features and the held-out records instead of reading and parsing the input again.

By hand:  python include/scripts/preprocessing.py --input-dir IN --output-dir OUT [--schema FILE]
In the container the defaults are SageMaker's paths under /opt/ml/processing (or $SAGEMAKER_BASE_DIR).
On any contract violation it exits 1 with one message listing every problem and writes nothing.
"""

from __future__ import annotations

import argparse
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churn_common import container, contract, data_contract, hashing, preprocessor, profile, split, tables

STEP = "preprocessing"
SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = 0, 1, 2
DROPPED = 255  # the split code of a row that is not used: no target, or a duplicate
ROW_TEXT_SEPARATOR = "\x1f"  # between the cells of a row's canonical text (ASCII unit separator)
NO_TARGET, UNKNOWN_TARGET = -1, -2
WRITES_IN_FLIGHT = 2  # transformed blocks waiting for the writer thread
WRITE_ROWS = 65_536  # rows the second pass transforms and writes at a time
# A number as pandas or Python would read it, checked cell by cell only when a column's cast fails
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity)$"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path(container.container_path("processing/input/data")))
    parser.add_argument("--schema", type=Path, default=None, help="schema JSON file or folder holding one")
    parser.add_argument("--output-dir", type=Path, default=Path(container.container_path("processing/output")))
    split.add_arguments(parser)
    args = parser.parse_args(argv)
    args.cut_points = split.cut_points_of(args)
    if args.schema is None:
        shipped = Path(container.container_path("processing/input/schema"))
        args.schema = shipped if shipped.is_dir() else data_contract.DEFAULT_SCHEMA_FILE
    return args



def split_codes(keys_crc32: Any, cuts: tuple[int, int]) -> Any:
    """Each customer's split from the CRC-32 of their key: bucket crc32 % 100 below the first cut
    point is train, below the second validation, the rest test."""
    import numpy as np

    buckets = keys_crc32 % np.uint32(split.HASH_BUCKETS)
    return np.where(buckets < cuts[0], TRAIN, np.where(buckets < cuts[1], VALIDATION, TEST)).astype(np.uint8)


def row_text(numbers: dict[str, Any], batch: Any, schema: data_contract.Schema) -> Any:
    """The canonical text of each row, the split key where there is no id: the target and the
    features in the schema's order, numbers as the shortest text that reads back as the same float64
    (``30``, ``65.35``), missing cells empty, joined by the unit separator (0x1F)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = [batch.column(schema.target_column)]
    cells += [pa.array(numbers[name], from_pandas=True).cast(pa.string()) for name in schema.numeric]
    cells += [batch.column(name) for name in schema.categorical]
    return pc.binary_join_element_wise(*cells, ROW_TEXT_SEPARATOR, null_handling="replace", null_replacement="")


def parse_numbers(column: Any) -> tuple[Any, Any]:
    """A numeric column as float64 (NaN for missing), and the mask of its cells that hold text that
    is not a number (None when there are none). Parquet numbers arrive as float64 already."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(column.type):
        return pc.fill_null(column, np.nan).to_numpy(zero_copy_only=False), None
    try:
        numbers = pc.cast(column, pa.float64())
    except pa.ArrowInvalid:  # some cells are not numbers: find which, cell by cell
        valid = pc.match_substring_regex(column, NUMBER_PATTERN, ignore_case=True)
        numbers = pc.cast(pc.if_else(valid, column, pa.scalar(None, pa.string())), pa.float64())
    values = pc.fill_null(numbers, np.nan).to_numpy(zero_copy_only=False)
    # "nan" parses to NaN but is text, not a missing cell: pandas' reading counted it as not a number
    bad = np.isnan(values) & column.is_valid().to_numpy(zero_copy_only=False)
    return values, (bad if bad.any() else None)


def label_codes(target: Any, schema: data_contract.Schema) -> Any:
    """1 for the positive value, 0 for the negative, NO_TARGET where missing, UNKNOWN_TARGET otherwise."""
    import numpy as np
    import pyarrow.compute as pc

    positive = pc.fill_null(pc.equal(target, schema.positive), False).to_numpy(zero_copy_only=False)
    negative = pc.fill_null(pc.equal(target, schema.negative), False).to_numpy(zero_copy_only=False)
    missing = target.is_null().to_numpy(zero_copy_only=False)
    codes = np.full(len(target), UNKNOWN_TARGET, dtype=np.int8)
    codes[positive], codes[negative], codes[missing] = 1, 0, NO_TARGET
    return codes


@dataclass
class Scan:
    """What the first pass gathered: a few numbers per row read, and each row's cells in compact form."""

    rows: int = 0
    labels: list[Any] = field(default_factory=list)  # int8 label codes per row
    splits: list[Any] = field(default_factory=list)  # uint8 split per row
    row_hashes: list[Any] = field(default_factory=list)  # uint64 hash of every cell of the row
    id_hashes: list[Any] = field(default_factory=list)  # uint64 hash of the id
    has_id: list[Any] = field(default_factory=list)
    numbers: dict[str, list[Any]] = field(default_factory=dict)  # float64 per row, NaN missing
    codes: dict[str, list[Any]] = field(default_factory=dict)  # category code per row, -1 missing
    category_codes: dict[str, dict[str, int]] = field(default_factory=dict)  # value -> code, per column
    test_ids: list[Any] = field(default_factory=list)  # the ids of the rows the hash puts in the test split
    unknown_targets: Counter[str] = field(default_factory=Counter)
    not_numbers: dict[str, list[Any]] = field(default_factory=dict)  # column -> [count, examples]

    def joined(self, parts: list[Any], dtype: str) -> Any:
        """The parts as one array, which then replaces them (memory holds one copy, not two)."""
        import numpy as np

        if len(parts) != 1:
            whole = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
            parts[:] = [whole]
        return parts[0]

    def categories_in_code_order(self, name: str) -> list[str]:
        return list(self.category_codes[name])


def _codes_for(encoded: Any, known: dict[str, int]) -> Any:
    """Category codes of a dictionary-encoded text column (-1 missing), new values given the next
    codes in ``known``; in the smallest integer type that holds every code given so far (numpy
    widens when the batches' codes are joined)."""
    import numpy as np

    values = encoded.dictionary.to_pylist()
    lookup = np.array([known.setdefault(value, len(known)) for value in values] + [-1], dtype=np.int32)
    indices = encoded.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
    smallest = np.min_scalar_type(-max(len(known), 1))  # signed: -1 marks a missing cell
    return lookup[indices].astype(smallest)


def scan(table: tables.CustomerTable, schema: data_contract.Schema, cuts: tuple[int, int]) -> Scan:
    """The first pass, the only read of the input: per row its label, split, hashes and cells in
    compact form; and what breaks the contract (unknown target values, text in numeric columns)."""
    import numpy as np
    import pyarrow.compute as pc

    gathered = Scan(numbers={name: [] for name in schema.numeric},
                    codes={name: [] for name in schema.categorical},
                    category_codes={name: {} for name in schema.categorical})
    for batch in table.batches():
        target = batch.column(schema.target_column)
        labels = label_codes(target, schema)
        if (labels == UNKNOWN_TARGET).any():
            unknown = pc.filter(target, labels == UNKNOWN_TARGET).to_pylist()
            gathered.unknown_targets.update(unknown)
        numbers = {}
        for name in schema.numeric:
            numbers[name], bad = parse_numbers(batch.column(name))
            if bad is not None:
                seen = gathered.not_numbers.setdefault(name, [0, []])
                seen[0] += int(bad.sum())
                if len(seen[1]) < 3:
                    for example in pc.filter(batch.column(name), bad).to_pylist():
                        if example not in seen[1] and len(seen[1]) < 3:
                            seen[1].append(example)

        # Rows are compared through a 64-bit hash of all their cells (numbers as parsed, so that
        # "30" and "30.0" are the same cell): a false match among ten million rows is about a
        # one-in-a-hundred-thousand event.
        row_hashes = np.zeros(batch.num_rows, dtype=np.uint64)
        if schema.id_column:
            ids = batch.column(schema.id_column)
            id_hashes = hashing.hash64_of_text(ids)
            row_hashes = hashing.combine64(row_hashes, id_hashes)
            has_id = ids.is_valid().to_numpy(zero_copy_only=False)
            keys = hashing.crc32_of_text(ids)
            if not has_id.all():  # a customer without an id is keyed by the row, as without an id column
                keys[~has_id] = hashing.crc32_of_text(pc.filter(row_text(numbers, batch, schema), ~has_id))
            gathered.id_hashes.append(id_hashes)
            gathered.has_id.append(has_id)
        else:
            keys = hashing.crc32_of_text(row_text(numbers, batch, schema))
        row_hashes = hashing.combine64(row_hashes, hashing.hash64_of_categories(target))
        for name in schema.numeric:
            row_hashes = hashing.combine64(row_hashes, hashing.hash64_of_numbers(numbers[name]))
            # a copy: a view could keep the whole batch's buffers alive
            gathered.numbers[name].append(np.array(numbers[name], dtype=np.float64))
        splits = split_codes(keys, cuts)
        for name in schema.categorical:
            encoded = batch.column(name).dictionary_encode()  # once, for the hash and the codes
            row_hashes = hashing.combine64(row_hashes, hashing.hash64_of_encoded(encoded))
            gathered.codes[name].append(_codes_for(encoded, gathered.category_codes[name]))
        if schema.id_column:
            gathered.test_ids.append(pc.filter(ids, splits == TEST))
        gathered.rows += batch.num_rows
        gathered.labels.append(labels)
        gathered.splits.append(splits)
        gathered.row_hashes.append(row_hashes)
    return gathered


def _repeats(hashes: Any) -> Any:
    """Which of ``hashes`` repeat an earlier one: sorted (stably), so the first of equals is kept."""
    import numpy as np

    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    repeated = np.zeros(len(hashes), dtype=bool)
    repeated[order[1:]] = ordered[1:] == ordered[:-1]
    return repeated


@dataclass(frozen=True)
class Checked:
    """The rows to use: each row's split, DROPPED for rows without a target and duplicates."""

    destinations: Any  # uint8 per row read
    labels: Any  # int8 per row read
    counts: dict[str, Any]


def check_contract(gathered: Scan, schema: data_contract.Schema, source: str, min_rows: int,
                   min_class_rows: int) -> Checked:
    """Check what the first pass found against the contract; drop rows without a target and
    duplicate rows / ids (the first one is kept); raise listing every violation."""
    import numpy as np

    violations = []
    if gathered.unknown_targets:
        listed = ", ".join(f"'{value}' ({count})" for value, count in gathered.unknown_targets.most_common(10))
        violations.append(
            f"column '{schema.target_column}' has values other than '{schema.positive}' / '{schema.negative}': {listed}"
        )
    for column in schema.numeric:
        if column in gathered.not_numbers:
            count, examples = gathered.not_numbers[column]
            shown = ", ".join(repr(example) for example in examples)
            violations.append(f"numeric column '{column}' has {count} non-numeric value(s), e.g. {shown}")
    if violations:  # counting classes on data with unknown labels would only add noise
        raise container.ContractError(source, violations)

    labels = gathered.joined(gathered.labels, "int8")
    destinations = gathered.joined(gathered.splits, "uint8").copy()
    labelled = labels >= 0
    destinations[~labelled] = DROPPED
    labelled_rows = np.flatnonzero(labelled)
    repeated_rows = _repeats(gathered.joined(gathered.row_hashes, "uint64")[labelled_rows])
    destinations[labelled_rows[repeated_rows]] = DROPPED
    duplicate_ids = 0
    if schema.id_column:
        with_id = np.flatnonzero((destinations != DROPPED) & gathered.joined(gathered.has_id, "bool"))
        repeated_ids = _repeats(gathered.joined(gathered.id_hashes, "uint64")[with_id])
        duplicate_ids = int(repeated_ids.sum())
        destinations[with_id[repeated_ids]] = DROPPED
    for hashes in (gathered.row_hashes, gathered.id_hashes, gathered.has_id):
        hashes.clear()  # their work is done; the memory goes to the statistics and the second pass
    used = destinations != DROPPED
    rows_used = int(used.sum())
    class_counts = {label: int(((labels == code) & used).sum()) for label, code in
                    ((schema.negative, 0), (schema.positive, 1))}
    if rows_used < min_rows:
        violations.append(f"only {rows_used} usable row(s) after dropping duplicates and rows without a "
                          f"target; at least {min_rows} are needed")
    for label in (schema.positive, schema.negative):
        if class_counts[label] < min_class_rows:
            violations.append(f"column '{schema.target_column}' has {class_counts[label]} usable row(s) of class "
                              f"'{label}'; at least {min_class_rows} of each class are needed (the split is by "
                              "customer, not stratified, so each class needs enough rows to reach every split)")
    splits = {}
    for code, name in enumerate(SPLITS):
        in_split = destinations == code
        splits[name] = {"rows": int(in_split.sum()), "positive": int((in_split & (labels == 1)).sum())}
    if not violations:
        for name, info in splits.items():
            negatives = info["rows"] - info["positive"]
            for label, count in ((schema.positive, info["positive"]), (schema.negative, negatives)):
                if count == 0:
                    violations.append(f"the {name} split has no row of class '{label}': the split by customer "
                                      "needs more customers of each class")
    if violations:
        raise container.ContractError(source, violations)
    counts = {
        "rows_read": gathered.rows,
        "rows_without_target": int((~labelled).sum()),
        "duplicate_rows": int(repeated_rows.sum()),
        "duplicate_ids": duplicate_ids,
        "rows_used": rows_used,
        "class_counts": class_counts,
        "splits": splits,
    }
    return Checked(destinations, labels, counts)


@dataclass(frozen=True)
class Statistics:
    """What imputation, scaling and encoding learn from the training split, computed by the first pass."""

    rows: int
    medians: dict[str, float]
    means: dict[str, float]
    variances: dict[str, float]
    scales: dict[str, float]
    modes: dict[str, Any]  # the most frequent category (0 where a column has none, as scikit-learn does)
    categories: dict[str, list[Any]]  # sorted, as the one-hot encoder orders them
    numbers: dict[str, Any]  # the training split's raw numbers (NaN missing), for the profile
    category_counts: dict[str, tuple[dict[str, int], int]]  # value counts and missing count, for the profile

    def fitted(self, schema: data_contract.Schema, feature_names: Sequence[str]) -> dict[str, Any]:
        """The fitted preprocessor's statistics as ``churn_common.preprocessor`` reads them."""
        return {
            "rows": self.rows,
            "features": list(feature_names),
            "numeric": {name: {"median": self.medians[name], "mean": self.means[name],
                               "variance": self.variances[name], "scale": self.scales[name]}
                        for name in schema.numeric},
            "categorical": {name: {"mode": self.modes[name], "categories": self.categories[name]}
                            for name in schema.categorical},
        }


def training_statistics(gathered: Scan, checked: Checked, schema: data_contract.Schema) -> Statistics:
    """The statistics of the training split's used rows (duplicates fall in the same split as the
    row they repeat, since the split follows the id or the row, so dropping them here is exact)."""
    import numpy as np

    keep = checked.destinations == TRAIN
    numbers = {name: gathered.joined(gathered.numbers[name], "float64")[keep] for name in schema.numeric}
    medians, means, variances, scales = {}, {}, {}, {}
    for name, values in numbers.items():
        missing = np.isnan(values)
        present = values[~missing]
        # scikit-learn's median imputer gives 0 to a column with no value (keep_empty_features)
        medians[name] = float(np.median(present)) if present.size else 0.0
        del present
        # the scaler is fitted on the imputed column, as in the pipeline
        means[name], variances[name], scales[name] = mean_and_spread(np.where(missing, medians[name], values))
    modes: dict[str, Any] = {}
    categories: dict[str, list[Any]] = {}
    category_counts = {}
    for name in schema.categorical:
        codes = gathered.joined(gathered.codes[name], "int8")[keep]
        values = gathered.categories_in_code_order(name)
        tally = np.bincount(codes[codes >= 0], minlength=len(values))
        counts = {values[code]: int(count) for code, count in enumerate(tally.tolist()) if count}
        category_counts[name] = (counts, int((codes < 0).sum()))
        if counts:
            most = max(counts.values())
            modes[name] = min(value for value, count in counts.items() if count == most)  # ties: the smallest
            categories[name] = sorted(counts)
        else:
            modes[name], categories[name] = 0, [0]
    return Statistics(int(keep.sum()), medians, means, variances, scales, modes, categories, numbers,
                      category_counts)


def mean_and_spread(values: Any) -> tuple[float, float, float]:
    """Mean, variance and scale of a column as scikit-learn's StandardScaler computes them on one
    batch (the two-pass variance with its correction term, float64 sums; a column indistinguishable
    from a constant gets the scale 1), so that the packaged scaler holds what a fit would give,
    without loading scikit-learn while the rows stream by."""
    import numpy as np

    count = values.size
    if count == 0:
        return 0.0, 0.0, 1.0
    mean = np.sum(values) / count
    deviations = values - mean
    correction = np.sum(deviations)
    variance = (np.sum(deviations ** 2) - correction ** 2 / count) / count
    epsilon = np.finfo(np.float64).eps
    constant = variance <= count * epsilon * variance + (count * mean * epsilon) ** 2
    return float(mean), float(variance), 1.0 if constant else float(np.sqrt(variance))


@dataclass(frozen=True)
class Cells:
    """Every row's cells as the first pass kept them, which the second pass transforms and writes."""

    numbers: dict[str, Any]  # float64 per row, NaN missing
    codes: dict[str, Any]  # category code per row, -1 missing
    categories: dict[str, Any]  # per column, the values in code order (an Arrow string array)
    splits: Any  # the split the hash gave each row, before rows were dropped
    test_ids: Any  # the ids of the rows whose hash gave the test split, in row order (None without ids)

    @classmethod
    def of(cls, gathered: Scan, schema: data_contract.Schema) -> Cells:
        import pyarrow as pa

        test_ids = None
        if schema.id_column:
            test_ids = pa.concat_arrays(gathered.test_ids) if gathered.test_ids else pa.array([], pa.string())
        return cls({name: gathered.joined(gathered.numbers[name], "float64") for name in schema.numeric},
                   {name: gathered.joined(gathered.codes[name], "int8") for name in schema.categorical},
                   {name: pa.array(gathered.categories_in_code_order(name), pa.string())
                    for name in schema.categorical},
                   gathered.joined(gathered.splits, "uint8"), test_ids)


def transform_rows(cells: Cells, rows: slice, schema: data_contract.Schema, statistics: Statistics) -> tuple[Any, Any]:
    """Rows' features as the preprocessor transforms them, features x rows: the numbers imputed with
    the median and scaled in float64 as scikit-learn does, as float32; then the one-hot indicators,
    one 0/1 byte per training category (missing as the mode, unknown as all zeros)."""
    import numpy as np

    count = rows.stop - rows.start
    # each feature's cells lie together, as the CSV writer takes them
    numbers = np.empty((len(schema.numeric), count), dtype=np.float32)
    for index, name in enumerate(schema.numeric):
        values = cells.numbers[name][rows]
        values = np.where(np.isnan(values), statistics.medians[name], values)
        numbers[index] = (values - statistics.means[name]) / statistics.scales[name]
    indicators = np.zeros((sum(len(values) for values in statistics.categories.values()), count), dtype=np.uint8)
    offset = 0
    every_row = np.arange(count)
    for name in schema.categorical:
        categories = statistics.categories[name]
        position = {value: index for index, value in enumerate(categories)}
        # a code's encoded column, -1 for a value the training split lacks; the last entry is the
        # missing cell's (code -1), which takes the mode's
        lookup = np.array([position.get(value, -1) for value in cells.categories[name].to_pylist()]
                          + [position.get(statistics.modes[name], -1)], dtype=np.int64)
        columns = lookup[cells.codes[name][rows]]
        known = columns >= 0
        indicators[offset + columns[known], every_row[known]] = 1
        offset += len(categories)
    return numbers, indicators


def holdout_schema(schema: data_contract.Schema) -> Any:
    """The held-out customers' raw records: id, every feature as read (numbers parsed), the 0/1 label."""
    import pyarrow as pa

    fields = [(schema.id_column, pa.string())] if schema.id_column else []
    fields += [(name, pa.float64()) for name in schema.numeric]
    fields += [(name, pa.string()) for name in schema.categorical]
    return pa.schema([*fields, (tables.TARGET_LABEL, pa.int64())])


def holdout_records(cells: Cells, rows: Any, ids: Any, labels: Any, schema: data_contract.Schema,
                    record_schema: Any) -> Any:
    """The raw records of ``rows`` (positions in the table), rebuilt from the kept cells."""
    import numpy as np
    import pyarrow as pa

    arrays = [ids] if schema.id_column else []
    arrays += [pa.array(cells.numbers[name][rows], from_pandas=True) for name in schema.numeric]
    for name in schema.categorical:
        codes = cells.codes[name][rows].astype(np.int32)
        arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), cells.categories[name])
                      .cast(pa.string()))
    arrays.append(pa.array(labels.astype("int64")))
    return pa.RecordBatch.from_arrays(arrays, schema=record_schema)


def encoded_feature_names(schema: data_contract.Schema, statistics: Statistics) -> list[str]:
    """The transformed features' names, as the ColumnTransformer names them."""
    names = [f"num__{name}" for name in schema.numeric]
    return names + [f"cat__{name}_{value}" for name in schema.categorical for value in statistics.categories[name]]


def missing_cells(cells: Cells, used: Any, schema: data_contract.Schema) -> dict[str, int]:
    """The missing cells per feature among the used rows."""
    import numpy as np

    missing = {name: int((np.isnan(cells.numbers[name]) & used).sum()) for name in schema.numeric}
    missing.update({name: int(((cells.codes[name] < 0) & used).sum()) for name in schema.categorical})
    return {name: missing[name] for name in schema.features}


def write_splits(cells: Cells, schema: data_contract.Schema, checked: Checked, statistics: Statistics,
                 feature_names: Sequence[str], staging: Path) -> None:
    """The second pass, over the kept cells: every WRITE_ROWS rows transformed and written to their
    splits, the test split's rows also as raw records.

    Formatting numbers as text is most of the work, and Arrow's writers do it without holding the
    GIL: each output file has a writer thread of its own (so a file's blocks stay in order), and
    the files share the cores while this thread transforms the next rows. At most
    WRITES_IN_FLIGHT blocks wait for the writers, which bounds the memory they hold.
    """
    import numpy as np

    number_names, indicator_names = feature_names[:len(schema.numeric)], feature_names[len(schema.numeric):]
    writers = {name: tables.SplitWriter(staging / name / f"{name}.csv", number_names, indicator_names)
               for name in SPLITS}
    record_schema = holdout_schema(schema)
    holdout = tables.RecordsWriter(staging / "holdout" / "holdout.parquet", record_schema)
    threads = {name: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{name}")
               for name in (*SPLITS, "holdout")}
    pending: deque[list[Future[None]]] = deque()
    tested = 0  # rows before this block that the hash put in the test split: where its ids begin
    try:
        for start in range(0, len(checked.destinations), WRITE_ROWS):
            rows = slice(start, min(start + WRITE_ROWS, len(checked.destinations)))
            destinations, labels = checked.destinations[rows], checked.labels[rows]
            hashed_test = cells.splits[rows] == TEST
            first_test, tested = tested, tested + int(hashed_test.sum())
            if not (destinations != DROPPED).any():
                continue
            numbers, indicators = transform_rows(cells, rows, schema, statistics)
            block = []
            for code, name in enumerate(SPLITS):
                chosen = np.flatnonzero(destinations == code)
                block.append(threads[name].submit(writers[name].write, labels[chosen], numbers[:, chosen],
                                                  indicators[:, chosen]))
            chosen = np.flatnonzero(destinations == TEST)
            ids = None
            if cells.test_ids is not None:  # kept among the rows the hash put in the test split
                ids = cells.test_ids.slice(first_test, tested - first_test).filter(destinations[hashed_test] == TEST)
            block.append(threads["holdout"].submit(
                lambda *arguments: holdout.write(holdout_records(*arguments)),
                cells, chosen + start, ids, labels[chosen], schema, record_schema))
            pending.append(block)
            while len(pending) > WRITES_IN_FLIGHT:
                for written in pending.popleft():
                    written.result()
        while pending:
            for written in pending.popleft():
                written.result()
    finally:
        for thread in threads.values():
            thread.shutdown(wait=True, cancel_futures=True)
    for writer in writers.values():
        writer.close()
    holdout.close()


def use_lean_memory_pool() -> None:
    """Allocate Arrow's memory with jemalloc where pyarrow has it: with a writer thread per output,
    Arrow's default (mimalloc, a heap per thread) kept about 40 MB more at the peak, for the same
    speed. ARROW_DEFAULT_MEMORY_POOL, where set, still decides."""
    import contextlib
    import os

    import pyarrow as pa

    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def run(args: argparse.Namespace) -> dict:
    use_lean_memory_pool()
    schema = data_contract.load_schema(args.schema)
    files = tables.list_input_files(args.input_dir)
    table = tables.open_customer_files(files, schema.required_columns, schema.numeric)
    if table.ignored:
        print(f"ignoring {len(table.ignored)} column(s) the schema does not name: {', '.join(table.ignored)}")
    gathered = scan(table, schema, args.cut_points)
    print(f"read {gathered.rows} row(s) from {table.source}")
    checked = check_contract(gathered, schema, table.source, args.min_rows, args.min_class_rows)
    counts = checked.counts
    print(f"dropped {counts['rows_without_target']} row(s) without a target, {counts['duplicate_rows']} duplicate "
          f"row(s) and {counts['duplicate_ids']} duplicate id(s); {counts['rows_used']} row(s) remain")
    statistics = training_statistics(gathered, checked, schema)
    training_profile = profile.profile_from_columns(statistics.rows, statistics.numbers, statistics.category_counts,
                                                    schema)
    statistics.numbers.clear()  # the training split's cells: the profile was their last use
    cells = Cells.of(gathered, schema)
    del gathered  # the hashes: the cells and the statistics are all the second pass needs
    tables.release_arrow_memory()  # before the second pass adds to it
    feature_names = encoded_feature_names(schema, statistics)

    with container.staged_output(args.output_dir) as staging:
        write_splits(cells, schema, checked, statistics, feature_names, staging)
        missing = missing_cells(cells, checked.destinations != DROPPED, schema)
        del cells
        summary = {
            "files": [path.name for path in files],
            "ignored_columns": list(table.ignored),
            **counts,
            "missing_values": missing,
            "split": split.described(schema.id_column, args.cut_points),
            "features": {"input": list(schema.features), "encoded": len(feature_names)},
        }
        for kind, document in zip(("statistics", "constraints"), training_profile, strict=True):
            container.write_json(staging / "profile" / contract.FILES[kind], document)
        container.write_json(staging / "preprocessor" / preprocessor.STATISTICS_FILE,
                             statistics.fitted(schema, feature_names))
        container.write_json(staging / "preprocessor" / "schema.json", schema.to_dict())
        container.write_json(staging / "quality" / contract.FILES["data_quality"], summary)
    print("splits: " + ", ".join(f"{name} {info['rows']}" for name, info in summary["splits"].items()))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    return container.run_main(STEP, container.PROCESSING_REASON_FILE, lambda: run(parse_args(argv)))


if __name__ == "__main__":
    container.exit_now(main())
