"""Readers for STS pairs, NLI triplets and corpora, and the data folder's writer. Each
reader looks in ``path=`` (a folder laid out as ``shared/data``, or a file), then
``$MINICSE_DATA``, then the Hugging Face hub (offline, a miss fails at once). ``.tsv``
files have a header and no quoting; ``.csv`` files use CSV's. See chapter 1."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import re
import tarfile
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from .hub import hub_error, hub_file, hub_offline, hub_status, hub_sts
from .utils import check_choice, check_int, env_flag

STS_TASKS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")
_SPLITS = {task: ("test",) for task in STS_TASKS} | {"stsb": ("train", "dev", "test")}
STSB_LANGUAGES = ("de", "en", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh")
# SentEval's subset order (senteval/sts.py); STS13 has no SMT (LDC license)
_SUBSETS = {
    "sts12": "MSRpar MSRvid SMTeuroparl surprise.OnWN surprise.SMTnews".split(),
    "sts13": "FNWN headlines OnWN".split(),
    "sts14": "deft-forum deft-news headlines images OnWN tweet-news".split(),
    "sts15": "answers-forums answers-students belief headlines images".split(),
    "sts16": "answer-answer headlines plagiarism postediting question-question".split(),
}
_PAIR = ["sentence1", "sentence2", "score"]
# senteval.tar: task -> (member, header lines, fields of _PAIR then of _META's columns)
_TABLES = {
    "stsb": ("STS/STSBenchmark/sts-{split}.csv", 0, (5, 6, 4, 0, 1, 2, 3)),
    "sickr": ("SICK/SICK_test_annotated.txt", 1, (1, 2, 3, 0, 4)),
}
_META = {"stsb": "genre filename year sid", "sickr": "pair_ID entailment_judgment"}
_KEY = re.compile(r"(?:^|/)((?:STS|SICK)/.+)$")  # a tar member's name from STS/ on
_REFETCH = "delete it to download it again"


def data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The local data (folder or file): ``path``, else ``$MINICSE_DATA``, else None."""
    value = path if path is not None else env_flag("MINICSE_DATA")
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {type(value).__name__}")
    if not (resolved := Path(value).expanduser()).exists():
        name = "path" if path is not None else "MINICSE_DATA"
        raise FileNotFoundError(f"{name}={str(value)!r} does not exist ({resolved})")
    return resolved


def _local_file(path, relative: str) -> Path | None:
    """``path`` when it is a file, else ``<data folder>/<relative>`` (None: no data)."""
    if (folder := data_dir(path)) is None or folder.is_file():
        return folder
    if not (folder / relative).is_file():
        source = "path" if path is not None else "MINICSE_DATA"
        fix = f"{source} should be a data folder (shared/data's layout) or a file"
        raise FileNotFoundError(f"{folder / relative} does not exist: {fix}")
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
            got = f"has score {frame['score'].iloc[bad[0]]!r}, not a finite number"
            raise ValueError(f"{source}: data row {bad[0] + 1} {got}")
        frame["score"] = scores
    return frame


def _lines(file: Path):
    """The lines of UTF-8 ``file``; a decoding error names the file and the fix."""
    try:
        with open(file, encoding="utf-8", newline="") as handle:
            yield from handle
    except UnicodeDecodeError as err:
        fix = "save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        raise ValueError(f"{file} is not UTF-8 text ({err}); {fix}") from None


def _read_table(file: Path, columns: list, max_rows, hub=False, extra=None):
    """Checked ``columns`` (``extra`` too, if there); ``hub``: skip blank rows."""
    is_csv = file.suffix.lower() == ".csv"
    sep, quoting = (",", csv.QUOTE_MINIMAL) if is_csv else ("\t", csv.QUOTE_NONE)
    reader = csv.reader(_lines(file), delimiter=sep, quoting=quoting)
    header = next(reader, [])
    if missing := [c for c in columns if c not in header]:
        raise ValueError(f"{file} lacks column(s) {missing}; header: {header}")
    columns = [*columns, extra] if extra in header else columns
    keep, rows, skipped = [header.index(c) for c in columns], [], 0
    for fields in reader:
        if len(rows) == max_rows:
            break
        if len(fields) != len(header):
            raise ValueError(
                f"{file}, line {reader.line_num}: expected {len(header)} fields "
                f"({header}), got {len(fields)}; TSV fields have no quotes or tabs"
            )
        row = [fields[i] for i in keep]
        if hub and not all(field.strip() for field in row):
            skipped += 1  # SimCSE's hub files have some
        else:
            rows.append(row)
    if skipped:
        warnings.warn(f"{file}: skipped {skipped} rows with empty fields", stacklevel=3)
    return _checked(pd.DataFrame(rows, columns=columns, dtype=object), str(file))


