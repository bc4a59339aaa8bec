"""The README's commands against the CLI's parser: every flag a command shown in the README's code blocks uses must be
one that sub-command accepts, and a number written as the default in a usage line (``[--flag VALUE]``) must be the
parser's default, or the tiny preset's value of the config key its help names as the default. The README's CLI
reference had drifted (flags missing, defaults of an older preset); this keeps it honest without running any command."""

import argparse
import re
from pathlib import Path

import pytest

from egolego import config
from egolego.cli import build_parser

README = Path(__file__).parents[1] / "README.md"
# a command starts its line, maybe after a prompt or environment variables: "HF_HUB_OFFLINE=1 egolego eval ..."
COMMAND = re.compile(r"(?:^|(?<=-m ))(?:\$ )?(?:[A-Z_]+=\S* )*egolego ((?:[a-z][a-z0-9-]*)(?: [a-z][a-z0-9-]*)?)")
INLINE = re.compile(r"`((?:accelerate launch [^`]*?-m egolego\.cli|egolego) [^`]+)`")  # a command in a code span
FLAG = re.compile(r"--(?:\[no-\])?[a-z][a-z0-9-]*")
DEFAULT = re.compile(r"\[(--[a-z][a-z0-9-]*) ([0-9][0-9.]*)\]")  # a usage line's "[--steps 800]"


def commands(text: str) -> list[tuple[int, str]]:
    """(line number, the command's text) for each `egolego ...` in a fenced block, continuation lines joined: a line
    ending with a backslash, or an indented line after a command's line (the usage blocks' style); and each inline
    code span that is a command (`egolego eval --draws 2`, `accelerate launch -m egolego.cli train ...`)."""
    found, fenced, current = [], False, None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced, current = not fenced, None
            continue
        if not fenced:
            found += [(n, span.replace("egolego.cli ", "egolego ")) for span in INLINE.findall(line)]
            continue
        body = line.split("  #")[0].strip()
        if current is not None and (found[current][1].endswith("\\") or line.startswith(" ")) and \
                not COMMAND.match(body):
            found[current] = (found[current][0], found[current][1].rstrip("\\") + " " + body)
            continue
        current = None
        if COMMAND.match(body):
            found.append((n, body))
            current = len(found) - 1
    return found


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})


def sub_parser(root: argparse.ArgumentParser, words: list[str]) -> tuple[argparse.ArgumentParser, str]:
    """The parser of `egolego w1 [w2]` and its name: the second word is used when the first is a group (vllm, data,
    import ...); the name is empty when the words do not reach a command (`egolego vllm tunes`)."""
    p, name = root, []
    for w in words:
        if w not in subcommands(p):
            break
        p, name = subcommands(p)[w], name + [w]
    return p, "" if subcommands(p) else " ".join(name)


def flags_of(cmd: str) -> list[str]:
    out = []
    for f in FLAG.findall(cmd):
        out += [f.replace("[no-]", ""), f.replace("[no-]", "no-")] if "[no-]" in f else [f]
    return out


def default_of(action: argparse.Action):
    """The parser's default, or, where it defers to the config ("default: synth.actions" in its help), the value in the
    tiny preset, the CLI's default preset."""
    ref = re.search(r"default: ([a-z_]+(?:\.[a-z_]+)+)", action.help or "")
    if action.default is not None or ref is None:
        return action.default
    value = config.preset("tiny")
    for key in ref.group(1).split("."):
        value = getattr(value, key)
    return value


def check(text: str) -> list[str]:
    root, wrong = build_parser(), []
    for n, cmd in commands(text):
        m = COMMAND.search(cmd)
        if m is None:  # prose about commands: `egolego <command>: error: …`
            continue
        p, name = sub_parser(root, m.group(1).split())
        if not name:
            wrong.append(f"README:{n}: `egolego {m.group(1)}` is not a sub-command")
            continue
        part, opts = cmd[m.end():].split(" | ")[0], p._option_string_actions  # up to a pipe into another tool
        wrong += [f"README:{n}: `egolego {name}` has no {f}" for f in flags_of(part) if f not in opts]
        for flag, value in DEFAULT.findall(part):
            d = default_of(opts[flag]) if flag in opts else None
            if isinstance(d, (int, float)) and not isinstance(d, bool) and float(value) != float(d):
                wrong.append(f"README:{n}: `egolego {name}` shows [{flag} {value}], its default is {d}")
    return wrong


def test_the_readme_uses_only_flags_the_cli_has():
    text = README.read_text()
    assert len(commands(text)) > 40  # the CLI reference and the walk-throughs were read
    assert check(text) == []


@pytest.mark.parametrize("usage, message", [
    ("egolego synth --out D --colour red", "has no --colour"),
    ("egolego train --pairs P --out D\n        [--max-stepz 4]", "has no --max-stepz"),
    ("egolego eval --model M --pairs P --out E [--batch-size 3]", "its default is 8"),
    ("egolego synth --out D [--actions 300]", "its default is 500"),  # from the config: synth.actions
    ("egolego vllm tunes --data X", "is not a sub-command"),
    ("egolego generate --image I --out O [--[no-]change-mosk]", "change-mosk"),
])
def test_a_drifted_readme_is_caught(usage, message):
    wrong = check(f"```\n{usage}\n```\n")
    assert wrong and all(message in w for w in wrong)
    assert check("```\negolego synth --out D --actions 5\n```\n") == []
