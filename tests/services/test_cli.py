"""``colorize serve``: option parsing, and one real run that serves until Ctrl-C and then stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from colorize.cli import build_parser
from colorize.commands.serve import _override_model
from services.launch import load_config
from tests import imagegen
from tests.services.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_serve_options() -> None:
    args = build_parser().parse_args(["serve", "--config", "x.yaml", "--host", "0.0.0.0", "--port", "9000"])
    assert (str(args.config), args.host, args.port) == ("x.yaml", "0.0.0.0", 9000)
    assert args.func.__module__ == "colorize.commands.serve"
    defaults = build_parser().parse_args(["serve"])
    assert (defaults.config, defaults.host, defaults.port) == (None, None, None)  # the config file decides


def test_model_options_override_the_config_args() -> None:
    args = build_parser().parse_args(["serve", "--preset", "test", "--device", "cpu"])
    config = _override_model(load_config(), args)
    assert config.applications[0].args["model"] == {"device": "cpu", "preset": "test"}
    untouched = _override_model(load_config(), build_parser().parse_args(["serve"]))
    assert untouched.applications[0].args["model"] == {"device": "auto"}


@pytest.mark.slow
def test_colorize_serve_runs_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("COLORIZE_API_KEY", None)
    env.pop("RAY_ADDRESS", None)  # its own local Ray, never the test session's
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "colorize", "serve", "--preset", "test", "--device", "cpu", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Colorization API ready" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        base = f"http://127.0.0.1:{port}"
        assert f"ready: {base}/" in log.read_text()
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
        r = httpx.post(f"{base}/v1/colorize", content=imagegen.grey_jpeg(40, 30), timeout=60)
        assert r.status_code == 200 and r.headers["x-model"] == "test (untrained)"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0, log.read_text()[-3000:]
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{base}/healthz", timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
