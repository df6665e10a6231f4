"""Preprocessing step on Spark (SageMaker Processing job in the Spark image, run by smspark-submit).

The same step as ``preprocessing.py``, for tables one instance cannot hold: it reads the customer
table (CSV or Parquet, one file or every file under a prefix) with Spark, checks it against the
data contract with the same one-line messages, drops rows without a target, then exact duplicate
rows, then repeated ids (the first in the table's order kept), assigns every customer a split by
``crc32(id) % 100`` (of the row's canonical text where there is no id), fits the preprocessor on the
training split only and writes:

    OUTPUT/train/, OUTPUT/validation/, OUTPUT/test/
                                label, then the transformed features under their preprocessor names
                                (float32), as Parquet that Spark writes in parts
    OUTPUT/holdout/             the test split's customers as raw records (id, features, label)
    OUT/preprocessor/preprocessor.json, schema.json     the statistics, as churn_common/preprocessor.py
                                reads them, and the contract they were fitted under
    OUT/quality/data_quality.json                       counts of what was read, dropped and written
    OUT/profile/statistics.json, constraints.json       the training split's raw features profiled

``OUTPUT`` is a URI Spark writes itself (``s3://`` in a multi-instance job, where every instance
writes its own parts); ``OUT`` is a folder on the driver for the small files, which SageMaker
uploads from the primary host.

What matches scikit-learn's path, and how (docs/pipeline.md has the whole table):
- the split: Spark SQL's ``crc32`` of the same UTF-8 bytes; a customer without an id is keyed by the
  same canonical text (numbers as Arrow writes them: ``churn_common.spark_sql.number_text``);
- imputation: the median is Spark's ``approxQuantile`` (what its ``Imputer`` uses), within
  ``--median-relative-error`` of the exact median's rank; scikit-learn's median is exact;
- the mode and the categories exactly (ties to the smallest value); a missing cell as the mode, a
  category the training split lacks as all-zero indicators;
- scaling: the mean and the population variance (ddof 0) of the imputed column, as StandardScaler;
- "first" of duplicate ids is the first in the table's order: files sorted by path, then each file's
  own order (Spark numbers a file's rows in order within the file's pieces, which it keeps in order).

Bad input gets the scikit-learn step's message and exit code and nothing is written: every check
runs before the first write.

By hand:  spark-submit --py-files churn_common.zip include/scripts/spark/preprocess_spark.py \\
              --input IN --schema SCHEMA.json --output OUTPUT_URI --output-dir OUT
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from churn_common import (
    container,
    contract,
    data_contract,
    preprocessor,
    profile,
    schema_rules,
    spark_sql,
    split,
    tables,
)

STEP = "preprocessing"
SPLITS = ("train", "validation", "test")
ROW_TEXT_SEPARATOR = "\x1f"  # between the cells of a row's canonical text, as preprocessing.py
NO_TARGET, UNKNOWN_TARGET = -1, -2
# A number as pandas or Python would read it: preprocessing.py's pattern, case-insensitive
NUMBER_PATTERN = "(?i)" + r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity)$"
WHITE_SPACE_AT_ENDS = r"(?U)^\s+|\s+$"  # Unicode white space, as Arrow's utf8_trim_whitespace
MEDIAN_RELATIVE_ERROR = 0.001  # Spark's Imputer default: the median's rank within 0.1 % of the rows
ORDER = "_order"  # the table's order: (file, row within the file)
FILE, ROW, LABEL, SPLIT = "_file", "_row", tables.TARGET_LABEL, "_split"
STAGING_PREFIX = "_staging-"  # Spark and Hive skip names beginning with "_" when they list a prefix


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="URI or path of a CSV or Parquet file, or a prefix of parts")
    parser.add_argument("--schema", type=Path, required=True, help="schema JSON file or folder holding one")
    parser.add_argument("--output", required=True, help="URI prefix the data sets are written under")
    parser.add_argument("--output-dir", type=Path, default=Path(container.container_path("processing/output")),
                        help="local folder of the small files (preprocessor, quality, profile)")
    split.add_arguments(parser)
    parser.add_argument("--median-relative-error", type=float, default=MEDIAN_RELATIVE_ERROR,
                        help="approxQuantile's relative error of the medians (0 is exact and costly)")
    args = parser.parse_args(argv)
    args.cut_points = split.cut_points_of(args)
    if not 0.0 <= args.median_relative_error < 1.0:
        raise container.UsageError(f"--median-relative-error must lie in [0, 1), got {args.median_relative_error}")
    return args



# ------------------------------------------------------------------ finding and opening the input


def shown(uri: str) -> str:
    """A location as the messages show it: a local file as its path, anything else as its URI."""
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme in ("", "file") else uri


@dataclass(frozen=True)
class InputFiles:
    paths: tuple[str, ...]  # Hadoop path strings, sorted
    parquet: bool
    source: str  # how messages name the input, as tables.py does

    @property
    def names(self) -> list[str]:
        return [path.rstrip("/").rsplit("/", 1)[-1] for path in self.paths]


def list_input_files(spark: Any, uri: str) -> InputFiles:
    """The input's files through Hadoop's file system (local, HDFS or S3 alike): the file itself, or
    every ``.csv`` or every ``.parquet`` file below the prefix, by the rules of ``tables.list_input_files``."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    filesystem = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not filesystem.exists(path):
        raise container.UsageError(f"input not found: {shown(uri)}")
    suffixes = (tables.CSV_SUFFIX, tables.PARQUET_SUFFIX)
    if filesystem.getFileStatus(path).isFile():
        found = [path.toString()]
    else:
        found = []
        listing = filesystem.listFiles(path, True)
        while listing.hasNext():
            found.append(listing.next().getPath().toString())
    files = sorted(name for name in found if name.lower().endswith(suffixes))
    if not files:
        raise container.ContractError(shown(uri), [f"no {tables.CSV_SUFFIX} or {tables.PARQUET_SUFFIX} file in "
                                                   "the input folder"])
    kinds = {name.lower().endswith(tables.PARQUET_SUFFIX) for name in files}
    if len(kinds) > 1:
        raise container.ContractError(shown(uri), [f"the input folder holds both {tables.CSV_SUFFIX} and "
                                                   f"{tables.PARQUET_SUFFIX} files; give the table in one format"])
    source = shown(files[0]) if len(files) == 1 else f"{len(files)} files in {shown(files[0].rsplit('/', 1)[0])}"
    return InputFiles(tuple(files), kinds.pop(), source)


