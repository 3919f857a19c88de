"""Build the Snakemake HTML report of a finished workflow and check, in headless Chromium, that it renders.

    check_report(workdir, configfile=...) -> Path of results/default/report.html

1. `snakemake --report results/default/report.html` (Snakemake 9's built-in `html` reporter: no plugin, one
   self-contained file with every `report()`-flagged output embedded as a base64 data URI).
2. Static checks of the HTML: every expected plot is embedded, under category "Plots", as a PNG data
   URI whose bytes are exactly the PNG on disk.
3. Chromium, the report as shipped (`--dump-dom` after a virtual-time budget): the React app mounted
   (loading screen hidden, navigation rendered with the "Plots" category).
4. Chromium, a probe copy of the report (in a temporary folder, never next to the results): a script
   appended to the page decodes every embedded image in the browser (`naturalWidth/Height` > 0), then
   opens one plot through the report app's own view (what clicking it in the menu does) and records
   the rendered `<img>`'s natural size; `--dump-dom` returns what the script found.
5. A screenshot of that view at results/default/report.png (`--screenshot --window-size=1400,1000`).

Run it by hand on a finished run:  python tests/report_screenshot.py WORKDIR [--configfile CONFIG]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLOTS = (
    "results/default/plots/wer_vs_sparsity.png",
    "results/default/plots/delta_wer.png",
    "results/default/plots/predicted_vs_measured.png",
)
SHOWN_PLOT = "results/default/plots/wer_vs_sparsity.png"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
    "--window-size=1400,1000",
)
PROBE_ID = "asrprune-report-probe"
# Appended to the probe copy only. It relies on two globals of Snakemake 9's report app: `results`
# (path -> {mime_type, data_uri, ...}) and `app` (the React root component, with showCategory,
# showResultInfo and setView). If a Snakemake release renames them the probe says so in its output.
PROBE_SCRIPT = """
<script id="asrprune-probe-script">
(async () => {
  const out = {images: {}, shown: null, errors: []};
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const decode = (src) => new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve({width: img.naturalWidth, height: img.naturalHeight});
    img.onerror = () => resolve({width: 0, height: 0, error: "image failed to decode"});
    img.src = src;
  });
  try {
    for (let i = 0; i < 100 && (typeof app === "undefined" || !app); i++) await wait(50);
    if (typeof results === "undefined") throw new Error("the report has no global `results`");
    if (typeof app === "undefined" || !app) throw new Error("the report app never mounted (no global `app`)");
    for (const [path, entry] of Object.entries(results)) {
      if (entry.mime_type && entry.mime_type.startsWith("image/")) out.images[path] = await decode(entry.data_uri);
    }
    const target = __SHOWN__;
    if (!(target in results)) throw new Error("the report has no result " + target);
    // One step at a time, as clicks would: setView reads app.state, which React updates asynchronously.
    app.showCategory("Plots");
    await wait(200);
    app.showResultInfo(target);
    await wait(200);
    app.setView({content: "img", contentPath: results[target].data_uri});
    let shown = null;
    for (let i = 0; i < 100 && !shown; i++) {
      await wait(50);
      const img = [...document.querySelectorAll("#app img")].find((el) => el.getAttribute("src") === results[target].data_uri);
      if (img && img.complete && img.naturalWidth > 0) shown = img;
    }
    out.shown = shown
      ? {path: target, width: shown.naturalWidth, height: shown.naturalHeight,
         rendered_width: shown.getBoundingClientRect().width, rendered_height: shown.getBoundingClientRect().height}
      : {path: target, width: 0, height: 0, error: "the plot never appeared in the report's view"};
  } catch (err) {
    out.errors.push(String(err));
  }
  const pre = document.createElement("pre");
  pre.id = "__PROBE_ID__";
  pre.style.display = "none";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


class ReportCheckError(AssertionError):
    """The report is missing something or does not render."""


