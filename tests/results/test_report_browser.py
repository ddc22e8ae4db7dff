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
from tests.results.test_report import four_cell_member_and_a_dominating_baseline

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
    // layout: the page must not be wider than the window; every element that sticks out of
    // it without a scrolling (or clipping) box around it is an offender
    var inner = window.innerWidth, offenders = [];
    function clipped(el) {
      for (var a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        var o = getComputedStyle(a).overflowX;
        if (o === 'auto' || o === 'scroll' || o === 'hidden') { return true; }
      }
      return false;
    }
    Array.prototype.forEach.call(document.body.querySelectorAll('*'), function (el) {
      var r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > inner + 0.5 && !clipped(el) && offenders.length < 10) {
        offenders.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
          (el.className ? '.' + String(el.className).split(' ').join('.') : '') +
          ' right ' + Math.round(r.right));
      }
    });
    root.setAttribute('data-layout', JSON.stringify({
      inner: inner, scroll: document.documentElement.scrollWidth, offenders: offenders}));
    root.setAttribute('data-errors', JSON.stringify(errors));
    if (window.parent !== window) {  // in the phone-width frame: hand the results to the host
      var out = {};
      Array.prototype.forEach.call(root.attributes, function (a) {
        if (a.name.indexOf('data-') === 0) { out[a.name] = a.value; }
      });
      window.parent.postMessage(out, '*');
    }
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


#: Desktop and phone (an iPhone 12-15 is 390 CSS px wide).
DESKTOP, PHONE = (1280, 900), (390, 844)

# Headless Chromium will not make a window narrower than 500 px: a narrower viewport is an
# iframe of exactly that size in a host page, which copies the frame's probe results onto its own
# <html> (the frame posts them).
HOST = """<!DOCTYPE html><html><head><script>
window.addEventListener('message', function (e) {
  Object.keys(e.data).forEach(function (k) {
    document.documentElement.setAttribute(k, e.data[k]);
  });
});
</script></head><body style="margin:0">
<iframe src="{src}" style="border:0; width:{w}px; height:{h}px"></iframe></body></html>"""


def _probe(html: Path, window: tuple[int, int] = DESKTOP) -> dict[str, str]:
    probed = html.with_name("probed.html")
    page = html.read_text(encoding="utf-8")
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    target = probed
    if window[0] < 600:
        target = html.with_name("host.html")
        target.write_text(
            HOST.replace("{src}", probed.name)
            .replace("{w}", str(window[0]))
            .replace("{h}", str(window[1])),
            encoding="utf-8",
        )
    proc = _chromium(
        "--virtual-time-budget=10000",
        f"--window-size={max(window[0], 600)},{window[1]}",
        "--dump-dom",
        target.as_uri(),
        cwd=html.parent,
    )
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


def _assert_fits(attrs: dict[str, str], width: int) -> None:
    layout = json.loads(attrs["data-layout"])
    assert layout["inner"] == width, layout
    assert layout["scroll"] <= layout["inner"], layout  # no horizontal page scroll
    assert layout["offenders"] == [], layout


@pytest.mark.parametrize("window", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_nothing_overflows_at_desktop_and_phone_width(
    fake_run: Path, tmp_path: Path, window: tuple[int, int]
) -> None:
    four_cell_member_and_a_dominating_baseline(fake_run)  # the widest diagram and flags
    html = report(fake_run)
    attrs = _probe(html, window)
    assert json.loads(attrs["data-errors"]) == []
    assert json.loads(attrs["data-broken"]) == []
    _assert_fits(attrs, window[0])

    shot = tmp_path / "report.png"
    proc = _chromium(
        f"--screenshot={shot}",
        f"--window-size={max(window[0], 600)},2400",
        html.as_uri(),
        cwd=html.parent,
    )
    assert shot.is_file(), proc.stderr[-500:]
    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # a rendered page


def test_probe_catches_overflow_at_phone_width(fake_run: Path) -> None:
    html = report(fake_run)
    page = html.read_text(encoding="utf-8")
    wide = html.with_name("wide.html")
    wide.write_text(
        page.replace("<main>", '<main><div id="too-wide" style="width:600px">x</div>', 1)
    )
    layout = json.loads(_probe(wide, PHONE)["data-layout"])
    assert layout["scroll"] > layout["inner"] == PHONE[0]
    assert any(o.startswith("div#too-wide") for o in layout["offenders"])
