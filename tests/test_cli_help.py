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


def test_help_and_a_bad_flag_import_no_torch():
    """`egolego --help`, every sub-command's `--help` and an argument error answer without importing torch, diffusers
    or transformers (seconds of start-up): the parser reads only light modules (sampler and metric names)."""
    import subprocess
    import sys

    code = ("import sys\nfrom egolego.cli import main\n"
            "for args in (['--help'], ['eval', '--help'], ['generate', '--help'], ['generate', '--steps', '-1']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:] + out.stderr[-2000:]


def test_light_name_lists_match_their_registries():
    from egolego.eval.metric_names import METRIC_NAMES
    from egolego.eval.scoring import ALL_METRICS
    from egolego.ldm.pipeline import SCHEDULERS
    from egolego.ldm.sampler_names import SAMPLER_NAMES

    assert METRIC_NAMES == ALL_METRICS and SAMPLER_NAMES == tuple(SCHEDULERS)
