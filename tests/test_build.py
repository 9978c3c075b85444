"""How the book is built: no build shows outputs that another kind of run computed.

jupyter-cache keys a notebook on its code alone, and Sphinx re-reads a page only when
its source or the configuration changed, so a ``cpu`` build after a ``smoke`` build in
the same ``_build`` used to show the smoke outputs. ``_ext/run_kind.py`` (named in
``_config.yml``) gives each kind of run (preset, sizes, device, precision) its own
cache. The test builds a one-notebook book with the repository's own ``_config.yml``
and extension, as README's commands build the book (``jupyter-book build .`` with the
variables set), several times in one folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]

# What minicse resolves (not the raw variables), and a nonce: a page built from the
# cache shows the nonce of the run that computed it.
PROBE = """\
import uuid
import torch
from minicse.presets import get_preset
from minicse.utils import amp_dtype
preset = get_preset()
dtype = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[amp_dtype("cpu")]
print(f"RUN preset={preset.name} sizes={getattr(preset, 'sizes', preset.name)} "
      f"precision={dtype} nonce={uuid.uuid4().hex}")
"""
SHOWN = re.compile(r"RUN preset=(\w+) sizes=(\w+) precision=(\w+) nonce=(\w+)")


def _tiny_book(folder: Path, config: dict) -> Path:
    """The repository's build configuration around one notebook that prints its run."""
    (folder / "book").mkdir(parents=True)
    (folder / "_config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    toc = {
        "format": "jb-book",
        "root": "book/index",
        "chapters": [{"file": "book/run"}],
    }
    (folder / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    (folder / "book" / "index.md").write_text("# Runs\n", encoding="utf-8")
    shutil.copy(ROOT / "book" / "references.bib", folder / "book" / "references.bib")
    shutil.copytree(ROOT / "book" / "_static", folder / "book" / "_static")
    if (ROOT / "_ext").is_dir():
        shutil.copytree(ROOT / "_ext", folder / "_ext")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Run"),
        nbformat.v4.new_code_cell(PROBE),
    ]
    nbformat.write(nb, folder / "book" / "run.ipynb")
    return folder


def _build(book: Path, **variables: str) -> tuple[str, str, str, str]:
    """``jupyter-book build . -W -n --keep-going`` in ``book`` with ``variables`` set
    (the rest unset); the run the built page shows."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MINICSE_PRESET", "MINICSE_SIZES", "MINICSE_CPU_BF16")
    }
    env.update(variables, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from jupyter_book.cli.main import main; main()",
            "build",
            ".",
            "-W",
            "-n",
            "--keep-going",
        ],
        cwd=book,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, f"jupyter-book build failed:\n{log}"
    page = (book / "_build" / "html" / "book" / "run.html").read_text(encoding="utf-8")
    shown = SHOWN.findall(page)
    assert len(shown) == 1, f"the page shows {len(shown)} runs:\n{log}"
    return shown[0]


def _other_precision() -> tuple[str, str]:
    """``MINICSE_CPU_BF16`` that flips this CPU's ``precision="auto"``, and what it
    gives."""
    import torch

    from minicse.utils import amp_dtype

    saved = os.environ.pop("MINICSE_CPU_BF16", None)
    try:
        native = amp_dtype("cpu")
    finally:
        if saved is not None:
            os.environ["MINICSE_CPU_BF16"] = saved
    return ("0", "fp32") if native == torch.bfloat16 else ("1", "bf16")


def test_a_build_shows_only_its_own_runs_outputs(tmp_path):
    # About 35 s: five strict builds of one notebook in one folder.
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["execute"]["execute_notebooks"] == "cache"
    book = _tiny_book(tmp_path / "book", config)
    flip, flipped = _other_precision()

    smoke = _build(book, MINICSE_PRESET="smoke")
    assert smoke[:2] == ("smoke", "smoke")
    cpu = _build(book, MINICSE_PRESET="cpu")
    assert cpu[:3] == ("cpu", "cpu", smoke[2]), f"cpu build shows {cpu}"
    small = _build(book, MINICSE_PRESET="cpu", MINICSE_SIZES="smoke")
    assert small[:2] == ("cpu", "smoke"), f"MINICSE_SIZES=smoke build shows {small}"
    assert small[3] != cpu[3], "MINICSE_SIZES=smoke showed the cpu-size outputs"
    other = _build(book, MINICSE_PRESET="smoke", MINICSE_CPU_BF16=flip)
    assert other[:3] == ("smoke", "smoke", flipped), (
        f"MINICSE_CPU_BF16={flip} build shows {other}"
    )
    # The cache still serves a second build of a kind: the first smoke run's outputs.
    again = _build(book, MINICSE_PRESET="smoke")
    assert again == smoke, f"the second smoke build re-executed: {again} vs {smoke}"
    assert len({cpu[3], small[3], other[3], smoke[3]}) == 4