def load_sts(
    task: str,
    split: str = "test",
    text: str = "raw",
    path: str | os.PathLike | None = None,
    max_rows: int | None = None,
    language: str | None = None,
    subsets: bool = False,
) -> pd.DataFrame:
    """``sentence1``, ``sentence2`` and a gold ``score`` (0-5; SICK-R 1-5) per pair.

    ``split``: ``"test"`` (STS-B also ``"train"``, ``"dev"``); ``text``: ``"raw"`` or
    ``"senteval"`` (SentEval's tokens, the SimCSE paper's); ``language``: STS-B
    machine-translated; ``subsets``: add SentEval's ``subset`` of each pair. Files:
    ``sts/[senteval/]<task>.<split>.tsv``, ``sts/stsb_multi_mt/<language>.<split>.tsv``.
    Conneau & Kiela, 2018, arXiv:1803.05449 (SentEval). See chapter 1.
    """
    check_choice(task, "task", STS_TASKS)
    check_choice(split, f"split for task {task!r}", _SPLITS[task])
    check_choice(text, "text", ("raw", "senteval"))
    check_int(max_rows, "max_rows", optional=True)
    name = f"sts/{'senteval/' * (text == 'senteval')}{task}.{split}.tsv"
    if language is not None:
        check_choice(language, "language", STSB_LANGUAGES)
        if task != "stsb" or text != "raw":
            raise ValueError(f"language={language!r}: pass task='stsb' and text='raw'")
        name = f"sts/stsb_multi_mt/{language}.{split}.tsv"
    label = f"stsb-{language}" if language else task  # the subset of a single set
    columns = [*_PAIR, "subset"] if subsets else _PAIR
    if (file := _local_file(path, name)) is None:
        frame, source = _hub_pairs(task, split, text, language, label, subsets)
        frame = frame[columns].iloc[:max_rows].reset_index(drop=True)
        return _checked(frame, f"{source} ({task}, {split})")
    frame = _read_table(file, _PAIR, max_rows, extra="subset" if subsets else None)
    if subsets and "subset" not in frame:
        frame["subset"] = label
        if label in _SUBSETS:  # named in the data folder's sts/meta/
            if data_dir(path).is_file():
                raise ValueError(
                    f"{file} has no 'subset' column, so the subsets of "
                    f"{task} are unknown: pass the data folder as path="
                )
            meta = _local_file(path, f"sts/meta/{task}.{split}.meta.tsv")
            frame["subset"] = _read_table(meta, ["subset"], len(frame)).subset.values
    return frame


def _hub_pairs(task, split, text, language, label, subsets) -> tuple:
    """``load_sts``'s str frame from the hub, with a subset column, and its source."""
    if text == "senteval" or task == "sickr":
        tar = hub_file("senteval.tar", f"senteval.tar (STS task {task!r})")
        return _senteval_frame(tar, task, split, text), "senteval.tar"
    repo_id, config, hub_split, score, factor = hub_sts(task, split, language)
    if subsets and task in _SUBSETS:
        fix = "pass text='senteval' or a data folder with sts/meta/"
        raise ValueError(f"{repo_id} does not name the subsets of {task}: {fix}")
    from huggingface_hub import constants

    what, why = f"STS task {task!r} (split {split!r})", hub_status()
    cache = env_flag("HF_DATASETS_CACHE") or os.path.join(constants.HF_HOME, "datasets")
    cached = (Path(cache).expanduser() / repo_id.replace("/", "___")).is_dir()
    if why and not (hub_offline() and cached):
        raise hub_error(what, repo_id, why)
    try:
        from datasets import load_dataset  # optional dependency (minicse[hub])
    except ImportError as err:
        hint = "needs `pip install datasets`, or set MINICSE_DATA or pass path="
        raise ImportError(f"loading {what} from the hub {hint}") from err
    frame = load_dataset(repo_id, config, split=hub_split).to_pandas()
    texts = frame[_PAIR[:2]].astype(object)  # as local files give
    return texts.assign(score=frame[score] * factor, subset=label), repo_id


