"""H_i and H_t from one teacher-forced pass (paper §3.2; official ``run_llava_in_loop.py``).

- H_i: the multimodal projector's output for the input frame, (M, D) — what the LLM sees of the image.
- H_t: the last layer's hidden states (after the final norm, before the LM head) at the last prompt position
  and at every token of the description R but its last — exactly the states that step-by-step generation
  produces (step 0 is the prompt's last position; step k processes generated token k). One forward pass over
  prompt + R gives them all; ``tests/vllm`` proves the equality against generation.
"""

from __future__ import annotations

import torch

from .conversation import IGNORE, build_ids


@torch.no_grad()
def image_embeddings(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, M, D) projected image tokens."""
    feats = model.get_image_features(pixel_values=pixel_values.to(model.dtype))
    tokens = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    return torch.stack(list(tokens)) if isinstance(tokens, (list, tuple)) else tokens


def encode_samples(processor, images, prompts: list[str], answers: list[str], padding_side: str = "right"):
    """Batch of prompt + answer sequences: (input_ids, attention_mask, labels, pixel_values, prompt_lengths).

    Each sample's prompt ids come from the processor (``<image>`` expanded), its answer ids are appended, and the
    labels mask everything but the answer and EOS (see ``conversation.build_ids``).
    """
    tok = processor.tokenizer
    seqs, labs, p_lens, pix = [], [], [], []
    for im, p, a in zip(images, prompts, answers):
        enc = processor(images=[im], text=[p], return_tensors="pt")
        ids, labels = build_ids(tok, enc["input_ids"][0].tolist(), p, a)
        seqs.append(ids)
        labs.append(labels)
        p_lens.append(enc["input_ids"].shape[1])
        pix.append(enc["pixel_values"][0])
    return collate(tok, seqs, labs, pix, p_lens, padding_side)


def collate(tok, seqs: list[list[int]], labs: list[list[int]], pix: list[torch.Tensor], p_lens: list[int],
            padding_side: str = "right"):
    """Pad one batch of samples (``build_ids`` output, pixel values, prompt lengths) as ``encode_samples`` returns it."""
    n = max(len(s) for s in seqs)
    b = len(seqs)
    input_ids = torch.full((b, n), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((b, n), IGNORE, dtype=torch.long)
    mask = torch.zeros((b, n), dtype=torch.long)
    for i, (s, lab) in enumerate(zip(seqs, labs)):
        sl = slice(0, len(s)) if padding_side == "right" else slice(n - len(s), n)
        input_ids[i, sl] = torch.tensor(s)
        labels[i, sl] = torch.tensor(lab)
        mask[i, sl] = 1
    return input_ids, mask, labels, torch.stack(pix), torch.tensor(p_lens)


@torch.no_grad()
def teacher_forced_states(model, processor, images, prompts: list[str], answers: list[str],
                          max_rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(H_i (B, M, D), H_t (B, max_rows, D) zero-padded, lengths (B,)) for prompt + answer pairs.

    ``prompts`` / ``answers`` are full texts (``templates.prompt_text`` / ``templates.answer_text``).
    """
    dev = model.device
    ids, mask, labels, pixel_values, p_lens = encode_samples(processor, images, prompts, answers)
    pixel_values = pixel_values.to(dev, model.dtype)
    out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), pixel_values=pixel_values,
                output_hidden_states=True)
    last = out.hidden_states[-1]  # (B, T, D): after the final norm
    b, d = last.shape[0], last.shape[-1]
    h_txt = torch.zeros(b, max_rows, d, dtype=last.dtype, device=last.device)
    lengths = torch.zeros(b, dtype=torch.long)
    for i in range(b):
        n = int((labels[i] != IGNORE).sum())  # answer tokens + EOS
        start = int(p_lens[i]) - 1  # rows: last prompt position + every answer token (EOS is never processed)
        k = min(n, max_rows)
        h_txt[i, :k] = last[i, start:start + k]
        lengths[i] = k
    return image_embeddings(model, pixel_values), h_txt, lengths
