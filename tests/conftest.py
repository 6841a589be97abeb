"""Shared fixtures. One local Ray instance serves the whole test session (Ray takes seconds to start)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """Local Ray with 2 CPUs and no GPUs, started once; every Ray or Serve test shares it."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            num_gpus=0,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
        )
    yield ray
    try:
        from ray import serve

        serve.shutdown()
    except Exception:
        pass
    ray.shutdown()


@pytest.fixture(scope="session")
def test_colorizer() -> Any:
    """The smallest untrained network: fast enough for every unit test."""
    from model import Colorizer

    return Colorizer.from_pretrained(preset="test")