def read_head(spark: Any, uri: str) -> bytes:
    """A file's first HEADER_BYTES bytes, through Hadoop's file system."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(path)
    try:
        bounded = jvm.org.apache.commons.io.input.BoundedInputStream(stream, schema_rules.HEADER_BYTES)
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(bounded))
    finally:
        stream.close()


def _columns_agree(files: InputFiles, names: dict[str, set[str]], kind: str) -> None:
    first = files.paths[0]
    mismatched = [f"{name} has columns {sorted(names[path] ^ names[first])} that {files.names[0]} does not share"
                  for path, name in zip(files.paths, files.names, strict=True) if names[path] != names[first]]
    if mismatched:
        raise container.ContractError(files.source, [f"the {kind} files' headers differ: " + "; ".join(mismatched)])


def check_quotes(spark: Any, files: InputFiles) -> None:
    """A quoted field never closed swallows the rest of its file as one cell, so quotes are counted
    first, per file (escaped quotes come in pairs), as tables.py counts them: one pass over the text."""
    from pyspark.sql import functions as F

    lines = spark.read.text(list(files.paths))
    quotes = F.length("value") - F.length(F.regexp_replace("value", '"', ""))
    odd = (lines.groupBy(F.input_file_name().alias("file")).agg(F.sum(quotes).alias("quotes"))
           .where(F.col("quotes") % 2 == 1).orderBy("file").first())
    if odd is not None:
        raise container.ContractError(shown(odd["file"]), ["the CSV cannot be parsed: a quoted field is never closed "
                                                           "(odd number of '\"' characters)"])


def trimmed(column: Any) -> Any:
    """Text trimmed of white space at both ends, blank cells missing (as tables.py reads a cell)."""
    from pyspark.sql import functions as F

    text = F.regexp_replace(column.cast("string"), WHITE_SPACE_AT_ENDS, "")
    return F.when(text == "", F.lit(None).cast("string")).otherwise(text)


def with_order(frame: Any) -> Any:
    """Each row's place in the table: its file, and its number within the file (increasing in the
    file's order: Spark numbers rows within a partition in order, and a file's pieces go to partitions
    in the order of their offsets)."""
    from pyspark.sql import functions as F

    return frame.withColumn(FILE, F.input_file_name()).withColumn(ROW, F.monotonically_increasing_id())


def open_csv(spark: Any, files: InputFiles, schema: data_contract.Schema) -> tuple[Any, list[str]]:
    """The CSV parts as one frame of the schema's columns (trimmed text), after the header checks of
    ``tables._open_csv_files``; and the columns the schema does not name."""
    from pyspark.sql.types import StringType, StructField, StructType

    headers = {}
    for path in files.paths:
        header, problems = schema_rules.read_header(read_head(spark, path))
        if problems:
            raise container.ContractError(shown(path), problems)
        headers[path] = header
    _columns_agree(files, {path: {name.strip() for name in header} for path, header in headers.items()}, "CSV")
    first = headers[files.paths[0]]
    missing = schema_rules.missing_column_problems(schema.required_columns, first)
    if missing:
        raise container.ContractError(files.source, missing)
    check_quotes(spark, files)
    ignored = [name.strip() for name in first if name.strip() not in schema.required_columns]
    # Parts with the same header are read together; the columns are picked by name in each group
    groups: dict[tuple[str, ...], list[str]] = {}
    for path, header in headers.items():
        groups.setdefault(tuple(header), []).append(path)
    frames = []
    for names, paths in groups.items():
        # every cell as text under the header's own names (so Spark's header check agrees), then
        # renamed by position: Spark resolves names case-insensitively, the contract does not
        text_schema = StructType([StructField(name, StringType()) for name in names])
        position = {name.strip(): index for index, name in enumerate(names)}
        # multiLine: a quoted cell may hold a line break, as Arrow's reader allows (each file is then
        # read by one task: a large table comes as many parts, or as Parquet); quotes escape as "".
        raw = (spark.read.schema(text_schema)
               .options(header=True, multiLine=True, quote='"', escape='"', encoding="UTF-8", mode="FAILFAST")
               .csv(paths))
        raw = with_order(raw.toDF(*(f"_c{index}" for index in range(len(names)))))
        frames.append(raw.select(*(trimmed(raw[f"_c{position[name]}"]).alias(name) for name in schema.required_columns),
                                 FILE, ROW))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return frame, ignored


NUMBER_TYPES = ("byte", "short", "int", "bigint", "long", "float", "double", "boolean", "void", "integer")


def open_parquet(spark: Any, files: InputFiles, schema: data_contract.Schema) -> tuple[Any, list[str]]:
    """The Parquet parts as one frame, as ``tables._open_parquet_files`` reads them: numeric columns
    stored as numbers in every part as float64 (NaN as missing), every other column as trimmed text."""
    from pyspark.sql import functions as F

    types = {}
    for path in files.paths:
        try:
            fields = spark.read.parquet(path).schema.fields
        except Exception as error:  # Spark's AnalysisException or the JVM's: the file cannot be read
            raise container.ContractError(shown(path), [f"the file is not a readable Parquet file ({error})"]) from None
        names = [field.name for field in fields]
        problems = schema_rules.column_name_problems(names)
        if problems:
            raise container.ContractError(shown(path), problems)
        types[path] = {field.name.strip(): field.dataType for field in fields}
    _columns_agree(files, {path: set(found) for path, found in types.items()}, "Parquet")
    first = list(types[files.paths[0]])
    missing = schema_rules.missing_column_problems(schema.required_columns, first)
    if missing:
        raise container.ContractError(files.source, missing)
    problems, as_numbers = [], set()
    for name in schema.required_columns:
        kinds = [found[name] for found in types.values()]
        unusable = sorted({kind.simpleString() for kind in kinds
                           if kind.typeName() in ("array", "map", "struct", "binary")})
        if unusable:
            problems.append(f"column '{name}' holds {', '.join(unusable)} values, not numbers or text")
        elif name in schema.numeric and all(kind.typeName() in NUMBER_TYPES or kind.typeName() == "decimal"
                                            for kind in kinds):
            as_numbers.add(name)
    if problems:
        raise container.ContractError(files.source, problems)
    raw = with_order(spark.read.option("mergeSchema", "true").parquet(*files.paths))
    columns = []
    for name in schema.required_columns:
        column = raw[name]
        if name in as_numbers:
            number = column.cast("double")
            columns.append(F.when(F.isnan(number), F.lit(None).cast("double")).otherwise(number).alias(name))
        else:
            columns.append(trimmed(column).alias(name))
    ignored = [name for name in first if name not in schema.required_columns]
    return raw.select(*columns, FILE, ROW), ignored


# ------------------------------------------------------------------ the contract and the rows used


def parsed_rows(frame: Any, schema: data_contract.Schema) -> Any:
    """Numbers parsed (text that is not a number kept aside as a violation), the target as a label
    code (1 positive, 0 negative, -1 missing, -2 another value), the table's order as one column."""
    from pyspark.sql import functions as F

    columns = [F.struct(FILE, ROW).alias(ORDER)]
    if schema.id_column:
        columns.append(F.col(schema.id_column))
    target = F.col(schema.target_column)
    columns += [target, F.when(target == schema.positive, 1).when(target == schema.negative, 0)
                .when(target.isNull(), NO_TARGET).otherwise(UNKNOWN_TARGET).alias(LABEL)]
    for name in schema.numeric:
        column = F.col(name)
        if dict(frame.dtypes)[name] == "double":
            columns += [column, F.lit(False).alias(f"_bad_{name}")]
            continue
        number = column.rlike(NUMBER_PATTERN)
        columns += [F.when(number, column.cast("double")).alias(name),
                    (column.isNotNull() & ~number).alias(f"_bad_{name}"), column.alias(f"_text_{name}")]
    columns += [F.col(name) for name in schema.categorical]
    return frame.select(*columns)


