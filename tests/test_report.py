"""The flatness report on real tiny runs: numbers, figures, escaping, offline, and a headless browser.

Three runs: two copies of one Adam run under hostile folder names (their
labels collide, so the names themselves are shown in figures) and one SAM
run, all inside a folder whose name is ``<script>alert(1)</script>``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import balanced_accuracy_score

from landscape.analysis import list_analyses
from landscape.checkpoint import load_checkpoint, records
from landscape.io import safe_torch_load
from landscape.report import build_report
from landscape.report.collect import run_analysis
from landscape.report.style import fmt

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = "<img src=x onerror=alert(1)>"
AMP_NAME = "adam&amp;<b>bold"
TINY = {  # analyses small enough for a test; every analyzer still runs for real
    "hessian": {"top_k": 2, "samples": 32, "batch_size": 32, "trace_settings": {"max_hvps": 40},
                "density_settings": {"runs": 2, "steps": 20}},
    "sharpness": {"rhos": (0.02, 0.05), "m": 16, "samples": 32, "steps": 2},
    "sharpness_adaptive": {"rhos": (0.005, 0.01), "m": 16, "samples": 32, "steps": 2},
    "surface_1d": {"grid": 7, "samples": 32},
    "surface_2d": {"grid": 5, "samples": 32},
    "measures": {"samples": 32, "ggn_samples": 8, "draws": 2, "depth": 3},
}
FIGURES = ("flatness", "predictors-scatter", "landscape-1d", "surfaces-2d", "surfaces-3d", "density", "sharpness")


class Tags(HTMLParser):
    """Start tags with their attributes, and the text of each <script> by id."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: dict[str, str] = {}
        self._script_id = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._script_id = attrs.get("id") if tag == "script" else None

    def handle_data(self, data):
        if self._script_id:
            self.scripts[self._script_id] = self.scripts.get(self._script_id, "") + data


@pytest.fixture(scope="module")
def report(tiny_runs, tmp_path_factory):
    """Build the report of the three runs once; returns (html path, parsed tags, numbers, run folders)."""
    tmp = tmp_path_factory.mktemp("report")
    root = tmp / SCRIPT_NAME  # a folder path that contains the script tag (the "/" nests it)
    adam, sam = tiny_runs
    runs = [root / IMG_NAME, root / AMP_NAME, root / "sam"]
    shutil.copytree(adam, runs[0])
    shutil.copytree(sam, runs[2])
    ck = load_checkpoint(runs[0])  # analyse the Adam run once; its copy then finds every record cached
    for name in list_analyses():
        run_analysis(ck, name, 0, TINY[name], progress=False)
    shutil.copytree(runs[0], runs[1])
    out = build_report([root], tmp / "report.html", png_dir=tmp / "png", progress=False, analyses=TINY)
    parser = Tags()
    parser.feed(out.read_text(encoding="utf-8"))
    numbers = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    return out, parser, numbers, runs