def load_nli_triplets(
    path: str | os.PathLike | None = None, max_rows: int | None = None
) -> pd.DataFrame:
    """NLI triplets for supervised SimCSE: ``sent0``, ``sent1``, ``hard_neg`` (str).

    Local: ``nli/triplets.tsv`` (5,881 SNLI dev+test triplets) or a .tsv/.csv file.
    Hub: SimCSE's ``nli_for_simcse.csv`` (275,601 SNLI+MNLI train triplets), less
    the rows with an empty field (a warning counts them; locally they are an error).
    Gao et al., 2021, arXiv:2104.08821, section 4. See chapter 7.
    """
    check_int(max_rows, "max_rows", optional=True)
    if hub := (file := _local_file(path, "nli/triplets.tsv")) is None:
        file = hub_file("nli_for_simcse.csv", "NLI triplets")
    return _read_table(file, ["sent0", "sent1", "hard_neg"], max_rows, hub)


def load_corpus(
    name: str = "wiki1m",
    path: str | os.PathLike | None = None,
    max_rows: int | None = None,
) -> list[str]:
    """Unlabelled sentences, one a line (without its ending), for unsupervised SimCSE.

    Local: ``corpus/wiki1m_head.txt`` (wiki1m's first 11,914 lines), or a text file
    as ``path=``. Hub: SimCSE's ``wiki1m_for_simcse.txt`` (1M sentences),
    less its blank lines (a warning counts them; locally they are an error).
    Gao et al., 2021, arXiv:2104.08821, section 3. See chapter 6.
    """
    check_int(max_rows, "max_rows", optional=True)
    check_choice(name, "corpus name (a text file goes in path=)", ("wiki1m",))
    if hub := (file := _local_file(path, "corpus/wiki1m_head.txt")) is None:
        file = hub_file("wiki1m_for_simcse.txt", "corpus 'wiki1m'")
    lines, blank = [], 0
    for number, line in enumerate(_lines(file), start=1):
        if len(lines) == max_rows:
            break
        if line.strip():
            lines.append(line.rstrip("\r\n"))
        elif hub:
            blank += 1
        else:
            raise ValueError(f"{file}, line {number} is empty; remove empty lines")
    if blank:
        warnings.warn(f"{file}: skipped {blank} blank lines", stacklevel=2)
    return lines


@functools.lru_cache(maxsize=4)
def _members(path: str, size: int, mtime_ns: int) -> dict[str, bytes]:
    """{name from ``STS/``/``SICK/`` on: content} of a (compressed) tar, one pass."""
    try:
        with tarfile.open(path, mode="r:*") as tar:  # compression detected
            found = ((_KEY.search(m.name), m) for m in tar if m.isfile())
            return {key[1]: tar.extractfile(m).read() for key, m in found if key}
    except tarfile.ReadError as err:
        raise ValueError(f"{path} is not a tar file: {_REFETCH}") from err


def _fields(tar: Path, member: str, columns: tuple, header: int = 0) -> list[tuple]:
    """The tab-separated ``columns`` of each line of ``member`` after its header."""
    stat = tar.stat()  # the cache key: a new download is read again
    members = _members(str(tar), stat.st_size, stat.st_mtime_ns)
    if member not in members:
        fix = f"{_REFETCH}, or set MINICSE_DATA"
        raise FileNotFoundError(f"{tar} has no member downstream/{member}: {fix}")
    text = io.TextIOWrapper(io.BytesIO(members[member]), "utf-8")  # \r\n, \r: \n
    rows = [line.rstrip("\n").split("\t") for line in text][header:]
    for number, fields in enumerate(rows, header + 1):
        if len(fields) <= max(columns):
            raise ValueError(
                f"{tar}: {member}, line {number}: expected at least "
                f"{max(columns) + 1} tab-separated fields, got {len(fields)}"
            )
    return [tuple(fields[c] for c in columns) for fields in rows]


