"""What a person sees in a generated frame: the pixels the action must leave alone, and colour blobs.

PSNR and SSIM over the whole frame mix two questions: did the model draw the action, and did it keep the rest of
the scene? ``region_scores`` answers the second one apart: PSNR and SSIM *outside* the action's region (the union of
the acting hand's and the objects' boxes in the input and target frames, grown by a margin for the camera's motion
and the frame choice) — there the input is the answer, so copying the input is the bar — and *inside* it.

``blob_share`` counts colour blobs: the share of generated pixels whose colour lies far from every colour of the
input and target frames (their palette). Guidance that extrapolates ``cond − uncond`` paints saturated colours the
scene never had; a blurred or shifted copy of the scene mostly does not leave its palette.

All functions take (B, 3, H, W) float tensors in [0, 1] and return one value per image (NaN where a region is
empty).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .pixels import ssim_map

MARGIN = 0.04  # grown around each box, as a fraction of the frame (~2.5 px at 64 px): camera motion, frame choice
PALETTE_STEP = 4  # colours are binned in cubes of 4 levels per channel (64^3 bins)
BLOB_DISTANCE = 24.0  # a generated colour this far (0–255 RGB, Euclidean) from every palette colour is a blob


def region_mask(boxes: list[list[float]], height: int, width: int, margin: float = MARGIN) -> torch.Tensor:
    """(H, W) bool: True inside the union of normalised (x1, y1, x2, y2) boxes, each grown by ``margin``."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    for x1, y1, x2, y2 in boxes:
        c1, c2 = math.floor((x1 - margin) * width), math.ceil((x2 + margin) * width)
        r1, r2 = math.floor((y1 - margin) * height), math.ceil((y2 + margin) * height)
        mask[max(0, r1):max(0, min(height, r2)), max(0, c1):max(0, min(width, c2))] = True
    return mask


def action_boxes(boxes: dict, truth: dict | None = None) -> list[list[float]]:
    """The action's boxes, in the input and the target frame.

    With EgoSynth's truth: the acting hand, the target object and the second object (the truth's exact boxes,
    ``synth.dataset``). Otherwise every box the pair's manifest row holds (``boxes`` column: on Ego4D FHO the
    hands, the object of change and the tool; on EPIC-KITCHENS VISOR every annotated object)."""
    if truth is not None:
        a = truth["action"]
        keys = {f"{a['hand']} hand"} | {f"{i}:{truth['scene']['objects'][i]['kind']}"
                                         for i in (a["target"], a.get("second")) if i is not None}
        boxes = truth["boxes"]
    else:
        keys = None
    return [b for frame in ("input", "target") for k, b in (boxes.get(frame) or {}).items()
            if keys is None or k in keys]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) mean of (B, C, H, W) ``values`` over the (B, H, W) ``mask``'s pixels and every channel; NaN if empty."""
    m = mask[:, None].to(values.dtype)  # (B, 1, H, W)
    n = m.flatten(1).sum(1) * values.shape[1]  # (B,)
    total = (values * m).flatten(1).sum(1)
    return torch.where(n > 0, total / n.clamp_min(1), torch.full_like(total, math.nan))


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR (dB, data range 1, capped at 100) over the pixels where ``mask`` (B, H, W) is True."""
    mse = _masked_mean((a.double() - b.double()) ** 2, mask)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).float()


def masked_ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, window: int = 11,
                whole_window: bool = False) -> torch.Tensor:
    """(B,) SSIM averaged over the valid positions whose window centre lies where ``mask`` (B, H, W) is True — or,
    with ``whole_window``, whose whole window does (so no pixel outside ``mask`` reaches the score)."""
    m = ssim_map(a, b, window)  # (B, C, H - window + 1, W - window + 1)
    if whole_window:
        keep = F.max_pool2d((~mask)[:, None].float(), window, stride=1)[:, 0] == 0  # (B, H', W')
    else:
        r = window // 2
        keep = mask[:, r:r + m.shape[-2], r:r + m.shape[-1]]
    return _masked_mean(m, keep).float()


def region_scores(fake: torch.Tensor, target: torch.Tensor, inside: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"psnr_out", "ssim_out", "psnr_in", "ssim_in"}: (B,) each, ``inside`` (B, H, W) the action's region. SSIM
    outside takes only the windows that lie wholly outside (none of the action's pixels may count there); inside,
    the windows centred in it."""
    return {"psnr_out": masked_psnr(fake, target, ~inside),
            "ssim_out": masked_ssim(fake, target, ~inside, whole_window=True),
            "psnr_in": masked_psnr(fake, target, inside), "ssim_in": masked_ssim(fake, target, inside)}


def _bins(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, H*W) palette bin index."""
    q = (x * 255).round().clamp(0, 255).long() // PALETTE_STEP  # (B, 3, H, W)
    n = 256 // PALETTE_STEP
    return (q[:, 0] * n * n + q[:, 1] * n + q[:, 2]).flatten(1)


def _bin_centres(idx: torch.Tensor) -> torch.Tensor:
    n = 256 // PALETTE_STEP
    rgb = torch.stack([idx // (n * n), idx // n % n, idx % n], -1).float()  # (K, 3)
    return rgb * PALETTE_STEP + (PALETTE_STEP - 1) / 2


def blob_share(fake: torch.Tensor, inp: torch.Tensor, target: torch.Tensor,
               distance: float = BLOB_DISTANCE) -> torch.Tensor:
    """(B,) share of ``fake``'s pixels whose colour bin lies more than ``distance`` (0–255 RGB) from every colour bin
    of ``inp`` and ``target`` — colours the scene never had."""
    out = []
    fb, pb = _bins(fake), torch.cat([_bins(inp), _bins(target)], 1)  # (B, HW), (B, 2HW)
    for f, p in zip(fb, pb):
        used, inverse = torch.unique(f, return_inverse=True)  # the generated frame's distinct colour bins
        d = torch.cdist(_bin_centres(used), _bin_centres(torch.unique(p))).min(1).values  # (U,)
        out.append((d[inverse] > distance).float().mean())
    return torch.stack(out)
