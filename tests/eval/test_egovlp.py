"""EgoVLP's divided space-time attention against masked full attention; checkpoint loading; clip layouts."""

import pytest
import torch
from PIL import Image

from egolego.eval.egovlp import EgoVLP, SpaceTimeTransformer, VarAttention


def _reference_attention(att: VarAttention, x: torch.Tensor, frames: int, patches: int, over: str) -> torch.Tensor:
    """Full attention with a mask: CLS sees everything; patch (f, n) sees CLS and its frame (space) or position (time)."""
    b, n1, d = x.shape
    h = att.heads
    q, k, v = att.qkv(x).chunk(3, -1)
    q, k, v = (t.reshape(b, n1, h, d // h).transpose(1, 2) for t in (q, k, v))  # (B, h, n1, hd)
    f_of = torch.tensor([-1] + [i // patches for i in range(frames * patches)])
    n_of = torch.tensor([-1] + [i % patches for i in range(frames * patches)])
    key = f_of if over == "space" else n_of
    allowed = (key[:, None] == key[None, :]) | (torch.arange(n1)[None, :] == 0)
    allowed[0, :] = True
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return att.proj(out.transpose(1, 2).reshape(b, n1, d))


@pytest.mark.parametrize("over", ["space", "time"])
def test_divided_attention_equals_masked_attention(over):
    torch.manual_seed(0)
    att = VarAttention(24, 4)
    x = torch.randn(2, 1 + 3 * 5, 24)
    assert torch.allclose(att(x, 3, 5, over), _reference_attention(att, x, 3, 5, over), atol=1e-5)


class ForeignConfig:  # stands for EgoVLP's pickled ConfigParser: must not be needed to load the file
    def __init__(self):
        self.value = 1


def _tiny(tmp_path, frames=4):
    torch.manual_seed(0)
    video = SpaceTimeTransformer(image_size=32, patch=16, dim=24, depth=2, heads=4, frames=frames)
    m = EgoVLP(video, proj_dim=8)
    for p in m.parameters():
        p.data.normal_(0, 0.3)
    sd = {f"module.{k}": v for k, v in m.state_dict().items()}
    sd["module.text_model.embeddings.word_embeddings.weight"] = torch.zeros(3, 3)  # ignored without a text folder
    path = tmp_path / "egovlp.pth"
    torch.save({"state_dict": sd, "config": ForeignConfig(), "epoch": 3}, path)
    return m, path


def test_checkpoint_round_trip_and_scores(tmp_path):
    m, path = _tiny(tmp_path)
    loaded = EgoVLP.from_checkpoint(path, heads=4)
    assert loaded.frames == 4 and loaded.video_model.patches == 4
    ims = [Image.new("RGB", (48, 40), c) for c in ("red", "blue", "green")]
    noisy = [Image.effect_noise((40, 40), 60).convert("RGB") for _ in range(3)]
    clips = [m.clips(a) for a in ims]
    assert torch.allclose(loaded.video_embeddings(clips), m.video_embeddings(clips), atol=1e-6)
    s = loaded.score(ims, ims)
    assert torch.allclose(s, torch.ones(3), atol=1e-5)
    assert (loaded.score(ims, noisy) < 0.9999).all()
    plus = loaded.clips(ims[0], ims[1])  # EgoVLP+: the input frame first
    assert plus == [ims[1], ims[1], ims[0], ims[0]]
    assert not torch.allclose(loaded.score(ims, noisy), loaded.score(ims, noisy, noisy))
    v = loaded.video_tensor([[ims[0]]])
    assert v.shape == (1, 1, 3, 32, 32)  # shorter side to 32, centre crop


def test_checkpoint_errors(tmp_path):
    _, path = _tiny(tmp_path)
    ck = torch.load(path, weights_only=False)
    ck["state_dict"].pop("module.video_model.blocks.1.timeattn.qkv.weight")
    torch.save(ck, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="not an EgoVLP checkpoint"):
        EgoVLP.from_checkpoint(tmp_path / "broken.pth", heads=4)


def test_text_tower_is_distilbert_plus_projection(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    from egolego.tokenizer import train_tokenizer

    text_dir = tmp_path / "distilbert"
    tok = train_tokenizer(["the person opens the drawer", "a cup on a table", "cut carrot"] * 4, text_dir, 300, 32)
    DistilBertConfig(vocab_size=len(tok), dim=24, n_layers=1, n_heads=4, hidden_dim=48,
                     max_position_embeddings=32, pad_token_id=tok.pad_token_id).save_pretrained(text_dir)
    torch.manual_seed(0)
    video = SpaceTimeTransformer(image_size=32, patch=16, dim=24, depth=1, heads=4, frames=4)
    m = EgoVLP(video, proj_dim=8, text_folder=text_dir)
    for p in m.parameters():
        p.data.normal_(0, 0.3)
    path = tmp_path / "egovlp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in m.state_dict().items()}}, path)
    loaded = EgoVLP.from_checkpoint(path, text_folder=text_dir, heads=4)
    # by hand: DistilBERT's first-token state -> ReLU -> Linear -> unit length
    bert = DistilBertModel(DistilBertConfig.from_pretrained(text_dir))
    bert.load_state_dict({k.removeprefix("text_model."): v for k, v in m.state_dict().items() if k.startswith("text_model.")})
    bert.eval()
    ids = tok(["cut carrot", "a cup on a table"], padding=True, return_tensors="pt")
    with torch.no_grad():
        cls = bert(**ids).last_hidden_state[:, 0]
        w, b = m.state_dict()["txt_proj.1.weight"], m.state_dict()["txt_proj.1.bias"]
        ref = torch.nn.functional.normalize(torch.relu(cls) @ w.T + b, dim=-1)
    assert torch.allclose(loaded.text_embeddings(["cut carrot", "a cup on a table"]), ref, atol=1e-5)


class _Exploit:
    """A pickled 'config' that, unpickled by an unsafe loader, calls ``func(*args)``."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _exploits(marker):
    import os

    from numpy.testing._private.utils import runstring

    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {"runstring": (runstring, (code, {})), "os.system": (os.system, (f"touch {marker}",)),
            "builtins.exec": (exec, (code,)), "builtins.eval": (eval, (code,))}


@pytest.mark.parametrize("name", ["runstring", "os.system", "builtins.exec", "builtins.eval"])
def test_crafted_checkpoint_runs_no_code(tmp_path, name):
    """A .pth whose pickled config reduces to exec-like functions loads its tensors (or is refused) and runs nothing."""
    m, _ = _tiny(tmp_path)
    marker = tmp_path / "pwned"
    func, args = _exploits(marker)[name]
    sd = {f"module.{k}": v for k, v in m.state_dict().items()}
    torch.save({"state_dict": sd, "config": _Exploit(func, args), "epoch": 3}, tmp_path / "evil.pth")
    try:
        loaded = EgoVLP.from_checkpoint(tmp_path / "evil.pth", heads=4)
    except ValueError as e:
        assert "evil.pth" in str(e)
    else:
        assert loaded.frames == 4
    assert not marker.exists()
