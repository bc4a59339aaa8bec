"""LegoConditioner: the padding mask of π, zeroed padded rows, and ``drop_vllm`` (CFG's "no condition")."""

import pytest
import torch

from egolego.ldm.conditioner import LegoConditioner

N, M, DV, D = 12, 4, 16, 32


@pytest.fixture
def cond():
    torch.manual_seed(0)
    return LegoConditioner(vllm_dim=DV, cross_attention_dim=D, num_heads=4, ffn_dim=32, mode="lego",
                           image_tokens=M, text_tokens=N).eval()


def _inputs(b=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 7, D, generator=g), torch.randn(b, M, DV, generator=g), torch.randn(b, N, DV, generator=g),
            torch.tensor([3, N, 1][:b]))


@torch.no_grad()
def test_padded_rows_are_zero_and_do_not_leak_into_valid_rows(cond):
    text, h_img, h_txt, h_len = _inputs()
    out = cond(text, h_img, h_txt, h_len)  # (B, 7 + M + N, D)
    assert out.shape == (3, 7 + M + N, D)
    tokens = out[:, 7 + M:]  # π(μ(H_t))
    for i, n in enumerate(h_len.tolist()):
        assert torch.count_nonzero(tokens[i, n:]) == 0 and torch.count_nonzero(tokens[i, :n]) > 0
    noisy = h_txt.clone()
    for i, n in enumerate(h_len.tolist()):
        noisy[i, n:] = 100 * torch.randn(N - n, DV)  # garbage past the true length must change nothing
    torch.testing.assert_close(cond(text, h_img, noisy, h_len), out)


@torch.no_grad()
def test_valid_rows_depend_on_each_other(cond):
    """The mask hides padding only: π still mixes the valid rows (changing row 0 changes row 1)."""
    text, h_img, h_txt, h_len = _inputs()
    other = h_txt.clone()
    other[:, 0] += 1
    a, b = cond(text, h_img, h_txt, h_len)[1, 7 + M + 1], cond(text, h_img, other, h_len)[1, 7 + M + 1]
    assert not torch.allclose(a, b)


@torch.no_grad()
def test_drop_vllm_zeroes_the_vllm_tokens_of_dropped_samples_only(cond):
    text, h_img, h_txt, h_len = _inputs()
    keep = cond(text, h_img, h_txt, h_len)
    out = cond(text, h_img, h_txt, h_len, drop_vllm=torch.tensor([True, False, True]))
    assert torch.count_nonzero(out[0, 7:]) == 0 and torch.count_nonzero(out[2, 7:]) == 0
    torch.testing.assert_close(out[:, :7], text)  # ψ rows untouched (blanking the text is the caller's job)
    torch.testing.assert_close(out[1], keep[1])


@torch.no_grad()
def test_modes_choose_their_parts(cond):
    text, h_img, h_txt, h_len = _inputs()
    full = cond(text, h_img, h_txt, h_len)
    torch.testing.assert_close(cond(text, h_img, h_txt, h_len, mode="desc+img"), full[:, :7 + M])
    torch.testing.assert_close(cond(text, None, h_txt, h_len, mode="desc+txt"), torch.cat([full[:, :7], full[:, 7 + M:]], 1))
    torch.testing.assert_close(cond(text, mode="label"), text)
    with pytest.raises(ValueError, match="H_i"):
        cond(text, None, h_txt, h_len)


def test_the_tanh_gate_starts_closed_opens_by_gradient_and_reloads(tmp_path):
    """gate="tanh": at initialisation the VLLM tokens are exactly the zero tokens of "no condition" (whatever H_i and
    H_t hold), so the output is what ``desc`` sees plus zeros; one optimiser step on a loss that wants them opens the
    gates (and only then do σ, μ, π receive a gradient); a saved conditioner reloads with its gates."""
    torch.manual_seed(0)
    g = LegoConditioner(vllm_dim=DV, cross_attention_dim=D, num_heads=4, ffn_dim=32, mode="lego", image_tokens=M,
                        text_tokens=N, gate="tanh")
    text, h_img, h_txt, h_len = _inputs()
    out = g(text, h_img, h_txt, h_len)
    assert torch.count_nonzero(out[:, 7:]) == 0 and torch.equal(out[:, :7], text)
    assert g.gates() == {"image": 0.0, "text": 0.0}
    target = torch.randn_like(out[:, 7:])
    loss = ((g(text, h_img, h_txt, h_len)[:, 7:] - target) ** 2).mean()
    loss.backward()
    assert g.gate_img.grad.abs().item() > 0 and g.gate_txt.grad.abs().item() > 0
    assert g.sigma.weight.grad is None or g.sigma.weight.grad.abs().max() == 0  # closed gate: nothing flows yet
    torch.optim.SGD(g.parameters(), lr=0.5).step()
    assert all(abs(v) > 0 for v in g.gates().values())
    g.save_pretrained(tmp_path)
    back = LegoConditioner.from_pretrained(tmp_path)
    assert back.config.gate == "tanh" and back.gates() == pytest.approx(g.gates())
    torch.testing.assert_close(back.eval()(text, h_img, h_txt, h_len), g.eval()(text, h_img, h_txt, h_len))


