"""``egolego config``: the effective value of every setting, as YAML."""

from __future__ import annotations

import argparse

from .common import CliError


def config_parser(sub) -> None:
    c = sub.add_parser("config", help="print a preset or a config file, resolved",
                       description="Print the full configuration of a preset (or of a YAML file over its preset) as "
                       "YAML: every key with the value a command would use. Save it, edit it, pass it with --config.")
    c.add_argument("--preset", default="tiny", choices=["tiny", "paper"], help="the preset to print (default %(default)s)")
    c.add_argument("--file", help="a YAML config file (its preset is the base)")
    c.set_defaults(func=cmd_config)


def cmd_config(a: argparse.Namespace) -> int:
    import yaml

    from .. import config
    from .bounds import check_config

    try:
        cfg = config.load(a.file) if a.file else config.preset(a.preset)
    except (ValueError, FileNotFoundError, yaml.YAMLError) as e:
        raise CliError(f"--file: {' '.join(str(e).split())[:300]}") from None
    bad = check_config(cfg, "config")
    if bad:
        raise CliError(f"--file: {bad}")
    print(yaml.safe_dump(config.to_dict(cfg), sort_keys=False), end="")
    return 0
