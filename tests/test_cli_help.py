"""Every flag of every sub-command says what it is for (`--help` is the newcomer's first page)."""

import argparse

from egolego.cli import build_parser


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    """(name, parser) of every leaf sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix.strip(), parser
    for s in subs:
        for name, p in s.choices.items():
            yield from _commands(p, f"{prefix} {name}")


def test_every_flag_has_help():
    leaves = list(_commands(build_parser()))
    assert len(leaves) >= 20  # every sub-command is reached
    silent = [f"{name} {a.option_strings[0] if a.option_strings else a.dest}" for name, p in leaves
              for a in p._actions if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not silent, f"flags without help text: {silent}"
