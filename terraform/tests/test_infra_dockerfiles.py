"""hadolint on every Dockerfile in the repository, and sfpipe's own container rules on the
service images: slim Python 3.11, non-root, locked install, only the service's packages."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from infra_checks import REPO, repo_dockerfiles, run_hadolint

pytestmark = pytest.mark.infra

SERVICES = ("extractor", "loader", "transform", "quality", "cdc-publisher", "dashboard")


def convention_errors(dockerfile: Path, service: str) -> list[str]:
    """What a service Dockerfile gets wrong against the container conventions."""
    text = dockerfile.read_text()
    package = "sfpipe_" + service.replace("-", "_")
    errors = []
    images = re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    if not images or not re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", images[0]):
        errors.append("base image is not a slim Python 3.11")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        errors.append("the final stage does not run as a non-root user")
    if not re.search(r"uv sync --frozen --no-dev", text):
        errors.append("dependencies are not installed from uv.lock with uv sync --frozen --no-dev")
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, re.M)
    allowed = {"pyproject.toml", "libs/sfpipe", f"services/{service}/{package}"}
    extra = sorted(set(copied) - allowed)
    if extra:
        errors.append(f"copies more than the service needs: {extra}")
    if f'ENTRYPOINT ["python", "-m", "{package}"]' not in text:
        errors.append(f"does not run python -m {package}")
    return errors


def test_every_dockerfile_passes_hadolint() -> None:
    dockerfiles = repo_dockerfiles()
    for service in SERVICES:
        assert REPO / "services" / service / "Dockerfile" in dockerfiles

    findings = {
        str(d.relative_to(REPO)): [f"{f['code']} line {f['line']}: {f['message']}" for f in run_hadolint(d)]
        for d in dockerfiles
    }

    assert {k: v for k, v in findings.items() if v} == {}


@pytest.mark.parametrize("service", SERVICES)
def test_service_dockerfile_follows_the_conventions(service: str) -> None:
    assert convention_errors(REPO / "services" / service / "Dockerfile", service) == []


def test_a_bad_dockerfile_is_caught_by_hadolint(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n")

    codes = {f["code"] for f in run_hadolint(bad)}

    assert {"DL3007", "DL3008", "DL3009", "DL3025"} <= codes


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("USER 10001:10001\n", "", "non-root"),
        ("uv sync --frozen --no-dev", "uv sync", "uv.lock"),
        ("python:3.11-slim-bookworm", "python:3.11-bookworm", "slim Python 3.11"),
        (
            "COPY libs/sfpipe /app/sfpipe\n",
            "COPY libs/sfpipe /app/sfpipe\nCOPY services /app/services\n",
            "copies more",
        ),
    ],
)
def test_a_convention_violation_is_caught(tmp_path: Path, old: str, new: str, error: str) -> None:
    planted = tmp_path / "Dockerfile"
    shutil.copy(REPO / "services" / "loader" / "Dockerfile", planted)
    text = planted.read_text()
    assert old in text
    planted.write_text(text.replace(old, new))

    errors = convention_errors(planted, "loader")

    assert any(error in e for e in errors), errors
