import subprocess
import sys

from click.testing import CliRunner

from sfpipe.cli import main


def test_help_lists_subcommands(sfpipe_env):
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "config" in result.output
    assert "Usage: main" in result.output or "Usage:" in result.output


def test_config_lists_settings(sfpipe_env):
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0
    assert "SFPIPE_LAKE_BUCKET" in result.output


def test_bad_setting_exits_non_zero_with_one_line(sfpipe_env):
    proc = subprocess.run(
        [sys.executable, "-m", "sfpipe", "config"],
        capture_output=True,
        text=True,
        env={"SFPIPE_MODE": "nowhere", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: invalid configuration: SFPIPE_MODE='nowhere' is invalid: Input should be 'local' or 'gcp'"
    ]


def test_readme_configuration_table_is_current():
    from pathlib import Path

    from sfpipe.cli import settings_markdown

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    block = readme.split("<!-- config:start -->", 1)[1].split("<!-- config:end -->", 1)[0].strip()
    assert block == settings_markdown(), "README's configuration table is stale: paste `sfpipe config --markdown` between the config markers"
