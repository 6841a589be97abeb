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


@pytest.mark.slow
def test_colorize_serve_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """What Kubernetes, systemd and Docker send: requests in flight are answered, late ones get a JSON 503,
    and the process exits 0 (it used to abort with a native stack trace, exit 134)."""
    import asyncio

    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in {"COLORIZE_API_KEY", "RAY_ADDRESS"}}
    env["OMP_NUM_THREADS"] = "1"
    command = ["colorize", "serve", "--preset", "test", "--device", "cpu", "--port", str(port), "--grace", "20"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Colorization API ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/v1/colorize"
        body = imagegen.grey_jpeg(640, 480)

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as client:
                in_flight = [asyncio.create_task(client.post(url, content=body)) for _ in range(12)]
                await asyncio.sleep(0.3)
                proc.send_signal(signal.SIGTERM)
                return await asyncio.gather(*in_flight)

        answers = asyncio.run(burst())
        for r in answers:  # nothing dropped: an image, or a JSON refusal with Retry-After
            assert r.status_code in {200, 503}, r.text
            if r.status_code == 503:
                assert r.json()["error"] in {"ShuttingDownError", "OverloadedError"} and r.headers["retry-after"]
        assert any(r.status_code == 200 for r in answers)
        assert proc.wait(timeout=90) == 0, log.read_text()[-3000:]
        assert "drained in" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
