"""Several Spark steps in one spark-submit, each through its own ``main(argv)``: the JVM and the Spark
session start once for all of them (a start costs the tests' 2 cores 10-20 s), as each step's job
would run it alone. Usage: spark-submit ... run_steps.py '[["path/to/step.py", ["--arg", ...]], ...]'
"""

from __future__ import annotations

import json
import runpy
import sys


def main(argv: list[str]) -> int:
    for script, arguments in json.loads(argv[0]):
        step = runpy.run_path(script)  # not as __main__: defines main(), runs nothing
        code = step["main"](arguments)
        print(f"step {script} exited {code}", flush=True)
        if code:
            return int(code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
