"""Writing a :class:`~minicse.encoder.SentenceEncoder` folder: Hugging Face files,
``minicse.json`` and the sentence-transformers layout (the legacy key format that
sentence-transformers 3.x-6.x all read). Private to :mod:`minicse.encoder`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from minicse import hub

CONFIG_FILE, MLP_FILE = "minicse.json", "mlp.safetensors"
_ST_POOLING = {"cls": "cls", "cls_before_pooler": "cls", "mean": "mean"}


class DamagedFileError(OSError):
    """A saved file is truncated or unreadable (a disconnect or a full disk)."""


def check_files(folder: Path, advice: str) -> None:
    """Raise :class:`DamagedFileError` (with ``advice``) for the first truncated
    ``.safetensors`` or unreadable ``.json`` file in ``folder`` (not sub-folders)."""
    for file in sorted(folder.glob("*.json")):
        try:
            json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise DamagedFileError(f"{file} is damaged ({err}); {advice}") from err
    for file in sorted(folder.glob("*.safetensors")):
        size, expected = file.stat().st_size, _safetensors_size(file)
        if size != expected:
            got = "unreadable" if expected < 0 else f"{size:,} of {expected:,} bytes"
            raise DamagedFileError(f"{file} is truncated ({got}); {advice}")


def _safetensors_size(file: Path) -> int:
    """The size a safetensors file's header promises (-1: no readable header)."""
    with open(file, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        try:
            header = json.loads(handle.read(min(length, 100_000_000)))
            ends = [v["data_offsets"][1] for k, v in header.items() if k[:2] != "__"]
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            return -1
    return 8 + length + max(ends, default=0)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _save_linear(linear: nn.Linear, file: Path, prefix: str = "") -> None:
    from safetensors.torch import save_file

    weights = {
        f"{prefix}{k}": v.detach().cpu().contiguous()
        for k, v in linear.state_dict().items()
    }
    save_file(weights, str(file))


def saved_head(folder: Path) -> dict[str, Tensor]:
    """The head of a saved folder: ``mlp.safetensors`` or the model's pooler slot."""
    from safetensors import safe_open

    if (folder / MLP_FILE).is_file():
        with safe_open(str(folder / MLP_FILE), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = {k: f"pooler.dense.{k}" for k in ("weight", "bias")}
        if not set(names.values()) <= set(f.keys()):  # never a silent random head
            raise FileNotFoundError(
                f"{str(folder)!r} says it has an MLP head (minicse.json) but holds "
                f"neither {MLP_FILE} nor pooler weights in model.safetensors; "
                "save the encoder again"
            )
        return {k: f.get_tensor(name) for k, name in names.items()}


def save_encoder(encoder: Any, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model, head, slot = encoder.model, encoder.mlp_head, encoder._pooler_class
    if head is not None and slot is not None:  # the head in the HF pooler layer;
        with torch.random.fork_rng(devices=[]):  # its init must not move the RNG
            model.pooler = slot(model.config)  # (a resumed run would differ)
        model.pooler.dense.load_state_dict(head[0].state_dict())
    try:
        with hub.quiet_loading():
            model.save_pretrained(path)  # config.json + model.safetensors
            encoder.tokenizer.save_pretrained(path)
    finally:
        if slot is not None:
            model.pooler = None
    settings = {"pooling": encoder.pooling, "mlp": encoder.mlp}
    _write_json(path / CONFIG_FILE, {**settings, "max_length": encoder.max_length})
    (path / MLP_FILE).unlink(missing_ok=True)
    if head is not None and slot is None:
        _save_linear(head[0], path / MLP_FILE)
    if encoder.pooling not in _ST_POOLING:
        (path / "modules.json").unlink(missing_ok=True)  # a stale one would mislead
        warnings.warn(
            f"pooling {encoder.pooling!r} has no sentence-transformers equivalent, so "
            f"the sentence-transformers layout was not written to {str(path)!r}; "
            "load this folder with SentenceEncoder.load",
            UserWarning,
            stacklevel=2,  # SentenceEncoder.save, as for load_pretrained's warning
        )
        return path
    size, mode = encoder.hidden_size, _ST_POOLING[encoder.pooling]
    limits = {"max_seq_length": encoder._max_length(None), "do_lower_case": False}
    _write_json(path / "sentence_bert_config.json", limits)
    pooling = {"word_embedding_dimension": size, "include_prompt": True}
    chosen = {"cls": "cls_token", "mean": "mean_tokens"}[mode]
    for key in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"):
        pooling[f"pooling_mode_{key}"] = key == chosen  # the legacy keys all read
    _write_json(path / "1_Pooling" / "config.json", pooling)
    modules = [("", "Transformer"), ("1_Pooling", "Pooling")]
    if encoder.mlp == "always":  # ST has no train-only modules: "train" = no head
        tanh = "torch.nn.modules.activation.Tanh"
        dense = {"in_features": size, "out_features": size, "bias": True}
        _write_json(
            path / "2_Dense" / "config.json", {**dense, "activation_function": tanh}
        )
        _save_linear(head[0], path / "2_Dense" / "model.safetensors", "linear.")
        modules.append(("2_Dense", "Dense"))
    kinds = [(sub, f"sentence_transformers.models.{kind}") for sub, kind in modules]
    entries = [
        {"idx": i, "name": str(i), "path": p, "type": t}
        for i, (p, t) in enumerate(kinds)
    ]
    _write_json(path / "modules.json", entries)
    return path
