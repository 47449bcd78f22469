"""Fixtures of the infrastructure checks; the helpers live in infra_checks.py."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from infra_checks import REPO, TERRAFORM


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "infra: offline infrastructure checks (select with -m infra)")


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    """A throw-away copy of terraform/ (and the topology file it reads) to plant violations in."""
    shutil.copytree(TERRAFORM, tmp_path / "terraform", ignore=shutil.ignore_patterns("tests", ".terraform*"))
    (tmp_path / "libs" / "sfpipe").mkdir(parents=True)
    shutil.copy(REPO / "libs" / "sfpipe" / "topology.yaml", tmp_path / "libs" / "sfpipe" / "topology.yaml")
    return tmp_path / "terraform"
