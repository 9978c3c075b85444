"""``cached_train``: a model trained once, keyed by everything it depends on, so each
chapter runs alone yet trains only what no earlier run saved, and after a crash or a
lost Colab runtime the same call resumes from its checkpoints. See chapters 6 and 7."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from . import __version__
from . import checkpoint as ckpt
from .config import TrainConfig
from .encoder import SentenceEncoder, check_files
from .inputs import read_inputs
from .train import _train
from .utils import amp_dtype, env_flag, pick_device

# what changes where a run writes or how it reports (dev: its pairs' digest counts)
_NOT_IN_KEY = ("output_dir", "resume", "save_steps", "progress", "dev")


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache: ``path``, else ``$MINICSE_CACHE``, else ``~/.cache/minicse``."""
    return Path(path or env_flag("MINICSE_CACHE") or "~/.cache/minicse").expanduser()


def cached_train(
    model: str | os.PathLike,
    data: Any,
    config: TrainConfig,
    cache: str | os.PathLike | None = None,
    dev: Any = None,
) -> SentenceEncoder:
    """``train_unsup``/``train_sup`` by ``config.objective``, or that run's saved model.

    The key hashes minicse's source, ``model`` (a name or folder), the ``config``
    settings that change what is learnt, the rows of ``data`` and the dev pairs
    (``dev``, else ``config.dev``). A miss trains with checkpoints (the same call after
    a crash resumes them) into ``<cache_dir(cache)>/<objective>-<model>-<key>``.
    Returns the encoder with ``.history`` and ``.cache_path``.
    """
    if not isinstance(model, (str, os.PathLike)) or not isinstance(config, TrainConfig):
        got = f"{type(model).__name__}, {type(config).__name__}"  # an encoder: no key
        raise TypeError(f"cached_train takes a name or folder and a TrainConfig: {got}")
    if config.output_dir is not None:  # resume=True needs one too
        raise ValueError("cached_train keeps its own folder: unset output_dir")
    extra = {} if dev is None else {"dev": dev}
    rows, config, selected_on, dev = read_inputs(config.objective, data, config, extra)
    name = _run_name(str(model), rows, config, selected_on.get("sha256"))
    folder = cache_dir(cache) / name
    if not (folder / "history.json").is_file():
        encoder = _train_resumably(str(model), rows, config, folder, selected_on, dev)
    else:
        check_files(folder, f"remove it (shutil.rmtree({str(folder)!r})) to train anew")
        encoder = SentenceEncoder.load(folder)
        encoder.history = json.loads((folder / "history.json").read_text("utf-8"))
        if config.progress:
            print(f"Loaded the trained model from the cache: {folder}")
    encoder.cache_path = folder
    return encoder


def _train_resumably(model: str, rows: list, cfg: TrainConfig, folder: Path, *dev):
    """Train with about five checkpoints in ``<folder>.checkpoints``, resuming."""
    work = folder.with_name(f"{folder.name}.checkpoints")
    found = ckpt.latest_checkpoint(work)
    if found is not None and cfg.progress:
        print(f"Resuming the interrupted run from {found}")
    total = cfg.total_steps(len(rows))
    unit = math.lcm(cfg.eval_steps or 1, cfg.log_every)  # flushed steps only
    save = cfg.save_steps or unit * max(1, round(total / unit / 5))  # about five
    run = replace(cfg, output_dir=str(work), resume=found is not None, save_steps=save)
    encoder = _train(model, rows, run, *dev)
    if any("interrupted" in record for record in encoder.history):
        print("cached_train with the same arguments continues it.", file=sys.stderr)
        return encoder
    with ckpt.write_atomically(folder) as tmp:
        encoder.save(tmp)
        (tmp / "history.json").write_text(json.dumps(encoder.history), "utf-8")
    shutil.rmtree(work, ignore_errors=True)  # the cache's own checkpoints
    return encoder


def _run_name(model: str, rows: list, cfg: TrainConfig, dev: str | None) -> str:
    """``<objective>-<model>-<key>``: the key hashes all that the model depends on."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_KEY}
    device = pick_device(cfg.device)  # "auto" as this machine resolves it
    settings.update(device=device.type, precision=str(amp_dtype(device, cfg.precision)))
    key = json.dumps([_source_digest(), model, settings, dev], sort_keys=True)
    digest = hashlib.sha256(key.encode())
    for row in rows:
        digest.update("\x1f".join(row).encode("utf-8") + b"\x1e")
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(model).name)
    return f"{cfg.objective}-{slug}-{digest.hexdigest()[:16]}"


@functools.lru_cache(maxsize=1)  # once a process: the code that is running
def _source_digest() -> str:
    """SHA-256 of the package's modules: a model belongs to the code that trained it."""
    digest = hashlib.sha256(__version__.encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()
