"""What the repository pins, read from the files that pin it (pyproject.toml, requirements.lock)."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@cache
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@cache
def lock() -> dict[str, str]:
    """``{package (lower case): version}`` from requirements.lock."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def ray_pin() -> str:
    """The exact Ray version pinned in pyproject.toml (which must agree with the lock)."""
    for dep in pyproject()["project"]["dependencies"]:
        match = re.match(r"^ray(\[[^\]]*\])?==(\S+)$", dep.replace(" ", ""))
        if match:
            return match[2]
    raise AssertionError("pyproject.toml pins no exact ray version")


def project_version() -> str:
    return pyproject()["project"]["version"]


def project_image_tag() -> str:
    """Tag of the image built from deploy/Dockerfile: the project's version and the Ray version inside."""
    return f"{project_version()}-ray{ray_pin()}"
