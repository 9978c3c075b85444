"""A run that survives a crash, a NaN and Ctrl-C: the loss sync with its NaN check,
atomic checkpoints, exact resume, the best model.

``checkpoint-<step>/`` is the encoder's ``save()`` layout plus ``state.pt`` (optimizer,
scheduler, scaler, every rank's RNG, step, history), written beside and renamed at
once. The newest two are kept, so a damaged newest one leaves one to resume from. The
best model lives once, in ``output_dir``. See chapter 6.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import random
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .distributed import barrier
from .encoder import DamagedFileError, check_files
from .utils import NonFiniteError

PREFIX = "checkpoint-"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and (if in use) CUDA RNG states, ``weights_only`` types."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    name, keys, *rest = np.random.get_state()
    state["numpy"] = [name, torch.from_numpy(keys.astype(np.int64)), *rest]
    if torch.cuda.is_initialized():  # else its RNG is unused (and stays unstarted)
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (best effort: Windows cannot open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def write_atomically(final: Path) -> Iterator[Path]:
    """Yield a folder beside ``final`` to write in, then flush its files and rename it
    to ``final`` at once: a crash leaves the old folder or the new one."""
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # what a crash left half written
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb+") as f:
                    os.fsync(f.fileno())
    except BaseException:  # a full disk: no half-written folder stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)  # a leftover of the same name
    os.replace(tmp, final)
    _fsync_folder(final.parent)


def _complete(folder: Path) -> list[Path]:
    """The complete ``checkpoint-<step>`` folders, oldest first."""
    steps = {p: p.name[len(PREFIX) :] for p in folder.glob(PREFIX + "*")}
    found = [p for p, s in steps.items() if s.isdigit() and (p / "state.pt").is_file()]
    return sorted(found, key=lambda p: int(steps[p]))


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint folder with the highest step, or ``None``."""
    found = _complete(Path(output_dir))
    return found[-1] if found else None


def save_best_model(encoder: Any, output_dir: Any, info: dict) -> None:
    """``encoder.save(output_dir)`` plus ``info`` in ``best.json``, crash-safe: written
    beside, then moved in entry by entry, weights last (checkpoints there stay)."""
    folder = Path(output_dir)
    tmp = folder / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)  # creates output_dir too
    (tmp / "best.json").write_text(json.dumps(info) + "\n", encoding="utf-8")
    for entry in sorted(tmp.iterdir(), key=lambda p: p.suffix == ".safetensors"):
        target = folder / entry.name
        if entry.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    tmp.rmdir()
    _fsync_folder(folder)


def flush(state: Any, bar: Any = None) -> None:
    """Sync the losses of the last steps: NaN check and one history record."""
    if not state.window:
        return
    values = torch.stack(state.window).tolist()  # the one host sync per window
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:  # name the first bad step, not the one that noticed
        raise nan_error(state, state.step - len(values) + bad[0] + 1)
    loss, lr = sum(values) / len(values), state.scheduler.get_last_lr()[0]
    state.history.append({"step": state.step, "loss": loss, "lr": lr})
    state.window.clear()
    if bar is not None:
        best = {} if state.best_score is None else {"best": f"{state.best_score:.2f}"}
        bar.set_postfix(loss=f"{loss:.4f}", **best)


def nan_error(state: Any, step: int) -> NonFiniteError:
    """The error of a run whose loss became NaN or inf at ``step``."""
    where = f"the last good checkpoint is {state.checkpoint}"
    if not state.checkpoint:
        where = "no checkpoint was saved (set output_dir)"
    return NonFiniteError(
        f"the training loss became NaN or inf at step {step}; training stopped "
        f"and the best model was kept. {where}. Resume from it with resume=True "
        "and a lower learning_rate, max_grad_norm=1.0 or precision='fp32'"
    )


def check_weights(state: Any) -> None:
    """Raise :func:`nan_error` if a weight is NaN or inf."""
    finite = torch.stack([p.isfinite().all() for p in state.encoder.parameters()])
    if not bool(finite.all()):
        raise nan_error(state, state.step)


def interrupted(state: Any) -> str:
    """Ctrl-C: checkpoint the last complete step; return how to resume."""
    state.optimizer.zero_grad(set_to_none=True)
    rng = state.step_rng  # the RNG at the start of the unfinished step
    if state.scheduler.last_epoch > state.step:  # it finished after all
        state.step, rng = state.scheduler.last_epoch, None
    folder = state.cfg.output_dir or tempfile.mkdtemp(prefix="minicse-run-")
    save(state, folder, rng=rng)
    state.history.append({"step": state.step, "interrupted": str(state.checkpoint)})
    return (
        f"Training interrupted at step {state.step}/{state.total}; checkpoint saved "
        f"to {state.checkpoint}. The returned model has the weights of step "
        f"{state.step}. To continue, call train_{state.cfg.objective}(..., "
        f"output_dir={str(folder)!r}, resume=True) with the same data, or add "
        f"`--output-dir {folder} --resume` to the command line."
    )


