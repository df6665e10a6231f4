"""Synthetic customer table with the mission's columns, a realistic churn signal and realistic mess.

Churn is likelier for month-to-month contracts, high monthly charges, no tech support, fibre
internet, electronic cheques and short tenure, as in public telecom churn data. The mess a real
export has is there too: a few blank cells, a few exact duplicate rows, and a blank TotalCharges
for customers in their first month (tenure 0).

    python -m churn_pipeline.tooling.sample_data --rows 10000 --seed 7 --output include/data/customer_data.csv
    python -m churn_pipeline.tooling.sample_data --shift MonthlyCharges=1.5 --output /tmp/drifted/customers.csv
    python -m churn_pipeline.tooling.sample_data --next-month [--drifted] --output local-store/next-month.csv

``--next-month`` writes the sample's customers a month later, their churn the outcome the outcome DAG
measures the sample's scores against (``--drifted``: an outcome the champion cannot predict).

The defaults reproduce the bundled sample byte for byte. The same customers can be written as a
database or a database export would hold them (``typed``): a SQLite file (``.sqlite``, one table
``customers``: the embedded source for trying ``extract_customers`` without a server) or Parquet
(``.parquet``), with numbers as numbers and blank cells as NULL.

    python -m churn_pipeline.tooling.sample_data --output local-store/customers.sqlite
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

SAMPLE_FILE = Path(__file__).resolve().parents[2] / "data" / "customer_data.csv"
SAMPLE_ROWS = 10_000
SAMPLE_SEED = 7
SAMPLE_TABLE = "customers"  # the table of a .sqlite sample
FORMATS = (".csv", ".parquet", ".sqlite")
# The generator's own numeric columns (its schema is include/config/schema.json); typed() stores them
# as numbers, the way a database column or a Parquet export holds them.
NUMERIC_COLUMNS = ("Age", "MonthlyCharges", "TotalCharges", "Tenure")
BLANK_SHARE = 0.02
DUPLICATE_SHARE = 0.01
SAMPLE_MONTH, NEXT_MONTH, DRIFTED_MONTH = "sample", "next", "drifted"
MONTHS = (SAMPLE_MONTH, NEXT_MONTH, DRIFTED_MONTH)
NEXT_MONTH_STREAM = 1  # the outcome draws' own random stream, apart from the sample's

CONTRACTS = (("Month-to-month", 0.55), ("One year", 0.25), ("Two year", 0.20))
INTERNET = (("DSL", 0.35), ("Fiber optic", 0.45), ("No", 0.20))
PAYMENT = (("Electronic check", 0.34), ("Mailed check", 0.22), ("Bank transfer", 0.22), ("Credit card", 0.22))


def generate(rows: int, seed: int, month: str = SAMPLE_MONTH) -> Any:
    """A pandas DataFrame of ``rows`` customers (plus about 1 % duplicate rows), reproducible by seed.

    ``month`` ``next`` keeps the same customers and draws their churn again from the same model with
    fresh noise (what they did in the month after they were scored); ``drifted`` draws it at the same
    rate but unrelated to anything the customers' columns say, so a model trained on the sample
    ranks no better than chance. The main generator's draws stay as the sample's, so every other cell
    is the sample's own."""
    import numpy as np
    import pandas as pd

    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if month not in MONTHS:
        raise ValueError(f"month must be one of {', '.join(MONTHS)}, got {month!r}")
    rng = np.random.default_rng(seed)
    outcome_rng = np.random.default_rng([seed, NEXT_MONTH_STREAM])

    def pick(choices: tuple[tuple[str, float], ...]) -> Any:
        names, weights = zip(*choices, strict=True)
        return rng.choice(np.array(names, dtype=object), size=rows, p=np.array(weights))

    contract = pick(CONTRACTS)
    internet = pick(INTERNET)
    payment = pick(PAYMENT)
    gender = rng.choice(np.array(["Female", "Male"], dtype=object), size=rows)
    age = rng.integers(18, 85, size=rows)
    loyalty = np.select([contract == "Two year", contract == "One year"], [36.0, 18.0], 6.0)
    tenure = np.minimum(72, rng.exponential(loyalty + 6.0)).astype(int)
    no_internet = internet == "No"
    tech_support = np.where(no_internet, "No internet service",
                            np.where(rng.random(rows) < 0.35, "Yes", "No")).astype(object)
    streaming = np.where(no_internet, "No internet service",
                         np.where(rng.random(rows) < 0.45, "Yes", "No")).astype(object)
    monthly = (20.0 + np.where(internet == "Fiber optic", 45.0, np.where(internet == "DSL", 25.0, 0.0))
               + np.where(streaming == "Yes", 12.0, 0.0) + np.where(tech_support == "Yes", 6.0, 0.0)
               + rng.normal(0.0, 6.0, rows)).clip(18.0, 120.0).round(2)
    total = (monthly * tenure * rng.normal(1.0, 0.03, rows)).round(2)

    signal = (-1.9
             + 1.5 * (contract == "Month-to-month") - 0.9 * (contract == "Two year")
             + 0.9 * (internet == "Fiber optic") - 0.6 * no_internet
             + 0.7 * (tech_support == "No")
             + 0.5 * (payment == "Electronic check")
             + 0.025 * (monthly - 65.0)
             - 0.06 * tenure
             + 0.01 * (age - 50) * (age > 65))
    noise = rng.logistic(0.0, 0.9, rows)  # drawn in every month, so that the sample's later draws stay its own
    churned = signal + noise > 0.0
    if month == NEXT_MONTH:
        churned = signal + outcome_rng.logistic(0.0, 0.9, rows) > 0.0
    elif month == DRIFTED_MONTH:
        churned = outcome_rng.random(rows) < churned.mean()
    churn = np.where(churned, "Yes", "No").astype(object)

    frame = pd.DataFrame({
        "CustomerID": [f"C{seed:03d}-{index:07d}" for index in range(rows)],
        "Gender": gender,
        "Age": age.astype(object),
        "MonthlyCharges": monthly.astype(object),
        "TotalCharges": total.astype(object),
        "Tenure": tenure.astype(object),
        "Contract": contract,
        "InternetService": internet,
        "TechSupport": tech_support,
        "StreamingTV": streaming,
        "PaymentMethod": payment,
        "Churn": churn,
    })
    frame.loc[tenure == 0, "TotalCharges"] = " "  # a first-month customer has not been billed yet
    for column in ("Age", "MonthlyCharges", "Gender", "TechSupport", "PaymentMethod", "Contract"):
        frame.loc[rng.random(rows) < BLANK_SHARE, column] = ""
    duplicates = frame.sample(n=int(rows * DUPLICATE_SHARE), random_state=seed)
    return pd.concat([frame, duplicates], ignore_index=True)


