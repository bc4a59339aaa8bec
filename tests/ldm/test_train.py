"""LDM training: CFG dropout bands, σ/μ/π really trained, resume = straight run, data errors."""

import json

import pytest
import torch

from egolego import config
from egolego.ldm.data import LegoPairs, flip_allowed, swap_sides
from egolego.ldm.train import Trainer, cfg_dropout, lr_schedule


def _cfg(mode="lego", steps=6, every=3):
    """The tiny preset's sizes with the paper's recipe (DDPM, ε, a random 4-channel VAE): training mechanics only."""
    cfg = config.preset("tiny")
    cfg.ldm = config.LdmConfig(vae="random", from_base=False)  # the tiny UNet, built here
    cfg.ldm.conditioning, cfg.ldm.max_steps, cfg.ldm.checkpoint_every, cfg.ldm.batch_size = mode, steps, every, 4
    return cfg


def test_dropout_bands():
    r = torch.rand(10_000, generator=torch.Generator().manual_seed(0))
    drop_c, drop_x = cfg_dropout(r)
    only_c = (drop_c & ~drop_x).float().mean().item()
    both = (drop_c & drop_x).float().mean().item()
    only_x = (~drop_c & drop_x).float().mean().item()
    for v in (only_c, both, only_x):
        assert abs(v - 0.05) <= 0.01
    assert abs((~drop_c & ~drop_x).float().mean().item() - 0.85) <= 0.01


