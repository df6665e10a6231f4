"""The XCom keys tasks push besides their return value: light, because the DAG files name them when the
scheduler parses them (``XComArg(check_accuracy, key=DECISION_KEY)``)."""

FAILURE_KEY = "failure"
DECISION_KEY = "decision"
RETURN_KEY = "return_value"
