"""Every command the README names answers ``--help``: a command that disappears from the CLI
(as ``features`` and ``replay`` once did) fails here, not in a user's first session."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import app

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def readme_cli_commands() -> list[str]:
    """First word of each row of the README's command table (``| `name …` | … |``)."""
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z][a-z-]*)[ `]", section, flags=re.MULTILINE)


def readme_cli_subcommands() -> list[tuple[str, str]]:
    """``(group, command)`` of rows naming a sub-command (``| `models list …` | … |``)."""
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z][a-z-]*) ([a-z][a-z-]*)[ `]", section, flags=re.MULTILINE)


def readme_make_targets() -> list[str]:
    return sorted(set(re.findall(r"(?:^|`)make ([a-z][a-z-]*)", README, flags=re.MULTILINE)))


def readme_scripts() -> list[str]:
    return sorted(set(re.findall(r"\.venv/bin/python (tests/benchmarks/\S+\.py)", README)))


def test_the_readme_names_the_commands_we_expect() -> None:
    # Guards the parsing below: an empty list would make the other tests vacuous.
    assert {"install", "up", "worker", "replay", "features", "evaluate", "demo", "models"} <= set(
        readme_cli_commands()
    )
    assert {("models", "list"), ("models", "promote"), ("models", "rollback")} <= set(
        readme_cli_subcommands()
    )
    assert {"demo", "test"} <= set(readme_make_targets())
    assert len(readme_scripts()) >= 3


@pytest.mark.parametrize("command", readme_cli_commands())
def test_every_readme_command_answers_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"anomstream {command}" in " ".join(result.output.split())


@pytest.mark.parametrize(("group", "command"), readme_cli_subcommands())
def test_every_readme_subcommand_answers_help(group: str, command: str) -> None:
    result = CliRunner().invoke(app, [group, command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"anomstream {group} {command}" in " ".join(result.output.split())


@pytest.mark.parametrize("target", readme_make_targets())
def test_every_readme_make_target_exists(target: str) -> None:
    # -n: print the recipe without running it; an unknown target exits 2.
    done = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("script", readme_scripts())
def test_every_readme_benchmark_script_answers_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
