"""The Python callables behind the DAG's non-job tasks, one module per task. Each reads the settings
once, reads its inputs from upstream payloads (never by recomputing names), and fails with one clear
message rather than a traceback where input is at fault.

    staging           stage_inputs: the run's key, code, input, schema and image, before any paid job
    extracted_input   stage_inputs' side of extract_customers: its Parquet as the input, header-checked
    gating            check_accuracy: the quality gate, and the branch it chooses
    registration      register_model, and the callback that reports when registering itself fails
    notification      notify_failure: tell the team once why a run registered nothing
"""
