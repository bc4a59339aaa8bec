"""``egolego vllm pretrain-vision``: a vision tower for the tiny LLaVA, pre-trained on EgoSynth patch labels.

Why: LLaVA tunes its projector and LLM on top of a *pre-trained, frozen* CLIP tower. At 64 px no pre-trained
tower exists, and one trained from scratch through the answer tokens learns the sentence, not the scene: its
descriptions named the right hand and position at chance, even on the training pairs (RESULTS.md). So the tiny
preset first trains the tower on a dense task of its own — for every patch, the object kinds and colours that
cover it, its column, and the side of the frame (left / middle / right) of the object covering most of it
(``synth.patch_labels``) — then freezes it for tuning, as LLaVA does with CLIP.

The task reads the hidden state the projector reads (``TINY_FEATURE_LAYER``), through a linear head that is
thrown away. Scenes are rendered in memory from their own random stream; the job takes ~2 minutes on 2 cores
and writes its folder atomically at the end (``vision_tower.safetensors``, ``config.json``, ``report.json``): a
rerun reuses a complete folder made with the same settings instead of resuming mid-way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import CLIPVisionModel

from ..atomic import atomic_path, write_json
from ..config import TinyLlavaShapes, VisionPretrainConfig
from ..optim import adamw
from ..safe_load import first_line
from .tiny_shapes import TINY_FEATURE_LAYER, hidden_state_index, tiny_image_processor, tiny_vision_config

WEIGHTS, CONFIG, REPORT = "vision_tower.safetensors", "config.json", "report.json"
SHAPE_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size",
              "patch_size")


class PatchHead(torch.nn.Module):
    """Linear read-outs of one patch feature: kinds, colours, states (multi-label), column and side (classes)."""

    def __init__(self, dim: int, n_kinds: int, n_colors: int, grid: int, n_states: int = 0):
        super().__init__()
        self.sizes = (n_kinds, n_colors, n_states, grid, 3)
        self.proj = torch.nn.Linear(dim, sum(self.sizes))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:  # (B, N, D) -> 5 x (B, N, k)
        return torch.split(self.proj(h), self.sizes, dim=-1)


def feature_index(tower: CLIPVisionModel) -> int:
    """Which ``hidden_states`` entry the tiny LLaVA's projector reads, counted from the start."""
    return hidden_state_index(TINY_FEATURE_LAYER, tower.config.num_hidden_layers)


