"""Checkpoints that survive a crash: atomic writes, exact resume, the best model.

``checkpoint-<step>/`` is the encoder's ``save()`` layout plus ``state.pt`` (optimizer,
scheduler, scaler, every rank's RNG, step, history), written beside and renamed at
once. The newest two are kept, so a damaged newest one leaves one to resume from. The
best model lives once, in ``output_dir``. See chapter 6.
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

from .distributed import barrier
from .encoder import DamagedFileError, check_files

PREFIX = "checkpoint-"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and (if in use) CUDA RNG states, ``weights_only`` types."""
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
    try:  # Windows cannot open a folder
        fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not path.is_dir():
            raise


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


def _complete(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the complete ``checkpoint-<step>`` folders, oldest first."""
    names = [(p.name[len(PREFIX) :], p) for p in folder.glob(PREFIX + "*")]
    found = [(int(s), p) for s, p in names if s.isdigit()]
    return sorted((s, p) for s, p in found if (p / "state.pt").is_file())


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint folder with the highest step, or ``None``."""
    folder = Path(output_dir)
    found = _complete(folder) if folder.is_dir() else []
    return found[-1][1] if found else None


def save_checkpoint(output_dir: Any, step: int, encoder: Any, state: dict) -> Path:
    """Write ``checkpoint-<step>`` atomically; keep it and the newest older one."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        encoder.save(tmp)
        torch.save(state, tmp / "state.pt")

    final = write_atomically(folder / f"{PREFIX}{step}", write)
    keep = [p for _, p in _complete(folder) if p != final][-1:] + [final]
    for old in folder.glob(PREFIX + "*"):  # older ones, and half-written ones
        if old not in keep and old.name[len(PREFIX) :].isdigit():
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, encoder: Any) -> dict[str, Any]:
    """Load checkpoint ``path``'s weights into ``encoder``; return its state (a
    truncated file raises :class:`DamagedFileError` before anything is loaded)."""
    folder = Path(path)
    if not (folder / "state.pt").is_file():
        raise FileNotFoundError(
            f"{folder} is not a minicse checkpoint (no state.pt); expected a "
            f"folder named {PREFIX}<step> written by train_unsup/train_sup"
        )
    advice = "this checkpoint cannot be resumed"
    check_files(folder, advice)
    try:
        state = torch.load(folder / "state.pt", weights_only=True, map_location="cpu")
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
        message = f"{folder / 'state.pt'} is damaged ({err}); {advice}"
        raise DamagedFileError(message) from err
    encoder.load_weights(folder)
    return state


def save_best_model(encoder: Any, output_dir: Any, info: dict | None = None) -> None:
    """``encoder.save(output_dir)`` plus ``info`` in ``best.json``, crash-safe: saved
    to a temporary folder, then moved entry by entry, weights last (checkpoint folders
    in ``output_dir`` stay)."""
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


# A run's state (minicse.train.TrainState) in and out of checkpoints
_KEPT = ("step", "best_score", "best_step", "last_eval", "history", "run")
_STATEFUL = ("optimizer", "scheduler", "scaler")


def save(state: Any, folder: Any, rng: dict | None = None) -> None:
    """Write a checkpoint of the run (rank 0) holding every rank's RNG state."""
    rngs = [rng or rng_state()]
    if state.info.distributed:
        rngs = [None] * state.info.world_size
        torch.distributed.all_gather_object(rngs, rng or rng_state())
    if state.info.is_main:
        write_best(state)  # first: a checkpoint's best model is always on disk
        saved = {k: getattr(state, k) for k in _KEPT}
        saved |= {k: getattr(state, k).state_dict() for k in _STATEFUL}
        save_checkpoint(folder, state.step, state.encoder, {**saved, "rng": rngs})
    state.checkpoint = Path(folder) / f"{PREFIX}{state.step}"
    state.last_save = state.step
    barrier()


def write_best(state: Any) -> None:
    """Write the best model to ``output_dir`` if it is not there yet (rank 0): once
    per checkpoint at most, not at every new best (a slow disk, a Drive)."""
    best, folder = state.best_weights, state.cfg.output_dir
    if not (folder and best and state.info.is_main):
        return
    if state.best_written == state.best_step:
        return
    current = {k: v.detach().clone() for k, v in state.encoder.state_dict().items()}
    state.encoder.load_state_dict(best)
    info = {"step": state.best_step, "dev": state.best_score}
    save_best_model(state.encoder, folder, info)
    state.encoder.load_state_dict(current)
    state.best_written = state.best_step


def restore(state: Any, folder: Path) -> None:
    """Continue from checkpoint ``folder``: weights, optimizer, RNG, position."""
    saved = load_checkpoint(folder, state.encoder)
    if saved["run"] != state.run:
        raise ValueError(
            f"checkpoint {folder} belongs to a run with {saved['run']}, this one "
            f"has {state.run}; resume needs the same data, batch_size, seed, "
            "number of processes and dev pairs (or use a new output_dir)"
        )
    for key in _STATEFUL:
        if saved[key]:  # a disabled scaler saved {}
            getattr(state, key).load_state_dict(saved[key])
    set_rng_state(saved["rng"][state.info.rank])  # one state per rank
    for key in _KEPT:
        setattr(state, key, saved[key])
    state.history = list(state.history)
    state.best_written = state.best_step  # save() wrote it before the checkpoint
    state.last_save, state.checkpoint = state.step, folder


def resume(state: Any, output_dir: str | os.PathLike) -> Path:
    """Restore the newest checkpoint in ``output_dir`` that loads; a damaged one is
    kept as ``checkpoint-<step>.damaged`` with a warning and the one before it tried."""
    found = [p for _, p in reversed(_complete(Path(output_dir)))]
    for i, folder in enumerate(found):
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
            message = f"{err}; kept as {kept.name}, resuming from {found[i + 1].name}"
            warnings.warn(message, UserWarning, stacklevel=2)
    raise FileNotFoundError(f"{output_dir} holds no checkpoint-<step> folder")
