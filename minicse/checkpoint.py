"""Checkpoints that survive a crash: atomic writes, exact resume, the best model.

A checkpoint is a folder ``<output_dir>/checkpoint-<step>/`` holding

* the encoder in its ``save()`` layout (HF files, ``minicse.json``, the SimCSE
  MLP head even when ``mlp="train"``, the sentence-transformers layout), so a
  checkpoint is also a model that ``SentenceEncoder.load`` and ``minicse export``
  read; each weight is written once;
* ``state.pt`` -- optimizer, scheduler, grad scaler, RNG states of every rank,
  step, best score and history, read back with ``torch.load(weights_only=True)``.

The best model (model selection on STS-B dev) exists once, in ``output_dir``
itself, written by :func:`save_best_model` when the dev score improves.

The folder is written as ``.checkpoint-<step>.tmp`` and renamed in one
``os.replace``: a run killed at any moment leaves either the old checkpoint or
the new one, never half of one. The data position is the step itself: batches
are a pure function of ``(seed, epoch, step)``. See chapter 6.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "save_best_model",
]

PREFIX = "checkpoint-"


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states, in ``weights_only`` types.

    Example:
        >>> state = rng_state(); a = torch.rand(1)
        >>> set_rng_state(state); torch.equal(a, torch.rand(1))
        True
    """
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk (best effort; a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint folder with the highest step, or ``None``.

    Example:
        >>> latest_checkpoint("/nonexistent") is None
        True
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    found = [
        (int(p.name[len(PREFIX) :]), p)
        for p in folder.glob(PREFIX + "*")
        if p.name[len(PREFIX) :].isdigit() and (p / "state.pt").is_file()
    ]
    return max(found)[1] if found else None


def save_checkpoint(
    output_dir: str | os.PathLike,
    step: int,
    encoder: torch.nn.Module,
    state: dict[str, Any],
) -> Path:
    """Write ``checkpoint-<step>`` atomically and delete older checkpoints.

    Args:
        output_dir: the run's folder (created if missing).
        step: optimizer steps done; names the folder.
        encoder: the (unwrapped) ``SentenceEncoder``.
        state: optimizer/scheduler/RNG/step/history (see module docstring).

    Returns:
        The path of the new checkpoint folder.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{step}"
    tmp = folder / f".{PREFIX}{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)
    torch.save(state, tmp / "state.pt")
    for file in tmp.rglob("*"):
        if file.is_file():
            with open(file, "rb+") as handle:
                os.fsync(handle.fileno())
    shutil.rmtree(final, ignore_errors=True)  # a leftover of the same step
    os.replace(tmp, final)
    _fsync_dir(folder)
    for old in folder.glob(PREFIX + "*"):
        if old != final and old.name[len(PREFIX) :].isdigit():
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, encoder: Any) -> dict[str, Any]:
    """Load the weights of checkpoint ``path`` into ``encoder``; return its state.

    Raises:
        FileNotFoundError: ``path`` is not a complete checkpoint folder.
    """
    folder = Path(path)
    if not (folder / "state.pt").is_file():
        raise FileNotFoundError(
            f"{folder} is not a minicse checkpoint (no state.pt); expected a "
            f"folder named {PREFIX}<step> written by train_unsup/train_sup"
        )
    encoder.load_weights(folder)
    return torch.load(folder / "state.pt", weights_only=True, map_location="cpu")


def save_best_model(
    encoder: Any, output_dir: str | os.PathLike, info: dict[str, Any] | None = None
) -> None:
    """``encoder.save`` into ``output_dir`` without leaving a half-written model.

    The model is saved to a temporary folder first; each of its entries then
    replaces the old one with ``os.replace`` (weights last), so a crash leaves
    a loadable model. Checkpoint folders in ``output_dir`` are left alone.
    ``info`` (e.g. step and dev score) goes to ``best.json`` beside it.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)
    (tmp / "best.json").write_text(json.dumps(info or {}) + "\n", encoding="utf-8")
    entries = sorted(tmp.iterdir(), key=lambda p: p.suffix == ".safetensors")
    for entry in entries:
        target = folder / entry.name
        if entry.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(folder)
