"""What a training run reads, checked before anything loads: its config with the call's
overrides, its rows (sentences or triplets) and the dev pairs it selects on. See
chapters 6, 7 and 10."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from .config import TrainConfig, _build
from .data import _checked, load_corpus, load_nli_triplets, load_sts
from .utils import check_texts

_PAIR = ["sentence1", "sentence2", "score"]
_TRIPLET = ("sent0", "sent1", "hard_neg")


def read_inputs(objective: str, data: Any, config: Any, overrides: dict) -> tuple:
    """``(rows, cfg, selected_on, dev)`` of a ``train_unsup``/``train_sup`` call.

    ``rows``: ``(sentence,)`` or ``(sent0, sent1[, hard_neg])`` tuples; ``dev``: the
    lists ``(sentence1, sentence2, score)``, or None with ``cfg.eval_steps=None``;
    ``selected_on``: the dev set's name, size and digest, saved with the model.
    """
    pairs = overrides.get("dev")  # scored pairs stay out of the config
    if pairs is None or isinstance(pairs, (str, os.PathLike)):
        pairs = None
    else:
        overrides = {k: v for k, v in overrides.items() if k != "dev"}
    if config is None:
        cfg = getattr(TrainConfig, objective)(**overrides)
    elif isinstance(config, TrainConfig):
        values = {**asdict(config), **overrides, "objective": objective}
        cfg = _build(TrainConfig, values)
    else:
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    rows = _sentences(data) if objective == "unsup" else _triplets(data)
    source = cfg.dev if pairs is None else pairs
    if source is None or not cfg.eval_steps:
        cfg, selected_on, dev = replace(cfg, eval_steps=None), {"dev": None}, None
    else:
        selected_on, dev = _dev_pairs(source, cfg.dev_rows)
    if cfg.batch_size > len(rows):
        raise ValueError(
            f"batch_size={cfg.batch_size} is larger than the {len(rows)} training "
            "rows; lower batch_size or pass more data"
        )
    return rows, cfg, selected_on, dev


def _named(data: Any, what: str, name: str, read: Any, forms: str) -> Any:
    """``data`` itself, or what ``read`` returns for the dataset ``name`` or a file."""
    if not isinstance(data, (str, os.PathLike)):
        return data
    given = str(data)
    if given != name and not Path(given).is_file():
        raise ValueError(
            f"{what}={given!r} is neither {name!r} nor a file; pass {forms}"
        )
    return read(None if given == name else given)


def _sentences(sentences: Any) -> list[tuple[str]]:
    """Rows ``(sentence,)`` from strings, ``"wiki1m"`` or a text file."""
    forms = "a list of strings, 'wiki1m' or a text file with one per line"
    read = partial(load_corpus, "wiki1m")  # a file: load_corpus(path=...)
    sentences = _named(sentences, "sentences", "wiki1m", read, forms)
    return [(text,) for text in check_texts(sentences, "sentences")]


def _triplets(triplets: Any) -> list[tuple[str, ...]]:
    """Rows ``(sent0, sent1[, hard_neg])`` from rows, a DataFrame, "nli" or a file."""
    forms = "rows (sent0, sent1, hard_neg), a DataFrame, 'nli' or a .tsv/.csv file"
    triplets = _named(triplets, "triplets", "nli", load_nli_triplets, forms)
    if isinstance(triplets, pd.DataFrame):
        columns = [c for c in _TRIPLET if c in triplets.columns]
        if columns[:2] != ["sent0", "sent1"]:
            raise ValueError(
                "a triplets DataFrame needs columns sent0, sent1 (and optionally "
                f"hard_neg), got {list(triplets.columns)}"
            )
        triplets = triplets[columns].itertuples(index=False, name=None)
    if isinstance(triplets, (dict, bytes)) or not isinstance(triplets, Iterable):
        raise TypeError(f"triplets must be rows of strings, got {type(triplets)}")
    rows = [tuple(row) if isinstance(row, (tuple, list)) else row for row in triplets]
    if not rows:
        raise ValueError("triplets is empty; pass at least one (sent0, sent1) row")
    width = len(rows[0]) if isinstance(rows[0], tuple) else 0
    for i, row in enumerate(rows):
        if not isinstance(row, tuple) or len(row) not in (2, 3) or len(row) != width:
            raise ValueError(
                f"triplets[{i}] must have {width if width in (2, 3) else '2 or 3'} "
                f"fields (sent0, sent1[, hard_neg]) like the first row: {row!r}"
            )
        for name, text in zip(_TRIPLET, row, strict=False):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f"triplets[{i}] field {name!r} is missing or empty ({text!r}); "
                    "drop incomplete rows first"
                )
    return rows


def _dev_pairs(source: Any, rows: int | None) -> tuple[dict, tuple]:
    """``selected_on`` and ``(s1, s2, scores)`` of the dev pairs ``source`` gives."""
    try:
        frame = _dev_frame(source)
        if len(frame) < 20 or frame.score.nunique() < 2:
            raise ValueError(
                f"dev has {len(frame)} pairs with {frame.score.nunique()} distinct "
                "score(s); a Spearman to select on needs at least 20 pairs with "
                "varied scores"
            )
    except ValueError as err:
        raise ValueError(
            f"{err} (dev= sets the model-selection pairs: 'stsb', 'stsb-de', a "
            ".tsv/.csv file or a DataFrame with sentence1, sentence2, score; "
            "dev=None trains without selection)"
        ) from None
    frame = frame.iloc[:rows]
    dev = tuple(frame[c].tolist() for c in _PAIR)
    digest = hashlib.sha256(repr(dev).encode("utf-8")).hexdigest()[:16]
    name = source if isinstance(source, str) else "pairs"
    return {"dev": name, "pairs": len(frame), "sha256": digest}, dev


def _dev_frame(dev: Any) -> pd.DataFrame:
    """The pairs ``dev`` names or holds, read and checked as ``load_sts`` does."""
    if isinstance(dev, str) and dev.lower().endswith((".tsv", ".csv")):
        if not Path(dev).is_file():
            raise FileNotFoundError(f"dev={dev!r}: no such .tsv/.csv file")
        return load_sts("stsb", "dev", path=dev)
    if isinstance(dev, str):  # "stsb" or "stsb-<language>", as TrainConfig checked
        try:
            return load_sts("stsb", "dev", language=dev[5:] or None)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{err}\n(dev={dev!r} is needed for model selection every "
                "eval_steps; pass dev=None or eval_steps=None to train without it)"
            ) from err
    if not isinstance(dev, pd.DataFrame):
        if isinstance(dev, (dict, bytes)) or not isinstance(dev, Iterable):
            raise TypeError(f"dev must be scored pairs, got {type(dev).__name__}")
        dev = pd.DataFrame([tuple(row) for row in dev], columns=_PAIR)
    if missing := [c for c in _PAIR if c not in dev.columns]:
        raise ValueError(f"dev lacks column(s) {missing}: got {list(dev.columns)}")
    frame = dev[_PAIR].reset_index(drop=True)
    for column in _PAIR[:2]:
        check_texts(frame[column], f"dev {column}")
    return _checked(frame.copy(), "dev")
