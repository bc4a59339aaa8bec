"""The released VLLM's layout (LLaVA v1.0) -> transformers' Llava: same numbers, strict keys, safe pickles."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from egolego.data.llava_text import prompt_text, question
from egolego.errors import InputError, MissingInput
from egolego.imports.official_llava import convert_llava, import_llava
from egolego.tokenizer import IMAGE_TOKEN
from egolego.vllm.embed import image_embeddings
from egolego.vllm.model import load_llava
from egolego.vllm.settings import load_settings

from .official_llava_files import D_TEXT, IMAGE, clip_vision_folder, llava_v1_folder, original_forward


@pytest.fixture(scope="module")
def release_llava(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("llava_release")
    src, clip = llava_v1_folder(d / "llava"), clip_vision_folder(d / "clip")
    out = d / "converted"
    report = import_llava(src, out, clip)
    return {"dir": d, "src": src, "clip": clip, "out": out, "report": report}


def _frame() -> PIL.Image.Image:
    return PIL.Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 52, 3), dtype=np.uint8))


def test_converted_folder_gives_the_original_logits_and_image_tokens(release_llava):
    model, proc = load_llava(release_llava["out"])
    model.eval()
    prompt = prompt_text(question("How does the person properly {action} that is displayed in the video frame?",
                                  "open the drawer"), "llava_llama_2")
    assert prompt.startswith("[INST] <<SYS>>\n") and prompt.endswith(" [/INST]")
    enc = proc(images=[_frame()], text=[prompt], return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    image_id = proc.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    at = [i for i, t in enumerate(ids) if t == image_id]
    assert len(at) == (IMAGE // 14) ** 2 and at == list(range(at[0], at[0] + len(at)))  # one run of 4 image tokens
    ref_logits, ref_img = original_forward(release_llava["src"], release_llava["clip"], ids[:at[0]], ids[at[-1] + 1:],
                                           enc["pixel_values"])
    with torch.no_grad():
        logits = model(**enc).logits  # (1, T, V + added)
    vocab = ref_logits.shape[-1]
    torch.testing.assert_close(logits[..., :vocab], ref_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(image_embeddings(model, enc["pixel_values"]), ref_img, atol=1e-5, rtol=1e-5)
    assert image_embeddings(model, enc["pixel_values"]).shape == (1, 4, D_TEXT)


def test_release_settings_and_report_travel_with_the_folder(release_llava):
    v = load_settings(release_llava["out"])
    assert (v.conversation, v.temperature, v.max_new_tokens, v.text_rows) == ("llava_llama_2", 0.2, 1024, 77)
    assert v.inference_template == "How does the person properly {action} that is displayed in the video frame?"
    r = release_llava["report"]
    assert r["added_tokens"] == [IMAGE_TOKEN] and r["projector"] == "linear"
    assert r["dropped"] == {"LLaMA's rotary frequencies (recomputed)": 1}
    assert r["used"]["projector"] == 2 and r["used"]["LM head"] == 1
    model, proc = load_llava(release_llava["out"])
    assert proc.tokenizer.pad_token == "<unk>"  # LLaVA pads LLaMA with <unk>
    assert model.generation_config.suppress_tokens == [proc.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)]


def test_describe_and_embed_asks_as_the_release(release_llava, monkeypatch):
    """``egolego generate``'s VLLM step on the converted folder: the llava_llama_2 prompt, sampled at 0.2."""
    import egolego.vllm.enrich as enrich

    seen = {}
    real = enrich._generate

    def spy(model, processor, images, actions, template, max_new_tokens, temperature, seed, conversation="vicuna"):
        seen.update(conversation=conversation, temperature=temperature, max_new_tokens=max_new_tokens)
        return real(model, processor, images, actions, template, 6, temperature, seed, conversation)

    monkeypatch.setattr(enrich, "_generate", spy)
    desc, emb = enrich.describe_and_embed(release_llava["out"], _frame().resize((IMAGE, IMAGE)), "#C C opens the drawer",
                                          rows=77)
    assert seen == {"conversation": "llava_llama_2", "temperature": 0.2, "max_new_tokens": 1024}
    assert emb["h_img"].shape == (1, 4, D_TEXT) and emb["h_txt"].shape == (1, 77, D_TEXT)
    assert 1 <= int(emb["h_len"][0]) <= 77 and isinstance(desc, str)


