"""``egolego import lego``: the released LEGO LDM (a Lightning ``.ckpt``) as our ``LegoPipeline`` folder.

What goes where (``ldm_layout`` accounts for every key):

- UNet: LitEma's copy ``model_ema.*`` (the weights the official sampler uses inside ``ema_scope()``; names are the
  UNet's with the dots removed, rebuilt here from the CompVis names), else ``model.diffusion_model.*``;
- VAE: ``first_stage_model.*`` (scale 0.18215, or the checkpoint's ``scale_factor`` buffer);
- ψ: ``cond_stage_model.transformer.*`` (a transformers ``CLIPTextModel``); its tokenizer is not in the checkpoint
  and comes from a local CLIP folder (``clip_text``);
- σ ← ``projection_img``, μ ← ``projection_txt``, π ← ``self_attn_mix.layers.*`` (pre-LN, 8 heads, no gate);
- the noise-schedule buffers are dropped after checking that they are SD's schedule, which the scheduler config
  written here (scaled-linear 0.00085-0.012, ε, Euler-ancestral) reproduces.

The SD parts are converted by diffusers' single-file utilities (``convert_ldm_unet_checkpoint``,
``convert_ldm_vae_checkpoint``, ``convert_ldm_clip_checkpoint``). Models are built on the meta device and take
the checkpoint's tensors as they are (``assign=True``), so a full-size import holds one copy of the weights.

Sampling the import as the official code does: 100 Euler-ancestral steps, s_c 7.5, s_x 1.5, 256 px, with the
unconditional branch ψ("") and zero VLLM tokens (``LegoPipeline`` does this). The official π has no padding mask:
give it H_t zero-padded to 77 rows with length 77 (``egolego import lego-features`` stores them so by default).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

from ..errors import InputError, MissingInput
from ..hf_quiet import quiet_loading
from ..ldm.build import SD_BETAS
from ..ldm.conditioner import LegoConditioner
from ..ldm.pipeline import PAPER_SAMPLING, LegoPipeline
from ..safe_load import first_line
from . import release
from .compvis_names import ema_name, unet_names, vae_names
from .ldm_layout import (
    CLIP,
    EMA,
    EMA_BOOKKEEPING,
    POSITION_IDS,
    SCHEDULE_BUFFERS,
    UNET,
    VAE,
    Ledger,
    indices,
    mixer_params,
    official_name,
    unet_params,
    vae_ddconfig,
)
from .lightning_ckpt import load_lightning, state_dict_of

OFFICIAL = {"steps": 100, "scheduler": "euler_a", "condition_guidance": 7.5, "image_guidance": 1.5}  # inference.py


def official_scheduler() -> EulerAncestralDiscreteScheduler:
    """k-diffusion's Euler-ancestral on SD's schedule, as ``metrics/inference.py`` samples (t from 999 to 0)."""
    return EulerAncestralDiscreteScheduler.from_config({**SD_BETAS, "prediction_type": "epsilon",
                                                        "timestep_spacing": "linspace"})


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")


def _check_tokenizer(led: Ledger, tok, clip_text) -> None:
    """The tokenizer must be the text encoder's: one id per row of its token embedding (CLIP's 49,408)."""
    rows = led.need(CLIP + "text_model.embeddings.token_embedding.weight").shape[0]
    if len(tok) != rows:
        raise InputError("clip_text", f"{clip_text}: its tokenizer has {len(tok)} tokens, the checkpoint's CLIP text "
                         f"embedding {rows} rows: not this model's tokenizer (openai/clip-vit-large-patch14's has 49408)")


def _clip_files(folder: str | Path | None) -> tuple:
    """(tokenizer, text config or None) from a local CLIP folder: a transformers CLIP model folder, or an SD-style
    folder with ``tokenizer/`` and ``text_encoder/``."""
    if folder is None:
        raise InputError("clip_text", "the checkpoint holds the CLIP text encoder's weights but not its tokenizer: "
                         "give a local copy of openai/clip-vit-large-patch14 (tokenizer files and config.json)")
    d = Path(folder)
    if not d.is_dir():
        raise MissingInput("clip_text", f"{d} is not a folder")
    tok = None
    for cand in (d, d / "tokenizer"):
        if not any((cand / f).is_file() for f in TOKENIZER_FILES):  # transformers would build an empty one
            continue
        try:
            with quiet_loading():
                tok = AutoTokenizer.from_pretrained(str(cand), local_files_only=True)
            break
        except (OSError, ValueError, TypeError, KeyError):
            continue
    if tok is None:
        raise InputError("clip_text", f"{d} holds no tokenizer (neither in the folder nor in tokenizer/)")
    config = None
    for cand in (d, d / "text_encoder"):
        if (cand / "config.json").is_file():
            config = CLIPTextConfig.from_pretrained(str(cand), local_files_only=True)
            break
    return tok, config


def _text_config(led: Ledger, config: CLIPTextConfig | None, tok) -> CLIPTextConfig:
    """The folder's text config, else one read from the weights (ViT-L/14's 64-wide heads, quick-GELU)."""
    if config is not None:
        return config
    vocab, d = led.need(CLIP + "text_model.embeddings.token_embedding.weight").shape
    layers = len(indices(led.sd, re.escape(CLIP) + r"text_model\.encoder\.layers\.(\d+)\."))
    return CLIPTextConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers, num_attention_heads=max(1, d // 64),
                          intermediate_size=led.need(CLIP + "text_model.encoder.layers.0.mlp.fc1.weight").shape[0],
                          max_position_embeddings=led.need(CLIP + "text_model.embeddings.position_embedding.weight").shape[0],
                          hidden_act="quick_gelu", pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id)


def _clip_names(text_encoder: CLIPTextModel) -> dict[str, str]:
    """{our key: the release's key}. The release's transformers (4.19) nested ``CLIPTextModel``'s modules under
    ``text_model``; transformers >= 5.6 flattened them (diffusers' single-file loader drops the prefix likewise)."""
    wrapped = hasattr(text_encoder, "text_model")
    return {k: CLIP + (k if wrapped else "text_model." + k) for k in text_encoder.state_dict()}


def _check_schedule(led: Ledger, scheduler) -> None:
    """The checkpoint's ``betas`` must be the schedule the written scheduler config reproduces."""
    if "betas" in led.sd:
        betas = led.sd["betas"].double()
        want = scheduler.betas.double()
        if betas.shape != want.shape or not torch.allclose(betas, want, rtol=1e-4, atol=1e-7):
            raise InputError("ldm", f"{led.path}: betas are not SD's scaled-linear 0.00085-0.012 schedule over "
                             f"{len(want)} steps that this import writes")


def _load(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Put ``state`` into a meta-built ``model`` (float32, contiguous); the ledger has checked every key already."""
    state = {k: v.float().contiguous() for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:  # the conversion and the ledger disagree: a bug here, not a bad file
        raise RuntimeError(f"{what}: conversion left missing {missing[:3]} / unexpected {unexpected[:3]}")


ARCH_ERRORS = (KeyError, IndexError, ZeroDivisionError, TypeError, AssertionError, RuntimeError, ValueError)


def _build(led: Ledger, tok, text_cfg, image_size: int, unet_heads: int, mixer_heads: int, image_tokens: int,
           text_tokens: int) -> dict:
    """The architecture read from the keys, and the empty (meta) models it gives."""
    sf = float(led.sd["scale_factor"]) if "scale_factor" in led.sd else sfu.LDM_VAE_DEFAULT_SCALING_FACTOR
    original = {"model": {"params": {"unet_config": {"params": unet_params(led, unet_heads)},
                                     "first_stage_config": {"params": {"ddconfig": vae_ddconfig(led)}},
                                     "scale_factor": sf}}}
    with warnings.catch_warnings():  # diffusers flags `image_size` for removal in 1.0; the release's is known
        warnings.simplefilter("ignore", FutureWarning)
        unet_cfg = sfu.create_unet_diffusers_config_from_ldm(original, led.sd, image_size=image_size)
        vae_cfg = sfu.create_vae_diffusers_config_from_ldm(original, led.sd, image_size=image_size,
                                                           scaling_factor=sf)
    text_from = "the --clip-text folder" if text_cfg is not None else "inferred from the weights (64-wide heads)"
    text_cfg = _text_config(led, text_cfg, tok)
    with init_empty_weights():
        unet = UNet2DConditionModel(**unet_cfg)
        vae = AutoencoderKL(**vae_cfg)
        text_encoder = CLIPTextModel(text_cfg)
    mix = mixer_params(led, mixer_heads)
    cond = LegoConditioner(**mix, dropout=0.1, mode="lego", image_tokens=image_tokens, text_tokens=text_tokens,
                           mask_padding=False)  # the official π reads H_t's zero rows: no padding mask
    p = original["model"]["params"]
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "conditioner": cond, "unet_cfg": unet_cfg,
            "vae_cfg": vae_cfg, "sf": sf, "report": {
                "unet_ldm_config": p["unet_config"]["params"], "vae_ddconfig": p["first_stage_config"]["params"]["ddconfig"],
                "scale_factor": sf, "conditioner": mix, "text_config": text_from}}


def _account(led: Ledger, m: dict, use_ema: bool) -> tuple[dict[str, str], bool]:
    """Fill the ledger (every key used or knowingly dropped) and check it; ({diffusers: CompVis} UNet names, EMA?)."""
    u_shapes = _shapes(m["unet"])
    u_names = unet_names(m["unet_cfg"], u_shapes)  # diffusers key -> CompVis key
    raw = {UNET + u_names[k]: s for k, s in u_shapes.items()}
    ema = {ema_name(u_names[k]): s for k, s in u_shapes.items()}
    if len(ema) != len(raw):
        raise InputError("ldm", f"{led.path}: two UNet parameters share one LitEma name; use --no-ema")
    has_ema = any(k.startswith(EMA) and k not in EMA_BOOKKEEPING for k in led.sd)
    take_ema = use_ema and has_ema
    led.expect(raw, "unet", drop="raw UNet weights (the EMA copy is used)" if take_ema else None)
    if has_ema:
        led.expect(ema, "unet", drop=None if take_ema else "EMA copy of the UNet (not chosen)")
    for k in EMA_BOOKKEEPING:
        led.drop(k, "LitEma bookkeeping")
    if "scale_factor" in led.sd:
        led.used["scale_factor"] = "vae"
    v_shapes = _shapes(m["vae"])
    v_names = vae_names(m["vae_cfg"], v_shapes)
    led.expect({VAE + v_names[k]: s for k, s in v_shapes.items()}, "vae",
               alt_shapes={VAE + v_names[k]: (*s, 1, 1) for k, s in v_shapes.items() if len(s) == 2})
    t_names = _clip_names(m["text_encoder"])
    led.expect({t_names[k]: s for k, s in _shapes(m["text_encoder"]).items()}, "text_encoder")
    led.drop(POSITION_IDS, "position_ids (rebuilt by transformers)")
    led.expect({official_name(k): s for k, s in _shapes(m["conditioner"]).items()}, "conditioner")
    for k in SCHEDULE_BUFFERS:
        led.drop(k, "noise-schedule buffers (the scheduler config replaces them)")
    led.check()
    widths = {"UNet context": m["unet_cfg"]["cross_attention_dim"], "CLIP text": m["text_encoder"].config.hidden_size,
              "projection_img": m["conditioner"].config.cross_attention_dim}
    if len(set(widths.values())) != 1:
        raise InputError("ldm", f"{led.path}: widths disagree: {widths}")
    return u_names, take_ema


def _convert(led: Ledger, m: dict, u_names: dict[str, str], take_ema: bool) -> None:
    """The checked keys into the models, the SD parts through diffusers' single-file utilities."""
    unet_src = {UNET + c: led.sd[ema_name(c) if take_ema else UNET + c] for c in u_names.values()}
    _load(m["unet"], sfu.convert_ldm_unet_checkpoint(unet_src, m["unet_cfg"]), "unet")
    vae_src = {k: v for k, v in led.sd.items() if k.startswith(VAE)}
    _load(m["vae"], sfu.convert_ldm_vae_checkpoint(vae_src, m["vae_cfg"]), "vae")
    clip_src = {k: v for k, v in led.sd.items() if k.startswith(CLIP) and k != POSITION_IDS}
    clip_sd = sfu.convert_ldm_clip_checkpoint(clip_src)  # the release's names, "text_model." + ...
    if not hasattr(m["text_encoder"], "text_model"):  # as diffusers does for transformers' flattened CLIPTextModel
        clip_sd = {k.removeprefix("text_model."): v for k, v in clip_sd.items()}
    _load(m["text_encoder"], clip_sd, "text_encoder")
    cond = m["conditioner"]
    _load(cond, {k: led.sd[official_name(k)] for k in cond.state_dict()}, "conditioner")


def convert_lego(ckpt: str | Path, clip_text: str | Path | None, image_size: int = release.IMAGE_SIZE,
                 use_ema: bool = True, unet_heads: int = 8, mixer_heads: int = 8,
                 image_tokens: int = release.IMAGE_TOKENS, text_tokens: int = release.TEXT_ROWS) -> tuple[LegoPipeline, dict]:
    """(the pipeline, a report of where every key went) for an official LEGO LDM checkpoint."""
    tok, text_cfg = _clip_files(clip_text)  # first: a missing tokenizer must not cost loading gigabytes
    obj = load_lightning(ckpt)
    led = Ledger(state_dict_of(obj, ckpt), Path(ckpt).name)
    _check_tokenizer(led, tok, clip_text)
    try:
        m = _build(led, tok, text_cfg, image_size, unet_heads, mixer_heads, image_tokens, text_tokens)
    except InputError:
        raise
    except ARCH_ERRORS as e:  # a crafted or foreign file whose shapes make no model
        raise InputError("ldm", f"{led.path}: cannot read an SD architecture from its keys ({first_line(e)})") from None
    u_names, take_ema = _account(led, m, use_ema)
    scheduler = official_scheduler()
    _check_schedule(led, scheduler)
    _convert(led, m, u_names, take_ema)
    tok.model_max_length = min(tok.model_max_length, m["text_encoder"].config.max_position_embeddings)
    for k in ("unet", "vae", "text_encoder", "conditioner"):
        m[k].eval()
    pipe = LegoPipeline(vae=m["vae"], text_encoder=m["text_encoder"], tokenizer=tok, unet=m["unet"],
                        scheduler=scheduler, conditioner=m["conditioner"], prediction="epsilon", residual=False,
                        sampling={**PAPER_SAMPLING, **OFFICIAL})
    meta = {k: obj[k] for k in ("epoch", "global_step", "pytorch-lightning_version") if isinstance(obj.get(k), (int, str))}
    ema_updates = int(led.sd["model_ema.num_updates"]) if "model_ema.num_updates" in led.sd else None
    report = {"checkpoint": str(Path(ckpt).resolve()), "unet_weights": "ema" if take_ema else "raw",
              "ema_updates": ema_updates, "lightning": meta, **m["report"], **led.summary()}
    return pipe, report


def lego_config(pipe: LegoPipeline, image_size: int):
    """The ``lego_config.yaml`` an imported model samples with: the paper preset with the release's settings."""
    from ..config import preset

    cfg = preset("paper")
    cfg.image_size = image_size
    c, m = cfg.ldm, pipe.conditioner.config
    c.conditioning, c.objective, c.prediction, c.residual = "lego", "ddpm", "epsilon", False
    c.conditioner_layers, c.conditioner_heads, c.conditioner_ffn, c.conditioner_dropout = (
        m.num_layers, m.num_heads, m.ffn_dim, m.dropout)
    c.conditioner_gate = "none"
    c.steps, c.scheduler = OFFICIAL["steps"], OFFICIAL["scheduler"]
    c.condition_guidance, c.image_guidance = OFFICIAL["condition_guidance"], OFFICIAL["image_guidance"]
    cfg.vllm.text_rows = m.text_tokens
    return cfg


def import_lego(ckpt: str | Path, out: str | Path, clip_text: str | Path | None, image_size: int = release.IMAGE_SIZE,
                use_ema: bool = True, overwrite: bool = False, vllm: str | Path | None = None,
                clip_vision: str | Path | None = None, **sizes) -> dict:
    """Write the model folder ``out`` (``LegoPipeline`` + ``lego_config.yaml`` + ``lego_import.json``, and with
    ``vllm`` the released LLaVA converted into ``out/vllm``, where ``generate`` looks); returns the report. The
    folder is written beside ``out`` and renamed, so an interrupted import leaves no half model."""
    from ..config import save

    out = Path(out)
    if out.is_dir() and any(out.iterdir()):  # never replace a folder that is not a model
        if not (out / "model_index.json").is_file():
            raise InputError("out", f"{out} is a non-empty folder that holds no LEGO model; give a new folder")
        if not overwrite:
            raise InputError("out", f"{out} already holds a model; pass --overwrite to replace it")
    elif out.exists() and not out.is_dir():
        raise InputError("out", f"{out} is a file; give a folder")
    llava = None
    if vllm is not None:  # first: its tower gives M, and a VLLM that cannot drive this LDM must cost no LDM import
        from ..vllm.model import image_tokens
        from .official_llava import convert_llava

        llava = convert_llava(vllm, clip_vision)
        sizes.setdefault("image_tokens", image_tokens(llava[0]))
    pipe, report = convert_lego(ckpt, clip_text, image_size=image_size, use_ema=use_ema, **sizes)
    if llava is not None:
        d_llava, d_ldm = llava[0].config.text_config.hidden_size, pipe.conditioner.config.vllm_dim
        if d_llava != d_ldm:
            raise InputError("vllm", f"{vllm}: a {d_llava}-wide LLaVA, but {ckpt} reads {d_ldm}-wide VLLM embeddings")
    tmp = out.with_name(out.name + ".importing")
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_loading():
        pipe.save_pretrained(str(tmp))
    save(lego_config(pipe, image_size), tmp / "lego_config.yaml")
    if llava is not None:
        from .official_llava import write_llava

        report["vllm"] = write_llava(*llava, tmp / "vllm")
    (tmp / "lego_import.json").write_text(json.dumps(report, indent=1))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return report
