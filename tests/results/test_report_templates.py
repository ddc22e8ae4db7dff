"""The report's templates: shipped as package data, autoescaped, strict about missing values."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import jinja2
import pytest

from harmonic_nas.results import _report, report
from harmonic_nas.results._sections import Page, Section

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(_report.__file__).parent / "templates"


def test_every_template_is_package_data_of_a_non_editable_install() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["harmonic_nas.results"]
    files = sorted(p.relative_to(TEMPLATES.parent).as_posix() for p in TEMPLATES.rglob("*.*"))
    assert "templates/report.html.j2" in files and "templates/report.css" in files
    unshipped = [f for f in files if not any(fnmatch.fnmatchcase(f, g) for g in globs)]
    assert not unshipped, f"add a package-data glob for {unshipped}"
    deps = config["project"]["dependencies"]
    assert any(d.lower().startswith("jinja2") for d in deps)


def test_the_environment_finds_every_template_and_escapes() -> None:
    env = _report._environment()
    assert env.autoescape is True
    names = set(env.list_templates())
    assert {"report.html.j2", "macros.html.j2", "report.css", "report.js"} <= names
    for name in names:
        env.get_template(name)  # every template parses


def _page(name: str, **subtitle: object) -> Page:
    sub = {
        "dataset": "d",
        "modalities": "m",
        "device": "host",
        "task": "classification",
        "strategy": "nsga2",
        "population": 4,
        "generations": 3,
        "seed": 0,
        "created": "2026-01-01 00:00 UTC",
        **subtitle,
    }
    config = Section("config", "Configuration", "sections/config.html.j2", "a: '<b>'\n")
    return Page(name, sub, [("candidates", "<1>", "")], [config], "/figs")


def test_content_is_escaped_not_interpreted() -> None:
    html = _report.render_page(_page("<script>alert(1)</script>", device='"><img src=x>'))
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '"><img src=x>' not in html and "&#34;&gt;&lt;img src=x&gt;" in html
    assert "<pre>a: &#39;&lt;b&gt;&#39;\n</pre>" in html  # config text kept verbatim, escaped
    assert '<div class="v">&lt;1&gt;</div>' in html
    assert html.count("<script>") == 1  # only the sorting script


def test_a_missing_value_is_an_error_not_an_empty_string() -> None:
    page = _page("x")
    del page.subtitle["seed"]
    with pytest.raises(jinja2.UndefinedError, match="seed"):
        _report.render_page(page)


def test_report_page_structure(fake_run: Path) -> None:
    html = report(fake_run).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>\n<html lang='en'>")
    anchors = ["pareto", "baselines", "hypervolume", "architectures", "supernets"]
    anchors += ["validation", "candidates", "config"]
    for anchor in anchors:
        assert html.count(f'<section id="{anchor}">') == 1
        assert f'<a href="#{anchor}">' in html
    assert html.index('id="pareto"') < html.index('id="candidates"') < html.index('id="config"')
    assert '<a href="#architectures">Fused architectures</a>' in html  # nav: title before " of "
    assert html.rstrip().endswith("</script></body></html>")
