"""docs/training.md's cluster examples: the SLURM script parses, the Kubernetes Job is an
Indexed Job, and both run `avsync data prepare --shard` with the scheduler's 0-based index."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def _block(name: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"<!-- example: {name} .*?-->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"no '{name}' example in {DOC}"
    return match.group(1)


def test_slurm_array_script_parses_and_runs_one_part_per_task() -> None:
    script = _block("slurm")
    done = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    parts = int(re.search(r"--array=0-(\d+)", script).group(1)) + 1
    assert f'--shard "$SLURM_ARRAY_TASK_ID/{parts}"' in script


def test_kubernetes_indexed_job_runs_one_part_per_index() -> None:
    job = yaml.safe_load(_block("kubernetes"))
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    command = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    assert f'--shard "$JOB_COMPLETION_INDEX/{spec["completions"]}"' in command
