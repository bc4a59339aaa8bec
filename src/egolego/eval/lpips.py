"""LPIPS with SqueezeNet (paper §4.1), written here in PyTorch; the weights come from local files.

Files (from the two projects that publish them):
- ``squeezenet1_1-b8a52dc0.pth``: torchvision's ImageNet SqueezeNet 1.1 (keys ``features.N.*``; the classifier
  keys are ignored).
- ``lpips_squeeze_v0.1.pth``: the LPIPS v0.1 linear heads, ``lpips/weights/v0.1/squeeze.pth`` in the LPIPS
  repository (keys ``lin0.model.1.weight`` … ``lin6.model.1.weight``).

Inputs are images in [-1, 1] as LPIPS expects; :meth:`LPIPS.from_unit` takes [0, 1] images and scales them
(the official LEGO code fed [0, 1] straight in, which understates distances).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..safe_load import LOAD_ERRORS, first_line, load_state, load_weights

SQUEEZENET_FILE = "squeezenet1_1-b8a52dc0.pth"
LPIPS_FILE = "lpips_squeeze_v0.1.pth"
CHANNELS = (64, 128, 256, 384, 384, 512, 512)  # the seven tapped layers


class Fire(nn.Module):
    """SqueezeNet's module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, cin: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeFeatures(nn.Module):
    """SqueezeNet 1.1 ``features`` (torchvision's indices, so its state dict loads as is) cut in LPIPS's 7 slices."""

    def __init__(self):
        super().__init__()
        pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(), pool,  # 0-2
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool,  # 3-5
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool,  # 6-8
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))  # 9-12
        self.cuts = (2, 5, 8, 10, 11, 12, 13)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, start = [], 0
        for end in self.cuts:
            for layer in self.features[start:end]:
                x = layer(x)
            outs.append(x)
            start = end
        return outs


def normalize_channels(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit length along channels: (B, C, H, W) / (‖·‖₂ over C + eps), as LPIPS does."""
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    # LPIPS's ScalingLayer constants: [-1, 1] input -> ImageNet-like statistics
    SHIFT = (-0.030, -0.088, -0.188)
    SCALE = (0.458, 0.448, 0.450)

    def __init__(self):
        super().__init__()
        self.net = SqueezeFeatures()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(self.SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(self.SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    @classmethod
    def from_files(cls, squeezenet: str | Path, lin: str | Path) -> LPIPS:
        m = cls()
        sq, lw = load_weights(squeezenet, "SqueezeNet"), load_weights(lin, "LPIPS linear-layer")
        try:
            sq = {k: v for k, v in sq.items() if k.startswith("features.")}
            lw = {f"{i}.weight": lw[f"lin{i}.model.1.weight"] for i in range(len(CHANNELS))}
        except LOAD_ERRORS as e:
            raise ValueError(f"{squeezenet} / {lin}: not the SqueezeNet / LPIPS files ({first_line(e)})") from None
        load_state(m.net, sq, squeezenet, "SqueezeNet")
        load_state(m.lins, lw, lin, "LPIPS linear-layer")
        return m

    def distance_from_features(self, f0: list[torch.Tensor], f1: list[torch.Tensor]) -> torch.Tensor:
        """(B,): Σ_layers mean_{h,w} w_l · (n(f0) - n(f1))²  with n the channel normalisation."""
        total = 0
        for lin, a, b in zip(self.lins, f0, f1):
            d = (normalize_channels(a) - normalize_channels(b)) ** 2  # (B, C, H, W)
            total = total + lin(d).mean(dim=(2, 3))  # (B, 1)
        return total[:, 0]

    @torch.no_grad()
    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """x0, x1: (B, 3, H, W) in [-1, 1] -> (B,) distances."""
        f0 = self.net((x0 - self.shift) / self.scale)
        f1 = self.net((x1 - self.shift) / self.scale)
        return self.distance_from_features(f0, f1)

    def from_unit(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The same for [0, 1] images."""
        return self(a * 2 - 1, b * 2 - 1)
