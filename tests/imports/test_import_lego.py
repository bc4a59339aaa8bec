"""``egolego import lego`` on a tiny checkpoint in the release's layout: the imported pipeline computes what the
official modules compute with the same weights (UNet, ψ + σ/μ/π, two k-diffusion Euler-ancestral steps)."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoTokenizer

from egolego.ldm.generate import load_pipeline, sampling_for

from .official_files import D_VLLM, SIZE, M

PROMPT = "the person opens the drawer on the right"


@pytest.fixture(scope="module")
def pipe(imported):
    return load_pipeline(imported)


@pytest.fixture(scope="module")
def vllm_inputs():
    g = torch.Generator().manual_seed(7)
    h_img = torch.randn(1, M, D_VLLM, generator=g)  # (1, M, D_vllm)
    h_txt = torch.zeros(1, 77, D_VLLM)  # (1, 77, D_vllm): 5 generated tokens, zero-padded as egogen_dataset.py
    h_txt[:, :5] = torch.randn(1, 5, D_VLLM, generator=g)
    return h_img, h_txt


def official_context(release, prompt: str, h_img, h_txt, drop: bool = False) -> torch.Tensor:
    """``c_crossattn`` as metrics/inference.py builds it: [CLIP(prompt), σ(H_i), π(μ(H_t))], unmasked; the
    unconditional branch: CLIP("") and zeros after the projections."""
    p = release["parts"]
    tok = AutoTokenizer.from_pretrained(str(release["clip"]))
    ids = tok([prompt], truncation=True, max_length=77, padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        img, txt = p["projection_img"](h_img), p["self_attn_mix"](p["projection_txt"](h_txt))
        if drop:
            img, txt = torch.zeros_like(img), torch.zeros_like(txt)
        return torch.cat([p["text"](ids).last_hidden_state, img, txt], dim=1)  # (1, 77 + M + 77, D)


def test_unet_is_the_ema_copy(pipe, release):
    g = torch.Generator().manual_seed(0)
    x, ctx, t = torch.randn(2, 8, 32, 32, generator=g), torch.randn(2, 30, 32, generator=g), torch.tensor([3, 880])
    with torch.no_grad():
        ours = pipe.unet(x, t, encoder_hidden_states=ctx).sample
        ema = release["parts"]["unet_ema"](x, t, encoder_hidden_states=ctx).sample
        raw = release["parts"]["unet"](x, t, encoder_hidden_states=ctx).sample
    torch.testing.assert_close(ours, ema, atol=1e-5, rtol=1e-5)
    assert (ours - raw).abs().max() > 1e-2  # the raw weights were not taken


def test_conditioning_is_the_official_one(pipe, release, vllm_inputs):
    h_img, h_txt = vllm_inputs
    cond, uncond, _ = pipe.encode_condition([PROMPT], h_img, h_txt, torch.tensor([77]))  # length 77: no mask, as official
    torch.testing.assert_close(cond, official_context(release, PROMPT, h_img, h_txt), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(uncond, official_context(release, "", h_img, h_txt, drop=True), atol=1e-5, rtol=1e-5)


def test_a_short_answer_is_read_with_its_zero_rows_as_official(pipe, release, vllm_inputs):
    """Our own enrichment stores true lengths; the imported π must still see the zero rows, as it was trained."""
    h_img, h_txt = vllm_inputs
    h_txt = h_txt.clone()
    h_txt[:, 5:] = 0  # (1, 77, D_vllm): a 5-token answer, zero-padded
    cond, _, _ = pipe.encode_condition([PROMPT], h_img, h_txt, torch.tensor([5]))
    torch.testing.assert_close(cond, official_context(release, PROMPT, h_img, h_txt), atol=1e-5, rtol=1e-5)


def _frame() -> PIL.Image.Image:
    rng = np.random.default_rng(3)
    return PIL.Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def official_sample(release, image, cond, uncond, steps: int, generator, s_txt=7.5, s_img=1.5) -> torch.Tensor:
    """metrics/inference.py: k-diffusion's CompVisDenoiser + CFGDenoiser + sample_euler_ancestral, written out.
    The only thing shared with diffusers is the order of the noise draws (initial noise, then one per step)."""
    p = release["parts"]
    betas = release["sd"]["betas"].double()
    sigma_table = ((1 - torch.cumprod(1 - betas, 0)) / torch.cumprod(1 - betas, 0)) ** 0.5  # (1000,)
    ts = torch.linspace(999, 0, steps)  # get_sigmas(n): integer t here (steps = 2), so no interpolation
    sigmas = torch.cat([sigma_table[ts.long()], torch.zeros(1)]).float()
    x0 = torch.tensor(np.array(image)).float().permute(2, 0, 1)[None] / 255 * 2 - 1  # (1, 3, H, W) in [-1, 1]
    with torch.no_grad():
        c_concat = p["vae"].encode(x0).latent_dist.mode()  # encode_first_stage(...).mode(), unscaled
        x = torch.randn(c_concat.shape, generator=generator) * sigmas[0]
        for i in range(steps):
            s = sigmas[i]
            z = torch.cat([x] * 3) / (s ** 2 + 1) ** 0.5  # c_in
            eps = p["unet_ema"](torch.cat([z, torch.cat([c_concat, c_concat, torch.zeros_like(c_concat)])], 1),
                                ts[i].expand(3), encoder_hidden_states=torch.cat([cond, uncond, uncond])).sample
            e_c, e_i, e_u = eps.chunk(3)
            e = e_u + s_txt * (e_c - e_i) + s_img * (e_i - e_u)
            denoised = x - e * s
            s_next = sigmas[i + 1]
            up = min(s_next, (s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2) ** 0.5)
            down = (s_next ** 2 - up ** 2) ** 0.5
            x = x + (x - denoised) / s * (down - s)
            noise = torch.randn(x.shape, generator=generator)  # diffusers draws at every step
            if s_next > 0:
                x = x + noise * up
        return p["vae"].decode(x / 0.18215).sample  # (1, 3, H, W), before any normalisation


def test_two_sampling_steps_are_the_official_sampler(pipe, release, vllm_inputs):
    h_img, h_txt = vllm_inputs
    cond = official_context(release, PROMPT, h_img, h_txt)
    uncond = official_context(release, "", h_img, h_txt, drop=True)
    want = official_sample(release, _frame(), cond, uncond, 2, torch.Generator().manual_seed(5))
    got = pipe(_frame(), PROMPT, h_img=h_img, h_txt=h_txt, h_len=torch.tensor([77]), num_inference_steps=2,
               generator=torch.Generator().manual_seed(5), output_type="latent", progress=False).images
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_model_folder_samples_as_the_release(imported):
    s = sampling_for(imported)
    assert (s.steps, s.scheduler, s.condition_guidance, s.image_guidance) == (100, "euler_a", 7.5, 1.5)
    sched = load_pipeline(imported).scheduler.config
    assert (sched.beta_schedule, sched.beta_start, sched.beta_end, sched.prediction_type, sched.timestep_spacing) == (
        "scaled_linear", 0.00085, 0.012, "epsilon", "linspace")


def test_every_key_is_accounted_for(imported, release):
    import json

    r = json.loads((imported / "lego_import.json").read_text())
    assert sum(r["used"].values()) + sum(r["dropped"].values()) == r["keys"] == len(release["sd"])
    assert r["unet_weights"] == "ema" and r["ema_updates"] == 1234
    assert r["dropped"]["noise-schedule buffers (the scheduler config replaces them)"] == 12


def test_no_ema_takes_the_raw_weights(release, tmp_path):
    from egolego.cli import main

    out = tmp_path / "raw"
    assert main(["import", "lego", "--ldm", str(release["ckpt"]), "--out", str(out), "--clip-text",
                 str(release["clip"]), "--size", str(SIZE), "--no-ema"]) == 0
    x, t, ctx = torch.randn(1, 8, 32, 32), torch.tensor([500]), torch.randn(1, 9, 32)
    with torch.no_grad():
        ours = load_pipeline(out).unet(x, t, encoder_hidden_states=ctx).sample
        raw = release["parts"]["unet"](x, t, encoder_hidden_states=ctx).sample
    torch.testing.assert_close(ours, raw, atol=1e-5, rtol=1e-5)


def test_text_config_is_read_from_the_weights_without_config_json(release, tmp_path):
    import json
    import shutil

    from egolego.cli import main

    clip = tmp_path / "tok_only"
    shutil.copytree(release["clip"], clip)
    (clip / "config.json").unlink()
    out = tmp_path / "m"
    assert main(["import", "lego", "--ldm", str(release["ckpt"]), "--out", str(out), "--clip-text", str(clip),
                 "--size", str(SIZE)]) == 0
    assert json.loads((out / "lego_import.json").read_text())["text_config"].startswith("inferred")
    c = load_pipeline(out).text_encoder.config
    want = release["parts"]["text"].config
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.vocab_size, c.max_position_embeddings) == (
        want.hidden_size, want.num_hidden_layers, want.intermediate_size, want.vocab_size, 77)
