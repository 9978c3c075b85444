"""Checkpoints that survive a crash: atomic writes, exact resume, the best model.

``checkpoint-<step>/`` is the encoder's ``save()`` layout plus ``state.pt``
(optimizer, scheduler, scaler, every rank's RNG, step, history), written to a
temporary folder and renamed at once: a crash leaves the old one or the new one.
The best model lives once, in ``output_dir``. :func:`identity` names what a
checkpoint must share with the run that resumes it. See chapter 6.
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
    "identity",
    "resumable",
    "restore",
]

PREFIX = "checkpoint-"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and (if in use) CUDA RNG states, ``weights_only`` types.

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
    if torch.cuda.is_initialized():  # else its RNG is unused (and stays unstarted)
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


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries (best effort: not every OS can)."""
    try:
        fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not path.is_dir():
            raise


def _steps(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``checkpoint-<step>`` folder, complete or not."""
    names = [(p.name[len(PREFIX) :], p) for p in folder.glob(PREFIX + "*")]
    return [(int(step), p) for step, p in names if step.isdigit()]


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint folder with the highest step, or ``None``.

    Example:
        >>> latest_checkpoint("/nonexistent") is None
        True
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    found = [(s, p) for s, p in _steps(folder) if (p / "state.pt").is_file()]
    return max(found)[1] if found else None


def save_checkpoint(
    output_dir: str | os.PathLike, step: int, encoder: Any, state: dict[str, Any]
) -> Path:
    """Write ``checkpoint-<step>`` atomically, then delete the older ones.

    Args:
        output_dir: the run's folder (created if missing).
        step: optimizer steps done; names the folder.
        encoder: the (unwrapped) ``SentenceEncoder``.
        state: optimizer, scheduler, RNG, step, history (``weights_only`` types).

    Returns:
        The path of the new checkpoint folder.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final, tmp = folder / f"{PREFIX}{step}", folder / f".{PREFIX}{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)
    torch.save(state, tmp / "state.pt")
    for file in tmp.rglob("*"):
        if file.is_file():
            _fsync(file)
    shutil.rmtree(final, ignore_errors=True)  # a leftover of the same step
    os.replace(tmp, final)
    _fsync(folder)
    for _, old in _steps(folder):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, encoder: Any) -> dict[str, Any]:
    """Load checkpoint ``path``'s weights into ``encoder``; return its state.

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
    """``encoder.save(output_dir)`` plus ``info`` in ``best.json``, crash-safe.

    Saved to a temporary folder, then moved entry by entry, weights last;
    checkpoint folders in ``output_dir`` are left alone.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)
    (tmp / "best.json").write_text(json.dumps(info or {}) + "\n", encoding="utf-8")
    for entry in sorted(tmp.iterdir(), key=lambda p: p.suffix == ".safetensors"):
        target = folder / entry.name
        if entry.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    shutil.rmtree(tmp, ignore_errors=True)
    _fsync(folder)


def identity(cfg: Any, rows: int, info: Any) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run exactly.

    The number of processes is part of it: each rank's RNG state (its dropout
    masks) is saved and restored, and its rows of every batch depend on it.
    """
    keys = ("objective", "batch_size", "seed")
    return {
        **{k: getattr(cfg, k) for k in keys},
        "rows": rows,
        "world_size": info.world_size,
    }


def resumable(state: Any, rngs: list[dict]) -> dict[str, Any]:
    """What a checkpoint keeps of a ``loop.TrainState`` besides the weights."""
    return {
        "step": state.step,
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict(),
        "rng": rngs,
        "best_score": state.best_score,
        "best_step": state.best_step,
        "last_eval": state.last_eval,
        "history": state.history,
        "run": state.run,
    }


def restore(state: Any, folder: Path) -> None:
    """Continue from checkpoint ``folder``: weights, optimizer, RNG, position."""
    saved = load_checkpoint(folder, state.encoder)
    if saved["run"] != state.run:
        raise ValueError(
            f"checkpoint {folder} belongs to a run with {saved['run']}, this one "
            f"has {state.run}; resume needs the same data, batch_size, seed and "
            "number of processes (or use a new output_dir)"
        )
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    if saved["scaler"]:
        state.scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"][state.info.rank])  # one state per rank
    state.step, state.history = saved["step"], list(saved["history"])
    state.best_score, state.best_step = saved["best_score"], saved["best_step"]
    state.last_eval, state.last_save = saved["last_eval"], state.step
    state.checkpoint = folder
