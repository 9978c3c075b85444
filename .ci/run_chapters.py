"""Execute chapter notebooks in turn in this Python's kernel, as a reader does.

    python .ci/run_chapters.py OUT book/01_similarity_and_metric_learning.ipynb ...

Each notebook runs with nbclient in the ``python3`` kernel of the interpreter that runs
this script (its venv), with the working directory a copy of the notebook's folder under
``OUT`` (nothing is written into the repository). The run's settings come from the
environment (``MINICSE_PRESET``, ``MINICSE_SIZES``, ``MINICSE_CPU_BF16``, ``HF_HOME``,
``HF_HUB_OFFLINE``, ``MINICSE_DATA``, ``MINICSE_CACHE``). After its last cell, each
notebook gets one more that prints what the kernel saw: the executed copies go to
``OUT/executed``, one line per chapter to ``OUT/runs.jsonl`` (name, seconds, error or
null, how many outputs the first code cell (the install cell) printed, what the kernel
saw). A failing chapter does not stop the others; the exit status
is 1 when any failed.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

SAW = """\
import json, os, sys
import torch
import minicse
from minicse.config import get_preset
from minicse.utils import amp_dtype, pick_device
_preset, _device = get_preset(), pick_device()
print("RUN_CHAPTERS " + json.dumps({
    "preset": _preset.name, "sizes": _preset.sizes, "model": _preset.model,
    "device": str(_device),
    "precision": {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[
        amp_dtype(_device)],
    "prefix": sys.prefix, "minicse": minicse.__file__,
    "data": os.environ.get("MINICSE_DATA"),
}))
"""


def run(notebook: Path, out: Path, timeout: int = 1200) -> dict:
    """Execute ``notebook`` (in a copy of its folder under ``out``); its record."""
    work = out / "work"
    if not work.exists():
        shutil.copytree(
            notebook.parent,
            work,
            ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "_build"),
        )
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(SAW))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": work}},
    )
    record: dict = {"chapter": notebook.name, "error": None, "saw": None}
    install = next(cell for cell in nb.cells if cell.cell_type == "code")
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        record["error"] = str(err)[-3000:]
    except Exception as err:  # a dead kernel, a timeout: still one record
        record["error"] = f"{type(err).__name__}: {err}"[-3000:]
    record["seconds"] = round(time.perf_counter() - start, 1)
    (out / "executed").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / "executed" / notebook.name)
    record["install_outputs"] = len(install.get("outputs", []))
    for output in nb.cells[-1].get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith("RUN_CHAPTERS "):
                record["saw"] = json.loads(line.removeprefix("RUN_CHAPTERS "))
    return record


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    with open(out / "runs.jsonl", "w", encoding="utf-8") as log:
        for name in argv[1:]:
            record = run(Path(name).resolve(), out)
            log.write(json.dumps(record) + "\n")
            log.flush()
            status = "ok" if record["error"] is None else "FAILED"
            print(f"{record['chapter']}: {status} in {record['seconds']} s", flush=True)
            if record["error"] is not None:
                failed.append(record)
    for record in failed:
        print(f"\n=== {record['chapter']}\n{record['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
