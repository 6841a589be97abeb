"""One real Serve instance on loopback for every API test, started once per session on the shared Ray.

It runs ``deploy/serve.yaml`` itself, changed only where a test machine needs it (the untrained ``test``
network, tiny CPU reservations so Ray Data tests sharing the 2-CPU Ray are never starved, small limits),
plus a second application ``/tight`` with an API key and a one-slot model queue for overload tests.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

API_KEY = "test-secret-key"
MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_PIXELS = 6_000_000
PIXEL_BUDGET = 8_000_000  # per request (image + style); above MAX_PIXELS so both limits can be seen


@dataclass(frozen=True)
class ServeEndpoints:
    base: str  # the main application: no API key, batching on
    tight: str  # API key required; the model holds one request for 1.5 s and queues one more; admits two
    api_key: str = API_KEY


# The tight app's admission: two colorizations at once (the model's one slot and one queue place; a generous
# budget, so the depth bound decides deterministically): a third is refused by admission, never by Serve.
TIGHT_SETTINGS = {"api_key": API_KEY, "max_queue_depth": 2, "initial_service_time_s": 1.5, "latency_budget_s": 10.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _deployment(app: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in app["deployments"] if d["name"] == name)


def serve_test_config(port: int) -> Any:
    """``deploy/serve.yaml`` as tests run it (see the module docstring)."""
    from services.launch import load_config

    config = load_config().model_dump(exclude_unset=True)
    config["http_options"] = {**config.get("http_options", {}), "host": "127.0.0.1", "port": port}
    main = config["applications"][0]
    main["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": "1", "COLORIZE_API_KEY": ""}}
    main["args"] = {
        "model": {"preset": "test", "device": "cpu", "torch_threads": 1},
        "settings": {
            "max_body_bytes": MAX_BODY_BYTES,
            "max_pixels": MAX_PIXELS,
            "pixel_budget": PIXEL_BUDGET,
            "max_side_limit": 4096,
            # The main app's tests are about answers, 32 at a time: only the depth bound (32) limits them.
            "latency_budget_s": 60.0,
        },
    }
    ingress, model = _deployment(main, "ColorizeIngress"), _deployment(main, "ColorizerModel")
    ingress["ray_actor_options"] = {"num_cpus": 0}
    ingress["autoscaling_config"] = {**ingress["autoscaling_config"], "min_replicas": 1, "max_replicas": 1}
    model["ray_actor_options"] = {"num_cpus": 0, "num_gpus": 0}
    model["user_config"] = {"max_batch_size": 8, "batch_wait_timeout_s": 0.01}

    tight = {
        **main,
        "name": "tight",
        "route_prefix": "/tight",
        "args": {**main["args"], "settings": {**main["args"]["settings"], **TIGHT_SETTINGS}},
        "deployments": [
            {**ingress},
            {
                **model,
                "max_ongoing_requests": 1,
                "max_queued_requests": 2,  # >= max_queue_depth of admission, which refuses first
                # A batch of 2 can never fill with one slot, so every request waits the full 1.5 s.
                "user_config": {"max_batch_size": 2, "batch_wait_timeout_s": 1.5},
            },
        ],
    }
    config["applications"] = [main, tight]
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema.model_validate(config)


@pytest.fixture(scope="session")
def serve_app(ray_session: Any) -> Iterator[ServeEndpoints]:
    from ray import serve

    from services.launch import deploy

    port = free_port()
    deploy(serve_test_config(port), timeout_s=240)
    try:
        yield ServeEndpoints(base=f"http://127.0.0.1:{port}", tight=f"http://127.0.0.1:{port}/tight")
    finally:
        serve.shutdown()


@pytest.fixture(scope="session")
def client(serve_app: ServeEndpoints) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=serve_app.base, timeout=60.0) as c:
        yield c
