"""Single-image inference: ``egolego generate --model DIR --image IMG --action "open drawer" --out OUT.png``.

A model folder samples the way it was trained: its pipeline saved the sampler (its ``scheduler/``), the step count,
both guidance scales, the guidance rescale and interval (``model_index.json``: ``sampling``, written from the
training config's ``ldm`` keys; older folders: ``lego_config.yaml``), which ``LegoPipeline.from_pretrained`` reads
too; a flag overrides each. With the model's tuned VLLM (``ldm/vllm_link.py``: the one that wrote its training
embeddings, or a copy in ``<model>/vllm``) the VLLM writes the description — or embeds the one given with
``--description`` — and the embeddings; without one, the modes that need no embeddings (``label``, ``desc``)
run on the label or on ``--description``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import yaml
from PIL import Image

from ..errors import InputError, MissingInput
from ..safe_load import first_line
from .components import takes_progress
from .model_folder import lego_model_folder
from .modes import check_covered, mode_text, needs_embeddings, text_key
from .pipeline import PAPER_SAMPLING, LegoPipeline
from .vllm_link import missing_vllm_hint, recorded_vllm, refuse_other_vllm, vllm_folder


@dataclass(frozen=True)
class Sampling:
    """How to sample: the model's own settings, each overridable."""

    steps: int
    scheduler: str
    condition_guidance: float
    image_guidance: float
    guidance_rescale: float = 0.0  # φ (LegoPipeline: guidance rescale)
    guidance_interval: tuple[float, float] = (0.0, 1.0)  # the noise levels that are guided
    keep_input: float = 0.0  # τ of LegoPipeline's keep_unchanged (0 = off)
    change_mask: bool = False  # composite by the model's learnt change mask (ldm/change_mask.py)
    clip_start: float = 1.0  # a clip's earlier frames start from its last one noised to this level (1 = pure noise)
    progress_guidance: float = 0.0  # s_p: guide a progress model's frames away from the action not begun (0 = off)

    def override(self, **values) -> Sampling:
        values = {k: v for k, v in values.items() if v is not None}
        if "guidance_interval" in values:
            values["guidance_interval"] = tuple(float(v) for v in values["guidance_interval"])
        return replace(self, **values)

    def pipe_kwargs(self) -> dict:
        """The ``LegoPipeline.__call__`` arguments these settings stand for (the scheduler is set on the pipeline)."""
        return {"num_inference_steps": int(self.steps), "condition_guidance_scale": float(self.condition_guidance),
                "image_guidance_scale": float(self.image_guidance), "guidance_rescale": float(self.guidance_rescale),
                "guidance_interval": tuple(self.guidance_interval), "keep_input": float(self.keep_input),
                "change_mask": bool(self.change_mask), "progress_guidance": float(self.progress_guidance)}


def model_ldm_settings(model: str | Path) -> dict:
    """The ``ldm`` section of the model's saved config ({} for a folder without one)."""
    f = Path(model) / "lego_config.yaml"
    data = yaml.safe_load(f.read_text()) if f.is_file() else None
    return (data or {}).get("ldm") or {}


