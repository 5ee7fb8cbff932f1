"""The temperature explorer in a real JupyterLab, driven by headless Chromium, and under papermill.

The browser test starts JupyterLab on a free loopback port with its own token and throwaway
config/runtime/data folders, writes a small notebook (synthetic logits, no training), runs it,
clicks a preset and moves the slider with the keyboard, and checks that the drawn chart and the
readouts follow (against numpy) with no frame where the chart is missing. Screenshots go to
``screenshots/`` in the session's temporary outputs, or to ``$KDLIB_SCREENSHOTS`` to keep them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from kdlib import paths

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CLASSES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]

# Before the page's own scripts: note every animation frame in which the profile chart is not drawn
# (after it first was). A flicker would show up here as a frame without its SVG.
FLICKER_PROBE = """
window.__kdlib = {drawn: false, blank: 0, frames: 0};
(function tick() {
  const svg = document.querySelector('.kdlib-profile svg');
  const r = svg ? svg.getBoundingClientRect() : null;
  const ok = !!(r && r.width > 0 && r.height > 0 && svg.querySelector('path'));
  if (ok) window.__kdlib.drawn = true;
  if (window.__kdlib.drawn) { window.__kdlib.frames++; if (!ok) window.__kdlib.blank++; }
  requestAnimationFrame(tick);
})();
"""


# ----------------------------------------------------------------------------- reference math (numpy only)

def h_all(z: np.ndarray, t: float) -> float:
    a = z / t
    p = np.exp(a - a.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return float((-(p * np.log(p)).sum(1) / np.log(z.shape[1])).mean())


def write_notebook(root: Path, *, save: bool = False) -> Path:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 10)) * 2 + 8 * np.eye(10)[rng.integers(0, 10, 300)]
    np.save(root / "logits.npy", logits)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("Temperature explorer on synthetic logits (browser test)."),
        nbformat.v4.new_code_cell(
            "import numpy as np\n"
            "from kdlib import widgets\n"
            "logits = np.load('logits.npy')\n"
            f"explorer = widgets.temperature_explorer(logits, class_names={CLASSES!r})\n"
            "explorer"),
        nbformat.v4.new_code_cell(
            "import pandas as pd\n"
            "results = widgets.results_explorer(pd.read_csv('results.csv'), pd.read_csv('history.csv'))\n"
            "results"),
    ]
    if save:  # PNG + inline HTML; the first inline HTML of a process takes seconds, so only headless
        nb.cells.append(nbformat.v4.new_code_cell(
            "from pathlib import Path\n"
            "saved = explorer.save_static('temperature_explorer', Path('static').resolve())\n"
            "[p.name for p in saved]"))
    rows, history = [], []
    for opt in ("adamw", "sgd"):
        for epochs in (10, 20, 40):
            for t in (1.0, 2.0, 4.0, 10.0, 40.0):
                for seed in (0, 1):
                    acc = 60 + epochs / 4 + (3 if opt == "adamw" else -1.5) * np.log(t) - 0.4 * np.log(t) ** 2 + seed
                    run = f"{opt}-{epochs}-{t:g}-{seed}"
                    rows.append(dict(run_id=run, kind="distill", dataset="fmnist-fine", teacher="resnet50",
                                     student="resnet18", optimizer=opt, batch_size=128, epochs=epochs,
                                     temperature=t, seed=seed, status="done", test_acc=acc))
                    history += [dict(run_id=run, epoch=e, test_acc=acc * (0.6 + 0.4 * e / epochs))
                                for e in range(2, epochs + 1, 2)]
    # one run still training (adamw, 40 epochs, T=4, seed 2): the epoch chart draws it dashed from its live history
    rows.append(dict(rows[-1], run_id="live", optimizer="adamw", epochs=40, temperature=4.0, seed=2, status="running",
                     test_acc=None, in_flight=True))
    history += [dict(run_id="live", epoch=e, test_acc=50 + e / 2, in_flight=True) for e in range(2, 21, 2)]
    pd.DataFrame(rows).assign(in_flight=lambda f: f["in_flight"].fillna(False).astype(bool)).to_csv(
        root / "results.csv", index=False)
    pd.DataFrame(history).to_csv(root / "history.csv", index=False)
    path = root / "explorer.ipynb"
    nbformat.write(nb, path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server of our own: loopback only, token, throwaway settings; always stopped."""
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found (looked for {CHROMIUM}); install it with: apt-get install -y chromium"
        print(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    write_notebook(root)
    cfg = root / ".jupyter"
    settings = cfg / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (cfg / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"jupyter_lsp": False, "jupyter_server_terminals": False}},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
    port, token = free_port(), os.urandom(16).hex()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               JUPYTER_DATA_DIR=str(root / ".data"), IPYTHONDIR=str(root / ".ipython"),
               JUPYTER_PLATFORM_DIRS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(root / "server.log", "w")
    server = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop():
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and its kernel: our own process group
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
        log.close()

    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{(root / 'server.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer:\n{(root / 'server.log').read_text()[-3000:]}")
                time.sleep(0.25)
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "root": root, "pid": server.pid}
    finally:
        stop()


def run_all_cells(page) -> None:
    """Run All from the menu and wait until every code cell has run."""
    for _ in range(5):  # "Run All" can be lost while the kernel connects: retry until a cell starts
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        try:
            page.wait_for_function("""() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                                      .some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))""", timeout=5_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; try the menu again
            continue
    page.wait_for_function("""() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                              .every(e => /\\[\\d+\\]/.test(e.textContent))""", timeout=90_000)


def readout(page, key: str) -> str:
    return page.locator(f".kdlib-readouts [data-key='{key}']").first.inner_text()


def test_temperature_explorer_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    screenshots = Path(os.environ.get("KDLIB_SCREENSHOTS") or paths.outputs_dir() / "screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)
    logits = np.load(lab["root"] / "logits.npy")
    start = time.monotonic()

    def stamp(what: str) -> None:  # shown on failure (or with -s): where the time went
        print(f"[{time.monotonic() - start:5.1f} s] {what}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.add_init_script(FLICKER_PROBE)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{lab['url']}/lab/tree/explorer.ipynb?token={lab['token']}")
            page.wait_for_selector(".jp-StatusBar-TextItem:has-text('Idle')", timeout=60_000)
            stamp("kernel idle")
            run_all_cells(page)
            stamp("cells executed")
            outputs = page.locator(".jp-OutputArea-output")
            assert "Error" not in " ".join(outputs.all_inner_texts())
            explorer = page.locator(".kdlib-temperature-explorer")
            page.wait_for_selector(".kdlib-profile svg path", timeout=30_000)
            page.wait_for_selector(".kdlib-sample svg path", timeout=30_000)
            explorer.scroll_into_view_if_needed()

            before = {"profile": page.inner_html(".kdlib-profile"), "sample": page.inner_html(".kdlib-sample"),
                      "h_all": readout(page, "h_all"), "t": readout(page, "temperature")}
            assert before["t"] == "1"
            assert before["h_all"] == f"{h_all(logits, 1.0):.4f}"
            assert "T=1" in before["profile"] and "T=40" not in before["profile"]
            explorer.screenshot(path=str(screenshots / "temperature_explorer_before.png"))
            stamp("explorer drawn")

            # 1) click the T=40 preset
            page.click(".kdlib-presets button:has-text('T=40')")
            page.wait_for_function("() => document.querySelector(\".kdlib-readouts [data-key='temperature']\")"
                                   ".textContent === '40'", timeout=20_000)
            page.wait_for_function("() => document.querySelector('.kdlib-profile').innerHTML.includes('T=40')"
                                   " && document.querySelector('.kdlib-sample').innerHTML.includes('at T=40')",
                                   timeout=20_000)
            assert readout(page, "h_all") == f"{h_all(logits, 40.0):.4f}" != before["h_all"]
            assert page.inner_html(".kdlib-sample") != before["sample"]
            assert page.locator(".kdlib-slider .widget-readout").inner_text() == "40"
            explorer.screenshot(path=str(screenshots / "temperature_explorer_t40.png"))
            stamp("preset T=40 shown")

            # 2) move the slider with the keyboard: three steps down from 40
            page.focus(".kdlib-slider .noUi-handle")
            for _ in range(3):
                page.keyboard.press("ArrowLeft")
            settled = """() => {
                const t = document.querySelector(".kdlib-readouts [data-key='temperature']").textContent;
                const slider = document.querySelector('.kdlib-slider .widget-readout').textContent;
                const idle = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
                    .some(e => e.textContent.includes('Idle'));
                return t !== '40' && t === slider && idle
                    && document.querySelector('.kdlib-profile').innerHTML.includes('T=' + t)
                    && document.querySelector('.kdlib-sample').innerHTML.includes('at T=' + t);
            }"""
            for _ in range(2):  # each key press is its own update: wait until the last one has landed
                page.wait_for_function(settled, timeout=20_000)
                page.wait_for_timeout(500)
            t = float(page.locator(".kdlib-readouts [data-key='temperature']").get_attribute("data-value"))
            assert 30 < t < 40
            assert readout(page, "h_all") == f"{h_all(logits, t):.4f}"
            assert page.locator(".kdlib-presets button.mod-active").count() == 0  # off-preset
            explorer.screenshot(path=str(screenshots / "temperature_explorer_after.png"))
            page.screenshot(path=str(screenshots / "temperature_explorer_page.png"))
            stamp("slider moved")

            # the results explorer: pick SGD, the best temperature moves (see write_notebook's numbers)
            results = page.locator(".kdlib-results-explorer")
            page.wait_for_selector(".kdlib-accuracy-vs-temperature svg path", timeout=20_000)
            page.wait_for_selector(".kdlib-accuracy-vs-epoch svg path", timeout=20_000)
            results.scroll_into_view_if_needed()
            assert readout(page, "best_temperature") == "T=40"
            results.screenshot(path=str(screenshots / "results_explorer_before.png"))
            epoch_chart = page.inner_html(".kdlib-accuracy-vs-epoch")
            assert "stroke-dasharray" in epoch_chart and "still training" in epoch_chart  # the run in flight
            page.locator(".kdlib-accuracy-vs-epoch").screenshot(path=str(screenshots / "results_explorer_in_flight.png"))
            page.click(".kdlib-axis-optimizer button:has-text('sgd')")
            page.wait_for_function("() => document.querySelector(\".kdlib-readouts [data-key='best_temperature']\")"
                                   "?.textContent === 'T=1' && document.querySelector('.kdlib-accuracy-vs-temperature')"
                                   ".innerHTML.includes('optimizer=sgd')", timeout=20_000)
            results.screenshot(path=str(screenshots / "results_explorer_after.png"))
            stamp("results explorer followed")

            probe = page.evaluate("window.__kdlib")
            assert probe["frames"] > 10 and probe["blank"] == 0, probe  # no flicker while updating
            assert not errors, errors
        finally:
            browser.close()


def test_notebook_runs_headless_under_papermill(tmp_path):
    """No frontend: callbacks never fire, yet the output carries a PNG and save_static writes files."""
    import papermill

    nb_path = write_notebook(tmp_path, save=True)
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(nb_path), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    display = [o for o in nb.cells[1].outputs if o.output_type in ("display_data", "execute_result")][0]
    assert display.data["image/png"] and "TemperatureExplorer" in display.data["text/plain"]
    results = [o for o in nb.cells[2].outputs if o.output_type in ("display_data", "execute_result")][0]
    assert results.data["image/png"] and "best T=40" in results.data["text/plain"]
    assert re.search(r"temperature_explorer\.png", nb.cells[3].outputs[0].data["text/plain"])
    assert (tmp_path / "static" / "temperature_explorer.png").stat().st_size > 5000
    assert (tmp_path / "static" / "temperature_explorer.html").is_file()


def test_the_saved_temperature_page_works_offline_from_file(tmp_path):
    """save_static's HTML: a real slider bound to a Vega parameter, tooltips, nothing fetched, from file://."""
    from playwright.sync_api import sync_playwright

    from kdlib import widgets

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found (looked for {CHROMIUM}); install it with: apt-get install -y chromium")
    screenshots = Path(os.environ.get("KDLIB_SCREENSHOTS") or paths.outputs_dir() / "screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)
    write_notebook(tmp_path)
    logits = np.load(tmp_path / "logits.npy")
    explorer = widgets.temperature_explorer(logits, class_names=CLASSES)
    saved = explorer.save_static("temperature_explorer", tmp_path / "00_quickstart")
    html = next(p for p in saved if p.suffix == ".html")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 520})
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.as_uri())
            page.wait_for_selector("svg path", timeout=30_000)

            def label() -> str:
                return next(t for t in page.locator("svg text").all_text_contents() if "H_all" in t)

            assert label().startswith("T = 1.00") and f"H_all = {h_all(logits, 1.0):.4f}" in label()
            before = page.locator("svg").first.inner_html()
            page.locator("input[type=range]").fill("10")  # the slider: an <input type=range> bound to param T
            page.wait_for_function("() => [...document.querySelectorAll('svg text')]"
                                   ".some(e => e.textContent.startsWith('T = 10.0'))", timeout=10_000)
            assert f"H_all = {h_all(logits, 10.0):.4f}" in label()
            assert page.locator("svg").first.inner_html() != before
            point = page.locator("svg .mark-symbol path").nth(3).bounding_box()
            page.mouse.move(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
            page.wait_for_selector("#vg-tooltip-element.visible", timeout=10_000)
            tip = page.locator("#vg-tooltip-element").inner_text()
            assert "rank" in tip and "probability" in tip and "H_all" in tip, tip
            page.screenshot(path=str(screenshots / "temperature_page_tooltip.png"))
            assert {u.split(":", 1)[0] for u in requests} == {"file"}, requests  # nothing from the network
            assert not errors, errors
        finally:
            browser.close()
