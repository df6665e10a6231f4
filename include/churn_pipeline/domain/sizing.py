"""Will each job fit its instance? An estimate of every job's peak memory from the input's size,
checked against the memory of the instance type each step is configured with, before any paid job.

Pure: no AWS call, no Airflow import. The input's size is its row count where the Parquet footers
give it, else the CSV's size in bytes, converted to rows at the bench's bytes per row (wider rows
take more memory per row as well as more bytes, so scaling by bytes keeps the estimate honest).

A job's peak is modelled as a fixed part (the interpreter, pandas, scikit-learn, Arrow) plus a part
proportional to the customers; both come from the peak RSS that ``make bench`` measures at 100 k and
1 M customers (``docs/performance.md``). A job may use ``USABLE_SHARE`` of the instance's memory:
the operating system and SageMaker's own agents keep the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from churn_pipeline.domain.steps import EVALUATE, PREPROCESS, TRAIN

MIB_PER_GIB = 1024

# Memory of the instance types SageMaker offers for Processing and Training (GiB), per family. A type
# not listed here (accelerated instances, new families) is not checked: it is never guessed.
INSTANCE_MEMORY_GIB: dict[str, dict[str, int]] = {
    "ml.m5": {"large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64, "12xlarge": 192, "24xlarge": 384},
    "ml.c5": {"xlarge": 8, "2xlarge": 16, "4xlarge": 32, "9xlarge": 72, "18xlarge": 144},
    "ml.r5": {"large": 16, "xlarge": 32, "2xlarge": 64, "4xlarge": 128, "8xlarge": 256, "12xlarge": 384,
              "16xlarge": 512, "24xlarge": 768},
}
# vCPUs of the same types: what the Spark image gives each instance's executor, so what a Spark job's
# shuffle partitions are sized from (domain.engine)
INSTANCE_VCPUS: dict[str, dict[str, int]] = {
    "ml.m5": {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "12xlarge": 48, "24xlarge": 96},
    "ml.c5": {"xlarge": 4, "2xlarge": 8, "4xlarge": 16, "9xlarge": 36, "18xlarge": 72},
    "ml.r5": {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48,
              "16xlarge": 64, "24xlarge": 96},
}
USABLE_SHARE = 0.85  # of an instance's memory a job can count on; the OS and SageMaker's agents hold the rest

# Peak RSS per step = fixed MiB + MiB per million input customers, fitted through the peaks measured
# at 1 million customers (`make bench`) and 10 million (`make bench-dag`, the whole DAG through the
# local backend), 2026-12-03, docs/performance.md: preprocess 321 and 1,490 MB, train 456 and 1,961 MB,
# evaluate 427 and 742 MB. Re-measure when a step's memory changes.
FIXED_MIB = {PREPROCESS: 191.1, TRAIN: 288.8, EVALUATE: 392.0}
MIB_PER_MILLION_ROWS = {PREPROCESS: 129.9, TRAIN: 167.2, EVALUATE: 35.0}
SIZED_STEPS = (PREPROCESS, TRAIN, EVALUATE)  # the transform job scores in payload-sized batches: no input bound
BENCH_CSV_BYTES_PER_ROW = 88  # the bench's customers as CSV: 88,066,327 bytes for 1,000,000 rows

_INSTANCE_TYPE = re.compile(r"^(ml\.[a-z0-9]+)\.([a-z0-9]+)$")


@dataclass(frozen=True)
class InputSize:
    """How large the run's input is: rows from Parquet footers, or the CSV files' bytes."""

    rows: int | None = None
    csv_bytes: int = 0

    @property
    def customers(self) -> int:
        """The rows the jobs will read: counted where known, else estimated from the CSV's bytes."""
        if self.rows is not None:
            return self.rows
        return -(-self.csv_bytes // BENCH_CSV_BYTES_PER_ROW)

    def described(self) -> str:
        if self.rows is not None:
            return f"{self.rows:,} customers (from the Parquet footers)"
        return f"about {self.customers:,} customers (from {self.csv_bytes / 2**20:,.0f} MiB of CSV)"


def estimated_peak_mib(step: str, size: InputSize) -> float:
    """The step's job's estimated peak memory for this input, in MiB."""
    return FIXED_MIB[step] + MIB_PER_MILLION_ROWS[step] * size.customers / 1_000_000


def instance_memory_gib(instance_type: str) -> int | None:
    """The instance type's memory in GiB; None for a type this table does not know."""
    match = _INSTANCE_TYPE.match(instance_type)
    if not match:
        return None
    return INSTANCE_MEMORY_GIB.get(match.group(1), {}).get(match.group(2))


def instance_vcpus(instance_type: str) -> int | None:
    """The instance type's vCPUs; None for a type this table does not know."""
    match = _INSTANCE_TYPE.match(instance_type)
    if not match:
        return None
    return INSTANCE_VCPUS.get(match.group(1), {}).get(match.group(2))


def usable_mib(instance_type: str) -> float | None:
    memory = instance_memory_gib(instance_type)
    return None if memory is None else memory * MIB_PER_GIB * USABLE_SHARE


def smallest_fitting(instance_type: str, needed_mib: float) -> str | None:
    """The smallest instance type of ``instance_type``'s family whose usable memory holds ``needed_mib``."""
    match = _INSTANCE_TYPE.match(instance_type)
    if not match:
        return None
    family = match.group(1)
    for size, memory in sorted(INSTANCE_MEMORY_GIB.get(family, {}).items(), key=lambda item: item[1]):
        if memory * MIB_PER_GIB * USABLE_SHARE >= needed_mib:
            return f"{family}.{size}"
    return None


def _gib(mib: float) -> str:
    return f"{mib / MIB_PER_GIB:,.1f} GiB"


def memory_refusal(step: str, instance_type: str, size: InputSize, setting: str) -> str | None:
    """One line saying why ``step``'s job will not fit ``instance_type`` and what would, or None when
    it fits (or the instance type is not one this table knows). ``setting``: where the type is set."""
    available = usable_mib(instance_type)
    if available is None:
        return None
    needed = estimated_peak_mib(step, size)
    if needed <= available:
        return None
    memory = instance_memory_gib(instance_type) or 0
    fitting = smallest_fitting(instance_type, needed)
    remedy = (f"the smallest of its family that fits is {fitting} ({instance_memory_gib(fitting)} GiB): set {setting}"
              if fitting else f"no instance of its family fits: choose a larger family (ml.r5) in {setting}")
    return (f"{step} would need about {_gib(needed)} for {size.described()}, more than the {USABLE_SHARE:.0%} of "
            f"{instance_type}'s {memory} GiB a job can use ({_gib(available)}); {remedy}")


def memory_refusals(instance_types: dict[str, str], size: InputSize,
                    settings_names: dict[str, str]) -> list[str]:
    """The refusal of every sized step whose job will not fit its instance type, in the steps' order."""
    found = []
    for step in SIZED_STEPS:
        refusal = memory_refusal(step, instance_types[step], size, settings_names[step])
        if refusal:
            found.append(refusal)
    return found