def parse_shift(text: str) -> tuple[str, float]:
    """``MonthlyCharges=1.5`` -> ("MonthlyCharges", 1.5): multiply a numeric column by a factor."""
    column, separator, factor = text.partition("=")
    if not separator or column not in NUMERIC_COLUMNS:
        raise ValueError(f"--shift takes COLUMN=FACTOR with COLUMN one of {', '.join(NUMERIC_COLUMNS)}, got {text!r}")
    try:
        value = float(factor)
    except ValueError:
        raise ValueError(f"--shift {column}: the factor must be a number, got {factor!r}") from None
    return column, value


def shifted(frame: Any, shifts: Sequence[tuple[str, float]]) -> Any:
    """The customers with numeric columns scaled, as their data would look after prices or ages moved;
    blank cells stay blank. The churn labels are left as they were generated."""
    import pandas as pd

    frame = frame.copy()
    for column, factor in shifts:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        scaled = (numbers * factor).round(2)
        frame[column] = scaled.astype(object).where(numbers.notna(), frame[column])
    return frame


def typed(frame: Any) -> Any:
    """The generated table as a database holds it: numeric columns as numbers (integers where every
    value is whole), every other column as text, and blank or white-space cells as missing (NULL).
    Read back, these are the very values the CSV's text cells parse to."""
    import pandas as pd

    columns = {}
    for name in frame.columns:
        text = frame[name].astype(str).str.strip()
        present = text != ""
        if name in NUMERIC_COLUMNS:
            numbers = pd.to_numeric(text.where(present), errors="raise")
            whole = bool((numbers.dropna() % 1 == 0).all())
            columns[name] = numbers.astype("Int64") if whole else numbers.astype("float64")
        else:
            columns[name] = text.where(present)
    return pd.DataFrame(columns)


def _write_sqlite(frame: Any, path: Path) -> None:
    with closing(sqlite3.connect(path)) as database:
        frame.to_sql(SAMPLE_TABLE, database, index=False)
        database.commit()


def write_sample(path: Path, rows: int, seed: int, shifts: Sequence[tuple[str, float]] = (),
                 month: str = SAMPLE_MONTH) -> Path:
    """Write the customers to ``path`` in the format its suffix names (.csv, .parquet or .sqlite)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot write {path}: the file name must end in {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.unlink(missing_ok=True)
    frame = shifted(generate(rows, seed, month), shifts)
    if suffix == ".csv":
        frame.to_csv(temporary, index=False, lineterminator="\n")
    elif suffix == ".parquet":
        typed(frame).to_parquet(temporary, index=False)
    else:
        _write_sqlite(typed(frame), temporary)
    temporary.replace(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write synthetic customers as CSV, Parquet or a SQLite database.")
    parser.add_argument("--rows", type=int, default=SAMPLE_ROWS)
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED)
    parser.add_argument("--output", type=Path, default=SAMPLE_FILE, help="its suffix names the format: "
                        + ", ".join(FORMATS))
    parser.add_argument("--shift", action="append", default=[], metavar="COLUMN=FACTOR",
                        help="scale a numeric column, e.g. MonthlyCharges=1.5 to see drift (repeatable)")
    parser.add_argument("--next-month", action="store_true",
                        help="the same customers a month on: their churn drawn again from the same model")
    parser.add_argument("--drifted", action="store_true",
                        help="with --next-month: churn unrelated to the columns, so the champion's lift collapses")
    args = parser.parse_args(argv)
    if args.drifted and not args.next_month:
        parser.error("--drifted describes next month's table: add --next-month")
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, got {args.rows}")
    if args.output.suffix.lower() not in FORMATS:
        parser.error(f"--output must end in {', '.join(FORMATS)}, got {args.output}")
    try:
        shifts = [parse_shift(item) for item in args.shift]
    except ValueError as error:
        parser.error(str(error))
    month = DRIFTED_MONTH if args.drifted else NEXT_MONTH if args.next_month else SAMPLE_MONTH
    print(f"wrote {write_sample(args.output, args.rows, args.seed, shifts, month)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