def contract_violations(rows: Any, schema: data_contract.Schema) -> tuple[int, int, list[str]]:
    """Rows read, rows without a target, and the violations ``preprocessing.check_contract`` finds
    before it drops anything, in its words."""
    from pyspark.sql import functions as F

    sums = [F.sum((F.col(LABEL) == UNKNOWN_TARGET).cast("long")).alias("unknown"),
            F.sum((F.col(LABEL) == NO_TARGET).cast("long")).alias("no_target")]
    sums += [F.sum(F.col(f"_bad_{name}").cast("long")).alias(f"bad_{name}") for name in schema.numeric]
    totals = rows.agg(F.count(F.lit(1)).alias("rows"), *sums).first()
    violations = []
    if totals["unknown"]:
        # most frequent first, ties in the order first seen (collections.Counter.most_common)
        unknown = (rows.where(F.col(LABEL) == UNKNOWN_TARGET).groupBy(schema.target_column)
                   .agg(F.count(F.lit(1)).alias("count"), F.min(ORDER).alias("first"))
                   .orderBy(F.desc("count"), "first").limit(10).collect())
        listed = ", ".join(f"'{row[schema.target_column]}' ({row['count']})" for row in unknown)
        violations.append(f"column '{schema.target_column}' has values other than '{schema.positive}' / "
                          f"'{schema.negative}': {listed}")
    for name in schema.numeric:
        count = totals[f"bad_{name}"] or 0
        if count:
            examples = (rows.where(F.col(f"_bad_{name}")).groupBy(f"_text_{name}").agg(F.min(ORDER).alias("first"))
                        .orderBy("first").limit(3).collect())
            shown_examples = ", ".join(repr(row[f"_text_{name}"]) for row in examples)
            violations.append(f"numeric column '{name}' has {count} non-numeric value(s), e.g. {shown_examples}")
    return int(totals["rows"]), int(totals["no_target"] or 0), violations


