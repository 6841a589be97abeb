"""``colorize serve [--config FILE] [--host 127.0.0.1] [--port 8000]``: run the colorization API locally on Ray
Serve (the web page at ``/``, the API under ``/v1``) until Ctrl-C or SIGTERM.

Stopping is graceful either way: new colorizations are refused (JSON 503) while those in flight finish, for
at most ``--grace`` seconds; then Serve and Ray shut down and the exit status is 0."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the colorization API and web page (Ray Serve) until Ctrl-C or SIGTERM")
    p.add_argument("--config", type=Path, help="Serve config file (default: deploy/serve.yaml of this project)")
    p.add_argument("--host", help="address to listen on (default: the config's, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: the config's, 8000)")
    p.add_argument("--weights", help="checkpoint to serve instead of the config's")
    p.add_argument("--preset", help="serve an untrained network of this preset instead of the config's model")
    p.add_argument("--device", help="auto | cpu | cuda (default: the config's)")
    p.add_argument("--backend", choices=["torch", "onnxruntime"], help="what runs the network (default: the config's)")
    p.add_argument("--address", help="Ray cluster to deploy on (default: start a local one)")
    p.add_argument(
        "--proxy",
        choices=["haproxy", "python"],
        default="haproxy",
        help="HTTP ingress of a local Ray instance: HAProxy (default; measured faster at 64 clients, BENCHMARKS.md) "
        "or Serve's Python proxy. On a cluster, the cluster's own setting (RAY_SERVE_ENABLE_HA_PROXY) decides",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="on SIGTERM/Ctrl-C, seconds to let in-flight requests finish while refusing new ones (default: 30)",
    )
    p.set_defaults(func=run)


def _override_model(config: Any, args: argparse.Namespace) -> Any:
    given = {"weights": args.weights, "preset": args.preset, "device": args.device, "backend": args.backend}
    changes = {k: v for k, v in given.items() if v}
    if not changes:
        return config
    apps = []
    for app in config.applications:
        app_args = dict(app.args or {})
        app_args["model"] = {**dict(app_args.get("model") or {}), **changes}
        apps.append(app.model_copy(update={"args": app_args}))
    return config.model_copy(update={"applications": apps})


def run(args: argparse.Namespace) -> int:
    import ray
    from ray import serve

    from colorize.signals import stop_signals
    from services.launch import DEFAULT_CONFIG, deploy, load_config, with_http

    path = args.config or DEFAULT_CONFIG
    try:
        config = _override_model(with_http(load_config(path), args.host, args.port), args)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"error: config {path}: {exc}", file=sys.stderr)
        return 2
    if args.address is None and "RAY_SERVE_ENABLE_HA_PROXY" not in os.environ:  # read when Ray starts Serve
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1" if args.proxy == "haproxy" else "0"
    ray.init(address=args.address, include_dashboard=False, log_to_driver=True, namespace="serve")
    try:
        with stop_signals(interrupt=False) as stop:
            deploy(config)
            http = config.http_options
            host = "127.0.0.1" if http.host in {"0.0.0.0", "::"} else http.host
            route = config.applications[0].route_prefix or "/"
            print(f"Colorization API ready: http://{host}:{http.port}{route}  (docs: {route.rstrip('/')}/docs)")
            print("Press Ctrl-C to stop.", flush=True)
            while not stop.wait(1.0):
                pass
            _drain(config, args.grace)
        return 0
    except KeyboardInterrupt:  # a second signal, or one during start-up
        print("stopping now", file=sys.stderr)
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        serve.shutdown()
        ray.shutdown()


def _drain(config: Any, grace_s: float) -> None:
    """Refuse new colorizations and let those in flight finish (at most ``grace_s``)."""
    from services.lifecycle import drain_applications

    print(f"stopping: finishing requests in flight (at most {grace_s:g} s), refusing new ones", file=sys.stderr)
    result = drain_applications([app.name for app in config.applications], grace_s)
    left = sum(result.in_flight.values())
    note = "all finished" if result.complete else f"{left} still in flight after the grace period"
    print(f"drained in {result.seconds:.1f} s: {note}", file=sys.stderr, flush=True)