def sampling_for(model: str | Path, pipe: LegoPipeline | None = None, **overrides) -> Sampling:
    """The model's sampling settings, then ``overrides``. The model's own are the ``sampling`` its pipeline saved
    (``model_index.json``, what ``LegoPipeline.from_pretrained(d)(...)`` uses too); a folder written before those
    were saved falls back to its ``lego_config.yaml`` and then to the paper's settings."""
    if pipe is not None and getattr(pipe.config, "sampling", None):
        saved = pipe.sampling
    else:
        yaml_keys = {k: v for k, v in model_ldm_settings(model).items() if k in PAPER_SAMPLING and k != "change_mask" and v is not None}
        if "scheduler" not in yaml_keys and pipe is not None and pipe.is_flow:
            yaml_keys["scheduler"] = "flow_euler_a" if pipe.scheduler.config.get("stochastic_sampling") else "flow_euler"
        saved = {**PAPER_SAMPLING, **yaml_keys}
    s = Sampling(int(saved["steps"]), saved["scheduler"], float(saved["condition_guidance"]),
                 float(saved["image_guidance"]), float(saved["guidance_rescale"]),
                 tuple(float(v) for v in saved["guidance_interval"]), float(saved["keep_input"]),
                 bool(saved["change_mask"]), float(saved.get("clip_start", 1.0)),
                 float(saved.get("progress_guidance", 0.0))).override(**overrides)
    if s.steps < 1:
        raise InputError("steps", f"must be at least 1, got {s.steps}")
    if not 0 <= s.guidance_rescale <= 1:
        raise InputError("guidance_rescale", f"must lie in [0, 1], got {s.guidance_rescale}")
    if not 0 <= s.keep_input <= 1:
        raise InputError("keep_input", f"must lie in [0, 1], got {s.keep_input}")
    if not 0 < s.clip_start <= 1:
        raise InputError("clip_start", f"must lie in (0, 1], got {s.clip_start}")
    if s.progress_guidance < 0:
        raise InputError("progress_guidance", f"must be >= 0, got {s.progress_guidance}")
    if s.change_mask and pipe is not None and pipe.change_mask is None:
        raise InputError("change_mask", f"{model} has no learnt change mask; train one with `egolego train-mask`")
    lo, hi = s.guidance_interval
    if not 0 <= lo <= hi <= 1:
        raise InputError("guidance_interval", f"must be two noise levels 0 <= lo <= hi <= 1, got {lo}, {hi}")
    return s


def open_image(path: str | Path) -> Image.Image:
    p = Path(path)
    if not p.is_file():
        raise MissingInput("image", f"{p} does not exist")
    try:
        im = Image.open(p)
        im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise InputError("image", f"{p} is not a readable image ({e})") from None
    return im.convert("RGB")


