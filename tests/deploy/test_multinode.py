"""deploy/multinode.sh: a head and two worker nodes started with `ray start` as separate processes on this
machine run the bulk job and the API, and everything they started is gone afterwards."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.pins import DEPLOY, ROOT

SCRIPT = DEPLOY / "multinode.sh"


def test_script_is_executable_and_valid_bash() -> None:
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    # Never a machine-wide stop: other Ray instances on the host must survive the teardown.
    assert not re.search(r"ray stop|pkill|killall", text)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_multinode_run(tmp_path: Path) -> None:
    env = {**os.environ, "COLORIZE_VENV": str(Path(sys.executable).parent.parent)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=420, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert re.search(r"CPU=2 GPU=1", out) and re.search(r"CPU=1 GPU=0", out), "three distinct nodes"
    assert "24 colorized, 0 skipped" in out and "1 failed" in out
    assert "ColorizeWorker" in out and "sim_worker_a" in out and "sim_worker_b" in out
    assert "without the API key -> 401" in out and "HTTP/1.1 200 OK" in out
    assert "Active:" in out  # ray status
    work = re.search(r"processes left under (\S+): 0", out)
    assert work, "teardown must leave no process behind"
    assert not Path(work[1]).exists()
