"""The samplers' names, without their classes: the command line lists them when it builds its parser, and must not
pay diffusers' and torch's import (seconds) to answer ``--help`` or a bad flag. ``ldm.pipeline.SCHEDULERS`` maps
each name to its diffusers class (a test keeps the two lists equal)."""

SAMPLER_NAMES = ("euler_a", "ddim", "dpm++", "flow_euler", "flow_euler_a")
# the samplers of a flow-matching model: ``flow_euler`` steps along the predicted velocity (deterministic);
# ``flow_euler_a`` (ancestral) re-noises the predicted x_0 to the next level with fresh noise at every step
FLOW_SAMPLERS = ("flow_euler", "flow_euler_a")
