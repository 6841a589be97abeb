"""``colorize serve [--config FILE] [--host 127.0.0.1] [--port 8000]``: run the colorization API locally on Ray
Serve (the web page at ``/``, the API under ``/v1``) until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the colorization API and web page (Ray Serve) until Ctrl-C")
    p.add_argument("--config", type=Path, help="Serve config file (default: deploy/serve.yaml of this project)")
    p.add_argument("--host", help="address to listen on (default: the config's, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: the config's, 8000)")
    p.add_argument("--weights", help="checkpoint to serve instead of the config's")
    p.add_argument("--preset", help="serve an untrained network of this preset instead of the config's model")
    p.add_argument("--device", help="auto | cpu | cuda (default: the config's)")
    p.add_argument("--address", help="Ray cluster to deploy on (default: start a local one)")
    p.set_defaults(func=run)


def _override_model(config: Any, args: argparse.Namespace) -> Any:
    changes = {k: v for k, v in {"weights": args.weights, "preset": args.preset, "device": args.device}.items() if v}
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

    from services.launch import DEFAULT_CONFIG, deploy, load_config, with_http

    path = args.config or DEFAULT_CONFIG
    try:
        config = _override_model(with_http(load_config(path), args.host, args.port), args)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"error: config {path}: {exc}", file=sys.stderr)
        return 2
    ray.init(address=args.address, include_dashboard=False, log_to_driver=True, namespace="serve")
    try:
        deploy(config)
        http = config.http_options
        host = "127.0.0.1" if http.host in {"0.0.0.0", "::"} else http.host
        route = config.applications[0].route_prefix or "/"
        print(f"Colorization API ready: http://{host}:{http.port}{route}  (docs: {route.rstrip('/')}/docs)")
        print("Press Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        serve.shutdown()
        ray.shutdown()
