"""Shell completion scripts (bash, zsh, fish), written from the parser so they never drift."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

PROG = "envd-client"


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    options: tuple[str, ...]
    choices: tuple[str, ...] = ()  # values of its positional argument, if a closed set


def commands(parser: argparse.ArgumentParser) -> list[Command]:
    found = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        for name, sub in action.choices.items():
            options = tuple(o for a in sub._actions for o in a.option_strings)
            choices = tuple(
                str(c)
                for a in sub._actions
                if not a.option_strings and a.choices
                for c in a.choices
            )
            found.append(Command(name, helps.get(name, ""), options, choices))
    return found


def top_options(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    return tuple(o for a in parser._actions for o in a.option_strings)


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    table = commands(parser)
    top = top_options(parser)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](table, top)


def _bash(table: list[Command], top: tuple[str, ...]) -> str:
    cases = "\n".join(
        f"        {c.name}) opts={_quote(' '.join((*c.options, *c.choices)))} ;;" for c in table
    )
    names = " ".join(c.name for c in table)
    return f"""# bash completion for {PROG}: eval "$({PROG} completion bash)"
_envd_client() {{
    local cur cmd opts word
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    cmd=""
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in
            -*) ;;
            *) cmd="$word"; break ;;
        esac
    done
    case "$cmd" in
{cases}
        *) opts={_quote(" ".join((*top, names)))} ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    case "$cur" in -*) ;; *) [ -z "$cmd" ] || compopt -o default 2>/dev/null ;; esac
}}
complete -F _envd_client {PROG}
"""


def _zsh(table: list[Command], top: tuple[str, ...]) -> str:
    described = "\n".join(f"        {_quote(c.name + ':' + _plain(c.help))}" for c in table)
    cases = "\n".join(
        f"        {c.name}) compadd -- {' '.join(_quote(o) for o in (*c.options, *c.choices))}"
        " ; _files ;;"
        for c in table
    )
    return f"""#compdef {PROG}
# zsh completion for {PROG}: {PROG} completion zsh > "${{fpath[1]}}/_{PROG}"
_envd_client() {{
    local -a subcommands
    subcommands=(
{described}
    )
    local cmd="" word
    for word in "${{(@)words[2,CURRENT-1]}}"; do
        if [[ "$word" != -* ]]; then cmd="$word"; break; fi
    done
    if [[ -z "$cmd" ]]; then
        _describe -t commands 'envd-client command' subcommands
        compadd -- {" ".join(_quote(o) for o in top)}
        return
    fi
    case "$cmd" in
{cases}
    esac
}}
compdef _envd_client {PROG}
"""


def _fish(table: list[Command], top: tuple[str, ...]) -> str:
    names = " ".join(c.name for c in table)
    lines = [
        f"# fish completion for {PROG}: {PROG} completion fish | source",
        f"complete -c {PROG} -f",
    ]
    for c in table:
        lines.append(
            f"complete -c {PROG} -n {_quote('not __fish_seen_subcommand_from ' + names)} "
            f"-a {c.name} -d {_quote(_plain(c.help))}"
        )
    for option in top:
        lines.append(f"complete -c {PROG} {_fish_flag(option)}")
    for c in table:
        seen = _quote(f"__fish_seen_subcommand_from {c.name}")
        for option in c.options:
            lines.append(f"complete -c {PROG} -n {seen} {_fish_flag(option)}")
        if c.choices:
            lines.append(f"complete -c {PROG} -n {seen} -a {_quote(' '.join(c.choices))}")
    return "\n".join(lines) + "\n"


def _fish_flag(option: str) -> str:
    if option.startswith("--"):
        return f"-l {option[2:]}"
    return f"-s {option[1:]}"


def _plain(text: str) -> str:
    return text.replace("`", "").replace(":", " -")


def _quote(text: str) -> str:
    """Single-quoted for every one of the three shells."""
    return "'" + text.replace("'", "'\\''") + "'"
