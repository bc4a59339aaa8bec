"""Questions that embed the action label, the conversation format, and Ego4D label normalisation.

Training picks one of ``QUESTION_TEMPLATES`` at random per sample (paper §3.3); inference uses one fixed
template, by default the official one: "How does the person properly {action} that is displayed in the video
frame?".
"""

from __future__ import annotations

import re

from ..config import VllmConfig

QUESTION_TEMPLATES = [
    "How does the person properly {action} that is displayed in the video frame?",
    "How do I {action}?",
    "What should the person do to {action} in this scene?",
    "Describe how to {action} in the image.",
    "Show me how to {action}.",
    "How can the person in this egocentric view {action}?",
    "What are the hand movements needed to {action} here?",
    "Explain, step by step, how the person should {action}.",
    "In this kitchen, how would someone {action}?",
    "Which hand and which object are involved when the person is about to {action}?",
    "What does it look like when the person starts to {action}?",
    "Tell me how the person would {action} in this frame.",
]
INFERENCE_TEMPLATE = QUESTION_TEMPLATES[0]

# LLaVA-style single-turn conversation; the answer follows ASSISTANT_PREFIX and ends with the EOS token.
USER_PREFIX = "USER: "
ASSISTANT_PREFIX = " ASSISTANT:"
# LLaVA's ``llava_llama_2`` conversation (its conversation.py, SeparatorStyle.LLAMA_2), which the released LEGO VLLM
# was tuned and run with: the system prompt in <<SYS>> inside the first [INST] turn; BOS comes from the tokenizer.
LLAMA_2_SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the visual content "
                  "that the user provides, and assist the user with a variety of tasks using natural language.")
CONVERSATIONS = {
    "vicuna": USER_PREFIX + "<image>\n{q}" + ASSISTANT_PREFIX,  # egolego's own models
    "llava_llama_2": "[INST] <<SYS>>\n" + LLAMA_2_SYSTEM + "\n<</SYS>>\n\n<image>\n{q} [/INST]",
}


def question(template: str, action: str) -> str:
    if "{action}" not in template:
        raise ValueError(f"question template {template!r} has no {{action}} slot")
    return template.format(action=action)


def prompt_text(q: str, conversation: str = VllmConfig.conversation) -> str:
    """The text before the answer: the image placeholder, the question, the assistant marker, in the
    ``conversation`` format the model was tuned with (``vllm.conversation``)."""
    if conversation not in CONVERSATIONS:
        raise ValueError(f"unknown conversation format {conversation!r}; known: {', '.join(CONVERSATIONS)}")
    return CONVERSATIONS[conversation].format(q=q)


def answer_text(description: str) -> str:
    return " " + description.strip()


_IRREGULAR = {"is": "be", "are": "be", "has": "have", "does": "do", "goes": "go", "puts": "put", "cuts": "cut",
              "sets": "set", "lets": "let", "shuts": "shut", "hits": "hit", "spits": "spit", "quits": "quit",
              "sits": "sit", "fits": "fit", "splits": "split"}


def lemmatise_verb(word: str) -> str:
    """Third-person-singular to base form by rules ("takes" -> "take", "washes" -> "wash", "carries" -> "carry")."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) > 3 and w.endswith("ies"):
        return w[:-3] + "y"
    if re.search(r"(ss|sh|ch|x|zz|o)es$", w):
        return w[:-2]
    if w.endswith("ses") or w.endswith("zes"):
        return w[:-1]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 2:
        return w[:-1]
    return w


def normalise_label(text: str) -> str:
    """Ego4D narrations to imperative labels: "#C C takes the cup" -> "take the cup".

    Strips the ``#C C`` / ``#c c`` / ``#O`` prefixes and lemmatises the first verb. EPIC labels pass unchanged.
    """
    t = re.sub(r"^\s*#\s*[CcOo]\s+[CcOo]?\s*", "", text).strip()
    if t == text.strip():  # not an Ego4D narration
        return t
    words = t.split()
    if not words:
        return ""
    words[0] = lemmatise_verb(words[0])
    return " ".join(words).rstrip(".")
