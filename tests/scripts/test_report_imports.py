"""The report package in a fresh process: importing it stays cheap, and it renders from wherever its
folder is copied (as the MWAA bundle copies ``include/churn_pipeline/``), with the template beside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import churn_pipeline

PACKAGE = Path(churn_pipeline.__file__).parent
HEAVY_LIBRARIES = {"matplotlib", "numpy", "pandas", "PIL", "sklearn", "scipy"}


def run_python(code: str, *, path: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=cwd,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    assert completed.returncode == 0, completed.stderr
    return completed


def test_importing_the_renderer_loads_no_plotting_or_data_library(tmp_path: Path) -> None:
    probe = ("import json, sys; import churn_pipeline.report.html; "
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(json.loads(run_python(probe, path=sys.path, cwd=tmp_path).stdout))
    assert "churn_pipeline" in loaded  # the probe did import the renderer
    assert not loaded & HEAVY_LIBRARIES


def test_the_report_renders_from_a_copy_of_the_package_folder_with_its_own_template(tmp_path: Path) -> None:
    copy = tmp_path / "bundle" / "churn_pipeline"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # the bundle ships scripts/ beside the package: the shared contract (PSI levels) is read from there
    shutil.copytree(PACKAGE.parent / "scripts", copy.parent / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    # marked, so that the page shows which template drew it: the copy's, not the source tree's
    template = copy / "report" / "templates" / "report.html.j2"
    template.write_text(template.read_text().replace("<title>", "<title>from the copy: ", 1))
    render = ("import churn_pipeline.report.html as html; "
              "inputs = html.ReportInputs.from_json(run_key='K', run_id='r', dag_id='d', backend='local', "
              "decision=b'{\"passed\": true}', evaluation=b'{}'); "
              "print(html.__file__); print(html.render_report(inputs).decode())")
    module, page = run_python(render, path=[str(copy.parent), *sys.path], cwd=tmp_path).stdout.split("\n", 1)
    assert Path(module).is_relative_to(copy)
    assert "<title>from the copy: Run K: passed, registered for approval</title>" in page
    assert 'http-equiv="Content-Security-Policy"' in page
