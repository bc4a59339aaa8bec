"""The released LEGO VLLM (an original-layout LLaVA v1.0 folder) as transformers' ``LlavaForConditionalGeneration``.

The release (``bolinlai/LEGO-Ego4D`` / ``-EpicKitchens``, ``llava-llama-2-13b-chat-forecasting-finetune``) is a
folder of LLaVA at commit 898d73f: ``config.json`` of ``LlavaLlamaForCausalLM`` (LLaMA-2's keys plus ``mm_*``),
the weights as ``pytorch_model-*.bin`` shards (or safetensors) and LLaMA's tokenizer. What goes where:

- ``model.embed_tokens`` / ``model.layers.*`` / ``model.norm`` → ``model.language_model.*``; ``lm_head`` as it is.
  ``<image>`` (and ``<pad>`` where the tokenizer has no pad token and no ``<unk>``) is added to the tokenizer; its
  rows in the embedding and the LM head are the mean of the others (transformers' conversion does the same; the
  image rows are never read: the processor replaces them by the image tokens), and generation suppresses them.
- ``model.mm_projector`` (one ``nn.Linear`` in v1.0; ``mm_projector.0`` / ``.2`` for v1.5's ``mlp2x_gelu``) →
  ``multi_modal_projector``. transformers' projector is two linears with an activation, so a single linear maps to
  ``linear_1`` = W, the identity activation (``linear``) and ``linear_2`` = the identity matrix: exactly W x + b.
- The vision tower is named in the config (``mm_vision_tower``, CLIP ViT-L/14 at 224 px) and not stored: it comes
  from a local CLIP folder (``clip_vision``). Where a folder does store it (``model.vision_tower.vision_tower.*``),
  the stored weights are taken. ``mm_vision_select_layer`` (-2) → ``vision_feature_layer``; LLaVA's ``patch``
  selection (CLS dropped) → ``vision_feature_select_strategy="default"``. Image start / end tokens are refused: the
  release has none and transformers' Llava has no place for them.
- LLaMA's ``rotary_emb.inv_freq`` buffers (old checkpoints store them) are dropped knowingly.

Strict as the LDM import: every key is used or knowingly dropped, and what does not fit is named in one line.
``.bin`` shards are pickles: read by torch's weights-only loader (memory-mapped), so a file carrying code runs
nothing. The folder carries ``vllm_config.yaml`` with the release's way of asking: the ``llava_llama_2``
conversation, LEGO's inference prompt, temperature 0.2 and 1,024 new tokens (``official-code.md`` §2).
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import shutil
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    GenerationConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from ..config import VllmConfig
from ..data.llava_text import prompt_text, question
from ..errors import InputError, MissingInput
from ..hf_quiet import quiet_loading
from ..safe_load import first_line
from ..tokenizer import IMAGE_TOKEN
from ..vllm.settings import save_settings
from . import release
from .ldm_layout import Ledger

RELEASE_SETTINGS = dataclasses.replace(VllmConfig(), conversation="llava_llama_2", temperature=release.TEMPERATURE,
                                       max_new_tokens=release.MAX_NEW_TOKENS, text_rows=release.TEXT_ROWS,
                                       store_dtype="float16")
LLAMA_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
              "rope_scaling", "attention_bias", "bos_token_id", "eos_token_id", "pad_token_id")
TOWER = "model.vision_tower.vision_tower."
PROJECTORS = {None: "linear", "linear": "linear", "mlp2x_gelu": "gelu"}


def read_config(src: Path) -> dict:
    """The original folder's config.json, checked for what this importer maps."""
    f = src / "config.json"
    if not f.is_file():
        raise MissingInput("vllm", f"{src} is not a LLaVA folder (no config.json)")
    cfg = json.loads(f.read_text())
    if "mm_vision_tower" not in cfg:
        hint = " (already in transformers' format: use it as it is)" if "vision_config" in cfg else ""
        raise InputError("vllm", f"{f}: not an original-layout LLaVA config (no mm_vision_tower){hint}")
    if cfg.get("mm_use_im_start_end"):
        raise InputError("vllm", f"{f}: mm_use_im_start_end is true; image start/end tokens are not mapped "
                         "(the LEGO release has none)")
    if cfg.get("mm_projector_type") not in PROJECTORS:
        raise InputError("vllm", f"{f}: mm_projector_type {cfg['mm_projector_type']!r} is not mapped "
                         f"(known: linear, mlp2x_gelu)")
    return cfg


