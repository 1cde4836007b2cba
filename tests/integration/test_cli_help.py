"""Help (issue 16, point 16): plain text, no reStructuredText, and a one-line description for every
command, key store action and option. (Nested fields in `status`: test_cli_local.py.)"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from pynamodb_stash._cli import build_parser, main

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("pynamodb-stash"))
RST = ("``", ":param", ":class:", ":func:", ":meth:", ":raises", ":ivar", ".. ", "::")


Named = Tuple[Tuple[str, ...], argparse.ArgumentParser]


def parsers(parser: argparse.ArgumentParser, path: Tuple[str, ...] = ()) -> Iterator[Named]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


ALL = list(parsers(build_parser()))


def test_every_command_and_action_is_reached() -> None:
    names = {path for path, _ in ALL}
    assert {("keygen",), ("hmac",), ("status",), ("keystore", "destroy-keyset"), ("keystore", "rotate")} <= names
    assert len(names) == 1 + 8 + 11  # the program, its commands, the key store's actions


@pytest.mark.parametrize(("path", "parser"), ALL, ids=lambda value: " ".join(value) if isinstance(value, tuple) else "")
def test_help_is_plain_text_with_a_line_for_everything(
    path: Tuple[str, ...], parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main([*path, "--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert not [marker for marker in RST if marker in text], text
    assert parser.description and "\n" not in parser.description.strip()
    undocumented: List[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest for choice in action._choices_actions}
            undocumented += [f"command {name}" for name in action.choices if name not in described]
            undocumented += [f"command {choice.dest}" for choice in action._choices_actions if not choice.help]
        elif not action.help or action.help == argparse.SUPPRESS or "\n" in action.help:
            undocumented.append("/".join(action.option_strings) or action.dest)
    assert undocumented == []


def test_the_console_script_prints_help() -> None:
    result = subprocess.run([CONSOLE_SCRIPT, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: pynamodb-stash" in result.stdout
    assert "keygen" in result.stdout and "destroy" not in result.stdout  # actions are one level down
    assert not [marker for marker in RST if marker in result.stdout]
