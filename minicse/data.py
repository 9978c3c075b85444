"""Readers for STS pairs, NLI triplets and sentence corpora.

Every reader looks in (1) ``path=``: a data folder laid out like ``shared/data``
(``sts/``, ``sts/senteval/``, ``nli/``, ``corpus/``) or a single file; (2) the
folder in ``$MINICSE_DATA``; (3) the Hugging Face hub: raw STS12-16 text from
``mteb/sts12-sts`` ... ``mteb/sts16-sts``, raw STS-B from
``sentence-transformers/stsb``, and from ``princeton-nlp/datasets-for-simcse``
SentEval's files (``senteval.tar``: SICK-R and all ``text="senteval"``), NLI
triplets and wiki1m. ``.tsv`` files have a header row and
**no quoting** (sentences contain ``"``): they are read with ``csv.QUOTE_NONE``;
``.csv`` files (SimCSE's ``nli_for_simcse.csv``) with ordinary CSV quoting.
Offline, a hub miss fails at once with an error naming ``MINICSE_DATA`` and ``path=``.

Reference: Gao, Yao & Chen, 2021, arXiv:2104.08821 (SimCSE data); Conneau &
Kiela, 2018, arXiv:1803.05449 (SentEval preprocessing, ``text="senteval"``).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._hub import hub_offline, hub_status
from ._senteval import senteval_frame
from .utils import check_choice, check_int, env_flag

__all__ = ["STS_TASKS", "data_dir", "load_sts", "load_nli_triplets", "load_corpus"]

STS_TASKS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")
_SPLITS = {task: ("test",) for task in STS_TASKS} | {"stsb": ("train", "dev", "test")}
_TEXTS = ("raw", "senteval")
_CORPORA = {"wiki1m": ("corpus/wiki1m_head.txt", "wiki1m_for_simcse.txt")}
_SIMCSE_REPO = "princeton-nlp/datasets-for-simcse"


def _hub_sts(task: str, split: str) -> tuple[str, str, float]:
    """(repo id, hub split, factor to 0-5) of raw STS12-16 / STS-B on the hub."""
    if task == "stsb":  # scores in [0, 1]; validation = dev
        hub_split = {"dev": "validation"}.get(split, split)
        return "sentence-transformers/stsb", hub_split, 5.0
    return f"mteb/{task}-sts", split, 1.0  # scores already 0-5


def _existing(path: str | os.PathLike, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or path, got {type(path).__name__}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(f"{name}={str(path)!r} does not exist ({resolved})")
    return resolved


def data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The local data folder: ``path`` if given, else ``$MINICSE_DATA``, else None.

    ``None`` means "no local data: use the Hugging Face hub". An explicit
    ``path`` may also be a single file; it is returned as is. A path that does
    not exist raises ``FileNotFoundError`` naming it.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> data_dir(folder) == Path(folder)
        True
    """
    if path is not None:
        return _existing(path, "path")
    env = env_flag("MINICSE_DATA")
    return None if env is None else _existing(env, "MINICSE_DATA")


def _local_file(path, relative: str) -> Path | None:
    """``path`` itself when it is a file, else ``<data folder>/<relative>``."""
    folder = data_dir(path)
    if folder is None:
        return None
    if folder.is_file():
        return folder
    file = folder / relative
    if not file.is_file():
        source = "path" if path is not None else "MINICSE_DATA"
        raise FileNotFoundError(
            f"{file} does not exist: {source} is {str(folder)!r}, which should be a "
            f"data folder holding {relative} (the layout of shared/data)"
        )
    return file


def _read_table(file: Path, columns: tuple[str, ...], max_rows: int | None):
    """Columns of a headed ``.tsv`` (no quoting) or ``.csv`` file, as strings."""
    is_csv = file.suffix.lower() == ".csv"
    quoting = csv.QUOTE_MINIMAL if is_csv else csv.QUOTE_NONE
    with open(file, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="," if is_csv else "\t", quoting=quoting)
        header = next(reader, None) or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(
                f"{file} lacks column(s) {missing}: its header is {header}, "
                f"expected {list(columns)}"
            )
        keep = [header.index(c) for c in columns]
        rows = []
        for fields in reader:
            if max_rows is not None and len(rows) >= max_rows:
                break
            if len(fields) != len(header):
                raise ValueError(
                    f"{file}, line {reader.line_num}: expected {len(header)} fields "
                    f"({header}), got {len(fields)}; TSV files must not be quoted "
                    "and fields must not contain tabs"
                )
            rows.append([fields[i] for i in keep])
    return pd.DataFrame(rows, columns=list(columns), dtype=object)


def _check_table(df: pd.DataFrame, source: str, text_columns, score: bool) -> None:
    """Raise on empty sentences and (if ``score``) non-numeric or NaN scores."""
    for column in text_columns:
        empty = np.flatnonzero(df[column].str.strip().eq("").to_numpy())
        if len(empty):
            raise ValueError(
                f"{source}: data row {empty[0] + 1} has an empty {column!r} "
                f"({len(empty)} empty in all); remove or fix those rows"
            )
    if score:
        values = pd.to_numeric(df["score"], errors="coerce").astype(float)
        bad = np.flatnonzero(~np.isfinite(values.to_numpy()))
        if len(bad):
            raw = df["score"].iloc[bad[0]]
            raise ValueError(
                f"{source}: data row {bad[0] + 1} has score {raw!r}, "
                "expected a finite number"
            )
        df["score"] = values


