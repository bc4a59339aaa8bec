"""H_i and H_t from one teacher-forced pass (paper §3.2; official ``run_llava_in_loop.py``).

- H_i: the multimodal projector's output for the input frame, (M, D) — what the LLM sees of the image.
- H_t: the last layer's hidden states (after the final norm, before the LM head) at the last prompt position
  and at every token of the description R but its last — exactly the states that step-by-step generation
  produces (step 0 is the prompt's last position; step k processes generated token k). One forward pass over
  prompt + R gives them all; ``tests/vllm`` proves the equality against generation.
"""

from __future__ import annotations

import torch


def prompt_text(question: str) -> str:
    """The user turn with the image placeholder, as LLaVA's conversation format puts it."""
    return f"<image>\n{question}"


@torch.no_grad()
def image_embeddings(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, M, D) projected image tokens."""
    feats = model.get_image_features(pixel_values=pixel_values.to(model.dtype))
    tokens = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    return torch.stack(list(tokens)) if isinstance(tokens, (list, tuple)) else tokens


@torch.no_grad()
def teacher_forced_states(model, processor, images, questions: list[str], answers: list[str],
                          max_rows: int = 77) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(H_i (B, M, D), H_t (B, max_rows, D) zero-padded, lengths (B,)) for prompt + answer pairs."""
    tok = processor.tokenizer
    dev = model.device
    prompts = [prompt_text(q) for q in questions]
    p_batch = processor(images=images, text=prompts, return_tensors="pt", padding=True)
    p_lens = p_batch["attention_mask"].sum(1)  # (B,) prompt lengths after <image> expansion
    ans_ids = [tok(a, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for a in answers]
    b = len(prompts)
    total = [int(p_lens[i]) + len(ans_ids[i]) for i in range(b)]
    ids = torch.full((b, max(total)), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i in range(b):  # right padding: [prompt][answer][pad]
        p = p_batch["input_ids"][i][p_batch["attention_mask"][i].bool()]
        seq = torch.cat([p, torch.tensor(ans_ids[i])])
        ids[i, :len(seq)] = seq
        mask[i, :len(seq)] = 1
    pixel_values = p_batch["pixel_values"].to(dev, model.dtype)
    out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), pixel_values=pixel_values,
                output_hidden_states=True)
    last = out.hidden_states[-1]  # (B, T, D): after the final norm
    d = last.shape[-1]
    h_txt = torch.zeros(b, max_rows, d, dtype=last.dtype, device=last.device)
    lengths = torch.zeros(b, dtype=torch.long)
    for i in range(b):
        start = int(p_lens[i]) - 1
        n = len(ans_ids[i])  # rows: last prompt position + every answer token but the last
        rows = last[i, start:start + n]
        k = min(n, max_rows)
        h_txt[i, :k] = rows[:k]
        lengths[i] = k
    return image_embeddings(model, pixel_values), h_txt, lengths
