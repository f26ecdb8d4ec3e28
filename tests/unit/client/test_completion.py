"""Completion scripts are written from the parser: every command and flag is in them."""

from __future__ import annotations

from envd.client.completion import commands, completion_script, top_options
from envd.client.parser import COMMANDS, build_parser


def test_every_command_and_its_flags_are_completed() -> None:
    parser = build_parser()
    table = {c.name: c for c in commands(parser)}
    assert list(table) == list(COMMANDS)
    assert {"--no-archives", "--force", "--json", "--home", "-q"} <= set(table["resolve"].options)
    assert table["completion"].choices == ("bash", "zsh", "fish")
    assert {"--version", "--coordinator", "--home", "--json", "-v"} <= set(top_options(parser))
    for shell in ("bash", "zsh", "fish"):
        script = completion_script(shell, parser)
        assert all(name in script for name in COMMANDS), shell
        assert "no-archives" in script, shell  # (fish writes `-l no-archives`)


def test_fish_script_lines() -> None:
    script = completion_script("fish", build_parser())
    assert "complete -c envd-client -n '__fish_seen_subcommand_from resolve' -l no-archives\n" in (
        script
    )
    assert "complete -c envd-client -n '__fish_seen_subcommand_from completion' -a " in script
