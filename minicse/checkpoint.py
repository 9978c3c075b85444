"""Checkpoints that survive a crash: atomic writes, exact resume, the best model.

``checkpoint-<step>/`` is the encoder's ``save()`` layout plus ``state.pt``
(optimizer, scheduler, scaler, every rank's RNG, step, history), written to a
temporary folder and renamed at once: a crash leaves the old one or the new one.
The newest two are kept, so a damaged newest one (a disconnect or a full disk
truncates files) leaves one to resume from. The best model lives once, in
``output_dir``. :func:`identity` names what a checkpoint must share with the run
that resumes it. See chapter 6.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._export import DamagedFileError, check_files

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
    "resume",
    "write_atomically",
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


def write_atomically(final: Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` into a temporary folder beside ``final``, flush every file,
    then rename it to ``final`` at once (a crash leaves the old or the new one)."""
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        for file in tmp.rglob("*"):
            if file.is_file():
                _fsync(file)
    except BaseException:  # a full disk: no half-written folder stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)  # a leftover of the same name
    os.replace(tmp, final)
    _fsync(final.parent)
    return final


def save_checkpoint(
    output_dir: str | os.PathLike, step: int, encoder: Any, state: dict[str, Any]
) -> Path:
    """Write ``checkpoint-<step>`` atomically; keep it and the newest older one.

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

    def write(tmp: Path) -> None:
        encoder.save(tmp)
        torch.save(state, tmp / "state.pt")

    final = write_atomically(folder / f"{PREFIX}{step}", write)
    older = [(s, p) for s, p in _steps(folder) if p != final]
    complete = [p for s, p in sorted(older) if (p / "state.pt").is_file()]
    for _, old in older:
        if old not in complete[-1:]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, encoder: Any) -> dict[str, Any]:
    """Load checkpoint ``path``'s weights into ``encoder``; return its state.

    Raises:
        FileNotFoundError: ``path`` is not a complete checkpoint folder.
        DamagedFileError: a file of it is truncated (nothing is loaded then).
    """
    folder = Path(path)
    if not (folder / "state.pt").is_file():
        raise FileNotFoundError(
            f"{folder} is not a minicse checkpoint (no state.pt); expected a "
            f"folder named {PREFIX}<step> written by train_unsup/train_sup"
        )
    advice = "this checkpoint cannot be resumed"
    check_files(folder, advice)  # before anything is loaded into the encoder
    try:
        state = torch.load(folder / "state.pt", weights_only=True, map_location="cpu")
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
        message = f"{folder / 'state.pt'} is damaged ({err}); {advice}"
        raise DamagedFileError(message) from err
    encoder.load_weights(folder)
    return state


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


def identity(cfg: Any, rows: int, info: Any, dev: str | None = None) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run exactly.

    The number of processes is part of it: each rank's RNG state (its dropout
    masks) is saved and restored, and its rows of every batch depend on it. So
    is ``dev``, the digest of the pairs the best model is selected on.
    """
    keys = ("objective", "batch_size", "seed")
    return {
        **{k: getattr(cfg, k) for k in keys},
        "rows": rows,
        "world_size": info.world_size,
        "dev": dev,
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
            f"has {state.run}; resume needs the same data, batch_size, seed, "
            "number of processes and dev pairs (or use a new output_dir)"
        )
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    if saved["scaler"]:
        state.scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"][state.info.rank])  # one state per rank
    state.step, state.history = saved["step"], list(saved["history"])
    state.best_score, state.best_step = saved["best_score"], saved["best_step"]
    state.best_written = state.best_step  # save() wrote it before the checkpoint
    state.last_eval, state.last_save = saved["last_eval"], state.step
    state.checkpoint = folder


def resume(state: Any, output_dir: str | os.PathLike) -> Path:
    """Restore the newest checkpoint in ``output_dir`` that loads, and return it.

    A damaged one is renamed ``checkpoint-<step>.damaged`` (kept, never deleted)
    with a warning, and the one before it is tried; with none left, the error
    says what to do.
    """
    found = sorted(
        ((s, p) for s, p in _steps(Path(output_dir)) if (p / "state.pt").is_file()),
        reverse=True,
    )
    for i, (_, folder) in enumerate(found):
        try:
            restore(state, folder)
            return folder
        except DamagedFileError as err:
            kept = folder.with_name(f"{folder.name}.damaged")
            if state.info.is_main and not kept.exists():  # out of the way, not lost
                os.replace(folder, kept)
            if i + 1 == len(found):
                raise DamagedFileError(
                    f"{err}; no earlier checkpoint is left in {output_dir} (the "
                    f"damaged one is kept as {kept.name}), so the run starts over: "
                    "train again without resume=True"
                ) from err
            warnings.warn(
                f"{err}; kept as {kept.name}, resuming from "
                f"{found[i + 1][1].name} instead",
                UserWarning,
                stacklevel=2,
            )
    raise FileNotFoundError(f"{output_dir} holds no checkpoint-<step> folder")
