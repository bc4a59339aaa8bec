"""LEGO's conditioning (paper §3.2): C = [ψ(R), σ(H_i), π(μ(H_t))].

- ψ(R): the frozen text encoder's states of the description R (or of the raw label), N x D.
- σ(H_i): a linear map of each projected image token of the VLLM, M x D_vllm -> M x D.
- π(μ(H_t)): μ maps the VLLM's last-layer text states N x D_vllm -> N x D, then π, a stack of pre-LN
  self-attention layers (2 layers, 8 heads, as the official code), mixes them. Unlike the official code,
  π gets a key-padding mask from the true length of H_t, and rows past that length are zeroed
  (``mask_padding``; an imported official model sets it False: it was trained seeing the zero rows).

σ, μ and π are Xavier-initialised (paper §3.3) and are **trained** when the mode uses them (the official optimiser leaves them out;
see ``shared/reference/official-code.md`` §4). The module is a diffusers ``ModelMixin`` so that it saves and loads
with the pipeline (config + safetensors).

``ldm.conditioner_gate`` chooses how the VLLM's tokens join ψ(R):

- ``none``: the paper's plain concatenation.
- ``tanh``: σ(H_i) and π(μ(H_t)) each times tanh(g), one learned scalar per part from zero, as Flamingo gates its new
  cross-attention. The tokens start as zeros — but a zero token is not a no-op in cross-attention: its key is zero,
  its logit 0, and the 141 of them (64 + 77) still take their share of every softmax from ψ's 77 tokens.
- ``attn``: the gate acts on the attention instead. Every cross-attention logit of a part's tokens gets a learned
  bias log σ(a) (one scalar a per part, from ``ATTN_GATE_INIT`` = -6: each token weighs e^-6 of a neutral one), H_t's
  padding rows and the VLLM tokens of a "no condition" sample get -10,000 (they are absent). So the model starts as
  ``desc`` with the VLLM tokens all but unseen, and raises a part's bias only as far as its tokens lower the loss.
  The bias travels as diffusers' ``encoder_attention_mask`` (``attention_mask``), which the UNet turns into
  (1 - m) * -10,000: m = 1 + bias / 10,000 gives the bias exactly. Alone it is not a no-op: the tokens' keys can
  outgrow the bias (σ and π train), and `lego` then lost 6-8 points to `desc` (RESULTS.md, 2026-12-06).
- ``both``: the attention bias and the values' tanh gates (``value_img``, ``value_txt`` from 0) together: the tokens
  start with no value and almost no weight, so no key can buy them a share before their values are let in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .modes import mode_uses

GATES = ("none", "tanh", "attn", "both")
ATTN_GATE_INIT = -6.0
MASK_SCALE = 10000.0  # diffusers' UNet: encoder_attention_mask m -> additive bias (1 - m) * -MASK_SCALE


def token_is_valid(h_len: torch.Tensor, n: int) -> torch.Tensor:
    """(B, N) True on H_t's first ``h_len`` rows (at least one: an empty answer still has its first state)."""
    return torch.arange(n, device=h_len.device)[None, :] < h_len.clamp(min=1)[:, None]


