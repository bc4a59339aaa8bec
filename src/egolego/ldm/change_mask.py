"""A learnt change mask: where should the action frame differ from its input?

Where a model is unsure it paints saturated colour over the counter (the "blobs" of ``eval``'s blob score). Those
pixels are large changes, so a mask read off the size of the change (``pipeline.keep_unchanged``) keeps them. This
one is *learnt*: a small fully convolutional net sees the input frame and the generated frame and predicts, per pixel,
the probability that the true action frame differs from the input there. It is trained on the model's own frames of
its training pairs against the true change |target − input| (thresholded and dilated), so it learns what a real
change looks like — an arm reaching from the frame's edge, an object that moved or changed state — and what the
model's unsure paint looks like. The frame is then composited over the input by it (``composite``). On real data it
is learnt the same way: generate the training split, compare with the target frames.

Shapes: frames are (B, 3, H, W) in [-1, 1]; masks (B, 1, H, W) in [0, 1]. Any H, W divisible by 4.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..config import LdmConfig as L


def _block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation),
                         nn.GroupNorm(min(8, c_out), c_out), nn.SiLU())


class ChangeMaskNet(ModelMixin, ConfigMixin):
    """(input frame, generated frame) -> logits of "the true frame differs here", (B, 1, H, W).

    Two downsamplings and dilated convolutions give each pixel a view of ~60 px at 64 px, enough to tell an arm
    that enters from the frame's edge from a patch of paint; skips keep the mask's edges sharp."""

    @register_to_config
    def __init__(self, width: int = L.change_mask_width):
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(_block(7, w), _block(w, w))  # (B, w, H, W)
        self.enc2 = nn.Sequential(_block(w, 2 * w, stride=2), _block(2 * w, 2 * w))  # (B, 2w, H/2, W/2)
        self.mid = nn.Sequential(_block(2 * w, 2 * w, stride=2), _block(2 * w, 2 * w, dilation=2),
                                 _block(2 * w, 2 * w, dilation=4))  # (B, 2w, H/4, W/4)
        self.up2 = _block(4 * w, 2 * w)
        self.up1 = _block(3 * w, w)
        self.out = nn.Conv2d(w, 1, 1)

    def forward(self, image: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        d = (frame - image).abs().amax(1, keepdim=True)  # (B, 1, H, W): the size of the model's change
        x1 = self.enc1(torch.cat([image, frame, d], 1))
        x2 = self.enc2(x1)
        x = self.mid(x2)
        x = self.up2(torch.cat([F.interpolate(x, size=x2.shape[-2:], mode="nearest"), x2], 1))
        x = self.up1(torch.cat([F.interpolate(x, size=x1.shape[-2:], mode="nearest"), x1], 1))
        return self.out(x)  # (B, 1, H, W) logits

    @torch.no_grad()
    def mask(self, image: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [0, 1]; runs in float32 whatever the pipeline's dtype."""
        return torch.sigmoid(self(image.float(), frame.float()))


def true_change(image: torch.Tensor, target: torch.Tensor, threshold: float, dilate: int) -> torch.Tensor:
    """(B, 1, H, W) in {0, 1}: where the true frame changes the input by more than ``threshold`` (the largest channel
    change, in [0, 1] units), grown by ``dilate`` pixels so that the mask's edge is not a coin toss."""
    m = ((target - image).abs().amax(1, keepdim=True) / 2 > threshold).float()
    return F.max_pool2d(m, 2 * dilate + 1, stride=1, padding=dilate) if dilate > 0 else m


def composite(frame: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The generated frame where the mask says the action changes the input, the input elsewhere."""
    return image + mask.to(frame.dtype) * (frame - image)


def fit_change_mask(images: torch.Tensor, frames: torch.Tensor, targets: torch.Tensor,
                    steps: int = L.change_mask_steps, batch_size: int = 32, lr: float = 2e-3,
                    width: int = L.change_mask_width, threshold: float = L.change_mask_threshold,
                    dilate: int = L.change_mask_dilate, pos_weight: float = L.change_mask_pos_weight,
                    holdout: float = 0.1, seed: int = 0, progress=None) -> tuple[ChangeMaskNet, dict]:
    """Train a ``ChangeMaskNet`` on (input, generated, target) triplets, each (N, 3, H, W) in [-1, 1].

    ``pos_weight`` weighs the loss on true-change pixels: a missed change costs the action (an arm cut off), a kept
    unchanged pixel only the paint the mask was meant to remove.

    Returns the net (eval mode) and its quality on the held-out share: BCE, IoU of the mask at 0.5 with the true
    change, and the share of true-change pixels it keeps (recall) and of unchanged pixels it resets (specificity)."""
    n = len(images)
    if not (len(frames) == len(targets) == n) or n < 2:
        raise ValueError(f"need as many input, generated and target frames (>= 2), got {n}, {len(frames)}, "
                         f"{len(targets)}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = max(1, int(round(n * holdout)))
    val, train = perm[:n_val], perm[n_val:]
    torch.manual_seed(seed)
    net = ChangeMaskNet(width=width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    net.train()
    losses = []
    for step in range(steps):
        idx = train[torch.randint(len(train), (min(batch_size, len(train)),), generator=g)]
        x, y, t = images[idx], frames[idx], targets[idx]
        if torch.rand((), generator=g) < 0.5:  # a mirrored scene is a scene
            x, y, t = x.flip(-1), y.flip(-1), t.flip(-1)
        loss = F.binary_cross_entropy_with_logits(net(x, y), true_change(x, t, threshold, dilate),
                                                  pos_weight=torch.tensor(pos_weight))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, losses[-1])
    net.eval()
    return net, {**mask_quality(net, images[val], frames[val], targets[val], threshold, dilate),
                 "train_loss": sum(losses[-50:]) / len(losses[-50:]), "train_pairs": len(train), "heldout_pairs": n_val,
                 "steps": steps, "threshold": threshold, "dilate": dilate, "pos_weight": pos_weight}


@torch.no_grad()
def mask_quality(net: ChangeMaskNet, images, frames, targets, threshold: float, dilate: int) -> dict:
    """BCE, IoU at 0.5, recall and specificity of the net's mask against the true change."""
    tp = fp = fn = tn = 0.0
    bce = []
    for i in range(0, len(images), 64):
        x, y, t = images[i:i + 64], frames[i:i + 64], targets[i:i + 64]
        logits, truth = net(x, y), true_change(x, t, threshold, dilate)
        bce.append(float(F.binary_cross_entropy_with_logits(logits, truth, reduction="sum")))
        pred = (logits > 0).float()
        tp += float((pred * truth).sum())
        fp += float((pred * (1 - truth)).sum())
        fn += float(((1 - pred) * truth).sum())
        tn += float(((1 - pred) * (1 - truth)).sum())
    total = tp + fp + fn + tn
    return {"bce": sum(bce) / max(total, 1), "iou": tp / max(tp + fp + fn, 1), "recall": tp / max(tp + fn, 1),
            "specificity": tn / max(tn + fp, 1)}
