"""The EMA: its shadows follow the model onto the accelerator's device, and it averages σ, μ, π with the UNet.

The device check runs on CPU by making accelerate's device ``meta``: ``prepare`` then moves the model there, and
an EMA left behind on the CPU (the fault of issue 10: a crash at the first EMA step on a GPU) is caught.
"""

import torch
from accelerate import Accelerator

from egolego import config
from egolego.ldm.train import Trainer


def _cfg(mode="lego", steps=1):
    cfg = config.preset("tiny")
    cfg.ldm = config.LdmConfig(vae="random", from_base=False)  # the paper's recipe (no warm-up, no zero-initialised head) at tiny size
    cfg.ldm.conditioning, cfg.ldm.max_steps, cfg.ldm.batch_size = mode, steps, 4
    return cfg


def test_ema_shadows_live_on_the_prepared_model_device(pairs8, store8, tmp_path, monkeypatch):
    monkeypatch.setattr(Accelerator, "device", property(lambda self: torch.device("meta")))
    monkeypatch.setattr(Trainer, "_cache_text", lambda self: None)  # frozen encoders cannot run on meta
    monkeypatch.setattr(Trainer, "_cache_latents", lambda self: None)
    tr = Trainer(_cfg(), pairs8, store8, tmp_path)
    params = list(tr.acc.unwrap_model(tr.model).parameters())
    assert {p.device.type for p in params} == {"meta"}  # prepare() really moved the model
    assert len(tr.ema.shadow_params) == len(params)
    bad = [i for i, s in enumerate(tr.ema.shadow_params) if s.device != params[i].device]
    assert not bad, f"{len(bad)} EMA shadows are not on the model's device"


def test_ema_averages_sigma_mu_pi_with_the_unet(pairs8, store8, tmp_path):
    """After 2 steps the exported (EMA) weights are d·w1 + (1-d)·w2 with one d (0 < d < 1) for every tensor,
    σ, μ and π included (diffusers' EMA copies the weights at step 1, then averages with a warm-up decay)."""
    from safetensors.torch import load_file

    cfg = _cfg(steps=2)
    cfg.ldm.checkpoint_every = 1
    tr = Trainer(cfg, pairs8, store8, tmp_path)
    model = tr.acc.unwrap_model(tr.model)
    tr.run(progress=False, stop_after=1)
    w1 = {k: v.detach().clone() for k, v in model.named_parameters()}
    tr.run(progress=False, resume=True)
    w2 = {k: v.detach().clone() for k, v in model.named_parameters()}
    ema = {f"{part}.{k}": v for part in ("unet", "conditioner")
           for k, v in load_file(next((tmp_path / "model" / part).glob("*.safetensors"))).items()}
    ref = "unet.conv_in.weight"
    moved = (w1[ref] - w2[ref]).abs() > 1e-6
    d = ((ema[ref] - w2[ref])[moved] / (w1[ref] - w2[ref])[moved]).median().item()
    assert 0.01 < d < 0.99, d
    for prefix in ("conditioner.sigma.", "conditioner.mu.", "conditioner.pi.", "unet.down_blocks."):
        names = [k for k in w1 if k.startswith(prefix) and not torch.equal(w1[k], w2[k])]
        assert names, prefix
        for k in names:
            torch.testing.assert_close(ema[k], d * w1[k] + (1 - d) * w2[k], rtol=1e-4, atol=1e-6, msg=k)
