"""The web app in a real browser (Debian's headless Chromium + selenium) against servers on 127.0.0.1.

Set EGOLEGO_SCREENSHOTS=DIR to keep a screenshot of each tab (the README's come from `scripts/app_screenshots.py`).
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from egolego.app import votes as V
from egolego.app.engine import Engine
from egolego.app.launch import launch
from egolego.app.runs import load_pairs, load_runs
from egolego.app.serve import build_serve
from egolego.app.study import Study, build_study
from egolego.cli import main

from .conftest import PAIRS_N

SHOTS = os.environ.get("EGOLEGO_SCREENSHOTS")
WAIT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(driver, test, what, timeout=WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: test(d), message=what)


def css(driver, sel):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, sel)


def loaded_image(driver, sel):
    """The src of a decoded <img> under ``sel``, or None."""
    return driver.execute_script(
        "var i = document.querySelector(arguments[0] + ' img');"
        "return i && i.complete && i.naturalWidth > 0 ? i.src : null;", sel)


def type_into(driver, sel, text):
    from selenium.webdriver.common.keys import Keys

    box = css(driver, f"{sel} textarea, {sel} input[type=number], {sel} input")[0]
    box.clear()
    box.send_keys(text + Keys.TAB)


def pick_option(driver, sel, index=0):
    css(driver, f"{sel} input")[0].click()
    opts = wait_for(driver, lambda d: css(d, "ul.options li, [role=option]"), f"{sel}: options")
    opts[index].click()


def external_requests(driver) -> list[str]:
    """Every http(s)/ws(s) request the page made to a host other than 127.0.0.1."""
    out = []
    for e in driver.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            url = m["params"].get("request", {}).get("url") or m["params"].get("url", "")
            u = urlparse(url)
            if u.scheme in ("http", "https", "ws", "wss") and u.hostname != "127.0.0.1":
                out.append(url)
    return out


def upload_status(url, size) -> int:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + b"\0" * size + b"\r\n--b--\r\n")
    req = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": "multipart/form-data; boundary=b"})
    try:
        return urllib.request.urlopen(req, timeout=30).status
    except urllib.error.HTTPError as e:
        return e.code


def shot(driver, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / name))


def test_serve_generate_compare_and_bad_upload(browser, label_model, app_pairs, app_runs, tmp_path):
    runs = load_runs(app_runs)
    app = launch(build_serve(Engine(label_model), None, load_pairs(app_pairs, limit=8), runs), port=free_port(),
                 block=False)
    try:
        url = app.local_url
        assert url.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as e:  # gradio serves no file it did not write itself
            urllib.request.urlopen(url + "gradio_api/file=/etc/passwd", timeout=10)
        assert e.value.code in (403, 404)
        assert upload_status(url, 9 * 1024 * 1024) == 413  # over the 8 MB cap: refused before any decoding
        assert upload_status(url, 1024) == 200
        browser.get(url)
        wait_for(browser, lambda d: css(d, "#generate"), "the page loads")
        # pick a test pair: its frame is shown and its label fills the action
        pick_option(browser, "#pick")
        wait_for(browser, lambda d: loaded_image(d, "#preview"), "the picked frame is shown")
        wait_for(browser, lambda d: css(d, "#action textarea, #action input")[0].get_attribute("value"), "action filled")
        type_into(browser, "#steps", "2")
        css(browser, "#generate")[0].click()
        src = wait_for(browser, lambda d: loaded_image(d, "#result"), "a generated image appears")
        assert src.startswith(url) or src.startswith("blob:") or src.startswith("data:")
        used = css(browser, "#used textarea, #used input")[0].get_attribute("value")
        assert used == css(browser, "#action textarea, #action input")[0].get_attribute("value")  # label mode
        shot(browser, "app_generate.png")
        # a malformed upload gives a message, not a traceback
        bad = tmp_path / "frame.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
        css(browser, "#upload input[type=file]")[0].send_keys(str(bad))
        toast = wait_for(browser, lambda d: [t for t in css(d, ".toast-body, [data-testid=toast-body]")
                                            if "not a readable" in t.text], "a warning about the upload")
        assert "Traceback" not in toast[0].text and "Traceback" not in browser.page_source
        # Compare: the input, every method and the ground truth, with the per-pair metrics
        [t for t in css(browser, "button[role=tab]") if t.text.strip() == "Compare"][0].click()
        pick_option(browser, "#compare-pick")
        wait_for(browser, lambda d: "PSNR" in css(d, "#compare-metrics")[0].text, "per-pair metrics")
        table = css(browser, "#compare-metrics")[0].text
        assert all(n in table for n in ("input copy", "label", "ground truth"))
        assert "100" in table  # the ground truth's PSNR
        wait_for(browser, lambda d: d.execute_script(
            "return [...document.querySelectorAll('#tab-compare img')].filter(i => i.naturalWidth > 0).length") == 3,
            "input, the label model's frame and the ground truth (the references are not repeated)")
        shot(browser, "app_compare.png")
        assert external_requests(browser) == []
    finally:
        app.close()


def _vote(browser, n_left):
    css(browser, "#vote-0")[0].click()
    wait_for(browser, lambda d: f"{n_left} pair(s) left" in d.find_element("id", "status").text
             if n_left else "every pair" in d.find_element("id", "status").text, f"next trial ({n_left} left)")


def test_study_three_votes_rows_win_rates_and_restart(browser, app_runs, tmp_path):
    db = tmp_path / "votes.sqlite"
    study = Study(load_runs(app_runs), db)
    app = launch(build_study(study), port=free_port(), block=False)
    try:
        browser.get(app.local_url)
        wait_for(browser, lambda d: css(d, "#rater textarea, #rater input"), "the page loads")
        type_into(browser, "#rater", "rater-1")
        css(browser, "#start")[0].click()
        wait_for(browser, lambda d: f"{PAIRS_N} pair(s) left" in d.find_element("id", "status").text, "first trial")
        wait_for(browser, lambda d: d.execute_script(
            "return [...document.querySelectorAll('img')].filter(i => i.naturalWidth > 0).length") >= 4,
            "input and three shuffled outputs")
        assert "Action:" in css(browser, "#study-text")[0].text
        shot(browser, "app_study.png")
        for left in (PAIRS_N - 1, PAIRS_N - 2, PAIRS_N - 3):
            _vote(browser, left)
        assert external_requests(browser) == []
    finally:
        app.close()
    rows = V.read_votes(db)
    assert len(rows) == 3 and {r["rater"] for r in rows} == {"rater-1"} and len({r["pair_id"] for r in rows}) == 3
    names = set(study.runs.names)
    assert all(sorted(r["shown"]) == sorted(names) and r["choice"] == r["shown"][0] for r in rows)  # button A
    w = V.win_rates(rows)
    expect = {m: sum(r["choice"] == m for r in rows) for m in names}
    assert {m: w[m]["wins"] for m in names} == expect and all(w[m]["n"] == 3 for m in names)
    assert sum(w[m]["rate"] for m in names) == pytest.approx(1.0)

    # restart: a new server process on the same file; the rater continues with the one pair left
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "egolego.cli", "study", "--runs", *map(str, app_runs), "--db", str(db),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        browser.get(url)
        wait_for(browser, lambda d: css(d, "#rater textarea, #rater input"), "the page loads")
        type_into(browser, "#rater", "rater-1")
        css(browser, "#start")[0].click()
        wait_for(browser, lambda d: "1 pair(s) left" in d.find_element("id", "status").text, "resumed after restart")
        _vote(browser, 0)
    finally:
        proc.terminate()
        proc.wait(10)
    rows = V.read_votes(db)
    assert len(rows) == 4 and len({r["pair_id"] for r in rows}) == PAIRS_N

    # the report shows the win rates and the per-rater counts
    html = tmp_path / "report.html"
    assert main(["report", *map(str, app_runs), "--votes", str(db), "--out", str(html)]) == 0
    text = html.read_text()
    assert "User study" in text and "rater-1" in text and "win rate" in text
    for m, v in V.win_rates(rows).items():
        assert f"{v['wins']}/{v['n']}" in text, m


def test_cli_errors(app_runs, tmp_path, capsys):
    assert main(["study", "--runs", str(app_runs[0]), "--db", str(tmp_path / "v.sqlite")]) == 2
    assert "compares 2 to" in capsys.readouterr().err
    assert main(["study", "--runs", str(tmp_path), "--db", str(tmp_path / "v.sqlite")]) == 2
    assert "no eval.json" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert "not a LEGO model folder" in capsys.readouterr().err
    assert main(["study", "--runs", *map(str, app_runs), "--db", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not a database " * 100)
    assert main(["study", "--runs", *map(str, app_runs), "--db", str(tmp_path / "notes.txt")]) == 2
    assert "not a usable votes database" in capsys.readouterr().err
    assert main(["report", str(app_runs[0]), "--votes", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "r.html")]) == 2
    assert "no votes database" in capsys.readouterr().err

