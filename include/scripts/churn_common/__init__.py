"""Code shared by the container scripts, shipped beside them (processing code input, training
``sourcedir.tar.gz`` and the model's ``code/`` folder). It imports nothing from Airflow or from the
DAG-side package.

    container       the SageMaker container contract: paths, failure reporting, all-or-nothing outputs
    data_contract   the schema: which columns are id, target and features; raw records -> features
    schema_rules    the contract's rules that need no data (schema shape, header), which the DAG side
                    also applies before any job, loading this one file
    tables          reading the customer table robustly in batches, writing and reading the splits
    hashing         column hashes with numpy: CRC-32 for the split, 64-bit row hashes for duplicates
    split           the split by that hash (both engines): fractions as cut points, the scripts' arguments
    metrics         the classification metrics every step reports, and their spread
    champion_scores a champion's (label, probability) pairs, scored by the other engine's image, and
                    when they describe the same customers as the challenger's
    evaluation_arguments  the arguments both engines' evaluations take (champion, baseline, outputs)
    defaults        the model's default hyperparameters and the metric names (defaults.json)
    contract        what the DAG side must agree on (contract.json, which it reads too): PSI levels,
                    the bad-input reason, content types, output names, the keys of the steps' files
"""