def test_the_plain_concatenation_has_no_gate_and_an_unknown_gate_is_refused():
    plain = LegoConditioner(vllm_dim=DV, cross_attention_dim=D, num_heads=4, ffn_dim=32, image_tokens=M, text_tokens=N)
    assert not hasattr(plain, "gate_img") and plain.gates() == {"image": 1.0, "text": 1.0}
    with pytest.raises(ValueError, match="unknown conditioner gate"):
        LegoConditioner(vllm_dim=DV, cross_attention_dim=D, gate="sigmoid")


def test_the_attention_gate_biases_logits_masks_padding_and_drops_absent_tokens():
    """gate="attn": the mask gives ψ's tokens 1, a part's tokens the bias log σ(a) (a = -6 at the start), H_t's
    padding and a dropped sample's VLLM tokens -10,000; in a UNet such masked tokens are exactly absent (the output
    equals the one without them), which a zero token of the other designs is not."""
    from egolego.ldm.components import TinyShapes, tiny_unet
    from egolego.ldm.conditioner import ATTN_GATE_INIT, MASK_SCALE

    torch.manual_seed(0)
    g = LegoConditioner(vllm_dim=DV, cross_attention_dim=D, num_heads=4, ffn_dim=32, mode="lego", image_tokens=M,
                        text_tokens=N, gate="attn")
    text, h_img, h_txt, h_len = _inputs()
    drop = torch.tensor([False, True, False])
    m = g.attention_mask(7, 3, h_len, drop)  # (B, 7 + M + N)
    bias = (1 - m) * -MASK_SCALE
    want = float(-torch.nn.functional.softplus(torch.tensor(-ATTN_GATE_INIT)))
    assert m.shape == (3, 7 + M + N) and torch.all(m[:, :7] == 1)
    torch.testing.assert_close(bias[0, 7:7 + M], torch.full((M,), want), atol=2e-3, rtol=0)
    assert torch.all(m[1, 7:] == 0)  # dropped: the VLLM tokens are absent
    for i, n in enumerate(h_len.tolist()):
        if i != 1:
            assert torch.all(m[i, 7 + M + n:] == 0) and torch.all(m[i, 7 + M:7 + M + n] > 0.99)
    assert g.gates()["image"] == pytest.approx(float(torch.sigmoid(torch.tensor(ATTN_GATE_INIT))))
    assert LegoConditioner(vllm_dim=DV, cross_attention_dim=D, image_tokens=M).attention_mask(7, 3, h_len) is None

    s = TinyShapes(unet_channels=(32, 32), unet_attention=(True, False), vae_channels=(16, 16))
    unet = tiny_unet(s, cross_attention_dim=D).eval()
    x, t = torch.randn(3, 8, 32, 32), torch.tensor([500, 500, 500])
    with torch.no_grad():
        ctx = g(text, h_img, h_txt, h_len, drop_vllm=drop)
        full = unet(x, t, encoder_hidden_states=ctx, encoder_attention_mask=m).sample
        alone = unet(x[1:2], t[:1], encoder_hidden_states=text[1:2]).sample  # ψ only, no VLLM token at all
        zero = unet(x[1:2], t[:1], encoder_hidden_states=ctx[1:2]).sample  # the zero tokens, unmasked
    torch.testing.assert_close(full[1:2], alone, atol=1e-5, rtol=1e-4)
    assert (zero - alone).abs().max() > 1e-3  # zero tokens are not absent: they dilute the attention
    g.train()
    ctx = g(text, h_img, h_txt, h_len)
    out = unet(x, t, encoder_hidden_states=ctx, encoder_attention_mask=g.attention_mask(7, 3, h_len)).sample
    out.pow(2).mean().backward()
    assert g.gate_img.grad.abs().item() > 0 and g.gate_txt.grad.abs().item() > 0


def test_the_double_gate_starts_with_no_value_and_almost_no_weight():
    """gate="both": the VLLM tokens' values start at zero (tanh(0)) *and* their attention at e^-6 of a neutral
    token, so their keys cannot buy them a share of the softmax before their values are let in; both gates learn."""
    torch.manual_seed(0)
    g = LegoConditioner(vllm_dim=DV, cross_attention_dim=D, num_heads=4, ffn_dim=32, mode="lego", image_tokens=M,
                        text_tokens=N, gate="both")
    text, h_img, h_txt, h_len = _inputs()
    ctx = g(text, h_img, h_txt, h_len)
    assert torch.all(ctx[:, text.shape[1]:] == 0) and torch.equal(ctx[:, :text.shape[1]], text)
    m = g.attention_mask(text.shape[1], 3, h_len)
    assert m is not None and torch.all(m[:, text.shape[1]:] < 1)
    assert g.gates() == {"image": 0.0, "text": 0.0}
    with torch.no_grad():
        g.value_img.fill_(0.5)
    w = torch.randn_like(ctx)
    (g(text, h_img, h_txt, h_len) * w).sum().backward()  # a linear loss: at tanh(0) the gate's gradient is y·w
    assert g.value_txt.grad.abs().item() > 0 and g.value_img.grad.abs().item() > 0