def _hub_error(what: str, repo_id: str, why: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} is not available locally and {why}, so {repo_id!r} cannot be "
        "downloaded from the Hugging Face hub. Set MINICSE_DATA to a data folder "
        "(the layout of shared/data: sts/, nli/, corpus/) or pass path= (that "
        "folder or a file)."
    )


def _hub_file(filename: str, what: str) -> Path:
    """Download (or, offline, look up in the cache) a file of SimCSE's hub repo."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    why = hub_status()  # offline: look in the cache only, fail in milliseconds
    try:
        kwargs = {"repo_type": "dataset", "local_files_only": bool(why)}
        return Path(hf_hub_download(_SIMCSE_REPO, filename, **kwargs))
    except LocalEntryNotFoundError as err:
        raise _hub_error(what, _SIMCSE_REPO, why or "it is not cached") from err


def _in_datasets_cache(repo_id: str) -> bool:
    from huggingface_hub import constants

    root = env_flag("HF_DATASETS_CACHE") or os.path.join(constants.HF_HOME, "datasets")
    return (Path(root).expanduser() / repo_id.replace("/", "___")).is_dir()


def _hub_sts_frame(task: str, split: str) -> pd.DataFrame:
    repo_id, hub_split, factor = _hub_sts(task, split)
    what = f"STS task {task!r} (split {split!r})"
    why = hub_status()
    if why and not (hub_offline() and _in_datasets_cache(repo_id)):
        raise _hub_error(what, repo_id, why)
    try:
        from datasets import load_dataset  # optional dependency (minicse[hub])
    except ImportError as err:
        hint = "needs `pip install datasets`, or set MINICSE_DATA or pass path="
        raise ImportError(f"loading {what} from the hub {hint}") from err
    frame = load_dataset(repo_id, split=hub_split).to_pandas()
    frame = frame[["sentence1", "sentence2", "score"]].copy()
    frame["score"] = frame["score"].astype(float) * factor
    return frame


def load_sts(
    task: str,
    split: str = "test",
    text: str = "raw",
    path: str | os.PathLike | None = None,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Sentence pairs with gold similarity scores for one STS task.

    Local files: ``sts/<task>.<split>.tsv`` (``text="raw"``, the organisers'
    text) or ``sts/senteval/<task>.<split>.tsv`` (``text="senteval"``,
    SentEval's tokenized text the SimCSE paper evaluates on). Without local
    data, ``text="senteval"`` reads SentEval's own files from SimCSE's
    ``senteval.tar`` (hub: ``princeton-nlp/datasets-for-simcse``) and joins
    their whitespace tokens by one space, which is what SimCSE feeds the model;
    rows follow SentEval's subset order (STS14: images before OnWN). SICK-R
    always comes from that tar: its 4,927 test pairs, as in the paper
    (``text="raw"``: the file's text as is, Moses-tokenized, cased). Raw
    STS12-16 and STS-B come from ``mteb/sts1x-sts`` and
    ``sentence-transformers/stsb``, whose [0, 1] scores are multiplied by 5
    here, so every task is on the 0-5 scale (SICK-R: 1-5).

    Args:
        task: one of ``STS_TASKS``.
        split: ``"test"``; STS-B also has ``"train"`` and ``"dev"``.
        text: ``"raw"`` or ``"senteval"``.
        path: a data folder or a ``.tsv`` file (read as given).
        max_rows: read only the first ``max_rows`` pairs (None: all).

    Returns:
        A DataFrame with columns ``sentence1``, ``sentence2`` (str) and
        ``score`` (float), one row per pair, in file order.

    Example:
        >>> import tempfile
        >>> tsv = Path(tempfile.mkdtemp()) / "toy.tsv"
        >>> _ = tsv.write_text('sentence1\\tsentence2\\tscore\\n'
        ...                    'A "cat" sits.\\tA cat is sitting.\\t4.8\\n')
        >>> load_sts("stsb", path=tsv).to_dict("records")
        [{'sentence1': 'A "cat" sits.', 'sentence2': 'A cat is sitting.', 'score': 4.8}]
    """
    check_choice(task, "task", STS_TASKS)
    check_choice(split, f"split for task {task!r}", _SPLITS[task])
    check_choice(text, "text", _TEXTS)
    check_int(max_rows, "max_rows", optional=True)
    subdir = "sts/senteval" if text == "senteval" else "sts"
    file = _local_file(path, f"{subdir}/{task}.{split}.tsv")
    if file is not None:
        frame = _read_table(file, ("sentence1", "sentence2", "score"), max_rows)
        _check_table(frame, str(file), ("sentence1", "sentence2"), score=True)
        return frame
    if text == "senteval" or task == "sickr":
        tar = _hub_file("senteval.tar", f"senteval.tar (STS task {task!r})")
        frame, source = senteval_frame(tar, task, split, text), "senteval.tar"
    else:
        frame, source = _hub_sts_frame(task, split), _hub_sts(task, split)[0]
    frame = frame.iloc[:max_rows].reset_index(drop=True)
    _check_table(frame, f"{source} ({task}, {split})", ("sentence1", "sentence2"), True)
    return frame