def _array(value) -> np.ndarray:
    """A plotly JSON array: a plain list or a typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in value["shape"].split(",")]) if "shape" in value else flat
    return np.asarray(value, dtype=float)


def _rows_by_run(numbers):
    return {Path(r["path"]).parent.name: r for r in numbers["rows"]}


def test_metrics_and_gap_match_an_independent_evaluation(report):
    out, parser, numbers, runs = report
    assert numbers["title"] == "Flatness report — PHANTOM"
    assert len(numbers["rows"]) == 3
    rows = _rows_by_run(numbers)
    for run in runs:
        ck = load_checkpoint(run)
        ba = {}
        for split in ("test", "train"):
            x, y = ck.tensors(split)
            with torch.no_grad():
                pred = ck.model(x).argmax(1).numpy()
            ba[split] = balanced_accuracy_score(y.numpy(), pred)
        row = rows[run.name]
        assert row["balanced_accuracy"] == pytest.approx(ba["test"], abs=1e-12)
        assert row["gap"] == pytest.approx(ba["train"] - ba["test"], abs=1e-12)
    # the HTML's embedded numbers are the JSON's numbers
    embedded = json.loads(parser.scripts["report-data"])
    assert embedded["rows"] == numbers["rows"]


def test_flatness_numbers_come_from_the_cached_records(report):
    out, parser, numbers, runs = report
    rows = _rows_by_run(numbers)
    html = out.read_text(encoding="utf-8")
    for run in runs:
        hessian = records(run, "hessian")
        sharp = [r for r in records(run, "sharpness") if not r["result"]["adaptive"]]
        adaptive = [r for r in records(run, "sharpness") if r["result"]["adaptive"]]
        assert len(hessian) == 1 and len(sharp) == 1 and len(adaptive) == 1 and len(records(run, "surface")) == 2
        h = hessian[0]["result"]
        row = rows[run.name]
        assert row["sharpness_adaptive_worst"] == adaptive[0]["result"]["mean"][1]  # its own record, not the standard
        assert adaptive[0]["result"]["norm"] == "linf" and row["sharpness_adaptive_worst_rho"] == 0.01
        assert h["parameterisation"] == "raw weights; not invariant to BatchNorm rescaling"
        assert row["lambda_max"] == max(h["top_k"]["eigenvalues"])
        assert row["hessian_trace"] == h["trace"]["estimate"] and row["hessian_trace_ci"] == h["trace"]["ci"]
        assert row["sharpness_worst_rho"] == 0.05 == max(sharp[0]["result"]["rhos"])
        assert row["sharpness_worst"] == sharp[0]["result"]["mean"][1]
        assert row["sharpness_average"] is None  # the report's sharpness is worst-case
        assert hessian[0]["settings"]["top_k"] == 2 and hessian[0]["settings"]["density"] is True
        # the runs table shows them (table cells are ``...">TEXT</td>``)
        assert f">{fmt(row['lambda_max'], 4)}</td>" in html
        assert f">{fmt(row['balanced_accuracy'], 3)}</td>" in html
    # group aggregation: the two Adam copies are one group of two identical runs
    groups = {g["group"]: g for g in numbers["summary"]["groups"]}
    assert groups["adam"]["n_runs"] == 2 and groups["adam"]["lambda_max"]["std"] == pytest.approx(0.0, abs=1e-12)
    assert groups["sam"]["n_runs"] == 1 and groups["sam"]["lambda_max"]["std"] is None


def test_correlations_match_scipy_on_the_runs(report):
    from landscape.report.summary import PREDICTOR_TARGET

    out, parser, numbers, runs = report
    rows = numbers["rows"]
    texts = [a["text"] for a in json.loads(parser.scripts["flatness-spec"])["layout"]["annotations"]]
    for c in numbers["summary"]["correlations"]:
        x = [r[c["measure"]] for r in rows]
        y = [r[c["target"]] for r in rows]
        assert c["n"] == 3
        same = next(p for p in numbers["predictors"]["cells"]
                    if p["measure"] == c["measure"] and p["target"] == PREDICTOR_TARGET[c["target"]])
        assert c == {**same, "target": c["target"]}  # the summary shows the predictor table's numbers
        if len(set(x)) > 1 and len(set(y)) > 1:
            assert c["kendall_tau"] == pytest.approx(stats.kendalltau(x, y).statistic)  # one seed: tau-b
            assert any(f"τ = {c['kendall_tau']:.2f}" in t for t in texts)
        else:  # 1-epoch runs can sit at chance level: a constant variable has no rank correlation
            assert c["kendall_tau"] is None
            assert any("undefined (all values equal)" in t for t in texts)


def test_figures_hold_the_records_data(report):
    out, parser, numbers, runs = report
    specs = {name: json.loads(parser.scripts[f"{name}-spec"]) for name in FIGURES}
    divs = [a for t, a in parser.tags if t == "div" and "plotly-graph-div" in (a.get("class") or "")]
    assert [d["id"] for d in divs] == [f"{n}-plot" for n in FIGURES]
    surfaces = {r["result"]["dim"]: r["result"] for r in records(runs[2], "surface")}
    sam_label = "sam s0"
    line = next(t for t in specs["landscape-1d"]["data"] if t["name"] == sam_label)
    np.testing.assert_allclose(_array(line["x"]), surfaces[1]["x"], rtol=1e-6)
    np.testing.assert_allclose(_array(line["y"]), surfaces[1]["loss"], rtol=1e-6)
    contour = next(t for t in specs["surfaces-2d"]["data"] if t.get("type") == "contour" and t["name"] == sam_label)
    np.testing.assert_allclose(_array(contour["z"]), np.array(surfaces[2]["loss"]).T, rtol=1e-6)
    zrange = [specs["surfaces-2d"]["layout"]["coloraxis"]["cmin"], specs["surfaces-2d"]["layout"]["coloraxis"]["cmax"]]
    surface3d = [t for t in specs["surfaces-3d"]["data"] if t["type"] == "surface"]
    assert len(surface3d) == 3 and all([t["cmin"], t["cmax"]] == zrange for t in surface3d)
    def runs_of(name):  # single-run lines (hidden behind the grouped view: mean and band per optimizer)
        return [t for t in specs[name]["data"] if t.get("meta") == "run"]

    assert len(runs_of("density")) == 3 and len(runs_of("sharpness")) == 3
    for name in ("landscape-1d", "density", "sharpness"):
        data = specs[name]["data"]
        assert all(t["visible"] is False for t in runs_of(name)) and len(data) == 3 + 2 * 2  # 2 groups: band, mean
        adam = [_array(t["y"]) for t in runs_of(name) if t["legendgroup"] == "adam"]
        mean = next(t for t in data if t.get("meta") == "group" and t["name"] == "adam (mean of 2)")
        np.testing.assert_allclose(_array(mean["y"]), np.mean(adam, axis=0), rtol=1e-6)
        toggle = specs[name]["layout"]["updatemenus"][-1]["buttons"]
        assert [b["label"] for b in toggle] == ["groups: mean, band min–max", "single runs"]
        assert toggle[1]["args"][0]["visible"] == [t.get("meta") == "run" for t in data]
    # colliding labels fall back to the (escaped) run names
    names = {t["name"] for t in runs_of("landscape-1d")}
    assert names == {"&lt;img src=x onerror=alert(1)&gt;", "adam&amp;amp;&lt;b&gt;bold", sam_label}


def test_no_external_resources(report):
    out, parser, numbers, runs = report
    for tag, attrs in parser.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base")
        for key in ("src", "href", "action", "srcset"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, key, value)
    scripts = [a for t, a in parser.tags if t == "script"]
    assert all("src" not in a for a in scripts)
    css = re.search(r"<style>(.*?)</style>", out.read_text(encoding="utf-8"), re.S).group(1)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    assert out.stat().st_size < 10 * 1024 * 1024


def test_user_strings_are_escaped(report):
    out, parser, numbers, runs = report
    html = out.read_text(encoding="utf-8")
    assert SCRIPT_NAME not in html and IMG_NAME not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the path, shown as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    tags = [t for t, _ in parser.tags]
    assert "img" not in tags and "b" not in tags
    # scripts: plotly.js, one JSON spec per figure, the report data, the inline behaviour
    assert tags.count("script") == 1 + len(FIGURES) + 1 + 1


def test_pngs_for_papers(report):
    from PIL import Image

    out, *_ = report
    pngs = sorted((out.parent / "png").glob("*.png"))
    assert [p.name for p in pngs] == sorted(["flatness_vs_generalization.png", "landscape_1d.png", "surfaces_2d.png",
                                             "spectral_density.png", "sharpness_vs_rho.png"])
    for p in pngs:
        with Image.open(p) as im:
            assert im.format == "PNG" and min(im.size) > 300


def test_figures_for_print_png_pdf_svg(report, cli, tmp_path):
    import xml.etree.ElementTree as ET

    from PIL import Image

    out, _, _, runs = report
    res = cli("report", *runs, "-o", tmp_path / "r.html", "--no-compute", "--figures", tmp_path / "fig", "-q")
    assert res.code == 0, res.err
    stems = sorted(p.stem for p in (out.parent / "png").glob("*.png"))
    for stem in stems:
        with Image.open(tmp_path / "fig" / f"{stem}.png") as im:
            assert im.format == "PNG" and round(im.info["dpi"][0]) == 300
        assert (tmp_path / "fig" / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert ET.parse(tmp_path / "fig" / f"{stem}.svg").getroot().tag == "{http://www.w3.org/2000/svg}svg"
    assert len(list((tmp_path / "fig").iterdir())) == 3 * len(stems) == 15


def test_no_compute_lists_what_is_missing(tiny_runs, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_runs[1], bare, ignore=shutil.ignore_patterns("analysis"))
    out = build_report([bare], tmp_path / "r.html", compute=False, progress=False)
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert {m["quantity"] for m in numbers["missing"]} == {"lambda_max", "hessian_trace", "density", "m_sharpness",
                                                            "m_sharpness_adaptive", "surface_1d", "surface_2d",
                                                            "measures"}
    assert not (bare / "analysis").exists()
    html = out.read_text(encoding="utf-8")
    # no flatness measure at all: the scatter is left out, and the missing list says why
    assert "Missing (not computed with --no-compute)" in html and 'id="flatness-plot"' not in html
    assert numbers["rows"][0]["lambda_max"] is None and numbers["rows"][0]["balanced_accuracy"] is not None


def test_cli_report_and_bad_input(cli, tiny_runs, tmp_path):
    bare = tmp_path / "run"
    shutil.copytree(tiny_runs[0], bare, ignore=shutil.ignore_patterns("analysis"))
    res = cli("report", bare, "-o", tmp_path / "cli.html", "--no-compute")
    assert res.code == 0, res.err
    assert (tmp_path / "cli.html").is_file() and "report:" in res.out
    res = cli("report", tmp_path / "nope", "-o", tmp_path / "x.html")
    assert res.code == 2 and res.err.startswith("error:") and len(res.err.strip().splitlines()) == 1
    res = cli("report", bare, "-o", tmp_path / "x.txt", "--no-compute")
    assert res.code == 2 and ".html" in res.err


# --- headless Chromium over the DevTools protocol (a pipe: no network port, no extra packages) ---

class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (we write fd 3, it writes fd 4)."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader",
             "--remote-debugging-pipe"]

    def __init__(self, user_data_dir: Path):
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()

        def fds():  # dup first: dup2 onto the same number would keep close-on-exec
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([str(CHROMIUM), *self.FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
                                     preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buf, self._id, self.events, self.session = b"", 0, [], None

    def _read(self, timeout: float):
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(timeout, 0))
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while (reply := self._read(deadline - time.monotonic())) is not None:
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 1000, "deviceScaleFactor": 1,
                                                         "mobile": False})
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def screenshot(self, max_height: int = 12000, element: str | None = None) -> bytes:
        """The page (or the element matching the CSS selector ``element``) as PNG bytes."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
        if element is not None:
            rect = json.loads(self.evaluate(f"JSON.stringify((function (r) {{ return [r.left + window.scrollX, "
                                            f"r.top + window.scrollY, r.width, r.height]; }})(document.querySelector("
                                            f"{json.dumps(element)}).getBoundingClientRect()))"))
            clip = {"x": rect[0], "y": rect[1], "width": rect[2], "height": min(rect[3], max_height), "scale": 1}
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        self.session = None
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._r)
        os.close(self._w)