# A run's state (minicse.train.TrainState) in and out of checkpoints
_KEPT = ("step", "best_score", "best_step", "last_eval", "history", "run")
_STATEFUL = ("optimizer", "scheduler", "scaler")


def save(state: Any, output_dir: Any, rng: dict | None = None) -> None:
    """Sync the losses and refuse NaN weights, then write ``checkpoint-<step>`` of the
    run atomically (rank 0) with every rank's RNG state; keep it and the newest older
    one."""
    flush(state)
    check_weights(state)
    rng, folder = rng or rng_state(), Path(output_dir)
    rngs = [rng] * state.info.world_size
    if state.info.distributed:
        torch.distributed.all_gather_object(rngs, rng)
    final = folder / f"{PREFIX}{state.step}"
    if state.info.is_main:
        write_best(state)  # first: a checkpoint's best model is always on disk
        saved = {k: getattr(state, k) for k in _KEPT} | {"rng": rngs}
        saved |= {k: getattr(state, k).state_dict() for k in _STATEFUL}
        with write_atomically(final) as tmp:
            state.encoder.save(tmp)  # creates the folder too
            torch.save(saved, tmp / "state.pt")
        for old in [p for p in _complete(folder) if p != final][:-1]:
            shutil.rmtree(old, ignore_errors=True)
    state.checkpoint, state.last_save = final, state.step
    barrier()


def write_best(state: Any) -> None:
    """Write the best model to ``output_dir`` if it is not there yet (rank 0): once
    per checkpoint at most, not at every new best (a slow disk, a Drive)."""
    best, folder = state.best_weights, state.cfg.output_dir
    done = state.best_written == state.best_step
    if done or not (folder and best and state.info.is_main):
        return
    current = {k: v.detach().clone() for k, v in state.encoder.state_dict().items()}
    state.encoder.load_state_dict(best)
    info = {"step": state.best_step, "dev": state.best_score}
    save_best_model(state.encoder, folder, info)
    state.encoder.load_state_dict(current)
    state.best_written = state.best_step


def _restore(state: Any, folder: Path) -> None:
    """Continue from checkpoint ``folder``: weights, optimizer, RNG, position."""
    advice = "this checkpoint cannot be resumed"
    check_files(folder, advice)  # before anything is loaded
    try:
        saved = torch.load(folder / "state.pt", weights_only=True, map_location="cpu")
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
        message = f"{folder / 'state.pt'} is damaged ({err}); {advice}"
        raise DamagedFileError(message) from err
    if saved["run"] != state.run:
        raise ValueError(
            f"checkpoint {folder} belongs to a run with {saved['run']}, this one "
            f"has {state.run}; resume needs the same data, batch_size, seed, "
            "number of processes and dev pairs (or use a new output_dir)"
        )
    state.encoder.load_weights(folder)
    for key in _STATEFUL:
        if saved[key]:  # a disabled scaler saved {}
            getattr(state, key).load_state_dict(saved[key])
    set_rng_state(saved["rng"][state.info.rank])  # one state per rank
    for key in _KEPT:
        setattr(state, key, saved[key])
    state.best_written = state.best_step  # save() wrote it before the checkpoint
    state.last_save, state.checkpoint = state.step, folder


def resume(state: Any, output_dir: str | os.PathLike) -> Path:
    """Restore the newest checkpoint in ``output_dir`` that loads; a damaged one is
    kept as ``checkpoint-<step>.damaged`` with a warning and the one before it tried."""
    found = _complete(Path(output_dir))[::-1]
    for i, folder in enumerate(found):
        try:
            _restore(state, folder)
            return folder
        except DamagedFileError as err:
            kept = folder.with_name(f"{folder.name}.damaged")
            if state.info.is_main and not kept.exists():  # out of the way, not lost
                os.replace(folder, kept)
            if i + 1 == len(found):
                raise DamagedFileError(
                    f"{err}; no earlier checkpoint is left in {output_dir} (the damaged"
                    f" one is kept as {kept.name}): train again without resume=True"
                ) from err
            message = f"{err}; kept as {kept.name}, resuming from {found[i + 1].name}"
            warnings.warn(message, UserWarning, stacklevel=2)
    raise FileNotFoundError(f"{output_dir} holds no checkpoint-<step> folder")
