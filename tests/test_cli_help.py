"""Every command's --help fits 80 columns with a readable description column and shows its defaults."""

from __future__ import annotations

import re

import pytest
import typer

from landscape.cli.app import register

COMMANDS = sorted(typer.main.get_command(register()).commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_fits_80_columns_without_a_squeezed_column(cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    res = cli(command, "--help")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert max(map(len, lines)) <= 80
    rows = [line for line in lines if re.match(r"│ (-\w|--[\w-]+)", line)]
    for line in rows:  # where the description starts: after names and metavar, at most column 44
        first = re.match(r"│ .*?(?:<[^>]+>|[A-Z][A-Z.=_>0-9]*)(?: \[[^\]]*\])? +", line)
        assert first and first.end() <= 44, line


def test_study_help_shows_every_default(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = cli("study", "--help").out
    for flag, default in [("--seeds", "3; 2 with --quick"), ("--epochs", "30; 4 with --quick"),
                          ("--img-size", "64; 32 with --quick"), ("--batch-size", "32"),
                          ("--m", "128 (32 with --quick), at most the training images")]:
        row = next(line for line in text.splitlines() if re.match(rf"│ {flag} ", line))
        assert f"[default: ({default})]" in row


def _commands(group, path=()):
    """(path, command) of every registered command, sub-command and command group below ``group``."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


ALL_COMMANDS = list(_commands(typer.main.get_command(register())))


@pytest.mark.parametrize("path,command", ALL_COMMANDS, ids=[" ".join(path) for path, _ in ALL_COMMANDS])
def test_examples_fit_80_columns_without_wrapping(cli, monkeypatch, path, command):
    examples = [line.strip() for line in (command.help or "").partition("Examples:")[2].splitlines() if line.strip()]
    assert [line for line in examples if len(line) > 76] == []
    monkeypatch.setenv("COLUMNS", "80")
    res = cli(*path, "--help")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert [line for line in lines if len(line) > 80] == []
    shown = {line.strip() for line in lines}
    assert [line for line in examples if line not in shown] == []  # each example whole on one line: none wrapped