def row_key_text(schema: data_contract.Schema) -> Any:
    """The canonical text of a row, preprocessing.row_text's: the target, the numbers as Arrow writes
    them, the categories, missing cells empty, joined by the unit separator."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    as_text = F.udf(lambda value: None if value is None else spark_sql.number_text(value), StringType())
    cells = [F.col(schema.target_column)] + [as_text(F.col(name)) for name in schema.numeric]
    cells += [F.col(name) for name in schema.categorical]
    return F.concat_ws(ROW_TEXT_SEPARATOR, *(F.coalesce(cell, F.lit("")) for cell in cells))


def with_split(rows: Any, schema: data_contract.Schema, cuts: tuple[int, int]) -> Any:
    """Each row's split from the CRC-32 of its key (the id's UTF-8 bytes; the row's canonical text
    where there is no id): bucket crc32 % 100 below the first cut is train, below the second
    validation, the rest test. The canonical text needs a Python function, so it is computed only
    for the rows without an id."""
    from pyspark.sql import functions as F

    def split_of(key: Any) -> Any:
        bucket = F.crc32(key.cast("binary")) % split.HASH_BUCKETS
        return F.when(bucket < cuts[0], SPLITS[0]).when(bucket < cuts[1], SPLITS[1]).otherwise(SPLITS[2])

    if not schema.id_column:
        return rows.withColumn(SPLIT, split_of(row_key_text(schema)))
    identified = rows.where(F.col(schema.id_column).isNotNull())
    anonymous = rows.where(F.col(schema.id_column).isNull())
    return (identified.withColumn(SPLIT, split_of(F.col(schema.id_column)))
            .unionByName(anonymous.withColumn(SPLIT, split_of(row_key_text(schema)))))


def used_rows(rows: Any, schema: data_contract.Schema) -> tuple[Any, int, int]:
    """The labelled rows without exact duplicates (of every column the schema names, numbers as
    parsed), then without repeated ids, the first in the table's order kept each time; and the counts
    of both kinds dropped."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    labelled = rows.where(F.col(LABEL) >= 0)
    values = ([schema.id_column] if schema.id_column else []) + [schema.target_column, LABEL, *schema.features]
    # grouping compares nulls as equal and every NaN and -0.0 as one value: the row hash's rules
    distinct = labelled.groupBy(*values).agg(F.min(ORDER).alias(ORDER), F.count(F.lit(1)).alias("_copies"))
    distinct = distinct.persist()
    counted = distinct.agg(F.sum("_copies").alias("labelled"), F.count(F.lit(1)).alias("distinct")).first()
    duplicate_rows = int((counted["labelled"] or 0) - counted["distinct"])
    duplicate_ids = 0
    kept = distinct
    if schema.id_column:
        place = F.row_number().over(Window.partitionBy(schema.id_column).orderBy(ORDER))
        ranked = distinct.withColumn("_place", F.when(F.col(schema.id_column).isNull(), 1).otherwise(place))
        kept = ranked.where(F.col("_place") == 1).drop("_place")
        duplicate_ids = int(ranked.where(F.col("_place") > 1).count())
    return kept.drop("_copies"), duplicate_rows, duplicate_ids


