"""LegoPipeline: guidance (through the pipeline), peer check against diffusers' InstructPix2Pix, batching, save/load."""

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline
from PIL import Image

from egolego.ldm.pipeline import LegoPipeline

from .conftest import make_components


def _image(seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))


def _emb(b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 16, 48, generator=g), torch.randn(b, 77, 48, generator=g), torch.tensor([5, 30, 77, 1][:b])


@torch.no_grad()
def test_pipeline_guidance_equals_three_separate_branches(components):
    """What ``LegoPipeline`` hands the scheduler equals e_0 + s_x(e_x - e_0) + s_c(e_xc - e_x) built here from three
    separate UNet calls on inputs made here: (X, C), (X, ∅) and (∅, ∅), with C_∅ = ψ("") and the VLLM rows zeroed."""
    pipe = LegoPipeline(**components)
    pipe.use_scheduler("ddim")
    pipe.set_progress_bar_config(disable=True)
    unet, cond, tok, te = pipe.unet, pipe.conditioner, pipe.tokenizer, pipe.text_encoder
    seen, handed = [], []
    hook = unet.register_forward_hook(lambda m, args, kw, out: seen.append((args[0].clone(), args[1])), with_kwargs=True)
    real_step = pipe.scheduler.step

    def spy(model_output, timestep, sample, generator=None, return_dict=True, **kw):
        handed.append(model_output.clone())
        return real_step(model_output, timestep, sample, return_dict=return_dict, **kw)

    pipe.scheduler.step = spy
    img, prompt, (h_img, h_txt, h_len) = _image(), "open the drawer", _emb(1)
    s_c, s_x = 3.0, 2.0  # unequal and not the defaults: a swap of the two scales shows
    pipe(img, prompt, h_img, h_txt, h_len, num_inference_steps=2, condition_guidance_scale=s_c,
         image_guidance_scale=s_x, output_type="np")
    hook.remove()

    def psi(text):
        ids = tok([text], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        return te(ids.input_ids)[0]

    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]  # (1, 3, 64, 64)
    x_lat = pipe.vae.encode(x).latent_dist.mode()  # (1, 4, 16, 16), unscaled
    c = cond(psi(prompt), h_img, h_txt, h_len)
    c0 = cond(psi(""), h_img, h_txt, h_len, drop_vllm=torch.tensor([True]))
    assert len(seen) == len(handed) == 2
    for (sample, t), got in zip(seen, handed):
        z = sample[:1, :4]  # the scaled noisy latent the pipeline fed to every branch
        assert all(torch.equal(z, sample[i:i + 1, :4]) for i in range(3))
        e_xc = unet(torch.cat([z, x_lat], 1), t, encoder_hidden_states=c).sample
        e_x = unet(torch.cat([z, x_lat], 1), t, encoder_hidden_states=c0).sample
        e_0 = unet(torch.cat([z, torch.zeros_like(x_lat)], 1), t, encoder_hidden_states=c0).sample
        torch.testing.assert_close(got, e_0 + s_x * (e_x - e_0) + s_c * (e_xc - e_x), atol=1e-4, rtol=1e-4)


def test_label_mode_equals_diffusers_instruct_pix2pix(tokenizer):
    comps = make_components(tokenizer, mode="label")
    ours = LegoPipeline(**comps)
    peer = StableDiffusionInstructPix2PixPipeline(vae=comps["vae"], text_encoder=comps["text_encoder"],
                                                  tokenizer=tokenizer, unet=comps["unet"], scheduler=comps["scheduler"],
                                                  safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False)
    for p in (ours, peer):
        p.set_progress_bar_config(disable=True)
    img = _image()
    a = ours(img, "take the red cup", num_inference_steps=8, generator=torch.Generator().manual_seed(3),
             output_type="np").images
    b = peer("take the red cup", image=img, num_inference_steps=8, guidance_scale=7.5, image_guidance_scale=1.5,
             generator=torch.Generator().manual_seed(3), output_type="np").images
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("scheduler", ["euler_a", "ddim", "dpm++"])
def test_batch_equals_one_by_one(components, scheduler):
    pipe = LegoPipeline(**components)
    pipe.use_scheduler(scheduler)
    pipe.set_progress_bar_config(disable=True)
    h_img, h_txt, h_len = _emb(3)
    imgs = [_image(i) for i in range(3)]
    prompts = ["take the red cup", "open the drawer", "cut tomato with knife"]
    batch = pipe(imgs, prompts, h_img, h_txt, h_len, num_inference_steps=6, output_type="np",
                 generator=[torch.Generator().manual_seed(i) for i in range(3)]).images
    for i in range(3):
        one = pipe(imgs[i], prompts[i], h_img[i:i + 1], h_txt[i:i + 1], h_len[i:i + 1], num_inference_steps=6,
                   output_type="np", generator=[torch.Generator().manual_seed(i)]).images
        np.testing.assert_allclose(batch[i], one[0], atol=1e-3)  # batched kernels round differently
    assert batch.min() >= 0 and batch.max() <= 1  # clamped