def load_pipeline(model: str | Path) -> LegoPipeline:
    d = lego_model_folder(model)
    from ..hf_quiet import quiet_loading

    try:
        with quiet_loading():
            pipe = LegoPipeline.from_pretrained(str(d), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:  # a broken or foreign folder
        raise InputError("model", f"{d} is not a loadable LEGO model ({first_line(e)})") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


class FrameGenerator:
    """A model loaded once (pipeline, and its VLLM when the mode or a missing description needs it)."""

    seeded = True  # every sampler starts from seeded noise, so ``eval --draws`` draws different frames

    def __init__(self, model: str | Path, device: str | None = None, vllm_precision: str = "auto", **sampling):
        self.model = Path(model)
        self.pipe = load_pipeline(model)
        self.device = device or "cpu"
        self.vllm_precision = vllm_precision
        if device:
            self.pipe.to(device)
        self.sampling = sampling_for(model, self.pipe, **sampling)
        self.pipe.use_scheduler(self.sampling.scheduler)
        self.mode = self.pipe.conditioner.config.mode
        self.vllm_dir = vllm_folder(model)
        self._vllm = None
        self._stores: dict[str, object] = {}

    def load_vllm(self):
        """(model, processor) of the model's VLLM, loaded once; refuses a VLLM other than the recorded one."""
        from ..vllm.memory import load_vllm
        from ..vllm.model import fingerprint

        if self._vllm is None:
            if self.vllm_dir is None:
                raise InputError("model", f"mode {self.mode!r} needs the model's tuned VLLM, but {missing_vllm_hint(self.model)}")
            checked = refuse_other_vllm(self.model, self.vllm_dir)
            self._vllm = load_vllm(self.vllm_dir, self.device, self.vllm_precision)
            want = None if checked else (recorded_vllm(self.model) or {}).get("fingerprint")  # an older record
            if want and _full_precision(self._vllm[0]) and fingerprint(self._vllm[0]) != want:
                raise InputError("model", f"the VLLM in {self.vllm_dir} is not the one that wrote this model's training "
                                 f"embeddings (fingerprint {fingerprint(self._vllm[0])}, recorded {want})")
            if want and not _full_precision(self._vllm[0]):
                warnings.warn(f"{self.model}/vllm.json predates file fingerprints: the VLLM loaded in reduced precision "
                              "cannot be checked against it (load it in float32 once, or retrain from a new store)",
                              stacklevel=2)
        return self._vllm

    def describe(self, square: Image.Image, action: str, description: str | None = None) -> tuple[str, dict]:
        """(description — the VLLM's, or the given one —, its embeddings) for a square frame; the VLLM loads once."""
        from ..vllm.enrich import describe_and_embed

        return describe_and_embed(self.vllm_dir, square, action, rows=self.pipe.conditioner.config.text_tokens,
                                  description=description, loaded=self.load_vllm())

    def __call__(self, image: Image.Image, action: str, description: str | None = None, seed: int = 0,
                 size: int | None = None) -> tuple[Image.Image, str]:
        """(action frame at the input's aspect ratio, the text it was conditioned on)."""
        frames, prompt = self.clip(image, action, [1.0], description, seed, size)
        return frames[0], prompt

    def clip(self, image: Image.Image, action: str, progress: list[float], description: str | None = None,
             seed: int = 0, size: int | None = None) -> tuple[list[Image.Image], str]:
        """(one frame per progress value, the text they were conditioned on): the action part-way, in one batch.

        The frames share their initial noise and their per-step noise (one seed), the description and the VLLM
        embeddings, so only the progress differs between them: the scene and the objects' identity stay put."""
        if not progress:
            raise InputError("frames", "give at least one progress value")
        side = size or self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor
        square = image.resize((side, side), Image.LANCZOS)
        emb = {}
        wants_description = text_key(self.mode) == "description" and description is None
        if needs_embeddings(self.mode) or (wants_description and self.vllm_dir is not None):
            description, emb = self.describe(square, action, description)
        try:
            prompt = mode_text(self.mode, action, description)
        except ValueError as e:
            raise InputError("description", str(e)) from None
        try:
            out = sample_clip(self.pipe, square, prompt, progress, seed, image.size, self.sampling.pipe_kwargs(), emb,
                              clip_start=self.sampling.clip_start)
        except InputError as e:
            if e.arg != "action_progress":
                raise
            raise InputError("frames", str(e)) from None  # the clip's progress values come from --frames
        return out, prompt


    def _store(self, store: str | Path | None):
        """The ``vllm enrich`` store at ``store`` (opened once), or None when the mode needs none or none is given."""
        if store is None or not needs_embeddings(self.mode):
            return None
        if str(store) not in self._stores:
            from ..vllm.store import EmbeddingStore

            self._stores[str(store)] = EmbeddingStore(store)
        return self._stores[str(store)]

    def check_rows(self, rows: list[dict], store: str | Path | None = None) -> None:
        """Refuse, before any frame is drawn, rows this model cannot condition on: embeddings neither in ``store``
        nor writable by the model's own VLLM."""
        emb_store = self._store(store)
        if needs_embeddings(self.mode) and emb_store is None and self.vllm_dir is None:
            raise InputError("store", f"mode {self.mode!r} needs VLLM embeddings: give the `vllm enrich` store, or a "
                             f"model whose tuned VLLM can be found ({missing_vllm_hint(self.model)})")
        if emb_store is not None:
            check_covered(emb_store, (r["pair_id"] for r in rows))

    def batch(self, squares: list[Image.Image], rows: list[dict], generators: list[torch.Generator],
              store: str | Path | None = None, progress: list[float] | None = None,
              start: list[Image.Image] | None = None) -> list[Image.Image]:
        """Frames for manifest ``rows`` (their ``label`` and ``description``) and their square input frames; the
        embeddings come from ``store`` or, without one, from the model's VLLM (which then writes the descriptions).
        ``progress``: how far along its action each frame is drawn (a model trained with ``ldm.progress``);
        ``start``: per row, the frame its sampling starts from at the level ``clip_start`` (its action's last frame,
        as ``sample_clip`` draws a clip)."""
        kw, descs = {}, [r["description"] for r in rows]
        if needs_embeddings(self.mode):
            emb_store = self._store(store)
            if emb_store is not None:
                es = [emb_store.get(r["pair_id"]) for r in rows]
                kw = {"h_img": torch.stack([e.h_img.float() for e in es]),  # (B, M, D)
                      "h_txt": torch.stack([e.h_txt.float() for e in es]), "h_len": torch.tensor([e.length for e in es])}
            else:
                outs = [self.describe(im, r["label"]) for im, r in zip(squares, rows)]
                descs = [o[0] for o in outs]
                kw = {k: torch.cat([o[1][k] for o in outs]) for k in ("h_img", "h_txt", "h_len")}
        try:
            prompts = [mode_text(self.mode, r["label"], d) for r, d in zip(rows, descs)]
        except ValueError:
            raise InputError("pairs", f"mode {self.mode!r} needs descriptions; a pair of {rows[0]['pair_id']}'s batch "
                             "has none (run curation or `vllm enrich` first)") from None
        if start is not None:
            kw.update(init_image=start, strength=self.sampling.clip_start)
        return self.pipe(squares, prompts, generator=generators, progress=False, **self.sampling.pipe_kwargs(),
                         action_progress=progress, **kw).images

    @property
    def takes_progress(self) -> bool:
        """Whether the model was trained to draw the action part-way (``ldm.progress``)."""
        return takes_progress(self.pipe.unet)


def sample_clip(pipe: LegoPipeline, square: Image.Image, prompt: str, progress: list[float], seed: int,
                original_size: tuple[int, int] | None, sampling: dict, emb: dict, bar: bool = False,
                clip_start: float = 1.0) -> list[Image.Image]:
    """One frame per progress value of one image and condition: every frame starts from the same noise and gets the
    same per-step noise (one seed), so only the progress differs — and a clip of one is exactly the pipeline's own
    single frame for that seed. ``emb``: the (1, …) VLLM embeddings, if the mode reads them.

    ``clip_start`` = 1: all frames in one batch from pure noise. ``clip_start`` < 1: the last frame (the action done)
    is drawn first, and the earlier ones start from it noised to that level, so that they keep the hand and the object
    it chose (drawn independently, a part-way frame may send the other hand; RESULTS.md, eval-timeline)."""
    k = len(progress)
    latent = square.size[0] // pipe.vae_scale_factor
    shape = (1, pipe.unet.config.out_channels, latent, latent)

    def draw(ps: list[float], start: Image.Image | None) -> list[Image.Image]:
        e = {n: torch.cat([v] * len(ps)) for n, v in emb.items()}  # (K, ...): the same condition for every frame
        gens = [torch.Generator().manual_seed(seed) for _ in ps]
        noise = torch.cat([torch.randn(shape, generator=g) for g in gens])  # (K, c, h, w): K times the same noise,
        # drawn as the pipeline draws it, so that every generator is then in step for the sampler's own noise
        extra = {} if start is None else {"init_image": [start] * len(ps), "strength": clip_start}
        return pipe([square] * len(ps), [prompt] * len(ps), generator=gens, progress=bar, action_progress=list(ps),
                    latents=noise, **sampling, **e, **extra).images

    if clip_start >= 1 or k == 1:
        frames = draw(list(progress), None)
    else:
        last = max(range(k), key=lambda j: progress[j])
        done = draw([progress[last]], None)[0]
        rest = draw([p for j, p in enumerate(progress) if j != last], done)
        frames = rest[:last] + [done] + rest[last:]
    if original_size is not None:
        frames = [f if f.size == original_size else f.resize(original_size, Image.BICUBIC) for f in frames]
    return frames


def clip_progress(frames: int) -> list[float]:
    """The progress values of a clip of ``frames`` frames: 1/K, 2/K, …, 1."""
    return [j / frames for j in range(1, frames + 1)]


def generate_one(model: str | Path, image: str | Path, action: str, description: str | None = None,
                 seed: int = 0, size: int | None = None, device: str | None = None, vllm_precision: str = "auto",
                 **sampling) -> tuple[Image.Image, str]:
    """One frame from a model folder (loads it); ``sampling`` overrides steps / scheduler / guidance scales."""
    gen = FrameGenerator(model, device=device, vllm_precision=vllm_precision, **sampling)
    return gen(open_image(image), action, description, seed, size)


def generate_clip(model: str | Path, image: str | Path, action: str, frames: int, description: str | None = None,
                  seed: int = 0, device: str | None = None, vllm_precision: str = "auto",
                  **sampling) -> tuple[list[Image.Image], str]:
    """``frames`` frames of the action unfolding (progress 1/K … 1) from a model trained with ``ldm.progress``."""
    if frames < 1:
        raise InputError("frames", f"must be at least 1, got {frames}")
    gen = FrameGenerator(model, device=device, vllm_precision=vllm_precision, **sampling)
    return gen.clip(open_image(image), action, clip_progress(frames), description, seed)


def _full_precision(model) -> bool:
    """Whether a loaded model holds its weights in float32 (what the model fingerprint of older records hashed)."""
    return not getattr(model, "is_quantized", False) and all(p.dtype == torch.float32 for p in model.parameters())