def check_counts(split_counts: dict[tuple[str, int], int], schema: data_contract.Schema, source: str,
                 min_rows: int, min_class_rows: int) -> tuple[int, dict[str, int], dict[str, dict[str, int]]]:
    """``preprocessing.check_contract``'s checks of the rows used, in its words."""
    rows_used = sum(split_counts.values())
    class_counts = {schema.negative: sum(count for (_, label), count in split_counts.items() if label == 0),
                    schema.positive: sum(count for (_, label), count in split_counts.items() if label == 1)}
    violations = []
    if rows_used < min_rows:
        violations.append(f"only {rows_used} usable row(s) after dropping duplicates and rows without a "
                          f"target; at least {min_rows} are needed")
    for label in (schema.positive, schema.negative):
        if class_counts[label] < min_class_rows:
            violations.append(f"column '{schema.target_column}' has {class_counts[label]} usable row(s) of class "
                              f"'{label}'; at least {min_class_rows} of each class are needed (the split is by "
                              "customer, not stratified, so each class needs enough rows to reach every split)")
    splits = {name: {"rows": split_counts.get((name, 0), 0) + split_counts.get((name, 1), 0),
                     "positive": split_counts.get((name, 1), 0)} for name in SPLITS}
    if not violations:
        for name, info in splits.items():
            negatives = info["rows"] - info["positive"]
            for label, count in ((schema.positive, info["positive"]), (schema.negative, negatives)):
                if count == 0:
                    violations.append(f"the {name} split has no row of class '{label}': the split by customer "
                                      "needs more customers of each class")
    if violations:
        raise container.ContractError(source, violations)
    return rows_used, class_counts, splits


# ------------------------------------------------------------------ the training split's statistics


def mean_and_spread(count: int, mean: float | None, variance: float | None) -> tuple[float, float, float]:
    """Mean, population variance and scale as StandardScaler keeps them: a column indistinguishable
    from a constant (preprocessing.mean_and_spread's test) gets the scale 1."""
    import numpy as np

    if count == 0 or mean is None:
        return 0.0, 0.0, 1.0
    variance = max(float(variance or 0.0), 0.0)
    epsilon = float(np.finfo(np.float64).eps)
    constant = variance <= count * epsilon * variance + (count * mean * epsilon) ** 2
    return float(mean), variance, 1.0 if constant else float(np.sqrt(variance))


