"""`terraform fmt -check` over every module, example and environment, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_checks import TERRAFORM, fmt_unformatted

pytestmark = pytest.mark.infra


def test_every_terraform_file_is_formatted() -> None:
    assert list(TERRAFORM.rglob("*.tf")), "no Terraform files found"
    assert fmt_unformatted(TERRAFORM) == []


def test_a_misformatted_file_is_caught(terraform_copy: Path) -> None:
    target = terraform_copy / "modules" / "storage" / "outputs.tf"
    target.write_text(target.read_text().replace("  value       =", "  value =", 1))

    listed = fmt_unformatted(terraform_copy)

    assert [Path(p).name for p in listed] == ["outputs.tf"]
    assert "storage" in listed[0]
