"""The docs build offline: nbdev's processing of every notebook, and HTML pages without quarto, checked as files and,
where Chromium is installed, in a headless browser."""
import html, re, subprocess, sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import CHROMIUM, needs_chromium, run
from test_repo import _copy_of_repo


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The site as `make html` builds it, from a copy of the working tree."
    repo, _ = _copy_of_repo(tmp_path_factory.mktemp("docs"))
    out = run([sys.executable, repo / "scripts/docs.py", "html"], cwd=repo, timeout=900).stdout
    return repo, repo / "_site", out


def _pages(site_dir): return sorted(site_dir.rglob("*.html"))


def test_html_pages_render_offline(site):
    repo, site_dir, out = site
    pages = {str(p.relative_to(site_dir)) for p in _pages(site_dir) if "mathjax" not in p.parts}
    assert {"index.html", "data.html", "model.html", "kernels.html", "train.html", "callbacks.html", "runs.html", "cli.html",
            "fused_loss.html", "experiments/experiment1.html"} <= pages, out
    model = (site_dir / "model.html").read_text()
    assert "LanguageModel" in model and "chunked_cross_entropy" in (site_dir / "kernels.html").read_text()  # show_doc output
    assert '<a href="data.html">' in model                                   # sidebar links to sibling pages
    assert "---\ntitle:" not in model                                        # front matter is not shown as text
    assert "869,153" in (site_dir / "index.html").read_text()                # the home page shows real outputs
    assert (repo / "_proc/01_model.ipynb").exists() and (repo / "_proc/sidebar.yml").exists()


def test_pages_are_self_contained_and_clean(site):
    "No widget reprs, no frozen progress bars, no empty prompts, no fetches from the network, no broken links or images."
    _, site_dir, _ = site
    problems = []
    for page in _pages(site_dir):
        if "mathjax" in page.relative_to(site_dir).parts: continue
        text, rel = page.read_text(), page.relative_to(site_dir)
        for bad, why in [(r"[VH]Box\(children=", "a widget's repr"), (r"IntSlider\(value=", "a widget's repr"),
                         (r"\b0%\|", "a progress bar frozen at 0%"), (r"(In|Out)\s*\[\s*\d*\s*\]:", "an input/output prompt"),
                         (r'<(script|img|link)[^>]+(src|href)="(https?:)?//', "a fetch from the network")]:
            if re.search(bad, text): problems.append(f"{rel}: {why}")
        for kind, target in re.findall(r'<(a|img)\b[^>]*?\b(?:href|src)="([^"#]+)(?:#[^"]*)?"', text):
            if re.match(r"[a-z]+:", target): continue  # http(s), data: URIs, mailto:
            if not (page.parent / unquote(html.unescape(target).split("?")[0])).exists():
                problems.append(f"{rel}: broken {'image' if kind == 'img' else 'link'} {target}")
    assert not problems, "\n".join(problems)
    index = (site_dir / "index.html").read_text()
    nav = re.search(r'<nav class="site-nav">.*?</nav>', index, re.S).group(0)
    for title in ("Experiment 1: WikiText-2", "Experiment 2: WikiText-103", "model", "benchmarks"): assert title in nav, title
    assert (site_dir / "mathjax/MathJax.js").exists()
    lab = (site_dir / "experiments/experiment1.html").read_text()
    assert 'class="static-widget"' in lab and "live when the notebook runs in Jupyter" in lab  # the form, as a snapshot


def _browse(page: Path, tmp_path):
    "The page's DOM after scripts ran, and the browser's console messages, from headless Chromium."
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [l for l in res.stderr.splitlines() if "CONSOLE" in l]
    return res.stdout, console


@needs_chromium
@pytest.mark.parametrize("name", ["index.html", "experiments/experiment1.html", "chinchilla.html"])
def test_pages_in_a_real_browser(site, name, tmp_path):
    "Each page, opened headless: no console errors or failed loads, every image decoded, every formula typeset."
    _, site_dir, _ = site
    dom, console = _browse(site_dir / name, tmp_path)
    assert "</body>" in dom, "the page did not load"
    errors = [l for l in console if re.search(r"error|failed|uncaught|refused", l, re.I)]
    assert not errors, "\n".join(errors)
    assert "Math Processing Error" not in dom
    visible = re.sub(r"<script.*?</script>|<style.*?</style>", "", dom, flags=re.S)
    assert "$$" not in visible, "display math left as TeX"
    if name == "chinchilla.html": assert dom.count('class="MathJax_Display"') >= 3, "the Chinchilla formulas were not typeset"
    for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', dom):
        assert src.startswith("data:") or (site_dir / name).parent.joinpath(unquote(src)).exists(), f"missing image {src}"