@pytest.mark.parametrize("kind, expect", [
    ("drop", "missing key model.layers.1.mlp.up_proj.weight"),
    ("shape", "mis-shaped key model.mm_projector.weight (48, 20) (expected (48, 24))"),
    ("extra", "unexpected key model.mm_projector.1.weight"),
])
def test_a_key_that_does_not_fit_is_named(tmp_path, kind, expect):
    clip = clip_vision_folder(tmp_path / "clip")
    args = {"drop": dict(drop="model.layers.1.mlp.up_proj.weight"),
            "shape": dict(extra={"model.mm_projector.weight": torch.zeros(D_TEXT, 20)}),
            "extra": dict(extra={"model.mm_projector.1.weight": torch.zeros(3)})}[kind]
    src = llava_v1_folder(tmp_path / "llava", **args)
    with pytest.raises(InputError, match="not an original-layout LLaVA v1.0 folder") as e:
        convert_llava(src, clip)
    assert expect in str(e.value) and "\n" not in str(e.value)


def test_folders_it_cannot_map_are_refused_in_one_line(tmp_path):
    clip = clip_vision_folder(tmp_path / "clip")
    with pytest.raises(InputError, match="image start/end tokens"):
        convert_llava(llava_v1_folder(tmp_path / "a", config_extra={"mm_use_im_start_end": True}), clip)
    with pytest.raises(MissingInput, match="--clip-vision"):
        convert_llava(llava_v1_folder(tmp_path / "b"), None)
    with pytest.raises(InputError, match="a 24-wide tower, but .* 32-wide"):
        convert_llava(llava_v1_folder(tmp_path / "c", config_extra={"mm_hidden_size": 32}), clip)
    (tmp_path / "b" / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(MissingInput, match="shard pytorch_model-00002-of-00002.bin .* is missing"):
        convert_llava(tmp_path / "b", clip)


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/egolego_llava_pwned", "w"))


def test_a_shard_carrying_code_runs_nothing(tmp_path):
    import os

    clip = clip_vision_folder(tmp_path / "clip")
    src = llava_v1_folder(tmp_path / "llava")
    shard = src / "pytorch_model-00001-of-00002.bin"
    sd = torch.load(shard, weights_only=True)
    sd["model.norm.weight"] = _Boom()
    torch.save(sd, shard)  # torch's own zip format, as the release's shards: only the pickle inside is crafted
    if os.path.exists("/tmp/egolego_llava_pwned"):
        os.unlink("/tmp/egolego_llava_pwned")
    with pytest.raises(InputError, match="not a plain tensor file"):
        convert_llava(src, clip)
    assert not os.path.exists("/tmp/egolego_llava_pwned")


@pytest.fixture(scope="module")
def imported_with_vllm(release, release_llava) -> dict:
    """The tiny release (LDM + LLaVA) imported through the command line, as a user would."""
    from egolego.cli import main

    from .official_files import SIZE

    out = release_llava["dir"] / "model"
    assert main(["import", "lego", "--ldm", str(release["ckpt"]), "--out", str(out), "--clip-text",
                 str(release["clip"]), "--size", str(SIZE), "--vllm", str(release_llava["src"]),
                 "--clip-vision", str(release_llava["clip"])]) == 0
    return {"model": out}


def test_generate_runs_the_imported_model_and_its_vllm_on_a_frame(imported_with_vllm, tmp_path, capsys):
    """`egolego generate --model MODEL --image my.jpg --action ...`: the VLLM describes and embeds, then the LDM."""
    from egolego.cli import main
    from egolego.ldm.generate import FrameGenerator

    model = imported_with_vllm["model"]
    assert (model / "vllm" / "vllm_config.yaml").is_file()
    gen = FrameGenerator(model)
    assert gen.pipe.conditioner.config.image_tokens == 4 and not gen.pipe.conditioner.config.mask_padding
    _frame().save(tmp_path / "my.jpg")
    assert main(["generate", "--model", str(model), "--image", str(tmp_path / "my.jpg"), "--action", "open the drawer",
                 "--out", str(tmp_path / "out.png"), "--steps", "2"]) == 0
    out = PIL.Image.open(tmp_path / "out.png")
    assert out.size == (52, 40)  # the input's aspect ratio
    assert "generate:" in capsys.readouterr().out


def test_a_vllm_too_large_for_this_machine_is_refused_before_loading(imported_with_vllm, tmp_path, monkeypatch,
                                                                      capsys):
    import egolego.vllm.memory as memory
    import egolego.vllm.model as vmodel
    from egolego.cli import main

    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    monkeypatch.setattr(vmodel, "load_llava", lambda *a, **k: pytest.fail("the VLLM was loaded"))
    _frame().save(tmp_path / "my.jpg")
    rc = main(["generate", "--model", str(imported_with_vllm["model"]), "--image", str(tmp_path / "my.jpg"),
               "--action", "open the drawer", "--out", str(tmp_path / "out.png")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and not (tmp_path / "out.png").exists()
    assert "needs ~" in err and "GiB in bfloat16" in err and "run it on a GPU" in err and len(err.splitlines()) == 1


def test_precision_tiers_follow_the_free_memory(release_llava):
    from egolego.vllm.memory import choose_precision, needed_bytes, parameter_count

    folder = release_llava["out"]
    model, _ = load_llava(folder)
    n = parameter_count(folder)
    assert n == sum(t.numel() for t in model.state_dict().values())  # read from the headers, no tensor loaded
    fp32 = needed_bytes(n, "float32")
    assert choose_precision(folder, "cpu", free=int(fp32) + 1) == "float32"
    assert choose_precision(folder, "cpu", free=int(fp32) - 1) == "bfloat16"
    with pytest.raises(InputError, match="GiB in bfloat16"):
        choose_precision(folder, "cpu", free=int(needed_bytes(n, "bfloat16")) - 1)
    with pytest.raises(InputError, match="float16 is for GPUs"):
        choose_precision(folder, "cpu", "float16")
    with pytest.raises(InputError, match="4bit needs a GPU"):
        choose_precision(folder, "cpu", "4bit")


def test_the_prompt_reaches_the_model_as_llava_tokenized_it(tmp_path):
    """A release folder with LLaMA's kind of tokenizer (SentencePiece ``tokenizer.model`` only, ``legacy: false``):
    it loads, and the converted processor's ids of the release prompt are LLaVA's ``tokenizer_image_token`` ids —
    computed here with sentencepiece itself, piece by piece around ``<image>`` — with ``<image>`` expanded to the
    image tokens. Loaded as its config says, the text after ``<image>`` would lose its word-start piece."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    src = llava_v1_folder(tmp_path / "llava", sentencepiece=True)
    out = tmp_path / "converted"
    report = import_llava(src, out, clip_vision_folder(tmp_path / "clip"))
    assert report["prompt_ids"] == "as LLaVA (reloaded with legacy=True)"
    sp = spm.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
    prompt = prompt_text(question(load_settings(out).inference_template, "open the drawer"), "llava_llama_2")
    before, after = prompt.split(IMAGE_TOKEN)
    _, proc = load_llava(out)
    image_id = proc.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    reference = [sp.bos_id(), *sp.encode(before), image_id, *sp.encode(after)]  # LLaVA: each piece alone, one BOS
    ids = proc(images=[_frame()], text=[prompt], return_tensors="pt")["input_ids"][0].tolist()
    first = ids.index(image_id)
    assert ids.count(image_id) == 4 and ids[first:first + 4] == [image_id] * 4
    assert ids[:first + 1] + ids[first + 4:] == reference
    plain = AutoTokenizer.from_pretrained(str(src), local_files_only=True)  # as the folder's config says
    plain.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    assert plain(prompt).input_ids != reference  # the word-start piece after <image> is missing there
