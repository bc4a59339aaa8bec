"""EgoVLP and EgoVLP+ scores (paper §4.1): cosine of EgoVLP video embeddings of generated vs target frames.

EgoVLP's video tower is Frozen-in-Time's SpaceTimeTransformer (a ViT-B/16 whose blocks run *time* attention,
then *space* attention, with the CLS token attending to every patch). transformers' TimeSformer does not fit
it (it adds a temporal dense layer, uses a different residual path and treats the CLS token differently), so
the tower is written here, with the checkpoint's own parameter names; the text tower is transformers'
``DistilBertModel``, which does fit.

Weight mapping (checkpoint ``state_dict`` key → here), after dropping the DataParallel prefix ``module.``:
- ``video_model.*``  → :class:`SpaceTimeTransformer` (same names: ``patch_embed.proj``, ``cls_token``,
  ``pos_embed``, ``temporal_embed``, ``blocks.N.{norm1,attn.qkv,attn.proj,timeattn.qkv,timeattn.proj,norm2,
  mlp.fc1,mlp.fc2,norm3}``, ``norm``); ``head``/``pre_logits`` are identities in EgoVLP.
- ``vid_proj.0.*``   → ``vid_proj`` (Linear 768→256, in a Sequential as in EgoVLP).
- ``text_model.*``   → ``DistilBertModel`` (config and tokenizer from a local ``distilbert-base-uncased`` folder).
- ``txt_proj.1.*``   → ``txt_proj`` (ReLU then Linear 768→256).

Checkpoints: ``egovlp.pth`` (Ego4D, 4 frames) and the EPIC-Kitchens MIR one (``epic_mir_plus.pth``, 16 frames);
T is read from ``temporal_embed``. The single frame is repeated T times (EgoVLP); EgoVLP+ fills the first half
with the input frame. Frames: shorter side resized to 224, centre crop, ImageNet normalisation.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .pixels import to_unit

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _attend(q, k, v):  # q pre-scaled; (N, Lq, d), (N, Lk, d)
    return (q @ k.transpose(-2, -1)).softmax(-1) @ v


class VarAttention(nn.Module):
    """Divided attention: the CLS token attends to all tokens; each patch to CLS + its group (frame or patch)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, patches: int, over: str) -> torch.Tensor:
        b, n1, d = x.shape  # n1 = 1 + frames * patches
        h, hd = self.heads, d // self.heads
        q, k, v = (t.reshape(b, n1, h, hd).transpose(1, 2).reshape(b * h, n1, hd) for t in self.qkv(x).chunk(3, -1))
        q = q * self.scale
        cls_out = _attend(q[:, :1], k, v)  # (bh, 1, hd)

        def group(t):  # (bh, f*n, hd) -> (bh*groups, members, hd)
            t = t.reshape(b * h, frames, patches, hd)
            if over == "time":
                t = t.transpose(1, 2)  # one group per patch position, members = frames
            return t.reshape(-1, t.shape[2], hd)
        qg, kg, vg = group(q[:, 1:]), group(k[:, 1:]), group(v[:, 1:])
        r = qg.shape[0] // (b * h)
        kg = torch.cat([k[:, :1].repeat_interleave(r, 0), kg], 1)
        vg = torch.cat([v[:, :1].repeat_interleave(r, 0), vg], 1)
        out = _attend(qg, kg, vg)  # (bh*groups, members, hd)
        out = out.reshape(b * h, *((patches, frames) if over == "time" else (frames, patches)), hd)
        if over == "time":
            out = out.transpose(1, 2)
        out = torch.cat([cls_out, out.reshape(b * h, frames * patches, hd)], 1)  # (bh, n1, hd)
        return self.proj(out.reshape(b, h, n1, hd).transpose(1, 2).reshape(b, n1, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SpaceTimeBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim, eps=1e-6) for _ in range(3))
        self.attn, self.timeattn = VarAttention(dim, heads), VarAttention(dim, heads)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x, frames: int, patches: int):
        time_residual = x + self.timeattn(self.norm3(x), frames, patches, "time")
        space_residual = x + self.attn(self.norm1(time_residual), frames, patches, "space")  # FiT: from x, not time_residual
        return space_residual + self.mlp(self.norm2(space_residual))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)