def chromium_binary() -> str | None:
    """The Chromium executable (Debian package `chromium`), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def generate_report(
    workdir: Path,
    *,
    configfile: Path | None = None,
    snakefile: Path = REPO / "Snakefile",
    report: str = "results/default/report.html",
    extra_args: tuple[str, ...] = (),
    timeout: int = 600,
) -> Path:
    """`snakemake --report` over a finished workdir (same Snakefile and config as the run)."""
    out = (workdir / report).resolve()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += ["--report", str(out), *extra_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=timeout)
    if proc.returncode != 0 or not out.is_file():
        raise ReportCheckError(f"snakemake --report failed (rc {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return out


def report_results(html: str) -> dict[str, dict]:
    """The report's `var results = {...};` (path -> name, mime_type, caption, data_uri, ...)."""
    m = re.search(r"^\s*var results = (\{.*\});\s*$", html, flags=re.MULTILINE)
    if not m:
        raise ReportCheckError("the report has no `var results = {...};` line: not a Snakemake 9 html report?")
    return json.loads(m.group(1))


def report_categories(html: str) -> dict[str, dict[str, list[str]]]:
    m = re.search(r"^\s*var categories = (\{.*\});\s*$", html, flags=re.MULTILINE)
    return json.loads(m.group(1)) if m else {}


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 data URI such as `data:image/png;charset=utf8;filename=x.png;base64,...`."""
    if not uri.startswith("data:") or ";base64," not in uri:
        raise ReportCheckError(f"not a base64 data URI: {uri[:80]!r}")
    head, payload = uri[5:].split(";base64,", 1)
    return head.split(";", 1)[0], base64.b64decode(payload, validate=True)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; raises if `data` is not a PNG."""
    if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        raise ReportCheckError("not a PNG (bad signature or no IHDR chunk first)")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def check_embedded_plots(html: str, workdir: Path, plots: tuple[str, ...] = PLOTS) -> dict[str, tuple[int, int]]:
    """Every plot is in the report under "Plots", as a PNG data URI with the bytes of the file on disk."""
    results = report_results(html)
    in_plots = {p for sub in report_categories(html).get("Plots", {}).values() for p in sub}
    sizes = {}
    for path in plots:
        if path not in results:
            raise ReportCheckError(f"{path} is not in the report; it has {sorted(results)}")
        if path not in in_plots:
            raise ReportCheckError(f"{path} is not under category 'Plots': {report_categories(html)}")
        mime, data = decode_data_uri(results[path]["data_uri"])
        if mime != "image/png":
            raise ReportCheckError(f"{path} is embedded as {mime}, not image/png")
        on_disk = (workdir / path).read_bytes()
        if data != on_disk:
            raise ReportCheckError(f"{path}: the embedded image differs from the file on disk")
        w, h = png_size(data)
        if w < 200 or h < 100:
            raise ReportCheckError(f"{path}: implausibly small PNG ({w}×{h})")
        if not results[path].get("caption", "").strip():
            raise ReportCheckError(f"{path} has no caption in the report")
        sizes[path] = (w, h)
    return sizes


def run_chromium(url: str, *args: str, chromium: str, timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="asrprune-chromium-") as profile:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
        env = dict(os.environ, HOME=profile)  # keeps Chromium's caches out of the real home
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise ReportCheckError(f"chromium failed (rc {proc.returncode}): {proc.stderr[-3000:]}")
    return proc


def check_app_mounts(report: Path, chromium: str) -> str:
    """The report as shipped: the app renders its navigation, with every result category in the menu."""
    categories = report_categories(report.read_text(encoding="utf-8"))
    dom = run_chromium(report.as_uri(), "--dump-dom", chromium=chromium).stdout
    if not re.search(r'id="loading-screen"[^>]*display:\s*none', dom):
        raise ReportCheckError("the report's loading screen is still shown: the app did not start")
    app_html = dom.split('id="app"', 1)[-1]
    if "<nav" not in app_html:
        raise ReportCheckError("the report app rendered no navigation")
    # With a single category the menu shows one "Results" entry instead of the category's name.
    expected = sorted(categories) if len(categories) > 1 else ["Results"]
    missing = [name for name in expected if f">{name}<" not in app_html]
    if missing:
        raise ReportCheckError(f"the report's menu lacks {missing}")
    return dom


