"""The stages that ``egolego demo`` and ``egolego reproduce`` share, each resumable and announced on one line.

EgoSynth → data build (EPIC files) → curate (geometric) → tokenizer → VLLM tune → enrich (description R, H_i, H_t)
→ [the tiny VAE, when the recipe uses one] → LDM training of one conditioning mode. Every stage reuses what an
earlier run left in the same folder, so a killed run resumes where it stopped. The stages write the run's effective
values (scaled epochs and scenes, the folders they made) into the ``cfg`` they are given: pass the run's own copy
(``run_demo`` and ``reproduce`` make one).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .data.manifest import read_manifest
from .synth.dataset import SynthArgs, generate


class Stage:
    """One progress line when a stage starts, one when it ends; the wall time goes to ``TIMINGS``."""

    command = "demo"  # the lines' prefix: the command running the stages (``run_reproduce`` sets "reproduce")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        print(f"[{self.command}] {self.name} ...", flush=True)
        self.t0 = time.perf_counter()
        return self

    def done(self, what: str) -> None:
        print(f"[{self.command}]   {what} ({time.perf_counter() - self.t0:.0f}s)", flush=True)

    def __exit__(self, *exc):
        TIMINGS[self.name] = round(time.perf_counter() - self.t0, 1)
        return False


TIMINGS: dict[str, float] = {}  # stage -> seconds of the last run_demo (benchmarks/bench_demo.py reads it)




@dataclass
class Prepared:
    """What the shared stages made in a run folder."""

    data: Path  # EgoSynth
    pairs: Path  # the pairs manifest (descriptions: the tuned VLLM's after enrichment)
    tokenizer: Path
    vllm: Path  # the tuned VLLM's model folder
    store: Path  # its embedding store
    vae: Path | None  # the tiny VAE, when ldm.autoencoder is vae
    vision_tower: Path | None = None  # the tiny VLLM's pre-trained vision tower (None with a real LLaVA)


def prepare(cfg: Config, out: Path, scale: float = 1.0) -> Prepared:
    """Data, descriptions, the tuned VLLM and its embeddings (and the tiny VAE if the recipe needs one).

    ``scale`` shortens the vision pre-training, the VLLM tuning and the VAE training (the demo's ``--minutes``).
    The stages work on a copy of ``cfg``: what they make is returned in ``Prepared``, the caller's config is unchanged."""
    cfg = copy.deepcopy(cfg)
    out.mkdir(parents=True, exist_ok=True)
    data, pairs, tuning, tok_dir, vllm_dir = (out / n for n in ("egosynth", "pairs", "tuning.json", "tokenizer", "vllm"))
    egosynth_stage(cfg, data)
    pairs_stage(cfg, data, pairs)
    curate_stage(pairs, tuning)
    tokenizer_stage(cfg, pairs, tok_dir)
    if not cfg.vllm.model:  # a real LLaVA brings its own pre-trained CLIP tower
        vision_stage(cfg, out / "vision_tower", scale)
    vllm_stage(cfg, tuning, pairs, tok_dir, vllm_dir, scale)
    store = enrich_stage(cfg, vllm_dir / "model", pairs, out / "embeddings")
    vae_dir = vae_stage(cfg, pairs, out / "vae", scale) if cfg.ldm.autoencoder == "vae" else None
    tower = Path(cfg.vllm.vision_tower) if cfg.vllm.vision_tower else None
    return Prepared(data, pairs, tok_dir, vllm_dir / "model", store, vae_dir, tower)


def egosynth_stage(cfg: Config, data: Path) -> None:
    with Stage(f"EgoSynth: {cfg.synth.actions} actions at {cfg.synth.size}px ({','.join(cfg.synth.formats)}; "
               f"knowledge: {cfg.synth.knowledge})") as s:
        args = SynthArgs(out=data, actions=cfg.synth.actions, size=cfg.synth.size, seed=cfg.synth.seed,
                         formats=tuple(cfg.synth.formats), workers=cfg.synth.workers,
                         actions_per_scene=cfg.synth.actions_per_scene, knowledge=cfg.synth.knowledge)
        marker = data / "egosynth.json"
        if marker.exists() and all(json.loads(marker.read_text()).get(k) == v for k, v in args.fingerprint().items()):
            s.done(f"reused {data}")
        else:
            generate(SynthArgs(**{**args.__dict__, "overwrite": True}), progress=False)
            s.done(str(data))


def pairs_stage(cfg: Config, data: Path, pairs: Path) -> None:
    from .data.build import BuildArgs, build

    with Stage("data build: EPIC files -> pairs (best-of-7 sharpness, pixel similarity filter)") as s:
        if (pairs / "pairs.parquet").exists():
            s.done(f"reused {pairs}")
        else:
            sm = build(BuildArgs(source="epic", root=data / "epic", out=pairs, frames_from="jpg", size=cfg.image_size,
                                 workers=cfg.synth.workers), progress=False)
            s.done(f"{sm['kept']} pairs ({sm['train']} train / {sm['test']} test), dropped {sm['dropped']}")


def curate_stage(pairs: Path, tuning: Path) -> None:
    from .curate.run import curate

    with Stage("curate: geometric descriptions + LLaVA tuning JSON") as s:
        if tuning.exists():
            s.done(f"reused {tuning}")
        else:
            sm = curate(pairs, tuning, "geometric", progress=False)
            s.done(f"{sm['tuning_records']} tuning records")


def tokenizer_stage(cfg: Config, pairs: Path, tok_dir: Path) -> None:
    """One tokenizer for the VLLM and ψ (ψ reads its first ``tokenizer.model_max_length`` tokens)."""
    from .data.llava_text import QUESTION_TEMPLATES
    from .tokenizer import train_tokenizer

    if not (tok_dir / "tokenizer.json").exists():
        tc = cfg.tokenizer
        texts = [t for r in read_manifest(pairs) for t in (r["label"], r["description"])] + QUESTION_TEMPLATES
        train_tokenizer(texts, tok_dir, tc.shared_vocab_size, tc.shared_max_length, tc.min_frequency)


def vision_stage(cfg: Config, tower_dir: Path, scale: float = 1.0) -> None:
    """The tiny LLaVA's vision tower, pre-trained on EgoSynth patch labels (``vllm.vision_pretrain``);
    ``scale`` shrinks the number of scenes (time is linear in it)."""
    from .synth.patch_labels import scene_patch_labels
    from .vllm.vision_pretrain import pretrain_vision_tower

    pc = cfg.vllm.vision_pretrain
    pc.scenes = max(pc.batch_size, int(round(pc.scenes * scale)))
    with Stage("VLLM: vision tower pre-training (EgoSynth patch labels)") as s:
        r = pretrain_vision_tower(pc, tower_dir, scene_patch_labels, cfg.vllm.tiny_llava, progress=False,
                                  knowledge=cfg.synth.knowledge)
        q = r["held_out"]
        s.done(("reused " if r.get("reused") else "") + f"{r['scenes']} scenes x {r['epochs']} epochs; held-out "
               f"label F1 {q['label_f1']}, state F1 {q.get('state_f1', '-')}, side accuracy {q['side_accuracy']}")
    cfg.vllm.vision_tower = str(tower_dir)


def vllm_stage(cfg: Config, tuning: Path, pairs: Path, tok_dir: Path, vllm_dir: Path, scale: float) -> None:
    """Tune the tiny LLaVA on the curated records, plus ``vllm.synthetic_records`` rendered ones (scaled)."""
    from .vllm.tune import VllmTuner

    v = cfg.vllm
    n_scenes = int(round(v.synthetic_records * scale))
    with Stage("VLLM: visual instruction tuning (tiny LLaVA" + (f", + {n_scenes} rendered scenes)" if n_scenes else ")")) as s:
        if (vllm_dir / "model" / "config.json").exists():
            s.done(f"reused {vllm_dir / 'model'}")
        else:
            v.tokenizer = str(tok_dir)
            data, images = tuning, pairs
            if n_scenes:
                data, images = with_scene_records(tuning, pairs, vllm_dir.parent, n_scenes, v.seed, cfg.image_size,
                                                  cfg.synth.knowledge)
                v.epochs = v.synthetic_epochs
            else:
                v.epochs = max(2, int(round(v.epochs * scale)))
            r = VllmTuner(cfg, data, images, vllm_dir).run(progress=False, resume=(vllm_dir / "checkpoints").exists())
            epochs = f"{v.epochs} epoch" + ("s" if v.epochs != 1 else "")
            s.done(f"{epochs}, last loss {r['losses'][-1]:.3f}" if r["losses"] else "resumed")


def with_scene_records(tuning: Path, pairs: Path, run: Path, n: int, seed: int, size: int,
                       knowledge: str = "none") -> tuple[Path, Path]:
    """(records, image root) of the curated records and ``n`` rendered ones: image paths relative to the run folder,
    or absolute for images outside it (``egolego vllm tune --images`` may point anywhere)."""
    from .data.llava_records import read_json, write_json
    from .tuning_stills import write_tuning_records

    def under_run(folder: Path) -> Path:
        folder = folder.resolve()
        return folder.relative_to(run.resolve()) if folder.is_relative_to(run.resolve()) else folder

    records = [{**r, "image": str(under_run(pairs) / r["image"])} for r in read_json(tuning)]  # refused before rendering
    scenes = write_tuning_records(run / "tuning_scenes", n, seed, size, knowledge)
    records += [{**r, "image": str(under_run(scenes.parent) / r["image"])} for r in read_json(scenes)]
    merged = run / "tuning_with_scenes.json"
    write_json(records, merged)
    return merged, run


def enrich_stage(cfg: Config, model: Path, pairs: Path, store: Path) -> Path:
    from .vllm.enrich import enrich

    with Stage("VLLM: enrich every pair (description R, H_i, H_t)") as s:
        sm = enrich(model, pairs, store, batch_size=32, progress=False, settings=cfg.vllm)
        s.done(f"{sm['stored']} pairs in the store, {sm['bytes_per_pair'] / 1024:.1f} KiB/pair")
    return store


def vae_stage(cfg: Config, pairs: Path, vae_dir: Path, scale: float) -> Path:
    """The paper-like recipe (``ldm.autoencoder: vae``) needs the tiny preset's own trained VAE."""
    from .ldm.vae_train import train_vae

    with Stage("autoencoder (the tiny preset trains its own)") as s:
        if (vae_dir / "quality.json").exists():
            q = json.loads((vae_dir / "quality.json").read_text())
        else:
            cfg.vae.steps = max(50, int(round(240 * scale)))
            q = train_vae(cfg, pairs, vae_dir, progress=False)
        s.done(f"held-out reconstruction PSNR {q['psnr_heldout_db']} dB")
    cfg.ldm.vae = str(vae_dir)
    return vae_dir


def train_ldm(cfg: Config, p: Prepared, mode: str, steps: int, run: Path, store: Path | None = None,
              pairs: Path | None = None, name: str | None = None, deadline: float | None = None) -> Path:
    """Train one conditioning mode (reused when its model exists; resumed from its checkpoints). ``store`` and
    ``pairs`` default to the prepared ones (``reproduce`` passes the untuned VLLM's); ``name`` labels the stage
    (default: the mode); ``deadline`` (``time.monotonic()``) ends the training early when the clock says so."""
    from .methods import method

    cfg = copy.deepcopy(cfg)  # the caller's config stays as it was: this model's settings are set on a copy
    c = cfg.ldm
    m = method(mode)
    shown = m.recipe(cfg)  # the recipe its trainer will use (t2i: its own), for the announcement
    with Stage(f"LDM: train `{name or mode}` ({steps} steps of {shown.batch_size}, {shown.objective} / "
               f"{shown.prediction}{' residual' if shown.residual else ''}, autoencoder {shown.autoencoder})") as s:
        if (run / "model" / "model_index.json").exists():
            s.done(f"reused {run / 'model'}")
        else:
            c.tokenizer, c.conditioning, c.max_steps, c.checkpoint_every = str(p.tokenizer), mode, steps, 100
            c.vae = str(p.vae) if p.vae else None
            r = m.trainer()(cfg, pairs or p.pairs, store or p.store, run).run(resume=(run / "checkpoints").exists(),
                                                                          progress=False, deadline=deadline)
            cut = f"; stopped by the clock after {r['end']} of {steps} steps" if r["end"] < steps else ""
            s.done((f"last loss {r['losses'][-1]:.3f}" if r["losses"] else "resumed") + cut)
    if m.kind == "lego" and c.change_mask and (run / "model" / "model_index.json").exists():
        from .ldm.change_mask_train import train_configured_mask

        with Stage(f"LDM: the change mask of `{name or mode}` (its frames of its training pairs, "
                   f"{c.change_mask_steps} steps)") as s:
            q = train_configured_mask(c, run / "model", pairs or p.pairs, store or p.store, progress=False)
            s.done("reused" if q is None else f"held-out IoU {q['iou']:.3f}, recall {q['recall']:.3f}, "
                   f"specificity {q['specificity']:.3f}")
    return run / "model"


def timeline_stage(cfg: Config, p: Prepared, lego: Path, steps: int, out: Path, actions: int) -> tuple[dict, Path]:
    """The action as a clip: timeline pairs (``data build --timeline 4`` with the enriched descriptions), the ``lego``
    model extended with a progress input (``ldm.init_from``, finished frames shown 3 times, a fifth of the recipe's
    learning rate — at the full rate the extended model lost 4 points at p = 1 on test seed 2, at a fifth none:
    RESULTS.md "eval-timeline") for ``steps`` steps, and ``eval-timeline`` on the first ``actions`` test actions beside
    the single-frame model. (result, its folder)."""
    from .data.build import BuildArgs, build
    from .data.manifest import update_column
    from .eval.timeline import TimelineArgs, evaluate_timeline

    pairs = out / "pairs_timeline"
    with Stage("timeline pairs: data build --timeline 4 (the frames along each action)") as s:
        if (pairs / "pairs.parquet").exists():
            s.done(f"reused {pairs}")
        else:
            sm = build(BuildArgs(source="epic", root=p.data / "epic", out=pairs, frames_from="jpg", size=cfg.image_size,
                                 workers=cfg.synth.workers, timeline=4), progress=False)
            update_column(pairs, "description", {r["pair_id"]: r["description"] for r in read_manifest(p.pairs)})
            s.done(f"{sm['timeline_pairs']} timeline pairs beside {sm['kept']} actions")
    c = copy.deepcopy(cfg)
    c.ldm.progress, c.ldm.init_from, c.ldm.progress_done_repeat, c.ldm.lr = True, str(lego), 3, cfg.ldm.lr / 5
    c.ldm.change_mask = False  # a mask learnt on finished frames would cut a half-done arm (not measured part-way)
    model = train_ldm(c, p, "lego", steps, out / "ldm_lego_clips", pairs=pairs, name="lego with progress, from the lego model")
    ev = out / "eval" / "timeline"
    with Stage(f"eval-timeline on {actions} test actions (judge, PSNR/SSIM per progress)") as s:
        if (ev / "timeline.json").exists() and json.loads((ev / "timeline.json").read_text())["actions"] == actions:
            s.done(f"reused {ev}")
        else:
            r = evaluate_timeline(TimelineArgs(model=model, pairs=pairs, out=ev, single=lego, store=p.store,
                                               egosynth=p.data, actions=actions), progress=False)
            at = r["by_p"]["progress"].get("action_all", {})
            s.done("progress model all-correct " + ", ".join(f"p={b}: {v['mean'] * 100:.0f} %" for b, v in at.items()))
    return json.loads((ev / "timeline.json").read_text()), ev
