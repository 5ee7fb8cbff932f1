"""Interactive charts in a real JupyterLab (headless Chromium), offline: tooltips, Vega parameters, no network.

The notebook (the browser test's synthetic results, no training) draws Fig. 3 with its
duration radio, the temperature page chart with its slider, and the results explorer with
a run in flight. The test hovers a point (a tooltip with the run ids and seeds), then
*freezes the kernel* (SIGSTOP) and moves the slider and the radio: the charts follow with no
kernel to answer. Every request the page makes is recorded; all go to the loopback address.
What each interaction costs (ms, messages to the kernel) is printed (run with ``-s``).
"""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest

from kdlib import paths
from test_browser import CHROMIUM, CHROMIUM_ARGS, h_all, lab, run_all_cells  # noqa: F401 - lab is a fixture

pytestmark = pytest.mark.browser

CELLS = [
    "import numpy as np, pandas as pd\n"
    "from kdlib import display, plots, widgets\n"
    "print('charts:', plots.enable_offline(), display.mode())\n"
    "frame, hist = pd.read_csv('results.csv'), pd.read_csv('history.csv')",
    "plots.duration_overlay(frame)",
    "explorer = widgets.temperature_explorer(np.load('logits.npy'))\n"
    "explorer.page_chart()",
    "results = widgets.results_explorer(frame, hist)\n"
    "results",
]

# The time from an input event to the chart showing the new state, measured in the page.
UPDATE_MS = """async ([selector, value, done]) => {
  const input = document.querySelector(selector);
  const t0 = performance.now();
  if (input.type === 'radio') { input.click(); } else {
    input.value = value; input.dispatchEvent(new Event('input', {bubbles: true})); }
  while (!new Function('return ' + done)()) { await new Promise(r => requestAnimationFrame(r)); }
  return performance.now() - t0;
}"""


def kernel_pid(lab, notebook: str) -> int:
    """The pid of the kernel behind ``notebook`` (its connection file names the kernel id)."""
    with urllib.request.urlopen(f"{lab['url']}/api/sessions?token={lab['token']}", timeout=5) as r:
        sessions = json.load(r)
    kid = next(s["kernel"]["id"] for s in sessions if s["path"].endswith(notebook))
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and kid.encode() in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    raise AssertionError(f"no process runs kernel {kid}")


