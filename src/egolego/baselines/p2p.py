"""Prompt-to-Prompt attention control (Hertz et al. 2022) through diffusers attention processors.

Editing with P2P runs a *source* branch (the inverted latent denoised with the source prompt: it reconstructs the
input) beside the *target* branch (denoised with the target prompt), in one UNet batch. While denoising the target:

* cross-attention (first ``cross_steps`` of the steps): for every target token that also is in the source prompt the
  target uses the source's attention map of that token (``refine``: added words keep their own maps; a word swapped
  for one of the same token length takes the old word's map, P2P's ``replace``). The image layout of "where the cup
  is" is thus the source's, and only the new words place something new.
* self-attention (first ``self_steps`` of the steps): the target's maps are the source's (the scene's structure).

The alignment of target to source tokens is a sequence alignment of the two token id lists (``token_mapping``), as
P2P's ``seq_aligner`` does. The UNet batch layout this module expects is ``[source | target ∅ | target C]``, each
``b`` rows (see ``proxnpi``); the unconditional rows are left alone, as in P2P.
"""

from __future__ import annotations

from contextlib import contextmanager
from difflib import SequenceMatcher

import torch


def token_mapping(src_ids: list[int], tgt_ids: list[int]) -> list[int]:
    """For each target position, the source position whose attention map it takes, or -1 (a new word)."""
    out = [-1] * len(tgt_ids)
    for op, i1, i2, j1, j2 in SequenceMatcher(None, src_ids, tgt_ids, autojunk=False).get_opcodes():
        if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):  # refine / word swap of equal length
            for k in range(j2 - j1):
                out[j1 + k] = i1 + k
    return out


def prompt_mappings(tokenizer, sources: list[str], targets: list[str]) -> torch.Tensor:
    """(b, N) long: target token -> source token (or -1), on the tokenizer's padded sequences (what the UNet reads)."""
    def ids(texts):
        return tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids

    return torch.tensor([token_mapping(s, t) for s, t in zip(ids(sources), ids(targets))], dtype=torch.long)


class AttentionController:
    """Edits the target rows' attention probabilities of every layer, step by step (``step`` is set by the loop)."""

    def __init__(self, mapping: torch.Tensor, num_steps: int, cross_steps: float = 0.8, self_steps: float = 0.4):
        self.mapping = mapping  # (b, N)
        self.batch = mapping.shape[0]
        self.cross_until = int(round(cross_steps * num_steps))
        self.self_until = int(round(self_steps * num_steps))
        self.step = 0
        self.record: list[tuple[str, bool, torch.Tensor]] | None = None  # tests: (layer, cross, probs) after control

    def __call__(self, probs: torch.Tensor, cross: bool, name: str) -> torch.Tensor:
        """probs: (B, heads, L_q, L_k) with B = 3b ([source | target ∅ | target C]); returns the same shape."""
        b = self.batch
        if probs.shape[0] == 3 * b:
            src, tgt = probs[:b], probs[2 * b:]  # (b, heads, L_q, L_k) each
            if cross and self.step < self.cross_until:
                m = self.mapping.to(probs.device)  # (b, N)
                idx = m.clamp(min=0)[:, None, None, :].expand_as(tgt)
                tgt = torch.where((m >= 0)[:, None, None, :], src.gather(-1, idx), tgt)
            elif not cross and self.step < self.self_until:
                tgt = src
            probs = torch.cat([probs[:2 * b], tgt])
        if self.record is not None:
            self.record.append((name, cross, probs.detach().clone()))
        return probs


class P2PAttnProcessor:
    """diffusers' plain attention, with the probabilities passed through the controller before they weight V."""

    def __init__(self, controller: AttentionController, name: str):
        self.controller, self.name = controller, name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **_):
        if hidden_states.ndim != 3 or attn.spatial_norm is not None or attn.group_norm is not None:
            raise ValueError(f"P2P control supports transformer attention on (B, L, C) tokens; layer {self.name} is "
                             "a different kind")
        cross = encoder_hidden_states is not None
        b = hidden_states.shape[0]
        context = hidden_states if not cross else (
            attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states)
        mask = attn.prepare_attention_mask(attention_mask, context.shape[1], b)
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))  # (B·heads, L_q, d)
        k = attn.head_to_batch_dim(attn.to_k(context))  # (B·heads, L_k, d)
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(q, k, mask)  # (B·heads, L_q, L_k)
        probs = self.controller(probs.view(b, attn.heads, *probs.shape[1:]), cross, self.name).flatten(0, 1)
        out = attn.batch_to_head_dim(torch.bmm(probs, v))  # (B, L_q, heads·d)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


@contextmanager
def attention_control(unet, controller: AttentionController):
    """Route every attention layer of ``unet`` through ``controller`` inside the block; restore the processors after."""
    before = unet.attn_processors
    unet.set_attn_processor({name: P2PAttnProcessor(controller, name) for name in before})
    try:
        yield controller
    finally:
        unet.set_attn_processor(before)
