"""The report as a person sees it: headless Chromium loads it offline, every image decodes, no
script error, the sortable table sorts, and a screenshot is saved."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from harmonic_nas.results import report

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# Injected first in <head>: records errors, undecodable images, and the candidates table's
# order after one click on its "val accuracy" header, as attributes of <html>.
PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target && e.target !== window ? (e.target.tagName + ' ' + (e.target.alt || '')) : '';
    errors.push(String(e.message || 'resource error') + ' ' + t);
  }, true);
  window.addEventListener('load', function () {
    var root = document.documentElement;
    var bad = [];
    Array.prototype.forEach.call(document.images, function (img, i) {
      if (!img.complete || img.naturalWidth === 0) { bad.push(img.alt || ('image ' + i)); }
    });
    root.setAttribute('data-images', String(document.images.length));
    root.setAttribute('data-broken', JSON.stringify(bad));
    try {
      var table = document.querySelector('#candidates table.sortable');
      var th = Array.prototype.filter.call(table.tHead.rows[0].cells, function (c) {
        return c.textContent.indexOf('val ') === 0;
      })[0];
      th.click();
      var col = th.cellIndex;
      var vals = Array.prototype.map.call(table.tBodies[0].rows, function (r) {
        return r.cells[col].getAttribute('data-v');
      });
      root.setAttribute('data-sorted', JSON.stringify(vals));
    } catch (exc) { errors.push('probe: ' + exc); }
    root.setAttribute('data-errors', JSON.stringify(errors));
  });
})();
</script>"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=cwd,
            check=False,
        )


def _probe(html: Path) -> dict[str, str]:
    probed = html.with_name("probed.html")
    page = html.read_text(encoding="utf-8")
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    proc = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri(), cwd=html.parent)
    m = re.search(r"<html([^>]*)>", proc.stdout)
    assert m, f"chromium dumped no DOM (exit {proc.returncode}): {proc.stderr[-500:]}"
    return {
        k: v.replace("&quot;", '"').replace("&amp;", "&")
        for k, v in re.findall(r'(data-[a-z]+)="([^"]*)"', m.group(1))
    }


def test_report_renders_in_chromium(fake_run: Path, tmp_path: Path) -> None:
    html = report(fake_run)
    attrs = _probe(html)
    n_figures = len(list((fake_run / "figures").glob("*.png")))
    assert int(attrs["data-images"]) == n_figures > 6
    assert json.loads(attrs["data-broken"]) == []
    assert json.loads(attrs["data-errors"]) == []
    order = json.loads(attrs["data-sorted"])
    vals = [float(v) for v in order if v is not None]
    assert vals == sorted(vals) and len(vals) >= 10  # the click sorted the column ascending
    assert order[-1] is None  # the failed candidate (no score) sorts last

    shot = tmp_path / "report.png"
    proc = _chromium(
        f"--screenshot={shot}", "--window-size=1280,2000", html.as_uri(), cwd=html.parent
    )
    assert shot.is_file(), proc.stderr[-500:]
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # a rendered page, not a blank one


def test_probe_catches_a_broken_image(fake_run: Path) -> None:
    html = report(fake_run)
    page = html.read_text(encoding="utf-8")
    broken = html.with_name("broken.html")
    broken.write_text(
        page.replace("<main>", '<main><img alt="missing figure" src="figures/nope.png">', 1)
    )
    attrs = _probe(broken)
    assert json.loads(attrs["data-broken"]) == ["missing figure"]