class SpaceTimeTransformer(nn.Module):
    """(B, T, 3, S, S) normalised frames -> (B, dim) CLS features."""

    def __init__(self, image_size=224, patch=16, dim=768, depth=12, heads=12, frames=4):
        super().__init__()
        self.patches = (image_size // patch) ** 2
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patches + 1, dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, frames, dim))
        self.blocks = nn.ModuleList(SpaceTimeBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, f = video.shape[:2]
        x = self.patch_embed.proj(video.flatten(0, 1))  # (B*T, D, s, s)
        x = x.flatten(2).transpose(1, 2).reshape(b, f * self.patches, -1)  # (B, T*N, D)
        pos = self.pos_embed[:, 1:].repeat(1, f, 1) + self.temporal_embed[:, :f].repeat_interleave(self.patches, 1)
        x = torch.cat([self.cls_token.expand(b, -1, -1) + self.pos_embed[:, :1], x + pos], 1)  # (B, 1+T*N, D)
        for blk in self.blocks:
            x = blk(x, f, self.patches)
        return self.norm(x)[:, 0]


class _Inert:
    """Stands for any class or function the file names that torch's safe list lacks (EgoVLP's pickled
    ``parse_config.ConfigParser``, pathlib, numpy scalars...): calling or building it does nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an EgoVLP checkpoint, without importing EgoVLP's code and without running any of the file's.

    The file is read with ``torch.load(weights_only=True)``: torch's restricted unpickler resolves only its own
    allow-list (tensors, storages, ``OrderedDict``...). Every other global the file names is listed beforehand
    by a static scan (``get_unsafe_globals_in_checkpoint``, which executes nothing) and registered, under its
    fully qualified name, as the inert placeholder ``_Inert``, so whatever the pickle asks to call —
    ``os.system``, ``numpy.testing._private.utils.runstring`` — becomes a no-op. Raises ``ValueError`` for a
    file torch refuses.
    """
    path = Path(path)
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError):
        names = []  # not a zip checkpoint: the restricted unpickler alone decides
    placeholders = [(type(f"_Inert_{i}", (_Inert,), {}), n) for i, n in enumerate(names)]
    try:
        with torch.serialization.safe_globals(placeholders):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a loadable EgoVLP checkpoint (refused by torch's safe loader: {first})") from None
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: not an EgoVLP checkpoint (no state_dict)")
    return {str(k).removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


class EgoVLP(nn.Module):
    def __init__(self, video: SpaceTimeTransformer, proj_dim: int, text_folder: str | Path | None = None):
        super().__init__()
        self.video_model = video
        dim = video.norm.normalized_shape[0]
        self.vid_proj = nn.Sequential(nn.Linear(dim, proj_dim))
        self.text_model, self.txt_proj, self.tokenizer = None, None, None
        if text_folder is not None:
            from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

            self.text_model = DistilBertModel(DistilBertConfig.from_pretrained(str(text_folder), local_files_only=True))
            self.tokenizer = AutoTokenizer.from_pretrained(str(text_folder), local_files_only=True)
            self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(self.text_model.config.dim, proj_dim))
        self.eval().requires_grad_(False)

    @property
    def frames(self) -> int:
        return self.video_model.temporal_embed.shape[1]

    @classmethod
    def from_checkpoint(cls, path: str | Path, text_folder: str | Path | None = None, heads: int = 12) -> EgoVLP:
        sd = load_checkpoint(path)
        need = ("video_model.patch_embed.proj.weight", "video_model.pos_embed", "video_model.temporal_embed",
                "vid_proj.0.weight")
        if any(k not in sd for k in need) or sd[need[0]].dim() != 4:
            raise ValueError(f"{path}: not an EgoVLP checkpoint (no {next((k for k in need if k not in sd), need[0])})")
        pe = sd["video_model.patch_embed.proj.weight"]  # (D, 3, p, p)
        dim, patch = pe.shape[0], pe.shape[-1]
        side = int(round((sd["video_model.pos_embed"].shape[1] - 1) ** 0.5)) * patch
        depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("video_model.blocks."))
        video = SpaceTimeTransformer(side, patch, dim, depth, heads, sd["video_model.temporal_embed"].shape[1])
        m = cls(video, sd["vid_proj.0.weight"].shape[0], text_folder)
        mine = m.state_dict()
        missing = [k for k in mine if k not in sd]
        if missing:
            raise ValueError(f"{path}: not an EgoVLP checkpoint, {len(missing)} tensors missing (e.g. {missing[0]})")
        try:
            m.load_state_dict({k: sd[k] for k in mine})
        except RuntimeError as e:  # shapes that do not fit together
            raise ValueError(f"{path}: not an EgoVLP checkpoint ({str(e).splitlines()[-1].strip()})") from None
        return m

    def video_tensor(self, frames: list[list[Image.Image]]) -> torch.Tensor:
        """B lists of T PIL frames -> (B, T, 3, S, S): shorter side to S, centre crop, ImageNet norm."""
        s = self.video_model.pos_embed.shape[1] - 1
        s = int(round(s ** 0.5)) * self.video_model.patch_embed.proj.kernel_size[0]
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        out = []
        for clip in frames:
            ims = []
            for im in clip:
                w, h = im.size
                r = s / min(w, h)
                im = im.convert("RGB").resize((max(s, round(w * r)), max(s, round(h * r))), Image.BICUBIC)
                left, top = (im.size[0] - s) // 2, (im.size[1] - s) // 2
                ims.append(im.crop((left, top, left + s, top + s)))
            out.append((to_unit(ims) - mean) / std)
        return torch.stack(out)

    @torch.no_grad()
    def video_embeddings(self, frames: list[list[Image.Image]]) -> torch.Tensor:
        return F.normalize(self.vid_proj(self.video_model(self.video_tensor(frames))), dim=-1)  # (B, P)

    @torch.no_grad()
    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        if self.text_model is None:
            raise ValueError("this EgoVLP was loaded without a text folder (distilbert-base-uncased)")
        tok = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        cls = self.text_model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).last_hidden_state[:, 0]
        return F.normalize(self.txt_proj(cls), dim=-1)

    def clips(self, frame: Image.Image, input_frame: Image.Image | None = None) -> list[Image.Image]:
        """T frames: the frame repeated (EgoVLP), or the input frame for the first half (EgoVLP+)."""
        t = self.frames
        return [frame] * t if input_frame is None else [input_frame] * (t // 2) + [frame] * (t - t // 2)

    def score(self, generated: list[Image.Image], targets: list[Image.Image],
              inputs: list[Image.Image] | None = None) -> torch.Tensor:
        """(B,) EgoVLP (``inputs`` None) or EgoVLP+ score."""
        ins = inputs or [None] * len(generated)
        g = self.video_embeddings([self.clips(f, i) for f, i in zip(generated, ins)])
        t = self.video_embeddings([self.clips(f, i) for f, i in zip(targets, ins)])
        return (g * t).sum(-1)