def _senteval_frame(tar: Path, task: str, split: str, text: str, folder=False):
    """A task's str ``sentence1 sentence2 score subset`` (``folder``: the folder's)."""
    if task in _SUBSETS:  # subsets pooled in order, unscored pairs dropped
        rows, stem = [], f"STS/{task.upper()}-en-test/STS"
        order = _STS14 if folder and task == "sts14" else _SUBSETS[task]
        for subset in order:
            inputs, gold = f"{stem}.input.{subset}.txt", f"{stem}.gs.{subset}.txt"
            pairs, scores = _fields(tar, inputs, (0, 1)), _fields(tar, gold, (0,))
            if len(pairs) != len(scores):
                raise ValueError(
                    f"{tar}: {inputs} has {len(pairs)} lines but {gold} has "
                    f"{len(scores)}; line i of one must score line i of the other"
                )
            scored = zip(pairs, scores, strict=True)
            rows += [(a, b, s, subset) for (a, b), (s,) in scored if s.strip()]
        frame = pd.DataFrame(rows, columns=[*_PAIR, "subset"])
    else:
        member, header, fields = _TABLES[task]
        names = _PAIR + _META[task].split() if folder else _PAIR
        rows = _fields(tar, member.format(split=split), fields[: len(names)], header)
        frame = pd.DataFrame(rows, columns=names).assign(subset=task)
    if text == "senteval":  # SentEval's s.split(), then SimCSE's " ".join
        for column in _PAIR[:2]:
            frame[column] = [" ".join(s.split()) for s in frame[column]]
    return frame.astype(object)


# the data folder's STS14 subset order (SentEval's tar has images before OnWN)
_STS14 = "deft-forum deft-news headlines OnWN images tweet-news".split()
_NOTES = """Written by `python -m minicse data` from load_sts's hub sources, the first
{nli} rows of `nli_for_simcse.csv` (SNLI+MNLI train) and {corpus} lines of
`wiki1m_for_simcse.txt`. Licenses: each dataset's hub page (SICK-R: non-commercial).
"""


def _hub_files(nli_rows: int, corpus_rows: int) -> dict:
    """{path in the data folder: its frame or lines}, read from the hub."""
    tar, files = hub_file("senteval.tar", "SentEval's STS files"), {}
    for task, split in ((t, s) for t in STS_TASKS for s in _SPLITS[t]):
        name, raw = f"{task}.{split}", load_sts(task, split)
        frame = _senteval_frame(tar, task, split, "senteval", folder=True)
        meta = frame[_META.get(task, "subset").split()]
        # the same scores (on the hub STS-B's are 0-1, times 5)? then the tar's strings
        if len(raw) == len(frame) and np.allclose(raw.score, frame.score.astype(float)):
            raw = raw.assign(score=frame.score.to_numpy())  # as written: 4.400, not 4.4
            meta.insert(0, "row", range(1, len(meta) + 1))  # one for both texts
            files[f"sts/meta/{name}.meta.tsv"], keep = meta, _PAIR
        else:  # SentEval's file keeps its subset column
            print(f"{name}: the hub's raw rows are not in senteval.tar's order")
            keep = [*_PAIR, "subset"]
        files[f"sts/{name}.tsv"], files[f"sts/senteval/{name}.tsv"] = raw, frame[keep]
    for lang in ("de", "en", "es", "fr", "zh"):
        for split in _SPLITS["stsb"]:
            frame = load_sts("stsb", split, language=lang)
            files[f"sts/stsb_multi_mt/{lang}.{split}.tsv"] = frame
    files["nli/triplets.tsv"] = load_nli_triplets(max_rows=nli_rows)
    files["corpus/wiki1m_head.txt"] = load_corpus(max_rows=corpus_rows)
    return files


def _cell(value) -> str:
    """A TSV field; floats at 15 digits, which drops the noise of STS-B's x 5."""
    return repr(float(f"{value:.15g}")) if isinstance(value, float) else str(value)


def write_data_folder(
    folder: str | os.PathLike, nli_rows: int = 5881, corpus_rows: int = 11914
) -> None:
    """Write a data folder (``shared/data``'s layout) from the hub, with a README.md."""
    with mock.patch.dict(os.environ, MINICSE_DATA=""):  # every file from the hub
        files, root, table = _hub_files(nli_rows, corpus_rows), Path(folder), []
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            cells = content.map(_cell).to_numpy()
            if any("\t" in cell or "\n" in cell for cell in cells.ravel()):
                raise ValueError(f"{name}: a field holds a tab or a newline")
            content = ["\t".join(content.columns), *map("\t".join, cells)]
        payload = "".join(line + "\n" for line in content).encode("utf-8")
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
        sha = hashlib.sha256(payload).hexdigest()
        table.append(f"| {name} | {len(files[name])} | {sha} |")
    notes = _NOTES.format(nli=nli_rows, corpus=corpus_rows)
    head = ["# Data folder\n", notes, "| file | rows | sha256 |", "|---|---:|---|"]
    (root / "README.md").write_text("\n".join(head + table) + "\n", encoding="utf-8")
    print(f"wrote {len(files)} files to {root}; set MINICSE_DATA={root.resolve()}")