def test_a_training_step_blanks_text_zeroes_vllm_tokens_and_image_latent(pairs8, store8, tmp_path, monkeypatch):
    """Samples 0-3 draw: drop C only, drop C and X, drop X only, nothing. What reaches the UNet must show it:
    ψ("") and zero VLLM rows for a dropped C, a zero image latent for a dropped X, and untouched otherwise."""
    from egolego.ldm import train as train_mod

    pattern = (torch.tensor([True, True, False, False]), torch.tensor([False, True, True, False]))
    monkeypatch.setattr(train_mod, "cfg_dropout", lambda r, p=0.05: pattern)
    tr = Trainer(_cfg(steps=1), pairs8, store8, tmp_path)
    tr.acc.unwrap_model(tr.model).eval()  # no dropout inside π: zero rows stay exactly zero
    seen = []
    unet = tr.acc.unwrap_model(tr.model).unet
    hook = unet.register_forward_hook(lambda m, a, kw, out: seen.append((a[0], kw["encoder_hidden_states"])),
                                      with_kwargs=True)
    with torch.no_grad():
        tr.micro_step(0)
    hook.remove()
    sample, context = seen[0]  # (4, 2c, h, w): [z_t ; image latent], (4, 77 + M + N, D)
    c = sample.shape[1] // 2
    tok, te = tr.parts["tokenizer"], tr.parts["text_encoder"]
    ids = tok([""], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    blank = te(ids.input_ids)[0][0]  # ψ(""): (77, D)
    n = blank.shape[0]
    for i, (dc, dx) in enumerate(zip(*pattern)):
        image_lat, text, vllm = sample[i, c:], context[i, :n], context[i, n:]
        assert (torch.count_nonzero(image_lat) == 0) == bool(dx), i
        assert torch.allclose(text, blank, atol=1e-5) == bool(dc), i
        assert (torch.count_nonzero(vllm) == 0) == bool(dc), i


def test_sigma_mu_pi_get_gradients_and_change(pairs8, store8, tmp_path):
    """Regression test for the official code, whose optimizer never sees the projections."""
    tr = Trainer(_cfg(steps=1), pairs8, store8, tmp_path)
    cond = tr.acc.unwrap_model(tr.model).conditioner
    before = {k: v.detach().clone() for k, v in cond.named_parameters()}
    loss = tr.micro_step(0)
    tr.acc.backward(loss)
    for name in ("sigma.weight", "mu.weight", "pi.layers.0.self_attn.in_proj_weight", "pi.layers.1.linear2.weight"):
        g = dict(cond.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name
    tr.opt.step()
    after = dict(cond.named_parameters())
    for prefix in ("sigma.", "mu.", "pi."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix


def test_resume_equals_straight_run(pairs8, store8, tmp_path):
    straight = Trainer(_cfg(), pairs8, store8, tmp_path / "a").run(progress=False)
    first = Trainer(_cfg(), pairs8, store8, tmp_path / "b").run(stop_after=3, progress=False)  # then "killed"
    assert (tmp_path / "b" / "checkpoints" / "step-0000003").is_dir() and not (tmp_path / "b" / "model").exists()
    second = Trainer(_cfg(), pairs8, store8, tmp_path / "b").run(resume=True, progress=False)
    assert second["start"] == 3
    assert first["losses"] + second["losses"] == straight["losses"]
    log = [json.loads(x)["loss"] for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 6
    from safetensors.torch import load_file
    for part in ("unet", "conditioner"):
        a = load_file(next((tmp_path / "a" / "model" / part).glob("*.safetensors")))
        b = load_file(next((tmp_path / "b" / "model" / part).glob("*.safetensors")))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part


def test_lr_schedule_constant_or_cosine_to_zero():
    c = config.LdmConfig(lr=1e-3, warmup_steps=2, max_steps=10)

    def rates(name):
        c.lr_schedule = name
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=c.lr)
        sched = lr_schedule(opt, c)
        out = []
        for _ in range(c.max_steps):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr()[0])
        return out

    constant, cosine = rates("constant"), rates("cosine")
    assert constant[1:] == [1e-3] * 9  # after the 2-step warm-up
    assert cosine[1] == pytest.approx(1e-3) and all(a > b for a, b in zip(cosine[1:], cosine[2:]))
    assert cosine[-1] == pytest.approx(0, abs=1e-12)
    c.lr_schedule = "linear"
    with pytest.raises(ValueError, match="ldm.lr_schedule"):
        lr_schedule(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), c)


def test_keep_last_k_checkpoints(pairs8, store8, tmp_path):
    cfg = _cfg(mode="label", steps=4, every=1)
    cfg.ldm.keep_checkpoints = 2
    Trainer(cfg, pairs8, None, tmp_path).run(progress=False)
    assert [p.name for p in sorted((tmp_path / "checkpoints").glob("step-*"))] == ["step-0000003", "step-0000004"]
    assert not list((tmp_path / "checkpoints").glob(".tmp*"))


def test_flip_keeps_text_consistent():
    assert swap_sides("The person takes the cup on the left with the Right hand.") == \
        "The person takes the cup on the right with the Left hand."
    assert swap_sides("leftover bright") == "leftover bright"
    assert flip_allowed("desc", "auto") and flip_allowed("label", "auto")
    assert not flip_allowed("lego", "auto") and not flip_allowed("desc+img", "auto")  # embeddings can't flip
    with pytest.raises(ValueError, match="unflipped"):
        flip_allowed("lego", "swap")


def test_clear_data_errors(pairs8, tmp_path):
    with pytest.raises(ValueError, match="mode 'lego' needs the store written by `egolego vllm enrich`") as e:
        LegoPairs(pairs8, "train", None, "lego")
    assert e.value.flag == "--embeddings"
    with pytest.raises(ValueError, match="no embeddings"):
        (tmp_path / "index-0.json").write_text(json.dumps({"fingerprint": "x", "dtype": "float16", "image_shape": [16, 8],
                                                           "text_shape": [77, 8], "entries": {}}))
        LegoPairs(pairs8, "train", tmp_path, "desc+img")
    with pytest.raises(ValueError, match="split"):
        LegoPairs(pairs8, "nonexistent", None, "label")


def test_generate_cli(pairs8, tmp_path, capsys):
    from PIL import Image

    from egolego.cli import main
    from egolego.data.manifest import read_manifest, resolve
    Trainer(_cfg(mode="label", steps=2, every=2), pairs8, None, tmp_path / "run").run(progress=False)
    src = resolve(pairs8, read_manifest(pairs8)[0]["target_full_path"])
    out = tmp_path / "out.png"
    assert main(["generate", "--model", str(tmp_path / "run" / "model"), "--image", str(src), "--action",
                 "take cup", "--out", str(out), "--steps", "2"]) == 0
    assert Image.open(out).size == Image.open(src).size  # back at the input's aspect ratio
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert main(["generate", "--model", str(tmp_path / "run" / "model"), "--image", str(bad), "--action", "x",
                 "--out", str(out)]) == 2
    assert main(["generate", "--model", str(tmp_path), "--image", str(src), "--action", "x", "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("egolego generate: error:")]
    assert len(err) == 2 and "--image" in err[0] and "--model" in err[1]


def test_a_deadline_ends_the_run_with_a_model_that_says_how_long_it_trained(pairs8, store8, tmp_path):
    """The demo's budget follows the clock: a passed deadline stops after the step that passed it, exports the
    model, and its saved config holds the steps it reached, not the 6 asked for."""
    import time

    from egolego.config import load

    r = Trainer(_cfg(steps=6, every=100), pairs8, store8, tmp_path).run(progress=False, deadline=time.monotonic())
    assert (r["start"], r["end"], len(r["losses"])) == (0, 1, 1)
    assert (tmp_path / "model" / "model_index.json").exists()
    assert load(tmp_path / "model" / "lego_config.yaml").ldm.max_steps == 1
    assert load(tmp_path / "config.yaml").ldm.max_steps == 1
    r = Trainer(_cfg(steps=3, every=100), pairs8, store8, tmp_path / "b").run(progress=False,
                                                                              deadline=time.monotonic() + 3600)
    assert r["end"] == 3 and load(tmp_path / "b" / "config.yaml").ldm.max_steps == 3