def test_save_load_identical(components, tmp_path):
    pipe = LegoPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path / "model")
    again = LegoPipeline.from_pretrained(tmp_path / "model", local_files_only=True)
    again.set_progress_bar_config(disable=True)
    h_img, h_txt, h_len = _emb(1)
    kw = dict(num_inference_steps=5, output_type="np")
    a = pipe(_image(), "open the drawer", h_img, h_txt, h_len, generator=torch.Generator().manual_seed(0), **kw).images
    b = again(_image(), "open the drawer", h_img, h_txt, h_len, generator=torch.Generator().manual_seed(0), **kw).images
    np.testing.assert_array_equal(a, b)
    assert type(again.conditioner).__name__ == "LegoConditioner" and again.conditioner.config.mode == "lego"


def test_original_aspect_output(components):
    pipe = LegoPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    h_img, h_txt, h_len = _emb(1)
    out = pipe(_image(), "open the drawer", h_img, h_txt, h_len, num_inference_steps=2, original_size=(112, 64)).images
    assert out[0].size == (112, 64)


def test_missing_embeddings_is_an_error(components):
    pipe = LegoPipeline(**components)
    with pytest.raises(ValueError, match="H_i"):
        pipe(_image(), "open the drawer", num_inference_steps=2)


def test_a_fresh_process_loads_a_saved_model(components, tmp_path):
    """diffusers loads a component's module only when it is already imported: `egolego eval --model` in a new
    process must find egolego.ldm.conditioner without any other egolego import having run first."""
    import os
    import subprocess
    import sys

    from egolego.ldm.pipeline import LegoPipeline

    LegoPipeline(**components).save_pretrained(str(tmp_path / "model"))
    code = "import sys; from egolego.ldm.generate import load_pipeline; print(type(load_pipeline(sys.argv[1]).conditioner).__name__)"
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model")], capture_output=True, text=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().endswith("LegoConditioner")


@pytest.mark.parametrize("scheduler", ["euler_a", "ddim", "dpm++"])
def test_a_start_from_a_frame_runs_the_steps_below_its_level(components, scheduler):
    """init_image + strength on the DDPM samplers (the paper preset's): only the steps with t / T <= strength run,
    and the first latent is the frame's latent noised to the first of them (DDIM: √ᾱ_t x_0 + √(1 − ᾱ_t) n)."""
    pipe = LegoPipeline(**components)
    pipe.use_scheduler(scheduler)
    pipe.set_progress_bar_config(disable=True)
    h_img, h_txt, h_len = _emb(1)
    full = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
    full.set_timesteps(6)
    want = [int(t) for t in full.timesteps if t <= 500]
    seen = []
    forward = pipe.unet.forward
    pipe.unet.forward = lambda z, t, **k: seen.append((int(t), z[:1].clone())) or forward(z, t, **k)
    noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    try:
        out = pipe(_image(0), "take the red cup", h_img, h_txt, h_len, num_inference_steps=6, output_type="np",
                   generator=[torch.Generator().manual_seed(1)], latents=noise, init_image=[_image(1)], strength=0.5)
    finally:
        pipe.unet.forward = forward
    assert [t for t, _ in seen] == want and 0 < len(want) < 6
    assert np.isfinite(out.images).all()
    if scheduler == "ddim":
        x0 = pipe.vae.encode(pipe.image_processor.preprocess(_image(1))).latent_dist.mode() * pipe.vae.config.scaling_factor
        a = full.alphas_cumprod[want[0]]
        torch.testing.assert_close(seen[0][1][:, :4], a.sqrt() * x0 + (1 - a).sqrt() * noise, rtol=1e-4, atol=1e-4)
