"""SentEval's STS and SICK files, read from SimCSE's ``senteval.tar``.

Private helper of :mod:`minicse.data`. SimCSE's evaluation data is
``senteval.tar`` in the hub dataset ``princeton-nlp/datasets-for-simcse``
(``SentEval/data/downstream/download_dataset.sh`` untars it into
``SentEval/data/downstream/``). The tar is uncompressed and holds SentEval's
own files, in SentEval's layout below ``downstream/``:

* ``STS/STS1x-en-test/STS.input.<subset>.txt``: one tab-separated sentence
  pair per line; ``STS.gs.<subset>.txt``: the gold score of each line, where an
  empty line means "no score" and drops the pair. Subsets in SentEval's order.
* ``STS/STSBenchmark/sts-<split>.csv``: tab-separated, no header, no quoting;
  0-based column 4 is the score, columns 5 and 6 the sentences.
* ``SICK/SICK_test_annotated.txt``: a header line, then the sentences in
  columns 1 and 2 and the relatedness score in column 3.

Members are found below any leading folders (``STS/...``, ``./STS/...`` or
``downstream/STS/...``). Only the needed members are read: a tar's member index
is built once per file (path, size, modification time) and cached, after which
each member costs one seek and one read. Lines end at ``\\n``, ``\\r\\n`` or
``\\r``, as with SentEval's ``io.open``.

Reference: Conneau & Kiela, 2018, arXiv:1803.05449 (SentEval, ``senteval/sts.py``
and ``senteval/sick.py`` read these files).
"""

from __future__ import annotations

import functools
import tarfile
from pathlib import Path

import pandas as pd

__all__ = ["senteval_pairs", "senteval_frame"]

# SentEval's subset order (senteval/sts.py); STS13 has no SMT (LDC license).
STS_SUBSETS = {
    "sts12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "sts13": ("FNWN", "headlines", "OnWN"),
    "sts14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "sts15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "sts16": (
        "answer-answer",
        "headlines",
        "plagiarism",
        "postediting",
        "question-question",
    ),
}
_ROOTS = ("STS", "SICK")  # SentEval's folders below downstream/

Pair = tuple[str, str, str]  # sentence1, sentence2, score (as written)


def _key(name: str) -> str | None:
    """A member's name from its ``STS/`` or ``SICK/`` folder on (None: elsewhere)."""
    parts = name.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in _ROOTS:
            return "/".join(parts[i:])
    return None


@functools.lru_cache(maxsize=4)
def _index(path: str, size: int, mtime_ns: int) -> dict[str, tuple[int, int]]:
    """{member key: (offset of its data, size)} of the STS/SICK files in a tar."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            files = [m for m in tar if m.isfile()]
    except tarfile.ReadError as err:
        raise ValueError(f"{path} is not an uncompressed tar file: {err}") from err
    keys = ((_key(m.name), m) for m in files)  # a repeated name: the last one wins
    return {key: (m.offset_data, m.size) for key, m in keys if key is not None}


def _lines(tar: Path, member: str) -> list[str]:
    """The lines of ``member`` (a key such as ``SICK/SICK_train.txt``) of ``tar``."""
    stat = tar.stat()
    members = _index(str(tar), stat.st_size, stat.st_mtime_ns)
    if member not in members:
        raise FileNotFoundError(
            f"{tar} has no member downstream/{member}, which SentEval reads; the "
            "download is incomplete or not SimCSE's senteval.tar: delete it to "
            "download it again, or set MINICSE_DATA / pass path= to a data folder"
        )
    offset, size = members[member]
    with open(tar, "rb") as handle:
        handle.seek(offset)
        text = handle.read(size).decode("utf-8")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _fields(line: str, columns: tuple[int, ...], where: str) -> tuple[str, ...]:
    fields = line.split("\t")
    if len(fields) <= max(columns):
        raise ValueError(
            f"{where}: expected at least {max(columns) + 1} tab-separated fields, "
            f"got {len(fields)}"
        )
    return tuple(fields[c] for c in columns)


def _sts_year(tar: Path, task: str) -> list[Pair]:
    """STS12-16: every subset's scored pairs, subsets in SentEval's order."""
    folder = f"STS/{task.upper()}-en-test"
    pairs = []
    for subset in STS_SUBSETS[task]:
        inputs = f"{folder}/STS.input.{subset}.txt"
        gold = f"{folder}/STS.gs.{subset}.txt"
        lines, scores = _lines(tar, inputs), _lines(tar, gold)
        if len(lines) != len(scores):
            raise ValueError(
                f"{tar}: {inputs} has {len(lines)} lines but {gold} has "
                f"{len(scores)}; line i of one must score line i of the other"
            )
        for number, (line, score) in enumerate(zip(lines, scores, strict=True), 1):
            where = f"{tar}: {inputs}, line {number}"
            first, second = _fields(line, (0, 1), where)
            if score.strip():  # an empty gold line: no score, pair left out
                pairs.append((first, second, score))
    return pairs


def _table(tar: Path, member: str, columns: tuple[int, ...], header: bool) -> list:
    """(sentence1, sentence2, score) from the given columns of a tab-separated file."""
    lines = _lines(tar, member)[1 if header else 0 :]
    start = 2 if header else 1
    return [
        _fields(line, columns, f"{tar}: {member}, line {number}")
        for number, line in enumerate(lines, start=start)
    ]


def senteval_pairs(tar: Path, task: str, split: str) -> list[Pair]:
    """(sentence1, sentence2, score) of an STS task, as SentEval reads them.

    Args:
        tar: SimCSE's ``senteval.tar``.
        task: ``"sts12"`` ... ``"sts16"``, ``"stsb"`` or ``"sickr"``.
        split: ``"test"``; STS-B also ``"train"`` and ``"dev"``.

    Returns:
        The pairs in file order, text and scores as written in the files.
    """
    if task in STS_SUBSETS:
        return _sts_year(tar, task)
    if task == "stsb":
        return _table(tar, f"STS/STSBenchmark/sts-{split}.csv", (5, 6, 4), False)
    if task == "sickr" and split == "test":
        return _table(tar, "SICK/SICK_test_annotated.txt", (1, 2, 3), True)
    raise ValueError(f"senteval.tar has no split {split!r} of task {task!r}")


def senteval_frame(tar: Path, task: str, split: str, text: str) -> pd.DataFrame:
    """``senteval_pairs`` as a DataFrame: ``sentence1``, ``sentence2``, ``score``.

    ``text="senteval"`` splits each sentence on whitespace and joins the tokens
    by one space (SentEval's ``s.split()``, then SimCSE's batcher's
    ``" ".join``); ``text="raw"`` keeps the files' text as is. Values are str.
    """
    columns = ["sentence1", "sentence2", "score"]
    frame = pd.DataFrame(senteval_pairs(tar, task, split), columns=columns)
    if text == "senteval":
        for column in columns[:2]:
            frame[column] = [" ".join(s.split()) for s in frame[column]]
    return frame.astype(object)