#: Per plotly figure: cartesian axes without a title, axes without a trace (an empty subplot), overlapping
#: subplot titles, and buttons that overlap plotly's toolbar or a subplot title.
LAYOUT_PROBLEMS = """JSON.stringify(Array.prototype.map.call(document.querySelectorAll('div.plotly-graph-div'),
function (gd) {
  // the figure's own layout: plotly's _fullLayout drops unused axes and fills placeholder titles
  var L = gd.layout, problems = [];
  function titled(ax) { return !!(ax && ax.title && (typeof ax.title === 'string' ? ax.title : ax.title.text)); }
  var axes = Object.keys(L).filter(function (k) { return /^[xy]axis\\d*$/.test(k); });
  if (gd._fullData.some(function (t) { return t.xaxis; })) {  // cartesian traces: their axes count too
    ['xaxis', 'yaxis'].forEach(function (k) { if (axes.indexOf(k) < 0) axes.push(k); });
  }
  axes.forEach(function (k) {
    if (!titled(L[k])) problems.push('no title: ' + k);
    var id = k[0] + k.slice(5);
    var used = gd._fullData.some(function (t) { return t[k[0] + 'axis'] === id; });
    if (!used) problems.push('empty subplot: ' + k);
  });
  Object.keys(gd._fullLayout).filter(function (k) { return /^scene\\d*$/.test(k); }).forEach(function (k) {
    var scene = L[k] || {};
    ['xaxis', 'yaxis', 'zaxis'].forEach(function (a) {
      if (!titled(scene[a])) problems.push('no title: ' + k + '.' + a);
    });
  });
  function box(e) { var r = e.getBoundingClientRect(); return r.width && r.height ? r : null; }
  function hit(a, b) { return a && b && a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1
                       && b.top < a.bottom - 1; }
  var titles = Array.prototype.map.call(gd.querySelectorAll('.annotation-text'), box).filter(Boolean);
  for (var i = 0; i < titles.length; i++) for (var j = i + 1; j < titles.length; j++)
    if (hit(titles[i], titles[j])) problems.push('overlapping annotations ' + i + ', ' + j);
  var menus = Array.prototype.map.call(gd.querySelectorAll('.updatemenu-button, .updatemenu-header'), box);
  var modebar = gd.querySelector('.modebar') && box(gd.querySelector('.modebar'));
  var gtitle = gd.querySelector('.gtitle') && box(gd.querySelector('.gtitle'));
  menus.forEach(function (m, i) {
    if (hit(m, modebar)) problems.push('button ' + i + ' under the toolbar');
    if (hit(m, gtitle)) problems.push('button ' + i + ' over the title');
    titles.forEach(function (t, j) { if (hit(m, t)) problems.push('button ' + i + ' over annotation ' + j); });
  });
  return [gd.id, problems];
}))"""
SECTIONS = ("summary", "runs", "groups", "correlations", "predictors", "landscapes", "provenance")
RENDERED = """JSON.stringify(Array.prototype.map.call(document.querySelectorAll('div.plotly-graph-div'), function (d) {
  return [d.id, d.getAttribute('data-rendered') === 'true', !!d.querySelector('svg.main-svg, canvas')]; }))"""


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium (/usr/bin/chromium) not installed")
def test_report_renders_in_headless_chromium(report, tmp_path):
    out, *_ = report
    browser = Chromium(tmp_path / "profile")
    try:
        browser.open(out.resolve().as_uri())
        deadline, state = time.monotonic() + 90, []
        while time.monotonic() < deadline:
            state = json.loads(browser.evaluate(RENDERED) or "[]")
            if state and all(rendered and drawn for _, rendered, drawn in state):
                break
            time.sleep(0.25)
        text = browser.evaluate("document.body.innerText")
        injected = browser.evaluate("document.querySelectorAll('img, b').length")
        problems = json.loads(browser.evaluate(LAYOUT_PROBLEMS))
        summary = browser.evaluate("document.getElementById('summary').innerText")
        clipped = browser.evaluate("Array.prototype.filter.call(document.querySelectorAll('#runs td'), function (td) "
                                   "{ return td.scrollWidth > td.clientWidth + 1; }).length")
        png = browser.screenshot()
        shots = {name: browser.screenshot(element=f"#{name}") for name in SECTIONS}
        browser.evaluate("0")  # drain events raised while rendering
    finally:
        browser.close()
    artefacts = ROOT / "test-artifacts"
    artefacts.mkdir(exist_ok=True)
    (artefacts / "report.png").write_bytes(png)
    for name, shot in shots.items():
        (artefacts / f"report-{name}.png").write_bytes(shot)
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 2_000, name
    assert problems == [[f"{n}-plot", []] for n in FIGURES]  # titled axes, no empty subplot, nothing overlaps
    assert clipped == 0  # the runs table wraps long cells instead of cutting them
    _, _, numbers, _ = report
    corrs = numbers["summary"]["correlations"]  # each one in words: its direction, or why it has none
    said = [c for c in corrs if c["kendall_tau"] is not None]
    assert summary.count("Sharper runs had ") == summary.count("flatness hypothesis") == len(said)
    assert summary.count(", so no direction.") == len(corrs) - len(said)
    assert [s[0] for s in state] == [f"{n}-plot" for n in FIGURES]
    assert all(rendered and drawn for _, rendered, drawn in state), state
    methods = [e.get("method") for e in browser.events]
    errors = [e["params"] for e in browser.events
              if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    assert "Page.javascriptDialogOpening" not in methods  # no alert() ran
    requested = [e["params"]["request"]["url"] for e in browser.events
                 if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requested), requested
    assert SCRIPT_NAME in text and IMG_NAME in text and AMP_NAME in text  # shown as text
    assert injected == 0
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium (/usr/bin/chromium) not installed")
def test_layout_check_finds_untitled_axes_empty_subplots_and_overlaps(tmp_path):
    """The DOM check of the browser test on a deliberately bad figure: it must report each fault."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from landscape.report.html import Figure, figure_block, page

    fig = make_subplots(rows=1, cols=2, subplot_titles=["a title long enough to run into its neighbour " * 2, "b"])
    fig.add_trace(go.Scatter(x=[0, 1], y=[1, 2]), row=1, col=1)
    fig.update_layout(width=600, updatemenus=[{"type": "buttons", "x": 1.0, "xanchor": "right", "y": 1.12,
                                                "buttons": [{"label": "log", "method": "relayout", "args": [{}]}]}])
    out = tmp_path / "bad.html"
    out.write_text(page("t", "s", [("figs", "Figures", figure_block(Figure("bad", "bad", "", fig)))], {}),
                   encoding="utf-8")
    browser = Chromium(tmp_path / "profile")
    try:
        browser.open(out.resolve().as_uri())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = json.loads(browser.evaluate(RENDERED) or "[]")
            if state and all(rendered and drawn for _, rendered, drawn in state):
                break
            time.sleep(0.25)
        problems = dict(json.loads(browser.evaluate(LAYOUT_PROBLEMS)))["bad-plot"]
    finally:
        browser.close()
    assert {"no title: xaxis", "no title: yaxis", "no title: xaxis2", "empty subplot: xaxis2"} <= set(problems)
    assert "overlapping annotations 0, 1" in problems
    assert any(p.startswith("button 0 ") for p in problems)  # under the toolbar or over the title


@pytest.mark.parametrize("target, tau, ci, words", [
    ("balanced_accuracy", 0.57, [0.1, 0.9], "Sharper runs had higher test balanced accuracy: this contradicts the "
                                            "flatness hypothesis (flatter minima generalize better)."),
    ("balanced_accuracy", -0.4, [-0.8, -0.05], "Sharper runs had lower test balanced accuracy: this supports the "
                                               "flatness hypothesis (flatter minima generalize better)."),
    ("gap", 0.3, [0.05, 0.6], "Sharper runs had a larger generalization gap: this supports the flatness hypothesis "
                              "(flatter minima generalize better)."),
    ("gap", -0.2, [-0.6, 0.3], "Sharper runs had a smaller generalization gap, leaning against the flatness "
                               "hypothesis, but the 95% CI includes 0: no evidence either way."),
    ("balanced_accuracy", 0.0, [-0.5, 0.5], "Sharper runs were neither better nor worse here (τ = 0)."),
])
def test_direction_sentences(target, tau, ci, words):
    from landscape.report.content import direction, findings

    assert direction({"target": target, "kendall_tau": tau, "kendall_ci": ci}) == words
    c = {"measure": "lambda_max", "target": target, "n": 9, "kendall_tau": tau, "kendall_ci": ci,
         "spearman_rho": tau, "spearman_ci": ci}
    assert words in findings([{}] * 9, {"groups": [], "correlations": [c], "measures": {"lambda_max": "λ_max"}})


def test_records_of_other_weights_are_not_used(report, tmp_path):
    """After a run is retrained, its old analysis records no longer describe final.pt: they are skipped."""
    from landscape.io import atomic_torch_save

    *_, runs = report
    run = tmp_path / "retrained"
    shutil.copytree(runs[2], run)
    payload = safe_torch_load(run / "final.pt")
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name] = payload["state_dict"][name] + 0.01
    atomic_torch_save(payload, run / "final.pt")
    out = build_report([run], tmp_path / "r.html", compute=False, progress=False)
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert {m["quantity"] for m in numbers["missing"]} == {"lambda_max", "hessian_trace", "density", "m_sharpness",
                                                            "m_sharpness_adaptive", "surface_1d", "surface_2d",
                                                            "measures"}
