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