def load_nli_triplets(
    path: str | os.PathLike | None = None, max_rows: int | None = None
) -> pd.DataFrame:
    """NLI triplets for supervised SimCSE: premise, entailment, contradiction.

    Local: ``nli/triplets.tsv`` (5,881 SNLI dev+test triplets). Hub: SimCSE's
    ``nli_for_simcse.csv`` (275,601 SNLI+MNLI train triplets).

    Args:
        path: a data folder, or a ``.tsv`` (no quoting) / ``.csv`` file.
        max_rows: read only the first ``max_rows`` triplets (None: all).

    Returns:
        A DataFrame with string columns ``sent0`` (anchor), ``sent1``
        (positive) and ``hard_neg`` (hard negative).

    Example:
        >>> import tempfile
        >>> tsv = Path(tempfile.mkdtemp()) / "nli.tsv"
        >>> _ = tsv.write_text("sent0\\tsent1\\thard_neg\\nA dog runs.\\t"
        ...                    "An animal moves.\\tA dog sleeps.\\n")
        >>> load_nli_triplets(tsv).loc[0, "hard_neg"]
        'A dog sleeps.'
    """
    check_int(max_rows, "max_rows", optional=True)
    file = _local_file(path, "nli/triplets.tsv")
    if file is None:
        file = _hub_file("nli_for_simcse.csv", "NLI triplets")
    columns = ("sent0", "sent1", "hard_neg")
    frame = _read_table(file, columns, max_rows)
    _check_table(frame, str(file), columns, score=False)
    return frame


def _named_file(name: str | os.PathLike, path: str | os.PathLike | None) -> Path | None:
    """The text file that ``name`` gives instead of a corpus name (None: a name)."""
    if isinstance(name, str) and name in _CORPORA:
        return None
    if not isinstance(name, os.PathLike) and not (  # a path separator or a suffix
        isinstance(name, str) and ("/" in name or "\\" in name or Path(name).suffix)
    ):
        check_choice(name, "corpus name", tuple(_CORPORA))
    file = Path(name).expanduser()
    if not file.is_file():
        what = "is a folder (pass data folders as path=)" if file.is_dir() else ""
        raise FileNotFoundError(
            f"name={str(name)!r} looks like a file, but {file} "
            f"{what or 'does not exist'}. To read a text file with one sentence "
            "per line, pass an existing one: load_corpus(path='corpus.txt') (or "
            "as name); for a known corpus, pass its name, e.g. 'wiki1m'"
        )
    if path is not None:
        raise ValueError(
            f"name={str(name)!r} is a file and path={str(path)!r} is given too; "
            "pass the file once, as path="
        )
    return file


def _read_lines(file: Path, max_rows: int | None) -> list[str]:
    """The first ``max_rows`` lines of ``file``, without line endings; none empty."""
    sentences = []
    with open(file, encoding="utf-8", newline="") as handle:
        for line_no, line in enumerate(handle, start=1):
            if max_rows is not None and len(sentences) >= max_rows:
                break
            sentence = line.rstrip("\r\n")
            if not sentence.strip():
                raise ValueError(f"{file}, line {line_no} is empty; remove empty lines")
            sentences.append(sentence)
    return sentences


def load_corpus(
    name: str | os.PathLike = "wiki1m",
    path: str | os.PathLike | None = None,
    max_rows: int | None = None,
) -> list[str]:
    """Unlabelled sentences, one per line, for unsupervised SimCSE.

    Local: ``corpus/wiki1m_head.txt`` (the first 11,914 lines of wiki1m).
    Hub: SimCSE's full ``wiki1m_for_simcse.txt`` (1M Wikipedia sentences).
    A ``name`` that is an existing file is read like ``path=`` (as
    ``train_unsup`` reads ``sentences=``); a ``name`` that looks like a path
    (a path object, a ``/`` or a suffix such as ``.txt``) but is no file
    raises ``FileNotFoundError`` naming it.

    Args:
        name: ``"wiki1m"``, or a text file with one sentence per line.
        path: a data folder, or a text file with one sentence per line.
        max_rows: read only the first ``max_rows`` lines (None: all).

    Returns:
        The sentences, without their line endings.

    Example:
        >>> import tempfile
        >>> txt = Path(tempfile.mkdtemp()) / "corpus.txt"
        >>> _ = txt.write_text("YMCA in South Australia\\nA second line.\\n")
        >>> load_corpus(path=txt, max_rows=1)
        ['YMCA in South Australia']
    """
    check_int(max_rows, "max_rows", optional=True)
    file = _named_file(name, path)
    if file is None:
        local, remote = _CORPORA[name]
        file = _local_file(path, local) or _hub_file(remote, f"corpus {name!r}")
    return _read_lines(file, max_rows)
