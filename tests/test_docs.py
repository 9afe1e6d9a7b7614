"The docs build offline: nbdev's processing of every notebook, and HTML pages without quarto."
import sys
from conftest import run
from test_repo import _copy_of_repo


def test_html_pages_render_offline(tmp_path):
    repo, _ = _copy_of_repo(tmp_path)
    out = run([sys.executable, repo / "scripts/docs.py", "html"], cwd=repo, timeout=900).stdout
    site = repo / "_site"
    pages = sorted(p.name for p in site.glob("*.html"))
    assert {"index.html", "data.html", "model.html", "train.html"} <= set(pages), out
    model = (site / "model.html").read_text()
    assert "LanguageModel" in model and "chunked_cross_entropy" in model  # show_doc output survived
    assert '<a href="data.html">' in model                                   # sidebar links to sibling pages
    assert "---\ntitle:" not in model                                        # front matter is not shown as text
    assert "869,153" in (site / "index.html").read_text()                    # the home page shows real outputs
    assert (repo / "_proc/01_model.ipynb").exists() and (repo / "_proc/sidebar.yml").exists()
