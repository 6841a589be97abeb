"""services.launch deploys a Serve config the way `serve run FILE` does, through Ray's private
``serve_start`` + ``ServeControllerClient.deploy_apps`` (Ray has no public Python call that deploys a
``ServeDeploySchema`` with its deployment overrides). These tests pin that private surface, so a Ray upgrade
that moves or changes it fails here, with this explanation, instead of at ``colorize serve`` time."""

from __future__ import annotations

import inspect

from ray.serve import scripts
from ray.serve._private import api
from ray.serve._private.client import ServeControllerClient
from ray.serve.schema import ServeDeploySchema

from services.launch import deploy


def test_serve_start_takes_the_config_http_options_and_proxy_location() -> None:
    params = inspect.signature(api.serve_start).parameters
    assert {"http_options", "proxy_location"} <= set(params)
    assert all(p.default is None for name, p in params.items() if name in ("http_options", "proxy_location"))


def test_the_client_deploys_a_whole_config() -> None:
    params = inspect.signature(ServeControllerClient.deploy_apps).parameters
    assert list(params)[:2] == ["self", "config"]
    assert "ServeDeploySchema" in str(params["config"].annotation)


def test_serve_run_file_uses_the_same_private_calls() -> None:
    """If `serve run FILE` stops using these, Ray has moved on: follow it (or a public API it gained)."""
    source = inspect.getsource(scripts)
    assert "_private_api.serve_start(" in source
    assert "client.deploy_apps(config" in source


def test_launch_uses_exactly_these_calls() -> None:
    source = inspect.getsource(deploy)
    assert "from ray.serve._private.api import serve_start" in source
    assert "client.deploy_apps(config)" in source
    assert ServeDeploySchema.__name__ in inspect.signature(deploy).parameters["config"].annotation
