"""The metric names ``egolego eval --metrics`` takes, without the scorers: the command line lists them when it
builds its parser and must not import torch for that. ``eval.scoring.SCORERS`` serves each name (a test keeps the
two equal)."""

METRIC_NAMES = ("psnr", "ssim", "regions", "blob", "lpips", "fid", "clip", "egovlp", "blip", "action", "desc_acc")
