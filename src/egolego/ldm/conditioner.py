"""LEGO's conditioning (paper §3.2): C = [ψ(R), σ(H_i), π(μ(H_t))].

- ψ(R): the frozen text encoder's states of the description R (or of the raw label), N x D.
- σ(H_i): a linear map of each projected image token of the VLLM, M x D_vllm -> M x D.
- π(μ(H_t)): μ maps the VLLM's last-layer text states N x D_vllm -> N x D, then π, a stack of pre-LN
  self-attention layers (2 layers, 8 heads, as the official code), mixes them. Unlike the official code,
  π gets a key-padding mask from the true length of H_t, and rows past that length are zeroed.

σ, μ and π are Xavier-initialised (paper §3.3) and are **trained** when the mode uses them (the official optimiser leaves them out;
see ``shared/reference/official-code.md`` §4). The module is a diffusers ``ModelMixin`` so that it saves and loads
with the pipeline (config + safetensors).

``gate="tanh"`` (``ldm.conditioner_gate``) multiplies σ(H_i) and π(μ(H_t)) each by tanh(g), one learned scalar g per
part initialised at zero, as Flamingo gates its new cross-attention: the VLLM tokens then start as the zero tokens
of classifier-free guidance's "no condition", so the model first learns what ψ(R) alone gives (``desc``) and lets
the VLLM's embeddings in only as far as they lower the loss. ``gate="none"`` is the paper's plain concatenation.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .modes import mode_uses

GATES = ("none", "tanh")


class LegoConditioner(ModelMixin, ConfigMixin):
    """Builds the cross-attention context from text states and VLLM embeddings."""

    @register_to_config
    def __init__(self, vllm_dim: int = 4096, cross_attention_dim: int = 768, num_layers: int = 2,
                 num_heads: int = 8, ffn_dim: int = 2048, dropout: float = 0.1, mode: str = "lego",
                 image_tokens: int = 576, text_tokens: int = 77, gate: str = "none"):
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
        if gate == "tanh":  # scalars, zero at the start: tanh(0) = 0 lets no VLLM token through
            self.gate_img = nn.Parameter(torch.zeros(1), requires_grad=use_img)
            self.gate_txt = nn.Parameter(torch.zeros(1), requires_grad=use_txt)

    def gates(self) -> dict[str, float]:
        """The current opening of each part's gate, tanh(g) (1.0 each without gates)."""
        if self.config.gate == "none":
            return {"image": 1.0, "text": 1.0}
        return {"image": float(torch.tanh(self.gate_img.detach())), "text": float(torch.tanh(self.gate_txt.detach()))}

    def _gated(self, x: torch.Tensor, g: str) -> torch.Tensor:
        if self.config.gate == "none":
            return x
        return x * torch.tanh(getattr(self, g)).to(x.dtype)

    def context_length(self, text_len: int = 77) -> int:
        use_img, use_txt = mode_uses(self.config.mode)
        return text_len + use_img * self.config.image_tokens + use_txt * self.config.text_tokens

    def encode_text_tokens(self, h_txt: torch.Tensor, h_len: torch.Tensor) -> torch.Tensor:
        """π(μ(H_t)) with padding masked: (B, N, D_vllm), (B,) -> (B, N, D)."""
        n = h_txt.shape[1]
        valid = torch.arange(n, device=h_txt.device)[None, :] < h_len.clamp(min=1)[:, None]  # (B, N)
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
            x = self._gated(self.sigma(h_img.to(self.sigma.weight.dtype)), "gate_img")  # (B, M, D)
            parts.append(x if keep is None else x * keep)
        if use_txt:
            if h_txt is None or h_len is None:
                raise ValueError(f"mode {mode or self.config.mode!r} needs the VLLM text embedding H_t and its length")
            x = self._gated(self.encode_text_tokens(h_txt.to(self.mu.weight.dtype), h_len), "gate_txt")  # (B, N, D)
            parts.append(x if keep is None else x * keep)
        return torch.cat([p.to(text_states.dtype) for p in parts], dim=1)
