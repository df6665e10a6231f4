"""Several Spark steps in one spark-submit, each through its own ``main(argv)``: the JVM and the Spark
session start once for all of them (a start costs the tests' 2 cores 10-40 s), as each step's job
would run it alone. Usage: spark-submit ... run_steps.py '[["path/to/step.py", ["--arg", ...], BASE], ...]'
where BASE, if not null, is the step's SAGEMAKER_BASE_DIR (where it writes a failure's reason). With
``--keep-going`` every step runs whatever the others' exit codes; otherwise the first failure ends it.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time


def main(argv: list[str]) -> int:
    keep_going = "--keep-going" in argv
    failed = 0
    for script, arguments, base_dir in json.loads(argv[-1]):
        os.environ.pop("SAGEMAKER_BASE_DIR", None)
        if base_dir is not None:
            os.environ["SAGEMAKER_BASE_DIR"] = base_dir
        started = time.monotonic()
        step = runpy.run_path(script)  # not as __main__: defines main(), runs nothing
        code = step["main"](arguments)
        print(f"step {script} took {time.monotonic() - started:.1f} s, exited {code}", flush=True)  # code last
        failed = failed or int(code)
        if code and not keep_going:
            break
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
