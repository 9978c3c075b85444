"""A model trained once: ``cached_train`` keys a run by everything it depends on.

The book's chapters reuse models trained in earlier chapters (chapter 8 scores the
models of chapters 6 and 7). Each chapter still runs on its own: it asks for the
run it needs, and trains it only when no earlier chapter (or earlier run of the
same chapter) has saved it. A run checkpoints into the cache while it trains, so
after a crash or a lost Colab runtime the same call continues it. See chapters 6
and 7.
"""

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
from .encoder import DamagedFileError, SentenceEncoder, check_files
from .train import TrainConfig, _as_rows, _as_sentences, _config, _train, _with_dev
from .utils import amp_dtype, env_flag, pick_device

__all__ = ["cached_train", "cache_dir"]

# Settings that change where a run writes or how it reports, not what it learns;
# for ``dev`` its pairs' digest is in the key instead of its name or path.
_NOT_IN_KEY = ("output_dir", "resume", "save_steps", "progress", "num_workers", "dev")


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else ``$MINICSE_CACHE``, else ``~/.cache/minicse``.

    Example:
        >>> cache_dir("/tmp/runs")
        PosixPath('/tmp/runs')
    """
    chosen = path if path is not None else env_flag("MINICSE_CACHE")
    return Path(chosen or "~/.cache/minicse").expanduser()


def cached_train(
    model: str | os.PathLike,
    data: Any,
    config: TrainConfig,
    cache: str | os.PathLike | None = None,
    dev: Any = None,
) -> SentenceEncoder:
    """``train_unsup``/``train_sup`` by ``config.objective``, or that run's saved model.

    The key is a SHA-256 of minicse's own source code, ``model``, every training
    setting of ``config``, the training rows and the dev pairs themselves, so a
    changed sentence, dev score, seed or learning rate, or another minicse, is a
    different run. A hit loads the saved encoder and its ``.history`` (and says
    so, unless ``config.progress`` is off); a miss trains, then saves into
    ``<cache>/<objective>-<model>-<key>`` (written to a temporary folder first,
    so a crash never leaves half a model).
    While training, about five checkpoints (at evaluations) go to that name plus
    ``.checkpoints``; a call after a crash, a Ctrl-C or a lost runtime resumes
    from the newest and gives the same model as one uninterrupted run. A damaged
    cached model is a ``DamagedFileError`` that names the file (nothing is deleted).

    Args:
        model: a hub name, a local folder, ``"tiny"`` or ``"offline-minilm"``
            (an encoder object has no stable key: pass its name).
        data: sentences (``objective="unsup"``) or triplets/pairs (``"sup"``), in
            any form ``train_unsup``/``train_sup`` accept.
        config: the run's ``TrainConfig``; ``output_dir`` and ``resume`` must be
            unset (the cache keeps its own folder).
        cache: the cache folder (see :func:`cache_dir`).
        dev: model-selection pairs in place of ``config.dev``, in any form
            ``train_unsup`` takes (None: ``config.dev``).

    Returns:
        The trained encoder, with ``.history`` and ``.cache_path`` (its folder).

    Example:
        >>> import tempfile
        >>> texts = [f"sentence number {i}" for i in range(16)]
        >>> cfg = TrainConfig.unsup(batch_size=8, max_steps=1, eval_steps=None,
        ...                         progress=False)
        >>> folder = tempfile.mkdtemp()
        >>> first = cached_train("tiny", texts, cfg, cache=folder)
        >>> again = cached_train("tiny", texts, cfg, cache=folder)
        >>> again.cache_path == first.cache_path, again.history == first.history
        (True, True)
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            "cached_train needs the model's name or folder (an encoder object has no "
            f"stable cache key), got {type(model).__name__}; pass e.g. "
            "'offline-minilm', or call train_unsup/train_sup directly"
        )
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.output_dir is not None or config.resume:
        raise ValueError(
            "cached_train keeps its own folder: leave output_dir and resume unset, or "
            "call train_unsup/train_sup with output_dir to keep checkpoints"
        )
    config, pairs = _config(
        config.objective, config, {} if dev is None else {"dev": dev}
    )
    rows = _as_sentences(data) if config.objective == "unsup" else _as_rows(data)
    config, selected_on, dev = _with_dev(config, pairs)
    digest = selected_on.get("sha256")
    folder = cache_dir(cache) / _run_name(str(model), rows, config, digest)
    if (folder / "history.json").is_file():
        encoder = _load(folder)
        if config.progress:
            print(f"Loaded the trained model from the cache: {folder}")
    else:
        encoder = _train_resumably(str(model), rows, config, folder, selected_on, dev)
    encoder.cache_path = folder
    return encoder


