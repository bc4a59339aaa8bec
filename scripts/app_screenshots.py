"""Screenshots of the web app's tabs for the README, from a finished `egolego demo` folder.

    python scripts/app_screenshots.py [--demo runs/demo] [--out docs]

Starts `egolego serve` (lego model, label baseline, the demo's eval runs) and `egolego study` (a throw-away
votes file) on 127.0.0.1, drives Debian's headless Chromium with selenium (as tests/app/test_browser.py does),
and writes app_generate.png, app_compare.png and app_study.png.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(profile: str):
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for f in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1280,1250", f"--user-data-dir={profile}"):
        o.add_argument(f)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def until(d, test, what, timeout=180):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout, poll_frequency=0.3).until(lambda d: test(d), message=what)


def q(d, sel):
    return d.find_elements("css selector", sel)


def has_image(d, sel):
    return d.execute_script("var i = document.querySelector(arguments[0] + ' img');"
                            "return !!(i && i.complete && i.naturalWidth > 0);", sel)


def pick(d, sel, index):
    q(d, f"{sel} input")[0].click()
    until(d, lambda d: q(d, "ul.options li, [role=option]"), "options")[index].click()


def type_into(d, sel, text):
    from selenium.webdriver.common.keys import Keys

    box = q(d, f"{sel} textarea, {sel} input[type=number], {sel} input")[0]
    box.clear()
    box.send_keys(text + Keys.TAB)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", default="runs/demo")
    p.add_argument("--out", default="docs")
    p.add_argument("--pair", type=int, default=3, help="which test pair to show")
    p.add_argument("--steps", help="sampling steps typed into the form (default: the model's own)")
    a = p.parse_args()
    from egolego.app.engine import Engine
    from egolego.app.launch import launch
    from egolego.app.runs import load_runs
    from egolego.app.serve import build_serve
    from egolego.app.study import Study, build_study

    demo, out = Path(a.demo), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    evals = sorted((demo / "eval").iterdir())
    runs = load_runs(evals)
    label = demo / "ldm_label" / "model"  # trained by `egolego demo --baseline`
    baseline = Engine(label) if label.is_dir() else None
    app = launch(build_serve(Engine(demo / "ldm_lego" / "model"), baseline, runs.pairs, runs),
                 port=free_port(), block=False)
    with tempfile.TemporaryDirectory() as tmp:
        d = browser(f"{tmp}/profile")
        try:
            d.get(app.local_url)
            until(d, lambda d: q(d, "#generate"), "page")
            pick(d, "#pick", a.pair)
            until(d, lambda d: has_image(d, "#preview"), "preview")
            q(d, "button")[[b.text for b in q(d, "button")].index("Describe (the VLLM writes the description)")].click()
            until(d, lambda d: q(d, "#description textarea")[0].get_attribute("value"), "description")
            if a.steps:
                type_into(d, "#steps", a.steps)
            q(d, "#generate")[0].click()
            until(d, lambda d: has_image(d, "#result") and (baseline is None or has_image(d, "#baseline")),
                  "generated frames")
            d.save_screenshot(str(out / "app_generate.png"))
            [t for t in q(d, "button[role=tab]") if t.text.strip() == "Compare"][0].click()
            pick(d, "#compare-pick", a.pair)
            until(d, lambda d: "PSNR" in q(d, "#compare-metrics")[0].text, "metrics")
            until(d, lambda d: d.execute_script("return [...document.querySelectorAll('#tab-compare img')]"
                                                ".every(i => i.naturalWidth > 0)"), "images")
            d.save_screenshot(str(out / "app_compare.png"))
        finally:
            app.close()
        trained = [e for e in evals if e.name in ("lego", "label")] + [e for e in evals if e.name == "input_copy"]
        study = Study(load_runs(trained or evals), Path(tmp) / "votes.sqlite")
        sapp = launch(build_study(study), port=free_port(), block=False)
        try:
            d.get(sapp.local_url)
            until(d, lambda d: q(d, "#rater input, #rater textarea"), "study page")
            type_into(d, "#rater", "rater-1")
            q(d, "#start")[0].click()
            until(d, lambda d: "left" in d.find_element("id", "status").text, "first trial")
            until(d, lambda d: d.execute_script("return [...document.querySelectorAll('img')]"
                                                ".filter(i => i.naturalWidth > 0).length") >= 3, "trial images")
            d.save_screenshot(str(out / "app_study.png"))
        finally:
            sapp.close()
            d.quit()
    print(f"screenshots: {out / 'app_generate.png'}, {out / 'app_compare.png'}, {out / 'app_study.png'}")


if __name__ == "__main__":
    main()
