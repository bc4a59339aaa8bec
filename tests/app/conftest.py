"""Fixtures for the web app: tiny saved models (label; lego with a tiny VLLM), three eval runs, a browser."""

import os

import pytest

from egolego.ldm.pipeline import LegoPipeline

from ..debian import ensure_installed
from ..ldm.conftest import WORDS, make_components

PAIRS_N = 4  # pairs evaluated by each run


# the sampling the app's models save as their own (the paper's 100 steps elsewhere): what `generate` and the app use
# when a test leaves the steps to the model; 6, not the 3 the tests ask for, so "the model's own" is told apart
OWN_SAMPLING = {"steps": 6}


@pytest.fixture(scope="session")
def app_pairs(small_dataset, tmp_path_factory):
    from egolego.synth.pairs import pairs_from_egosynth

    d = tmp_path_factory.mktemp("app_pairs")
    pairs_from_egosynth(small_dataset, d)
    return d


@pytest.fixture(scope="session")
def app_tokenizer(app_pairs, tmp_path_factory):
    from egolego.data.manifest import read_manifest
    from egolego.tokenizer import train_tokenizer

    texts = [t for r in read_manifest(app_pairs) for t in (r["label"], r["description"], f"How do I {r['label']}?")]
    return train_tokenizer((texts + WORDS) * 3, tmp_path_factory.mktemp("app_tok"), vocab_size=400,
                           model_max_length=256)


@pytest.fixture(scope="session")
def label_model(app_tokenizer, tmp_path_factory):
    d = tmp_path_factory.mktemp("label_model") / "model"
    LegoPipeline(**make_components(app_tokenizer, mode="label"), sampling=OWN_SAMPLING).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def lego_model(app_tokenizer, tmp_path_factory):
    """A `lego` model with its (random, tiny) tuned VLLM in model/vllm, as `egolego demo` lays it out."""
    from egolego.config import TinyLlavaShapes
    from egolego.vllm.model import build_tiny_llava

    d = tmp_path_factory.mktemp("lego_model") / "model"
    s = TinyLlavaShapes()
    LegoPipeline(**make_components(app_tokenizer, mode="lego", vllm_dim=s.text_dim, image_tokens=16),
                 sampling=OWN_SAMPLING).save_pretrained(d)
    model, proc = build_tiny_llava(app_tokenizer, s)
    model.generation_config.max_new_tokens = 12
    model.save_pretrained(d / "vllm")
    proc.save_pretrained(d / "vllm")
    return d


@pytest.fixture(scope="session")
def app_runs(app_pairs, label_model, tmp_path_factory):
    """Eval runs of three methods on the same 4 test pairs: copy of the input, the tiny label model, ground truth."""
    from egolego.eval.run import EvalArgs, evaluate

    out = []
    for method, name in (("input", "input copy"), (str(label_model), "label"), ("target", "ground truth")):
        d = tmp_path_factory.mktemp("app_eval")
        evaluate(EvalArgs(model=method, pairs=app_pairs, out=d, metrics=("psnr", "ssim"), steps=2, limit=PAIRS_N, name=name,
                          new_actions=0, bootstrap=50), progress=False)
        out.append(d)
    return out


@pytest.fixture(scope="session")
def browser_binaries():
    """(chromium, chromedriver) from Debian; installed here when missing."""
    found = ensure_installed({"chromium": "chromium", "chromedriver": "chromium-driver"}, "the web app's browser test")
    return found["chromium"], found["chromedriver"]


@pytest.fixture
def browser(browser_binaries, tmp_path):
    """Headless Chromium driven by selenium (Debian's chromedriver; selenium's own driver download stays off)."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    exe, drv = browser_binaries
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1400", f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    d = webdriver.Chrome(service=Service(drv), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()