def category_counts(train: Any, schema: data_contract.Schema) -> dict[str, tuple[dict[str, int], int]]:
    """Every categorical column's value counts and missing cells in the training split, in one job."""
    from pyspark.sql import functions as F

    if not schema.categorical:
        return {}
    pairs = F.explode(F.array(*(F.struct(F.lit(name).alias("column"), F.col(name).alias("value"))
                                for name in schema.categorical)))
    tallied = train.select(pairs.alias("pair")).groupBy("pair.column", "pair.value").count().collect()
    counts: dict[str, tuple[dict[str, int], int]] = {name: ({}, 0) for name in schema.categorical}
    for row in tallied:
        values, _ = counts[row["column"]]
        if row["value"] is None:
            counts[row["column"]] = (values, int(row["count"]))
        else:
            values[row["value"]] = int(row["count"])
    return counts


@dataclass(frozen=True)
class Statistics:
    rows: int
    medians: dict[str, float]
    spreads: dict[str, tuple[float, float, float]]  # mean, variance, scale
    modes: dict[str, Any]
    categories: dict[str, list[Any]]
    category_counts: dict[str, tuple[dict[str, int], int]]

    def feature_names(self, schema: data_contract.Schema) -> list[str]:
        """The transformed features' names, as the ColumnTransformer names them."""
        names = [f"num__{name}" for name in schema.numeric]
        return names + [f"cat__{name}_{value}" for name in schema.categorical for value in self.categories[name]]

    def fitted(self, schema: data_contract.Schema) -> dict[str, Any]:
        """preprocessor.json, as ``churn_common.preprocessor`` reads it."""
        return {
            "rows": self.rows,
            "features": self.feature_names(schema),
            "numeric": {name: dict(zip(("mean", "variance", "scale"), self.spreads[name], strict=True),
                                   median=self.medians[name]) for name in schema.numeric},
            "categorical": {name: {"mode": self.modes[name], "categories": self.categories[name]}
                            for name in schema.categorical},
        }


def training_statistics(train: Any, rows: int, schema: data_contract.Schema, relative_error: float) -> Statistics:
    from pyspark.sql import functions as F

    medians = {}
    if schema.numeric:
        quantiles = train.approxQuantile(list(schema.numeric), [0.5], relative_error)
        # scikit-learn's median imputer gives 0 to a column with no value (keep_empty_features)
        medians = {name: float(found[0]) if found else 0.0 for name, found in zip(schema.numeric, quantiles,
                                                                                  strict=True)}
    spreads = {}
    if schema.numeric:
        # the scaler is fitted on the imputed column, as in the pipeline
        imputed = {name: F.coalesce(F.col(name), F.lit(medians[name])) for name in schema.numeric}
        moments = train.agg(*(F.avg(column).alias(f"mean_{name}") for name, column in imputed.items()),
                            *(F.var_pop(column).alias(f"var_{name}") for name, column in imputed.items())).first()
        spreads = {name: mean_and_spread(rows, moments[f"mean_{name}"], moments[f"var_{name}"])
                   for name in schema.numeric}
    counted = category_counts(train, schema)
    modes: dict[str, Any] = {}
    categories: dict[str, list[Any]] = {}
    for name in schema.categorical:
        values = counted[name][0]
        if values:
            most = max(values.values())
            modes[name] = min(value for value, count in values.items() if count == most)  # ties: the smallest
            categories[name] = sorted(values)
        else:
            modes[name], categories[name] = 0, [0]
    return Statistics(rows, medians, spreads, modes, categories, counted)


