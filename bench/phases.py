"""The part of preprocessing that holds everything the input's format changes, timed inside one
process: reading the customer table and checking it against the data contract (numbers parsed from
text for CSV, taken as stored for Parquet; finding duplicates, the same for both). Everything after
it (the split, fitting and applying the preprocessor, writing the splits) is the same work for both
formats.

    python -m bench.phases INPUT_DIR      prints one JSON line: the timed section's wall and CPU seconds
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.floors import _timed

PROJECT = Path(__file__).resolve().parent.parent


def read_and_check(input_dir: Path) -> dict[str, float]:
    sys.path.insert(0, str(PROJECT / "include" / "scripts"))
    # loaded before timing, as the step loads them anyway (the floors do the same)
    import pandas  # noqa: F401
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    import preprocessing
    from churn_common import data_contract, tables

    schema = data_contract.load_schema(data_contract.DEFAULT_SCHEMA_FILE)

    def section() -> None:  # the first pass: read every batch, hash and check it
        files = tables.list_input_files(input_dir)
        table = tables.open_customer_files(files, list(schema.required_columns), schema.numeric)
        gathered = preprocessing.scan(table, schema, (70, 80))
        preprocessing.check_contract(gathered, schema, table.source, min_rows=50, min_class_rows=10)

    return _timed(section)


def main(argv: list[str]) -> int:
    print(json.dumps(read_and_check(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
