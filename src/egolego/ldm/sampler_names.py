"""The samplers' names, without their classes: the command line lists them when it builds its parser, and must not
pay diffusers' and torch's import (seconds) to answer ``--help`` or a bad flag. ``ldm.pipeline.SCHEDULERS`` maps
each name to its diffusers class (a test keeps the two lists equal)."""

SAMPLER_NAMES = ("euler_a", "ddim", "dpm++", "flow_euler")
