"""SentEval's STS and SICK-R test files, read from SimCSE's ``senteval.tar``.

Private helper of :mod:`minicse.data`. The tar (hub dataset
``princeton-nlp/datasets-for-simcse``; plain or compressed, auto-detected) holds
SentEval's ``downstream/`` layout, below any leading folders. Its ``STS/`` and ``SICK/``
files are read in one pass and cached per tar (path, size, modification time).

Reference: Conneau & Kiela, 2018, arXiv:1803.05449 (``senteval/sts.py``, ``sick.py``).
"""

from __future__ import annotations

import functools
import io
import re
import tarfile
from pathlib import Path

import pandas as pd

__all__ = ["senteval_pairs", "senteval_frame", "senteval_meta"]

# SentEval's subset order (senteval/sts.py); STS13 has no SMT (LDC license).
STS_SUBSETS = {
    "sts12": "MSRpar MSRvid SMTeuroparl surprise.OnWN surprise.SMTnews".split(),
    "sts13": "FNWN headlines OnWN".split(),
    "sts14": "deft-forum deft-news headlines images OnWN tweet-news".split(),
    "sts15": "answers-forums answers-students belief headlines images".split(),
    "sts16": "answer-answer headlines plagiarism postediting question-question".split(),
}
# task -> (member, its sentence1, sentence2 and score columns, its header lines)
_TABLES = {
    "stsb": ("STS/STSBenchmark/sts-{split}.csv", (5, 6, 4), 0),
    "sickr": ("SICK/SICK_test_annotated.txt", (1, 2, 3), 1),
}
# the other columns of those rows (the data folder's sts/meta/ files)
_META = {
    "stsb": {"genre": 0, "filename": 1, "year": 2, "sid": 3},
    "sickr": {"pair_ID": 0, "entailment_judgment": 4},
}
_KEY = re.compile(r"(?:^|/)((?:STS|SICK)/.+)$")  # the name from SentEval's folder on


@functools.lru_cache(maxsize=4)
def _members(path: str, size: int, mtime_ns: int) -> dict[str, bytes]:
    """{name from ``STS/`` or ``SICK/`` on: content} of a tar (a repeat wins)."""
    try:
        with tarfile.open(path, mode="r:*") as tar:  # compression detected
            found = ((_KEY.search(m.name), m) for m in tar if m.isfile())
            return {key[1]: tar.extractfile(m).read() for key, m in found if key}
    except tarfile.ReadError as err:
        raise ValueError(
            f"{path} is not a tar file (plain, gzip, bz2 or xz): delete it to "
            "download it again"
        ) from err


def _lines(tar: Path, member: str) -> list[str]:
    """The lines of ``member`` (e.g. ``SICK/SICK_train.txt``), as ``io.open`` splits."""
    stat = tar.stat()
    members = _members(str(tar), stat.st_size, stat.st_mtime_ns)
    if member not in members:
        raise FileNotFoundError(
            f"{tar} has no member downstream/{member}, which SentEval reads; the "
            "download is incomplete or not SimCSE's senteval.tar: delete it to "
            "download it again, or set MINICSE_DATA / pass path= to a data folder"
        )
    text = io.TextIOWrapper(io.BytesIO(members[member]), "utf-8")  # \r\n, \r: \n
    return [line.rstrip("\n") for line in text]


def _fields(lines: list[str], columns: tuple[int, ...], where: str, start: int):
    """The tab-separated ``columns`` of each line (lines numbered from ``start``)."""
    rows = [line.split("\t") for line in lines]
    for number, fields in enumerate(rows, start):
        if len(fields) <= max(columns):
            raise ValueError(
                f"{where}, line {number}: expected at least {max(columns) + 1} "
                f"tab-separated fields, got {len(fields)}"
            )
    return [tuple(fields[c] for c in columns) for fields in rows]


def senteval_pairs(tar: Path, task: str, split: str) -> list[tuple[str, str, str, str]]:
    """(sentence1, sentence2, score, subset) of an STS task, as SentEval reads them.

    STS12-16 pool their subsets in SentEval's order and drop pairs whose gold
    line is empty (no score).

    Args:
        tar: SimCSE's ``senteval.tar``.
        task: ``"sts12"`` ... ``"sts16"``, ``"stsb"`` or ``"sickr"``.
        split: ``"test"``; STS-B also ``"train"`` and ``"dev"``.

    Returns:
        The pairs in file order, text and scores as written in the files; the
        subset is SentEval's name (STS12-16) or the task (STS-B, SICK-R).
    """
    if task in STS_SUBSETS:
        pairs, folder = [], f"STS/{task.upper()}-en-test"
        for subset in STS_SUBSETS[task]:
            inputs = f"{folder}/STS.input.{subset}.txt"
            gold = f"{folder}/STS.gs.{subset}.txt"
            lines, scores = _lines(tar, inputs), _lines(tar, gold)
            if len(lines) != len(scores):
                raise ValueError(
                    f"{tar}: {inputs} has {len(lines)} lines but {gold} has "
                    f"{len(scores)}; line i of one must score line i of the other"
                )
            rows = _fields(lines, (0, 1), f"{tar}: {inputs}", 1)
            pairs += [
                (a, b, s, subset)
                for (a, b), s in zip(rows, scores, strict=True)
                if s.strip()
            ]
        return pairs
    if task not in _TABLES or (task == "sickr" and split != "test"):
        raise ValueError(f"senteval.tar has no split {split!r} of task {task!r}")
    template, columns, header = _TABLES[task]
    member = template.format(split=split)
    lines = _lines(tar, member)[header:]
    rows = _fields(lines, columns, f"{tar}: {member}", header + 1)
    return [(*row, task) for row in rows]


def senteval_frame(tar: Path, task: str, split: str, text: str) -> pd.DataFrame:
    """``senteval_pairs`` as a str DataFrame: ``sentence1 sentence2 score subset``.

    ``text="senteval"`` joins each sentence's whitespace tokens by one space
    (SentEval's ``s.split()``, then SimCSE's ``" ".join``); ``"raw"`` keeps them.
    """
    columns = ["sentence1", "sentence2", "score", "subset"]
    frame = pd.DataFrame(senteval_pairs(tar, task, split), columns=columns)
    if text == "senteval":
        for column in columns[:2]:
            frame[column] = [" ".join(s.split()) for s in frame[column]]
    return frame.astype(object)


def senteval_meta(tar: Path, task: str, split: str) -> pd.DataFrame:
    """STS-B's genre, filename, year, sid or SICK-R's pair_ID, label, per pair."""
    template, _, header = _TABLES[task]
    member = template.format(split=split)
    names, columns = zip(*_META[task].items(), strict=True)
    rows = _fields(
        _lines(tar, member)[header:], columns, f"{tar}: {member}", header + 1
    )
    return pd.DataFrame(rows, columns=list(names), dtype=object)
