"""``egolego.optim``: the fused AdamW and the foreach EMA take their fast paths and compute the default update."""

import torch
from diffusers.training_utils import EMAModel

from egolego.optim import adamw, ema


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in ((5, 3), (3,), (2, 2, 4))]


def _grads(params, step):
    g = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


def test_fused_adamw_matches_the_default_update():
    fast, slow = _params(), _params()
    opt_f, opt_s = adamw(fast, 1e-2, weight_decay=0.01), torch.optim.AdamW(slow, lr=1e-2, weight_decay=0.01)
    assert opt_f.defaults["fused"] and not opt_s.defaults["fused"]
    for step in range(5):
        _grads(fast, step), _grads(slow, step)
        opt_f.step(), opt_s.step()
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(fast[0], _params()[0])  # the weights did move


def test_foreach_ema_matches_the_default_average():
    model = _params()
    fast, slow = ema(model, 0.9), EMAModel(model, decay=0.9)
    assert fast.foreach and not slow.foreach
    for step in range(4):
        with torch.no_grad():
            for p in model:
                p.add_(0.1 * (step + 1))
        fast.step(model), slow.step(model)
    for a, b in zip(fast.shadow_params, slow.shadow_params):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(fast.shadow_params[0], model[0])  # an average, not a copy
