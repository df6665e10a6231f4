"""The split both engines' preprocessing apply, and the arguments that set it: a customer's split
comes from the CRC-32 of their id (of the row's canonical text where the schema has no id), taken
modulo 100, so the fractions are whole percents and a returning customer keeps their split night
after night, whichever engine prepares the data."""

from __future__ import annotations

import argparse
from typing import Any

from churn_common import container, schema_rules

HASH_BUCKETS = 100  # crc32 % 100: split fractions are whole percents


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The split's fractions and the fewest rows a run may train on, as both scripts take them."""
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--min-rows", type=int, default=schema_rules.MIN_ROWS, help="fewest usable rows to train on")
    parser.add_argument("--min-class-rows", type=int, default=10, help="fewest usable rows of each class")


def cut_points_of(args: argparse.Namespace) -> tuple[int, int]:
    return cut_points((args.train_fraction, args.validation_fraction, args.test_fraction))


def cut_points(fractions: tuple[float, float, float]) -> tuple[int, int]:
    """The hash buckets where validation and test begin: 0.7 / 0.1 / 0.2 -> (70, 80)."""
    if any(fraction <= 0 for fraction in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise container.UsageError(f"split fractions must be positive and add up to 1, got {fractions}")
    percents = [fraction * HASH_BUCKETS for fraction in fractions]
    if any(abs(percent - round(percent)) > 1e-6 for percent in percents):
        raise container.UsageError(f"split fractions must be whole percents (the split takes the id's hash "
                                   f"modulo {HASH_BUCKETS}), got {fractions}")
    train, validation = round(percents[0]), round(percents[1])
    return train, train + validation


def described(id_column: str | None, cuts: tuple[int, int]) -> dict[str, Any]:
    """The ``split`` block of ``data_quality.json``: what the split was keyed on and where it cut."""
    return {"key": id_column or "the whole row", "rule": f"crc32 % {HASH_BUCKETS}",
            "validation_from": cuts[0], "test_from": cuts[1]}
