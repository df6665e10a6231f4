"""The generated customer table of the parity tests: the sample's generator (blank cells, exact
duplicate rows), plus what a real export also has: repeated ids with other content, customers
without an id, rows without a target, categories only the held-out customers have, and category
values with quotes and backslashes in them."""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd

from churn_pipeline.tooling import sample_data

CUSTOMERS = 4000
SEED = 11
UNSEEN_PAYMENT = "Crypto wallet"  # held-out customers only: the training split never sees it
QUOTED_INTERNET = "Satellite 'beta' \\ \"v2\""  # a category whose text SQL and CSV both must escape


def bucket(customer_id: str) -> int:
    return zlib.crc32(customer_id.encode("utf-8")) % 100


def write_generated_customers(path: Path) -> Path:
    frame = sample_data.generate(CUSTOMERS, SEED)
    ids = frame["CustomerID"]
    # the same customers again with another tenure: the first row of each id is the one kept
    repeated = frame.iloc[100:160].copy()
    repeated["Tenure"] = "7"
    frame.loc[frame.index[300:330], "CustomerID"] = ""  # no id: keyed by the row's canonical text
    frame.loc[frame.index[400:412], "Churn"] = ""  # no target
    held_out = [index for index in frame.index[500:1500] if ids[index] and bucket(ids[index]) >= 80]
    frame.loc[held_out[:25], "PaymentMethod"] = UNSEEN_PAYMENT
    trained = [index for index in frame.index[1500:2500] if ids[index] and bucket(ids[index]) < 70]
    frame.loc[trained[:40], "InternetService"] = QUOTED_INTERNET
    frame = pd.concat([frame, repeated], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
