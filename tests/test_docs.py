"""The documentation site builds with `mkdocs build --strict`: no broken link or anchor, every
embedded file present, every API page rendered. The README's links into docs/ land on pages and
anchors of that build.

mkdocs comes with the `docs` extra. Without it the test is skipped locally, but fails in CI
(`CI` set), where the docs extra is installed.
"""

import importlib.util
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder (`mkdocs build --strict` run from the repository root)."""
    if importlib.util.find_spec("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail('mkdocs is not installed: CI must install the docs extra (".[docs]")')
        pytest.skip('mkdocs is not installed (pip install -e ".[docs]")')
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_site_builds_strict_with_every_page(site):
    for page in ("index", "usage/run-directory/index", "methods/dpi/index", "api/train/index"):
        assert (site / f"{page}.html").is_file(), page
    api = (site / "api" / "train" / "index.html").read_text()
    assert "train_and_evaluate" in api  # rendered from the docstrings
    results = (site / "results" / "index.html").read_text()
    generated = (REPO / "docs" / "results" / "noise_bench.md").read_text().splitlines()[0]
    assert generated.split(":")[0] in results  # the generated page is embedded, not retyped


def test_the_readme_links_land_on_built_pages_and_anchors(site):
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#([^)\s]+))?\)", readme)
    assert len(links) >= 20
    for path, anchor in links:
        page = path.removeprefix("docs/").removesuffix(".md")
        page = page.removesuffix("index").rstrip("/")
        html = site / page / "index.html" if page else site / "index.html"
        assert html.is_file(), f"README links {path}, which the site does not have"
        if anchor:
            assert f'id="{anchor}"' in html.read_text(), f"README links {path}#{anchor}"


def test_the_readme_stays_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200