def numeric_profile(train: Any, schema: data_contract.Schema, relative_error: float) -> dict[str, tuple[str, dict]]:
    """Each numeric column's inferred type and Model Monitor statistics over the training split: exact
    counts and moments; decile edges from approxQuantile (the exact quantiles of profile.py would
    need every value on one machine), the counts between them exact."""
    import numpy as np
    from pyspark.sql import functions as F

    if not schema.numeric:
        return {}
    aggregates = []
    for name in schema.numeric:
        column = F.col(name)
        aggregates += [F.count(column).alias(f"present_{name}"),
                       F.sum(column.isNull().cast("long")).alias(f"missing_{name}"),
                       F.avg(column).alias(f"mean_{name}"), F.sum(column).alias(f"sum_{name}"),
                       F.stddev_pop(column).alias(f"std_{name}"), F.min(column).alias(f"min_{name}"),
                       F.max(column).alias(f"max_{name}"),
                       F.sum((column.isNotNull() & ~((column % 1) == 0)).cast("long")).alias(f"fraction_{name}")]
    totals = train.agg(*aggregates).first()
    probabilities = np.linspace(0.0, 1.0, profile.QUANTILE_BINS + 1).tolist()
    quantiles = train.approxQuantile(list(schema.numeric), probabilities, relative_error)
    edges = {name: np.unique(np.array(found, dtype="float64")) for name, found in zip(schema.numeric, quantiles,
                                                                                       strict=True)}
    # a value's bin is the number of inner edges at or below it (numpy's searchsorted, side="right")
    bins = []
    for name in schema.numeric:
        inner = edges[name][1:-1].tolist()
        position = sum(((F.col(name) >= float(edge)).cast("int") for edge in inner), F.lit(0))
        for index in range(max(len(edges[name]) - 1, 1)):
            bins.append(F.sum((F.col(name).isNotNull() & (position == index)).cast("long")).alias(f"{name}#{index}"))
    counted = train.agg(*bins).first()
    found = {}
    for name in schema.numeric:
        present = int(totals[f"present_{name}"])
        moments = {"mean": totals[f"mean_{name}"], "sum": totals[f"sum_{name}"], "std_dev": totals[f"std_{name}"],
                   "min": totals[f"min_{name}"], "max": totals[f"max_{name}"]}
        counts = [float(counted[f"{name}#{index}"] or 0) for index in range(max(len(edges[name]) - 1, 1))]
        summary = profile.numeric_summary(present, int(totals[f"missing_{name}"] or 0), moments,
                                          edges[name].tolist(), counts)
        integral = present > 0 and not totals[f"fraction_{name}"]
        found[name] = ("Integral" if integral else "Fractional", summary)
    return found


# ------------------------------------------------------------------ the step


def transformed(rows: Any, schema: data_contract.Schema, fitted: dict[str, Any]) -> Any:
    """The label, then every feature as the packaged model's SQLTransformer computes it, under its
    preprocessor name."""
    from pyspark.ml.feature import SQLTransformer

    statement = spark_sql.feature_statement(schema.numeric, schema.categorical, fitted, keep=[LABEL])
    features = SQLTransformer(statement=statement).transform(rows)
    return features.toDF(LABEL, *fitted["features"])


def holdout_records(rows: Any, schema: data_contract.Schema) -> Any:
    """The held-out customers' raw records: id, every feature as read (numbers parsed), the 0/1 label."""
    from pyspark.sql import functions as F

    columns = [F.col(schema.id_column).cast("string")] if schema.id_column else []
    columns += [F.col(name).cast("double") for name in schema.numeric]
    columns += [F.col(name).cast("string") for name in schema.categorical]
    return rows.select(*columns, F.col(LABEL).cast("long"))


def dataset_uri(output: str, name: str) -> str:
    return output.rstrip("/") + "/" + name


def _filesystem(spark: Any, uri: str) -> tuple[Any, Any]:
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def move_into_place(spark: Any, source: str, destination: str) -> None:
    """Replace ``destination`` (an earlier attempt's data set) with ``source``, through Hadoop's file
    system: a rename where it has one (local disk, HDFS), a copy on S3."""
    filesystem, target = _filesystem(spark, destination)
    if filesystem.exists(target):
        filesystem.delete(target, True)
    filesystem.mkdirs(target.getParent())
    if not filesystem.rename(_filesystem(spark, source)[1], target):
        raise OSError(f"cannot move the data set {source} to {destination}")


def remove(spark: Any, uri: str) -> None:
    filesystem, path = _filesystem(spark, uri)
    if filesystem.exists(path):
        filesystem.delete(path, True)