def _load(folder: Path) -> SentenceEncoder:
    """The cached encoder with its history; a damaged file is named."""
    check_files(  # history.json, the settings and the weights
        folder,
        "the cached model is damaged (a disconnect or a full disk?): delete the "
        f"folder, e.g. shutil.rmtree({str(folder)!r}), and call cached_train again "
        "to train it anew",
    )
    encoder = SentenceEncoder.load(folder)
    encoder.history = json.loads((folder / "history.json").read_text("utf-8"))
    return encoder


def _train_resumably(
    model: str,
    rows: list[tuple[str, ...]],
    config: TrainConfig,
    folder: Path,
    *dev: Any,
) -> SentenceEncoder:
    """Train with checkpoints in ``<folder>.checkpoints``, resuming from them."""
    work = folder.with_name(f"{folder.name}.checkpoints")
    stale = [*work.glob(".*.tmp-*"), *folder.parent.glob(f".{folder.name}.tmp-*")]
    for leftover in stale:  # writes that a lost runtime left half done
        shutil.rmtree(leftover, ignore_errors=True)
    found = ckpt.latest_checkpoint(work)
    if found is not None and config.progress:
        print(f"Resuming the interrupted run from {found}")
    total = config.max_steps or config.num_epochs * (len(rows) // config.batch_size)
    unit = math.lcm(config.eval_steps or 1, config.log_every)  # flushed steps only
    period = unit * max(1, round(total / unit / 5))  # about 5 checkpoints a run
    run = replace(
        config,
        output_dir=str(work),
        resume=found is not None,
        save_steps=config.save_steps or period,
    )
    try:
        encoder = _train(model, rows, run, *dev)
    except DamagedFileError as err:
        raise DamagedFileError(f"{err} (cached_train: call it again)") from err
    if any("interrupted" in record for record in encoder.history):
        print("cached_train with the same arguments continues it.", file=sys.stderr)
    else:
        _save(encoder, folder)
        shutil.rmtree(work, ignore_errors=True)  # the cache's own checkpoints
    return encoder


def _run_name(model: str, rows: list, config: TrainConfig, dev: str | None) -> str:
    settings = {k: v for k, v in asdict(config).items() if k not in _NOT_IN_KEY}
    device = pick_device(config.device)  # "auto" as this machine resolves it
    settings.update(
        device=device.type, precision=str(amp_dtype(device, config.precision))
    )
    digest = hashlib.sha256()
    digest.update(
        json.dumps([_source_digest(), model, settings, dev], sort_keys=True).encode()
    )
    for row in rows:
        digest.update("\x1f".join(row).encode("utf-8") + b"\x1e")
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(model).name)
    return f"{config.objective}-{slug}-{digest.hexdigest()[:16]}"


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """SHA-256 of the package's modules: a model belongs to the code that trained it."""
    digest = hashlib.sha256(__version__.encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()


def _save(encoder: SentenceEncoder, folder: Path) -> None:
    def write(tmp: Path) -> None:
        encoder.save(tmp)
        (tmp / "history.json").write_text(json.dumps(encoder.history), "utf-8")

    ckpt.write_atomically(folder, write)