def patch_features(tower: CLIPVisionModel, pixels: torch.Tensor, index: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, G*G, D): hidden state ``index`` (the projector's), without the class token."""
    return tower(pixel_values=pixels, output_hidden_states=True).hidden_states[index][:, 1:]


@contextmanager
def only_read_layers(tower: CLIPVisionModel) -> Iterator[int]:
    """Run only the encoder layers up to the one LLaVA reads (the later ones never reach it: half the cost with
    the tiny tower's 2 layers); yields that layer's ``hidden_states`` index. The layers are restored after."""
    enc, index = getattr(tower, "vision_model", tower).encoder, feature_index(tower)
    layers = enc.layers
    enc.layers = layers[:index]
    try:
        yield index
    finally:
        enc.layers = layers


def patch_loss(out: tuple[torch.Tensor, ...], kinds, colors, states, side, columns, state_weight: float = 0.0,
               state_pos_weight: float = 1.0) -> torch.Tensor:
    """Kinds, colours and states (multi-label), column and side (classes); the states again, weighted by
    ``state_weight`` with positives ``state_pos_weight`` times as heavy (``vllm.vision_pretrain``)."""
    k, c, st, col, s = out
    labels = F.binary_cross_entropy_with_logits(torch.cat([k, c, st], -1), torch.cat([kinds, colors, states], -1))
    extra = 0.0
    if state_weight and st.shape[-1]:
        extra = state_weight * F.binary_cross_entropy_with_logits(
            st, states, pos_weight=torch.full((st.shape[-1],), state_pos_weight, device=st.device))
    return (10 * labels + extra + F.cross_entropy(col.flatten(0, 1), columns.expand(len(k), -1).flatten())
            + F.cross_entropy(s.flatten(0, 1), side.flatten(), ignore_index=-1))


@torch.no_grad()
def held_out_quality(tower, head, pixels, lab) -> dict:
    """Label F1 (kinds and colours), state F1 and side accuracy on patches that show an object."""
    k, c, st, _, s = head(patch_features(tower, pixels, feature_index(tower)))

    def f1(pred: torch.Tensor, truth: torch.Tensor) -> float:
        tp, fp, fn = (pred & truth).sum().item(), (pred & ~truth).sum().item(), (~pred & truth).sum().item()
        return round(2 * tp / max(2 * tp + fp + fn, 1), 3)

    side = torch.from_numpy(lab.side)
    shown = side >= 0
    return {"label_f1": f1(torch.cat([k, c], -1) > 0,
                           torch.cat([torch.from_numpy(lab.kinds), torch.from_numpy(lab.colors)], -1) > 0),
            "state_f1": f1(st > 0, torch.from_numpy(lab.states) > 0),
            "side_accuracy": round((s.argmax(-1) == side)[shown].float().mean().item(), 3)}


def shape_record(vision_config) -> dict:
    """The tower's shapes as saved in ``config.json`` and compared on load."""
    return {k: getattr(vision_config, k) for k in SHAPE_KEYS}


def settings_record(pc: VisionPretrainConfig, shapes: TinyLlavaShapes, knowledge: str = "none") -> dict:
    return {"pretrain": asdict(pc), "knowledge": knowledge, "vision_config": shape_record(tiny_vision_config(shapes))}


def pretrain_vision_tower(pc: VisionPretrainConfig, out: str | Path, render, shapes: TinyLlavaShapes = TinyLlavaShapes(),
                          progress: bool = True, knowledge: str = "none") -> dict:
    """Train a tiny CLIP vision tower on ``pc.scenes`` EgoSynth scenes of the world ``knowledge`` names (the
    ``synth.knowledge`` of the data it will describe); returns (and writes) its report.

    ``render(n, seed, image_size, grid, knowledge)`` draws the labelled scenes (``synth.patch_labels.
    scene_patch_labels``: images and per-patch kind / colour / state / side labels); the caller passes it, so the
    VLLM package does not reach up into the toy dataset."""
    out = Path(out)
    wanted = settings_record(pc, shapes, knowledge)
    if (out / REPORT).is_file() and json.loads((out / CONFIG).read_text()) == wanted:
        return {**json.loads((out / REPORT).read_text()), "reused": True}
    if pc.scenes < pc.batch_size:
        raise ValueError(f"vllm.vision_pretrain.scenes ({pc.scenes}) must be at least its batch_size ({pc.batch_size})")
    torch.manual_seed(pc.seed)
    tower, proc = CLIPVisionModel(tiny_vision_config(shapes)), tiny_image_processor(shapes)
    grid = shapes.image_size // shapes.patch_size
    t0 = time.perf_counter()
    train = render(pc.scenes, pc.seed, shapes.image_size, grid, knowledge)
    held = render(pc.held_out, pc.seed + 1, shapes.image_size, grid, knowledge)
    pixels = proc(images=list(train.images), return_tensors="pt")["pixel_values"]  # (n, 3, S, S)
    held_pixels = proc(images=list(held.images), return_tensors="pt")["pixel_values"]
    render_s = time.perf_counter() - t0
    head = PatchHead(shapes.vision_dim, train.kinds.shape[-1], train.colors.shape[-1], grid, train.states.shape[-1])
    kinds, colors, states, side = (torch.from_numpy(a) for a in (train.kinds, train.colors, train.states, train.side))
    columns = torch.arange(grid).repeat(grid)[None]  # (1, G*G): each patch's column, row-major
    opt = adamw(list(tower.parameters()) + list(head.parameters()), pc.lr, weight_decay=0.01)
    per_epoch = pc.scenes // pc.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, pc.lr, total_steps=pc.epochs * per_epoch, pct_start=0.05)
    losses = []
    with only_read_layers(tower) as index:
        for _epoch in tqdm(range(pc.epochs), desc="vision pretrain", disable=not progress):
            order = torch.randperm(pc.scenes)
            for b in range(per_epoch):
                idx = order[b * pc.batch_size:(b + 1) * pc.batch_size]
                pred = head(patch_features(tower, pixels[idx], index))
                loss = patch_loss(pred, kinds[idx], colors[idx], states[idx], side[idx], columns, pc.state_weight,
                                  pc.state_pos_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            losses.append(round(loss.item(), 4))
    tower.eval()
    report = {"scenes": pc.scenes, "epochs": pc.epochs, "knowledge": knowledge, "render_s": round(render_s, 1),
              "train_s": round(time.perf_counter() - t0 - render_s, 1), "epoch_losses": losses,
              "held_out": {"scenes": pc.held_out, **held_out_quality(tower, head, held_pixels, held)}}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in tower.state_dict().items()}, str(tmp))
    write_json(out / CONFIG, wanted, indent=1)
    write_json(out / REPORT, report, indent=1)  # last: its presence marks the folder complete
    return report


def load_vision_tower(tower: torch.nn.Module, folder: str | Path) -> None:
    """Load a pre-trained tower into ``tower`` (a LLaVA's ``vision_tower``); a wrong folder is one ``ValueError``."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise ValueError(f"{folder}: no pre-trained vision tower here ({WEIGHTS} and {CONFIG}; make one with "
                         "`egolego vllm pretrain-vision`)")
    have = json.loads((folder / CONFIG).read_text()).get("vision_config", {})
    want = shape_record(tower.config)
    if have != want:
        diff = ", ".join(f"{k} {have.get(k)} vs {v}" for k, v in want.items() if have.get(k) != v)
        raise ValueError(f"{folder}: the pre-trained tower's shapes differ from this model's ({diff})")
    try:
        tower.load_state_dict(load_file(str(folder / WEIGHTS)))
    except (OSError, RuntimeError, ValueError, SafetensorError) as e:
        raise ValueError(f"{folder / WEIGHTS}: not loadable vision tower weights ({first_line(e)})") from None