def test_charts_are_interactive_offline_and_move_with_the_kernel_frozen(lab):
    from playwright.sync_api import sync_playwright

    screenshots = Path(os.environ.get("KDLIB_SCREENSHOTS") or paths.outputs_dir() / "screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, lab["root"] / "interactive.ipynb")
    logits = np.load(lab["root"] / "logits.npy")
    costs: dict[str, object] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests, errors, to_kernel = [], [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("websocket", lambda ws: ws.on("framesent", lambda f: to_kernel.append(time.monotonic())))
            page.goto(f"{lab['url']}/lab/tree/interactive.ipynb?token={lab['token']}")
            page.wait_for_selector(".jp-StatusBar-TextItem:has-text('Idle')", timeout=60_000)
            run_all_cells(page)
            outputs = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
            assert "Error" not in outputs and "charts: jupyter interactive" in outputs, outputs[:2000]

            # JupyterChart views, drawn as SVG by the offline bundle
            results = page.locator(".kdlib-results-explorer")
            page.wait_for_selector(".kdlib-accuracy-vs-temperature svg .mark-symbol path", timeout=60_000)
            page.wait_for_selector(".kdlib-accuracy-vs-epoch svg .mark-line path", timeout=30_000)
            page.wait_for_selector("input[type=range]", timeout=30_000)
            page.wait_for_selector("input[type=radio]", timeout=30_000)

            # 1) a tooltip on hover: values, run ids, seeds
            results.scroll_into_view_if_needed()
            point = page.locator(".kdlib-accuracy-vs-temperature svg g.mark-symbol").first.locator("path").nth(2)
            box = point.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_selector("#vg-tooltip-element.visible", timeout=10_000)
            tip = page.locator("#vg-tooltip-element").inner_text()
            assert "run id" in tip and "seed" in tip and "test_acc" in tip and "temperature" in tip, tip
            chart_box = page.locator(".kdlib-accuracy-vs-temperature").bounding_box()
            page.screenshot(path=str(screenshots / "interactive_tooltip.png"),
                            clip={"x": chart_box["x"], "y": chart_box["y"] - 10,
                                  "width": chart_box["width"] + 260, "height": chart_box["height"] + 60})

            # 2) the run in flight: a dashed curve in the epoch chart
            assert page.locator(".kdlib-accuracy-vs-epoch svg path[stroke-dasharray]").count() >= 1
            page.locator(".kdlib-accuracy-vs-epoch").screenshot(path=str(screenshots / "interactive_in_flight.png"))

            # 3) the kernel frozen, the slider and the radio still move their charts
            pid = kernel_pid(lab, "interactive.ipynb")
            os.kill(pid, signal.SIGSTOP)
            try:
                sent = len(to_kernel)
                label_at = ("[...document.querySelectorAll('svg text')].some(e => e.textContent.startsWith('T = {t}')"
                            " && e.textContent.includes('H_all = {h}'))")
                slider = page.locator("input[type=range]").first
                slider.scroll_into_view_if_needed()
                costs["slider_ms"] = page.evaluate(UPDATE_MS, ["input[type=range]", "10",
                                                               label_at.format(t="10.0", h=f"{h_all(logits, 10.0):.4f}")])
                costs["slider_ms_2"] = page.evaluate(UPDATE_MS, ["input[type=range]", "40",
                                                                 label_at.format(t="40.0", h=f"{h_all(logits, 40.0):.4f}")])
                page.locator("input[type=range]").first.evaluate("e => e.closest('.jp-OutputArea-output')"
                                                                 ".scrollIntoView()")
                page.screenshot(path=str(screenshots / "interactive_slider_kernel_frozen.png"))
                faded = "[...document.querySelectorAll('svg .mark-line path')].some(p => p.getAttribute('opacity') === '0.2')"
                assert not page.evaluate(f"() => {faded}")
                costs["radio_ms"] = page.evaluate(UPDATE_MS, ["input[type=radio][value='10']", "", faded])
                costs["messages_to_kernel_while_frozen"] = len(to_kernel) - sent  # param sync; nobody waits on them
            finally:
                os.kill(pid, signal.SIGCONT)

            # 4) a kernel-side control: a round trip per change (new spec for each chart)
            page.wait_for_selector(".jp-StatusBar-TextItem:has-text('Idle')", timeout=30_000)
            sent = len(to_kernel)
            t0 = time.monotonic()
            page.click(".kdlib-axis-optimizer button:has-text('sgd')")
            page.wait_for_function("() => document.querySelector(\".kdlib-readouts [data-key='best_temperature']\")"
                                   "?.textContent === 'T=1' && [...document.querySelectorAll("
                                   "'.kdlib-accuracy-vs-temperature svg text')].some(e => e.textContent"
                                   ".includes('optimizer=sgd'))", timeout=30_000)
            costs["kernel_control_ms"] = round(1000 * (time.monotonic() - t0))
            costs["kernel_control_messages_sent"] = len(to_kernel) - sent
            print("interaction costs:", json.dumps({k: round(v, 1) if isinstance(v, float) else v
                                                    for k, v in costs.items()}))
            assert costs["slider_ms"] < 2000 and costs["radio_ms"] < 2000, costs

            hosts = {urllib.parse.urlsplit(u).hostname for u in requests if not u.startswith(("data:", "blob:"))}
            assert hosts == {"127.0.0.1"}, sorted(u for u in requests if "127.0.0.1" not in u)[:20]
            assert not errors, errors
        finally:
            browser.close()
