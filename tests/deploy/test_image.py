"""deploy/Dockerfile and .dockerignore, checked statically (no Docker engine needed): the image copies what
it installs, ships the checkpoint, runs as the base image's non-root user and bakes in no secret."""

from __future__ import annotations

import fnmatch
import re

import pytest

from tests.deploy.pins import DEPLOY, ROOT, pyproject

CHECKPOINT = "model/weights/default.safetensors"
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AWS_)", re.I)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [ln for ln in (DEPLOY / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def copy_sources() -> list[str]:
    """Sources of every COPY from the build context (not --from=stage)."""
    sources = []
    for word, rest in instructions():
        if word != "COPY" or "--from=" in rest:
            continue
        parts = [p for p in rest.split() if not p.startswith("--")]
        sources += parts[:-1]
    return sources


def dockerignore_excludes(path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents decides."""
    candidates = [path] + ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            excluded = not negate
    return excluded


def test_the_image_copies_and_ships_the_checkpoint() -> None:
    assert CHECKPOINT in copy_sources(), "the Dockerfile must COPY the checkpoint explicitly"
    # ...and the wheel it installs carries it as package data.
    package_data = pyproject()["tool"]["setuptools"]["package-data"]["model"]
    assert any(fnmatch.fnmatchcase("weights/default.safetensors", p) for p in package_data)
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert "assert c.trained" in runs, "the build must fail when the shipped weights do not load"


def test_every_copied_path_exists_and_passes_the_dockerignore() -> None:
    for source in copy_sources():
        path = source.rstrip("/")
        assert (ROOT / path).exists(), f"COPY {source}: no such path in the repository"
        assert not dockerignore_excludes(path), f"COPY {source}: excluded by .dockerignore"
        if (ROOT / path).is_dir():
            for file in (ROOT / path).rglob("*.py"):
                if "__pycache__" not in file.parts:
                    assert not dockerignore_excludes(str(file.relative_to(ROOT)))


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".git/config",
        ".venv/bin/python",
        ".aws/credentials",
        "id_rsa",
        "key.pem",
        "runs/checkpoint.safetensors",
        "data/photo.jpg",
        "tests/conftest.py",
        "model/__pycache__/predictor.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
    ],
)
def test_dockerignore_keeps_secrets_and_clutter_out_of_the_context(path: str) -> None:
    assert dockerignore_excludes(path)


def test_no_secret_is_baked_into_the_image() -> None:
    for word, rest in instructions():
        if word in {"ENV", "ARG"}:
            names = re.findall(r"(\w+)=", rest) or [rest.split()[0]]
            for name in names:
                assert not SECRET_NAME.search(name), f"{word} {name}: secrets arrive at run time, never in the image"
        if word in {"RUN", "COPY", "ADD"}:
            assert not re.search(r"\.aws|credentials|\.env\b|auth_token|id_rsa", rest), f"{word} {rest}"
    assert not any(word == "ADD" for word, _ in instructions()), "COPY, not ADD (no remote fetches, no tar magic)"


def test_runs_as_the_base_images_non_root_user() -> None:
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    for word, rest in instructions():
        if word == "COPY":
            assert "--chown=" in rest and "root" not in rest, f"COPY {rest}: files must belong to the user"


def test_the_runtime_stage_installs_a_wheel_not_the_source_tree() -> None:
    """The project is built into a wheel in a first stage; the runtime stage installs only that wheel (so the
    package, checkpoint included, is what runs, and no source tree shadows it)."""
    steps = instructions()
    froms = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    assert len(froms) == 2 and steps[froms[0]][1].endswith(" AS build")
    runtime = steps[froms[1] :]
    copies = [rest for word, rest in runtime if word == "COPY"]
    assert any("--from=build" in c for c in copies)
    from_context = [src for c in copies if "--from=" not in c for src in c.split()[1:-1]]
    assert from_context == ["deploy/serve.yaml", "deploy/serve.gpu.yaml"], from_context
    assert any(word == "RUN" and ".whl" in rest for word, rest in runtime)
