"""Readers for STS pairs, NLI triplets and sentence corpora. See chapter 1.

Each reader looks in ``path=`` (a folder laid out like ``shared/data``, or one
file), then ``$MINICSE_DATA``, then the Hugging Face hub (offline, a miss fails
at once). ``.tsv`` files have a header and no quoting; ``.csv`` files use CSV's.
"""

from __future__ import annotations

import contextlib
import csv
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from .hub import hub_file, hub_sts, hub_sts_frame
from ._senteval import STS_SUBSETS as _SENTEVAL_SUBSETS
from ._senteval import senteval_frame
from .utils import check_choice, check_int, env_flag

__all__ = [
    "STS_TASKS",
    "STSB_LANGUAGES",
    "data_dir",
    "load_sts",
    "load_nli_triplets",
    "load_corpus",
]

STS_TASKS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")
_SPLITS = {task: ("test",) for task in STS_TASKS} | {"stsb": ("train", "dev", "test")}
# PhilipMay/stsb_multi_mt: STS-B dev/test machine-translated (train too on the hub)
STSB_LANGUAGES = ("de", "en", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh")
_CORPORA = {"wiki1m": ("corpus/wiki1m_head.txt", "wiki1m_for_simcse.txt")}


def data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The local data folder: ``path`` if given, else ``$MINICSE_DATA``, else None.

    Args:
        path: a folder laid out like ``shared/data``, or a single file.

    Returns:
        The existing path, or ``None`` for "no local data: use the hub". See chapter 1.

    Example:
        >>> data_dir(".") == Path(".")
        True
    """
    name, value = "path", path
    if path is None:
        name, value = "MINICSE_DATA", env_flag("MINICSE_DATA")
        if value is None:
            return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {type(value).__name__}")
    resolved = Path(value).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(f"{name}={str(value)!r} does not exist ({resolved})")
    return resolved


def _local_file(path, relative: str) -> Path | None:
    """``path`` when it is a file, else ``<data folder>/<relative>`` (None: no data)."""
    folder = data_dir(path)
    if folder is None or folder.is_file():
        return folder
    if not (folder / relative).is_file():
        source = "path" if path is not None else "MINICSE_DATA"
        raise FileNotFoundError(
            f"{folder / relative} does not exist: {source} is {str(folder)!r}, which "
            f"should be a data folder holding {relative} (the layout of shared/data)"
        )
    return folder / relative


def _checked(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` with float scores; raise on empty sentences or non-finite scores."""
    for column in frame.columns.drop("score", errors="ignore"):
        if len(empty := np.flatnonzero(frame[column].str.strip().eq(""))):
            raise ValueError(
                f"{source}: data row {empty[0] + 1} has an empty {column!r} "
                f"({len(empty)} empty in all); remove or fix those rows"
            )
    if "score" in frame:
        scores = pd.to_numeric(frame["score"], errors="coerce").astype(float)
        if len(bad := np.flatnonzero(~np.isfinite(scores))):
            raise ValueError(
                f"{source}: data row {bad[0] + 1} has score "
                f"{frame['score'].iloc[bad[0]]!r}, expected a finite number"
            )
        frame["score"] = scores
    return frame


@contextlib.contextmanager
def _open_text(file: Path) -> Iterator[TextIO]:
    """``file`` opened as UTF-8; a decoding error names the file and the fix."""
    try:
        with open(file, encoding="utf-8", newline="") as handle:
            yield handle
    except UnicodeDecodeError as err:
        byte = err.object[err.start : err.start + 1]
        raise ValueError(
            f"{file} is not UTF-8 text ({err.reason}: byte {byte!r}); save it as UTF-8 "
            "(an editor's 'save with encoding', or `iconv -f latin1 -t utf-8`)"
        ) from None


def _read_table(file: Path, columns: tuple[str, ...], max_rows: int | None, hub=False):
    """Checked ``columns`` of a ``.tsv``/``.csv``; ``hub``: skip rows with a blank."""
    is_csv = file.suffix.lower() == ".csv"
    quoting = csv.QUOTE_MINIMAL if is_csv else csv.QUOTE_NONE
    with _open_text(file) as handle:
        reader = csv.reader(handle, delimiter="," if is_csv else "\t", quoting=quoting)
        header = next(reader, None) or []
        if missing := [c for c in columns if c not in header]:
            raise ValueError(
                f"{file} lacks column(s) {missing}: its header is {header}, "
                f"expected {list(columns)}"
            )
        keep, rows, skipped = [header.index(c) for c in columns], [], 0
        for fields in reader:
            if max_rows is not None and len(rows) == max_rows:
                break
            if len(fields) != len(header):
                raise ValueError(
                    f"{file}, line {reader.line_num}: expected {len(header)} fields "
                    f"({header}), got {len(fields)}; TSV fields have no quotes or tabs"
                )
            row = [fields[i] for i in keep]
            if hub and not all(field.strip() for field in row):
                skipped += 1
                continue
            rows.append(row)
    if skipped:  # SimCSE's hub files have some
        warnings.warn(
            f"{file}: skipped {skipped} rows with an empty field", stacklevel=3
        )
    return _checked(pd.DataFrame(rows, columns=list(columns), dtype=object), str(file))


def _local_subsets(path, file: Path, task: str, split: str, rows: int) -> list[str]:
    """Subset names of a local STS file, from ``sts/meta``; a single set: ``task``."""
    if task not in _SENTEVAL_SUBSETS:
        return [task] * rows
    folder = data_dir(path)
    if folder.is_file():
        raise ValueError(
            f"{file} has no 'subset' column and is a single file, so the subsets of "
            f"{task} are unknown; pass the data folder (with sts/meta/) as path="
        )
    meta = _local_file(path, f"sts/meta/{task}.{split}.meta.tsv")
    return _read_table(meta, ("subset",), rows)["subset"].tolist()


def load_sts(
    task: str,
    split: str = "test",
    text: str = "raw",
    path: str | os.PathLike | None = None,
    max_rows: int | None = None,
    language: str | None = None,
    subsets: bool = False,
) -> pd.DataFrame:
    """Sentence pairs with gold similarity scores (0-5; SICK-R 1-5) for one STS task.

    Local: ``sts/<task>.<split>.tsv``, or ``sts/senteval/`` for SentEval's tokenized
    text (the SimCSE paper's). Hub: SimCSE's ``senteval.tar`` (``text="senteval"``
    and SICK-R), else ``mteb/<task>-sts`` and ``sentence-transformers/stsb`` (x 5).
    ``language``: the machine-translated STS-B, ``sts/stsb_multi_mt/<lang>.<split>.tsv``
    or the hub's ``PhilipMay/stsb_multi_mt`` (May, 2021).

    Args:
        task: one of ``STS_TASKS``.
        split: ``"test"``; STS-B also has ``"train"`` and ``"dev"``.
        text: ``"raw"`` (the organisers' text) or ``"senteval"``.
        path: a data folder or a ``.tsv`` file (read as given).
        max_rows: read only the first ``max_rows`` pairs (None: all).
        language: one of ``STSB_LANGUAGES`` (task ``"stsb"``, raw text); None: the
            original English STS-B.
        subsets: add a ``subset`` column: SentEval's subset of each pair in
            STS12-16 (from ``sts/meta/`` or the tar), the task name otherwise.

    Returns:
        Columns ``sentence1``, ``sentence2`` (str) and ``score`` (float), in file order
        (and ``subset`` when asked).

    Reference: Conneau & Kiela, 2018, arXiv:1803.05449 (SentEval). See chapter 1.

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
    check_choice(text, "text", ("raw", "senteval"))
    check_int(max_rows, "max_rows", optional=True)
    if language is not None:
        check_choice(language, "language", STSB_LANGUAGES)
        if task != "stsb" or text != "raw":
            raise ValueError(
                f"language={language!r} reads the multilingual STS-B: pass "
                f"task='stsb' and text='raw' (got task={task!r}, text={text!r})"
            )
    subdir = "sts/senteval" if text == "senteval" else "sts"
    name = f"{subdir}/{task}.{split}.tsv"
    if language is not None:
        name = f"sts/stsb_multi_mt/{language}.{split}.tsv"
    file = _local_file(path, name)
    columns = ("sentence1", "sentence2", "score")
    label = f"stsb-{language}" if language else task  # the subset of a single set
    if file is not None:
        if subsets and _has_column(file, "subset"):
            return _read_table(file, (*columns, "subset"), max_rows)
        frame = _read_table(file, columns, max_rows)
        if subsets:
            frame["subset"] = _local_subsets(path, file, label, split, len(frame))
        return frame
    if text == "senteval" or (task == "sickr" and language is None):
        tar = hub_file("senteval.tar", f"senteval.tar (STS task {task!r})")
        frame, source = senteval_frame(tar, task, split, text), "senteval.tar"
    else:
        frame = hub_sts_frame(task, split, language)
        source = hub_sts(task, split, language)[0]
        if subsets and task in _SENTEVAL_SUBSETS:
            raise ValueError(
                f"{source} does not name the subsets of {task}: pass text='senteval' "
                "(SentEval's files name them) or a data folder with sts/meta/"
            )
        frame["subset"] = label
    frame = frame.iloc[:max_rows].reset_index(drop=True)
    frame = _checked(frame, f"{source} ({task}, {split})")
    return frame if subsets else frame.drop(columns="subset")


def _has_column(file: Path, column: str) -> bool:
    """Whether the header line of a ``.tsv``/``.csv`` file names ``column``."""
    with _open_text(file) as handle:
        header = handle.readline().rstrip("\r\n")
    return column in header.split("," if file.suffix.lower() == ".csv" else "\t")


def load_nli_triplets(
    path: str | os.PathLike | None = None, max_rows: int | None = None
) -> pd.DataFrame:
    """NLI triplets for supervised SimCSE: premise, entailment, contradiction.

    Local: ``nli/triplets.tsv`` (5,881 SNLI dev+test triplets). Hub: SimCSE's
    ``nli_for_simcse.csv`` (275,601 SNLI+MNLI train triplets), less the rows with
    an empty field (a warning counts them); in a local file they are an error.

    Args:
        path: a data folder, or a ``.tsv`` (no quoting) / ``.csv`` file.
        max_rows: read only the first ``max_rows`` triplets (None: all).

    Returns:
        String columns ``sent0`` (anchor), ``sent1`` (positive), ``hard_neg``.

    Reference: Gao et al., 2021, arXiv:2104.08821, section 4. See chapter 7.

    Example:
        >>> import tempfile
        >>> tsv = Path(tempfile.mkdtemp()) / "nli.tsv"
        >>> _ = tsv.write_text("sent0\\tsent1\\thard_neg\\n"
        ...                    "A dog runs.\\tAn animal moves.\\tThey nap.\\n")
        >>> load_nli_triplets(tsv).loc[0, "hard_neg"]
        'They nap.'
    """
    check_int(max_rows, "max_rows", optional=True)
    columns = ("sent0", "sent1", "hard_neg")
    if local := _local_file(path, "nli/triplets.tsv"):
        return _read_table(local, columns, max_rows)
    file = hub_file("nli_for_simcse.csv", "NLI triplets")
    return _read_table(file, columns, max_rows, hub=True)


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
        why = "is a folder" if file.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"name={str(name)!r} looks like a file, but {file} {why}; pass an existing "
            "text file (one sentence per line) or a data folder as path=, or a "
            "corpus name such as 'wiki1m'"
        )
    if path is not None:
        raise ValueError(
            f"name={str(name)!r} is a file and path={str(path)!r} is given too; "
            "pass the file once, as path="
        )
    return file


def load_corpus(
    name: str | os.PathLike = "wiki1m",
    path: str | os.PathLike | None = None,
    max_rows: int | None = None,
) -> list[str]:
    """Unlabelled sentences, one per line, for unsupervised SimCSE.

    Local: ``corpus/wiki1m_head.txt`` (the first 11,914 lines of wiki1m). Hub:
    SimCSE's ``wiki1m_for_simcse.txt`` (1M Wikipedia sentences), less its blank
    lines (a warning counts them; in a local file they are an error). A ``name``
    that looks like a path (a path object, a ``/``, a suffix) is read like ``path=``.

    Args:
        name: ``"wiki1m"``, or a text file with one sentence per line.
        path: a data folder, or a text file with one sentence per line.
        max_rows: read only the first ``max_rows`` sentences (None: all).

    Returns:
        The sentences, without their line endings.

    Reference: Gao et al., 2021, arXiv:2104.08821, section 3. See chapter 6.

    Example:
        >>> import tempfile
        >>> txt = Path(tempfile.mkdtemp()) / "corpus.txt"
        >>> _ = txt.write_text("YMCA in South Australia\\nA second line.\\n")
        >>> load_corpus(path=txt, max_rows=1)
        ['YMCA in South Australia']
    """
    check_int(max_rows, "max_rows", optional=True)
    file, hub = _named_file(name, path), False
    if file is None:
        local, remote = _CORPORA[name]
        file = _local_file(path, local)
        if file is None:
            file, hub = hub_file(remote, f"corpus {name!r}"), True
    lines, blank = [], 0
    with _open_text(file) as handle:
        for line in handle:
            if max_rows is not None and len(lines) == max_rows:
                break
            if hub and not line.strip():
                blank += 1
                continue
            lines.append(line.rstrip("\r\n"))
    if blank:
        warnings.warn(f"{file}: skipped {blank} blank lines", stacklevel=2)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(f"{file}, line {number} is empty; remove empty lines")
    return lines