def probe_report(report: Path, screenshot: Path, chromium: str, shown: str = SHOWN_PLOT) -> dict:
    """Decode every image in the browser and show `shown` in the report's own view; screenshot it."""
    html = report.read_text(encoding="utf-8")
    script = PROBE_SCRIPT.replace("__SHOWN__", json.dumps(shown)).replace("__PROBE_ID__", PROBE_ID)
    # The last </body>: the inlined libraries contain the string "</body>" in their code.
    head, sep, tail = html.rpartition("</body>")
    if not sep:
        raise ReportCheckError("the report has no </body>")
    probed = head + script + sep + tail
    with tempfile.TemporaryDirectory(prefix="asrprune-report-probe-") as tmp:
        page = Path(tmp) / "report_probe.html"
        page.write_text(probed, encoding="utf-8")
        dom = run_chromium(page.as_uri(), "--dump-dom", chromium=chromium).stdout
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot_tmp = Path(tmp) / "report.png"
        run_chromium(page.as_uri(), f"--screenshot={shot_tmp}", chromium=chromium)
        if not shot_tmp.is_file():
            raise ReportCheckError("chromium wrote no screenshot")
        shutil.copyfile(shot_tmp, screenshot)
    m = re.search(rf'<pre id="{PROBE_ID}"[^>]*>(.*?)</pre>', dom, flags=re.DOTALL)
    if not m:
        raise ReportCheckError("the probe script left no result in the DOM (did the page's scripts run?)")
    import html as html_lib

    return json.loads(html_lib.unescape(m.group(1)))


def check_report(
    workdir: Path,
    *,
    configfile: Path | None = None,
    snakefile: Path = REPO / "Snakefile",
    plots: tuple[str, ...] = PLOTS,
    chromium: str | None = None,
) -> Path:
    """Generate results/default/report.html in a finished `workdir`, check it renders; screenshot at results/default/report.png."""
    workdir = Path(workdir)
    chromium = chromium or chromium_binary()
    if chromium is None:
        raise ReportCheckError("no Chromium found: apt-get install --no-install-recommends chromium")
    report = generate_report(workdir, configfile=configfile, snakefile=snakefile)
    html = report.read_text(encoding="utf-8")
    sizes = check_embedded_plots(html, workdir, plots)
    check_app_mounts(report, chromium)
    probe = probe_report(report, workdir / "results" / "default" / "report.png", chromium, shown=plots[0])
    if probe.get("errors"):
        raise ReportCheckError(f"the probe script failed in the browser: {probe['errors']}")
    broken = {p: got for p, got in probe["images"].items() if got.get("width", 0) <= 0 or got.get("height", 0) <= 0}
    if broken:
        raise ReportCheckError(f"images in the report that the browser cannot decode: {broken}")
    for path in plots:
        got = probe["images"].get(path)
        if not got or got.get("width", 0) <= 0 or got.get("height", 0) <= 0:
            raise ReportCheckError(f"{path} did not decode in the browser: {got}")
        if (got["width"], got["height"]) != sizes[path]:
            raise ReportCheckError(f"{path}: browser decoded {got['width']}×{got['height']}, the PNG says {sizes[path]}")
    shown = probe.get("shown") or {}
    if shown.get("width", 0) <= 0 or shown.get("rendered_width", 0) <= 0 or shown.get("rendered_height", 0) <= 0:
        raise ReportCheckError(f"{plots[0]} did not render in the report's view: {shown}")
    shot = workdir / "results" / "default" / "report.png"
    w, h = png_size(shot.read_bytes())
    if (w, h) != (1400, 1000):
        raise ReportCheckError(f"the screenshot is {w}×{h}, expected 1400×1000")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--configfile", type=Path)
    parser.add_argument("--snakefile", type=Path, default=REPO / "Snakefile")
    args = parser.parse_args(argv)
    report = check_report(args.workdir, configfile=args.configfile, snakefile=args.snakefile)
    print(f"ok: {report} renders; screenshot at {args.workdir / 'results' / 'default' / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