def _weight_files(src: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (src / index).is_file():
            names = sorted(set(json.loads((src / index).read_text())["weight_map"].values()))
            missing = [n for n in names if not (src / n).is_file()]
            if missing:
                raise MissingInput("vllm", f"{src}: shard {missing[0]} named in {index} is missing")
            return [src / n for n in names]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (src / single).is_file():
            return [src / single]
    raise MissingInput("vllm", f"{src} holds no weights (pytorch_model*.bin or model*.safetensors)")


def _torch_load(f: Path):
    """Weights-only, memory-mapped where the file is torch's zip format (a 13B folder is larger than our RAM)."""
    try:
        return torch.load(f, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap can only be used" not in str(e):
            raise
        return torch.load(f, map_location="cpu", weights_only=True)  # the legacy format: read into memory


def read_weights(src: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the folder's shards; ``.bin`` pickles through the weights-only loader, memory-mapped."""
    sd: dict[str, torch.Tensor] = {}
    for f in _weight_files(src):
        try:
            part = load_file(str(f)) if f.suffix == ".safetensors" else _torch_load(f)
        except pickle.UnpicklingError:  # a global outside the weights-only allow-list: code, or objects not tensors
            raise InputError("vllm", f"{f}: not a plain tensor file (torch's weights-only loader refused it: code, "
                             "objects other than tensors, or no checkpoint at all); nothing in it was run") from None
        except (OSError, RuntimeError, ValueError, EOFError) as e:  # truncated, not a torch / safetensors file
            raise InputError("vllm", f"{f}: not a plain tensor file ({first_line(e)})") from None
        if not isinstance(part, dict):
            raise InputError("vllm", f"{f}: holds a {type(part).__name__}, not a state dict")
        twice = set(part) & set(sd)
        if twice:
            raise InputError("vllm", f"{f}: key {sorted(twice)[0]} is also in another shard")
        sd.update(part)
    return sd


def _load_tokenizer(src: Path, **kwargs):
    try:
        with quiet_loading():
            tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as e:
        raise InputError("vllm", f"{src}: cannot read the tokenizer ({first_line(e)})") from None
    added = []
    if IMAGE_TOKEN not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
        added.append(IMAGE_TOKEN)
    if tok.pad_token is None:
        if tok.unk_token is not None:
            tok.pad_token = tok.unk_token
        else:
            tok.add_special_tokens({"pad_token": "<pad>"})
            added.append("<pad>")
    return tok, added


def llava_prompt_ids(tok, prompt: str) -> list[int]:
    """The ids LLaVA v1.0 feeds for ``prompt`` (its ``tokenizer_image_token``), one id per ``<image>``: the text
    between placeholders is tokenized piece by piece — each piece as a text of its own, so a LLaMA tokenizer starts
    it with its word-start piece — and every piece after the first loses its BOS."""
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    pieces = [tok(chunk).input_ids for chunk in prompt.split(IMAGE_TOKEN)]
    bos = 1 if pieces[0][:1] == [tok.bos_token_id] else 0
    ids = list(pieces[0])
    for piece in pieces[1:]:
        ids += [image_id] + piece[bos:]
    return ids


def _tokenizer(src: Path):
    """(the release's tokenizer with ``<image>`` added — and a pad token: LLaVA pads LLaMA with ``<unk>`` —, the
    added tokens, how the text after ``<image>`` is tokenized).

    LLaVA tokenizes the text after ``<image>`` as a text of its own (``llava_prompt_ids``); transformers' processor
    tokenizes the whole prompt, and a LLaMA tokenizer loaded with ``legacy: false`` (LLaMA-2's own setting) then
    drops the word-start piece (``▁``) that LLaVA's ids carry after the image. The release was tuned on LLaVA's ids,
    so the tokenizer is reloaded with ``legacy=True`` when that gives them; the check runs on the release's own
    prompt, and the report says which was kept."""
    probe = prompt_text(question(RELEASE_SETTINGS.inference_template, "open the drawer"), RELEASE_SETTINGS.conversation)
    tok, added = _load_tokenizer(src)
    if tok(probe).input_ids == llava_prompt_ids(tok, probe):
        return tok, added, "as LLaVA"
    legacy, legacy_added = _load_tokenizer(src, legacy=True)
    if legacy(probe).input_ids == llava_prompt_ids(legacy, probe):
        return legacy, legacy_added, "as LLaVA (reloaded with legacy=True)"
    print(f"[import] {src}: the prompt's ids differ from LLaVA's around <image>; kept the tokenizer as it loads",
          flush=True)
    return tok, added, "differs from LLaVA's around <image>"


def _vision(clip_vision: Path | None, dtype: torch.dtype, stored: bool):
    """(CLIPVisionConfig, its weights or None when the LLaVA folder stores them, the image processor)."""
    if clip_vision is None:
        raise MissingInput("clip_vision", "the LLaVA folder names its vision tower but does not store it: give a local "
                           "copy of it (openai/clip-vit-large-patch14) with --clip-vision")
    clip_vision = Path(clip_vision)
    try:
        with quiet_loading():
            vc = CLIPVisionConfig.from_pretrained(str(clip_vision), local_files_only=True)
            weights = None if stored else CLIPVisionModel.from_pretrained(
                str(clip_vision), dtype=dtype, local_files_only=True).state_dict()
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError("clip_vision", f"{clip_vision} is not a loadable CLIP folder ({first_line(e)})") from None
    if (clip_vision / "preprocessor_config.json").is_file():
        ip = CLIPImageProcessor.from_pretrained(str(clip_vision), local_files_only=True)
    else:  # CLIP's own preprocessing: shortest side to the tower's size, centre crop, CLIP mean / std
        ip = CLIPImageProcessor(size={"shortest_edge": vc.image_size},
                                crop_size={"height": vc.image_size, "width": vc.image_size})
    return vc, weights, ip


PROJECTOR_KEYS = {"weight": "linear_1.weight", "bias": "linear_1.bias", "0.weight": "linear_1.weight",
                  "0.bias": "linear_1.bias", "2.weight": "linear_2.weight", "2.bias": "linear_2.bias"}


def _target(k: str) -> tuple[str, str] | None:
    """(our key, the part it builds) for an original key, or None where it has no place (unexpected)."""
    if k.startswith(TOWER):
        return "model.vision_tower." + k[len(TOWER):].removeprefix("vision_model."), "vision tower (stored)"
    if k.startswith("model.mm_projector."):
        layer = PROJECTOR_KEYS.get(k[len("model.mm_projector."):])
        return ("model.multi_modal_projector." + layer, "projector") if layer else None
    if k == "lm_head.weight":
        return k, "LM head"
    if k.startswith("model."):
        return "model.language_model." + k[len("model."):], "language model"
    return None


def _mapped(led: Ledger, cfg: dict, vision_weights: dict | None, d_text: int, dtype: torch.dtype) -> tuple[dict, dict]:
    """(our state dict, our key -> the original key) from the original one (and the CLIP folder's tower); the
    ledger records each original key's fate."""
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for k, v in led.sd.items():
        if re.fullmatch(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq", k):
            led.drop(k, "LLaMA's rotary frequencies (recomputed)")
        elif (t := _target(k)) is not None:
            out[t[0]], origin[t[0]], led.used[k] = v, k, t[1]
    if PROJECTORS[cfg.get("mm_projector_type")] == "linear":  # one linear: linear_2 passes its output through
        out["model.multi_modal_projector.linear_2.weight"] = torch.eye(d_text, dtype=dtype)
        out["model.multi_modal_projector.linear_2.bias"] = torch.zeros(d_text, dtype=dtype)
    for k, v in (vision_weights or {}).items():
        out["model.vision_tower." + k.removeprefix("vision_model.")] = v
    return out, origin


def _grow(t: torch.Tensor, rows: int) -> torch.Tensor:
    """(V, D) -> (rows, D): the new rows are the mean of the old ones."""
    if t.shape[0] >= rows:
        return t
    return torch.cat([t, t.float().mean(0, keepdim=True).to(t.dtype).expand(rows - t.shape[0], -1)])


def convert_llava(src: str | Path, clip_vision: str | Path | None) -> tuple:
    """(model, processor, report) of the original-layout folder ``src``."""
    src = Path(src)
    cfg = read_config(src)
    sd = read_weights(src)
    led = Ledger(sd, src, arg="vllm", layout="an original-layout LLaVA v1.0 folder")
    emb = led.need("model.embed_tokens.weight")
    dtype = emb.dtype
    stored = any(k.startswith(TOWER) for k in sd)
    vc, vision_weights, image_processor = _vision(clip_vision, dtype, stored)
    if cfg.get("mm_hidden_size", vc.hidden_size) != vc.hidden_size:
        raise InputError("clip_vision", f"{clip_vision}: a {vc.hidden_size}-wide tower, but {src} was tuned on a "
                         f"{cfg['mm_hidden_size']}-wide one ({cfg['mm_vision_tower']})")
    tok, added, prompt_ids = _tokenizer(src)
    rows = max(emb.shape[0], len(tok))
    tc = LlamaConfig(**{k: cfg[k] for k in LLAMA_KEYS if k in cfg})
    tc.vocab_size, tc.pad_token_id, tc.tie_word_embeddings = rows, tok.pad_token_id, False
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    lc = LlavaConfig(vision_config=vc, text_config=tc, image_token_id=image_id,
                     vision_feature_layer=cfg.get("mm_vision_select_layer", -2),
                     vision_feature_select_strategy="default",
                     projector_hidden_act=PROJECTORS[cfg.get("mm_projector_type")])
    with init_empty_weights():
        model = LlavaForConditionalGeneration(lc)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    new, origin = _mapped(led, cfg, vision_weights, tc.hidden_size, dtype)
    for k in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        if k in new:
            new[k] = _grow(new[k], rows)
    for k, v in new.items():
        if k not in want:  # mapped, but the model has no place for it: unexpected
            led.used.pop(origin.get(k, k), None)
        elif tuple(v.shape) != want[k]:
            led.misshaped[origin.get(k, k)] = f"{tuple(v.shape)} (expected {want[k]})"
            led.used.pop(origin.get(k, k), None)
    led.missing += [re.sub(r"^model\.language_model\.", "model.", k) for k in want if k not in new]
    led.check()
    model.load_state_dict(new, strict=True, assign=True)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id,
                                               suppress_tokens=[tok.convert_tokens_to_ids(t) for t in added])
    proc = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=vc.patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1)
    report = {"source": str(src), "vision_tower": "stored" if stored else str(clip_vision),
              "mm_vision_tower": cfg["mm_vision_tower"], "projector": cfg.get("mm_projector_type") or "linear",
              "added_tokens": added, "prompt_ids": prompt_ids, "dtype": str(dtype).removeprefix("torch."),
              "image_aspect_ratio": cfg.get("image_aspect_ratio", "square"), **led.summary()}
    return model, proc, report


def write_llava(model, proc, report: dict, out: str | Path) -> dict:
    """Save a converted LLaVA to ``out`` with the release's settings and the report (``llava_import.json``)."""
    out = Path(out)
    with quiet_loading():
        model.save_pretrained(str(out))
        proc.save_pretrained(str(out))
    save_settings(RELEASE_SETTINGS, out)
    (out / "llava_import.json").write_text(json.dumps(report, indent=1))
    return report


def import_llava(src: str | Path, out: str | Path, clip_vision: str | Path | None) -> dict:
    """Write ``out`` (a transformers LLaVA folder + ``vllm_config.yaml`` + ``llava_import.json``); returns the
    report. Written beside ``out`` and renamed, so an interrupted import leaves no half folder."""
    out = Path(out)
    converted = convert_llava(src, clip_vision)
    tmp = out.with_name(out.name + ".importing")
    shutil.rmtree(tmp, ignore_errors=True)
    report = write_llava(*converted, tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return report