def run(args: argparse.Namespace, spark: Any) -> dict:
    from pyspark.sql import functions as F

    schema = data_contract.load_schema(args.schema)
    files = list_input_files(spark, args.input)
    frame, ignored = (open_parquet if files.parquet else open_csv)(spark, files, schema)
    if ignored:
        print(f"ignoring {len(ignored)} column(s) the schema does not name: {', '.join(ignored)}")
    rows = parsed_rows(frame, schema).persist()
    try:
        rows_read, rows_without_target, violations = contract_violations(rows, schema)
    except Exception as error:  # the reader's FAILFAST: a row Spark's CSV parser cannot read
        if files.parquet or "Malformed" not in str(error):
            raise
        raise container.ContractError(files.source, ["the CSV cannot be parsed: a row does not fit the header "
                                                     "(Spark's parser: malformed record)"]) from None
    if rows_read == 0:
        empty = "the Parquet file(s) hold no rows" if files.parquet else "the file has a header but no data rows"
        raise container.ContractError(files.source, [empty])
    if violations:  # counting classes on data with unknown labels would only add noise
        raise container.ContractError(files.source, violations)
    print(f"read {rows_read} row(s) from {files.source}")
    kept, duplicate_rows, duplicate_ids = used_rows(rows, schema)
    used = with_split(kept, schema, args.cut_points).persist()
    split_counts = {(row[SPLIT], row[LABEL]): int(row["count"])
                    for row in used.groupBy(SPLIT, LABEL).count().collect()}
    rows_used, class_counts, splits = check_counts(split_counts, schema, files.source, args.min_rows,
                                                   args.min_class_rows)
    print(f"dropped {rows_without_target} row(s) without a target, {duplicate_rows} duplicate row(s) and "
          f"{duplicate_ids} duplicate id(s); {rows_used} row(s) remain")
    train = used.where(F.col(SPLIT) == SPLITS[0]).persist()
    statistics = training_statistics(train, splits["train"]["rows"], schema, args.median_relative_error)
    numeric_summaries = numeric_profile(train, schema, args.median_relative_error)
    training_profile = profile.profile_from_summaries(statistics.rows, numeric_summaries,
                                                      statistics.category_counts, schema)
    train.unpersist()
    fitted = statistics.fitted(schema)
    missing = used.agg(*(F.sum(F.col(name).isNull().cast("long")).alias(name) for name in schema.features)).first()
    summary = {
        "files": files.names,
        "ignored_columns": ignored,
        "rows_read": rows_read,
        "rows_without_target": rows_without_target,
        "duplicate_rows": duplicate_rows,
        "duplicate_ids": duplicate_ids,
        "rows_used": rows_used,
        "class_counts": class_counts,
        "splits": splits,
        "missing_values": {name: int(missing[name] or 0) for name in schema.features},
        "split": split.described(schema.id_column, args.cut_points),
        "features": {"input": list(schema.features), "encoded": len(fitted["features"])},
    }
    # Every check has passed: only now is anything written. The data sets go to a staging prefix
    # first and are moved into place once all four are written, so that a failure half-way leaves
    # no data set beside an older run's (nor any small file).
    staged = dataset_uri(args.output, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
    try:
        with container.staged_output(args.output_dir) as staging:
            for name in SPLITS:
                part = used.where(F.col(SPLIT) == name)
                transformed(part, schema, fitted).write.mode("overwrite").parquet(dataset_uri(staged, name))
            holdout = holdout_records(used.where(F.col(SPLIT) == SPLITS[2]), schema)
            holdout.write.mode("overwrite").parquet(dataset_uri(staged, "holdout"))
            for kind, document in zip(("statistics", "constraints"), training_profile, strict=True):
                container.write_json(staging / "profile" / contract.FILES[kind], document)
            container.write_json(staging / "preprocessor" / preprocessor.STATISTICS_FILE, fitted)
            container.write_json(staging / "preprocessor" / "schema.json", schema.to_dict())
            container.write_json(staging / "quality" / contract.FILES["data_quality"], summary)
            for name in (*SPLITS, "holdout"):
                move_into_place(spark, dataset_uri(staged, name), dataset_uri(args.output, name))
    finally:
        remove(spark, staged)
    used.unpersist()
    rows.unpersist()
    print("splits: " + ", ".join(f"{name} {info['rows']}" for name, info in splits.items()))
    return summary


def spark_session(step: str) -> Any:
    """The job's Spark session; the master and its resources come from spark-submit."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"churn-{step}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> dict:
        args = parse_args(argv)  # a wrong argument fails before Spark starts
        return run(args, spark_session(STEP))

    return container.run_main(STEP, container.PROCESSING_REASON_FILE, body)


if __name__ == "__main__":
    container.exit_now(main())
