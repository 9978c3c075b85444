"""The book's machinery: toc, config, chapter template, citations.

These checks are static (no notebook is executed here; nbmake and the strict
``jupyter-book build`` do that). They catch what a build would only warn about, or
what no build notices: committed outputs, a Colab cell that installs from the wrong
repository, a chapter without its closing sections, a citation key missing from
``book/references.bib``.
"""

from __future__ import annotations

import re
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


def test_index_shows_the_readme_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[-1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, flags=re.S)
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
    urls = re.findall(r"git\+(https://[^\"'\s@]+)", first)
    assert urls, f"{entry}: the first code cell must pip-install minicse from git"
    for url in urls:
        assert url.rstrip("/").removesuffix(".git") == _repo_url(), (
            f"{entry}: installs from {url}, but _config.yml's repository is "
            f"{_repo_url()} (the one place to change it)"
        )


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