class LegoConditioner(ModelMixin, ConfigMixin):
    """Builds the cross-attention context from text states and VLLM embeddings."""

    @register_to_config
    def __init__(self, vllm_dim: int = 4096, cross_attention_dim: int = 768, num_layers: int = 2,
                 num_heads: int = 8, ffn_dim: int = 2048, dropout: float = 0.1, mode: str = "lego",
                 image_tokens: int = 576, text_tokens: int = 77, gate: str = "none", mask_padding: bool = True):
        super().__init__()
        mode_uses(mode)
        if gate not in GATES:
            raise ValueError(f"unknown conditioner gate {gate!r}; choose one of {', '.join(GATES)}")
        self.sigma = nn.Linear(vllm_dim, cross_attention_dim)  # per image token
        self.mu = nn.Linear(vllm_dim, cross_attention_dim)
        layer = nn.TransformerEncoderLayer(cross_attention_dim, num_heads, ffn_dim, dropout, batch_first=True,
                                           norm_first=True)
        self.pi = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        for m in (self.sigma, self.mu):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        for name, p in self.pi.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif "norm" not in name:
                nn.init.zeros_(p)
        # A mode that never uses a part must not train it: DDP (several processes) stops at the second step on
        # parameters that get no gradient, and the optimiser would only carry them along.
        use_img, use_txt = mode_uses(mode)
        self.sigma.requires_grad_(use_img)
        self.mu.requires_grad_(use_txt)
        self.pi.requires_grad_(use_txt)
        if gate != "none":  # scalars: tanh(0) = 0 lets no VLLM value through; σ(-6) lets e^-6 of the attention
            init = 0.0 if gate == "tanh" else ATTN_GATE_INIT
            self.gate_img = nn.Parameter(torch.full((1,), init), requires_grad=use_img)
            self.gate_txt = nn.Parameter(torch.full((1,), init), requires_grad=use_txt)
        if gate == "both":  # the values' tanh gates beside the attention's: no value and almost no weight at first
            self.value_img = nn.Parameter(torch.zeros(1), requires_grad=use_img)
            self.value_txt = nn.Parameter(torch.zeros(1), requires_grad=use_txt)

    def _value_gate(self, part: str) -> nn.Parameter | None:
        """The scalar g whose tanh scales a part's (``img`` / ``txt``) values, or None where values pass as they are."""
        if self.config.gate == "tanh":
            return getattr(self, f"gate_{part}")
        return getattr(self, f"value_{part}") if self.config.gate == "both" else None

    def _attention_gate(self, part: str) -> nn.Parameter | None:
        """The scalar a whose log σ(a) biases a part's attention logits, or None where the attention is not gated."""
        return getattr(self, f"gate_{part}") if self.config.gate in ("attn", "both") else None

    def gates(self) -> dict[str, float]:
        """The current opening of each part's gate: tanh(g) of its values times σ(a) of its attention (the weight of
        one of its tokens against a neutral one), each factor 1.0 where that gate is absent."""
        out = {}
        for name, part in (("image", "img"), ("text", "txt")):
            v, a = self._value_gate(part), self._attention_gate(part)
            out[name] = (1.0 if v is None else float(torch.tanh(v.detach()))) * (
                1.0 if a is None else float(torch.sigmoid(a.detach())))
        return out

    def _gated(self, x: torch.Tensor, part: str) -> torch.Tensor:
        g = self._value_gate(part)
        return x if g is None else x * torch.tanh(g).to(x.dtype)

    def attention_mask(self, text_len: int, batch: int, h_len: torch.Tensor | None = None,
                       drop_vllm: torch.Tensor | None = None, mode: str | None = None) -> torch.Tensor | None:
        """(B, L) ``encoder_attention_mask`` for the context ``forward`` builds, or None when no gate acts on the
        attention (``gate`` other than ``attn`` or ``both``): 1 on ψ's tokens, 1 + log σ(a) / 10,000 on a part's tokens (bias
        log σ(a)), 0 on H_t's padding and on every VLLM token of a dropped sample (bias -10,000: absent)."""
        a_img, a_txt = self._attention_gate("img"), self._attention_gate("txt")
        if a_img is None:
            return None
        use_img, use_txt = mode_uses(mode or self.config.mode)
        dev = a_img.device
        keep = torch.ones(batch, device=dev) if drop_vllm is None else (~drop_vllm.to(dev)).float()  # (B,)
        parts = [torch.ones(batch, text_len, device=dev)]
        if use_img:
            m = 1 - F.softplus(-a_img) / MASK_SCALE  # (1,): bias log σ(a) = -softplus(-a)
            parts.append((m * keep)[:, None].expand(batch, self.config.image_tokens))
        if use_txt:
            if h_len is None:
                raise ValueError("the text part's attention mask needs H_t's lengths")
            valid = token_is_valid(self._lengths(h_len.to(dev), self.config.text_tokens), self.config.text_tokens)
            m = 1 - F.softplus(-a_txt) / MASK_SCALE
            parts.append(m * (valid.float() * keep[:, None]))
        return torch.cat(parts, dim=1)  # (B, L)

    def context_length(self, text_len: int) -> int:
        use_img, use_txt = mode_uses(self.config.mode)
        return text_len + use_img * self.config.image_tokens + use_txt * self.config.text_tokens

    def _lengths(self, h_len: torch.Tensor, n: int) -> torch.Tensor:
        """H_t's lengths as the model reads them: every row counts where ``mask_padding`` is off (the official π)."""
        return h_len if self.config.mask_padding else torch.full_like(h_len, n)

    def encode_text_tokens(self, h_txt: torch.Tensor, h_len: torch.Tensor) -> torch.Tensor:
        """π(μ(H_t)) with padding masked: (B, N, D_vllm), (B,) -> (B, N, D)."""
        valid = token_is_valid(self._lengths(h_len, h_txt.shape[1]), h_txt.shape[1])  # (B, N)
        x = self.pi(self.mu(h_txt), src_key_padding_mask=~valid)  # (B, N, D)
        return x * valid[..., None].to(x.dtype)

    def forward(self, text_states: torch.Tensor, h_img: torch.Tensor | None = None,
                h_txt: torch.Tensor | None = None, h_len: torch.Tensor | None = None,
                drop_vllm: torch.Tensor | None = None, mode: str | None = None) -> torch.Tensor:
        """C for a batch.

        text_states: (B, N, D) from ψ; h_img: (B, M, D_vllm); h_txt: (B, N, D_vllm); h_len: (B,);
        drop_vllm: (B,) bool — zero the VLLM tokens (classifier-free guidance's "no condition").
        Returns (B, N [+ M] [+ N], D).
        """
        use_img, use_txt = mode_uses(mode or self.config.mode)
        parts = [text_states]
        keep = None if drop_vllm is None else (~drop_vllm).to(text_states.dtype)[:, None, None]  # (B, 1, 1)
        if use_img:
            if h_img is None:
                raise ValueError(f"mode {mode or self.config.mode!r} needs the VLLM image embedding H_i")
            x = self._gated(self.sigma(h_img.to(self.sigma.weight.dtype)), "img")  # (B, M, D)
            parts.append(x if keep is None else x * keep)
        if use_txt:
            if h_txt is None or h_len is None:
                raise ValueError(f"mode {mode or self.config.mode!r} needs the VLLM text embedding H_t and its length")
            x = self._gated(self.encode_text_tokens(h_txt.to(self.mu.weight.dtype), h_len), "txt")  # (B, N, D)
            parts.append(x if keep is None else x * keep)
        return torch.cat([p.to(text_states.dtype) for p in parts], dim=1)
