"""Tests for minicse.data: the real data folder, tiny fixture files, offline errors."""

from __future__ import annotations

import csv
import hashlib
import re
import time
from pathlib import Path

import pytest

from minicse import _hub, data
from minicse.data import STS_TASKS, data_dir, load_corpus, load_nli_triplets, load_sts

SPLITS = [(task, "test") for task in STS_TASKS] + [("stsb", "train"), ("stsb", "dev")]
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _readme_table(data_path: Path) -> dict[str, tuple[int | None, str]]:
    """{relative file: (rows or None, sha256)} from the data README's file tables."""
    table = {}
    for line in (data_path / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and SHA256.match(cells[-1]):
            rows = cells[1].replace(",", "") if len(cells) > 2 else ""
            table[cells[0]] = (int(rows) if rows.isdigit() else None, cells[-1])
    return table


def _count_rows(file: Path) -> int:
    """Data rows of a headed TSV (quoting off) or lines of a text file."""
    with open(file, encoding="utf-8", newline="") as handle:
        if file.suffix == ".txt":
            return sum(1 for _ in handle)
        return (
            sum(1 for _ in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
            - 1
        )


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _no_local_data(monkeypatch) -> None:
    monkeypatch.delenv("MINICSE_DATA", raising=False)


# ----------------------------------------------------------------- real data folder


def test_readme_lists_every_data_file(data_path):
    table = _readme_table(data_path)
    on_disk = {
        str(p.relative_to(data_path))
        for p in data_path.rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert on_disk == set(table)  # 39 data files with row counts + 11 license texts
    assert sum(rows is not None for rows, _ in table.values()) == 39


def test_every_file_matches_readme_rows_and_sha256(data_path):
    for relative, (rows, sha256) in _readme_table(data_path).items():
        file = data_path / relative
        assert hashlib.sha256(file.read_bytes()).hexdigest() == sha256, relative
        if rows is not None:
            assert _count_rows(file) == rows, relative


@pytest.mark.parametrize("text", ["raw", "senteval"])
@pytest.mark.parametrize("task,split", SPLITS)
def test_load_sts_row_counts_match_readme(data_path, task, split, text):
    relative = f"sts/{'senteval/' if text == 'senteval' else ''}{task}.{split}.tsv"
    frame = load_sts(task, split, text)
    assert len(frame) == _readme_table(data_path)[relative][0]
    assert list(frame.columns) == ["sentence1", "sentence2", "score"]
    assert frame["score"].dtype == float
    low = 1.0 if task == "sickr" else 0.0
    assert frame["score"].between(low, 5.0).all()


def test_nli_and_corpus_row_counts_match_readme(data_path):
    table = _readme_table(data_path)
    triplets = load_nli_triplets()
    assert len(triplets) == table["nli/triplets.tsv"][0] == 5881
    assert list(triplets.columns) == ["sent0", "sent1", "hard_neg"]
    corpus = load_corpus()
    assert len(corpus) == table["corpus/wiki1m_head.txt"][0] == 11914
    assert corpus[0].startswith("YMCA in South Australia")
    assert all(not s.endswith("\n") for s in corpus)


def _letters(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


@pytest.mark.parametrize("task,split", SPLITS)
def test_senteval_and_raw_variants_align(task, split):
    raw, senteval = load_sts(task, split), load_sts(task, split, text="senteval")
    assert len(raw) == len(senteval)
    assert raw["score"].tolist() == senteval["score"].tolist()
    for column in ("sentence1", "sentence2"):
        assert (
            raw[column].map(_letters).tolist()
            == senteval[column].map(_letters).tolist()
        )
    assert (raw["sentence1"] != senteval["sentence1"]).any()  # really a different text


def test_quotes_are_kept_as_text():
    frame = load_sts("stsb", "test")
    assert frame["sentence1"].str.contains('"').any()  # QUOTE_NONE: no rows merged


def test_max_rows_reads_the_first_rows():
    assert load_sts("sts12", max_rows=5).equals(load_sts("sts12").iloc[:5])
    assert len(load_nli_triplets(max_rows=3)) == 3
    assert load_corpus(max_rows=2) == load_corpus()[:2]


def test_resolution_order_path_beats_env(tmp_path, data_path):
    _write(
        tmp_path / "sts" / "stsb.test.tsv", ["sentence1\tsentence2\tscore", "a\tb\t1"]
    )
    assert len(load_sts("stsb", path=tmp_path)) == 1  # explicit path wins
    assert data_dir() == data_path  # MINICSE_DATA
    assert data_dir(tmp_path) == tmp_path


def test_data_dir_is_none_without_path_or_env(monkeypatch):
    _no_local_data(monkeypatch)
    assert data_dir() is None


def test_path_to_a_single_file(tmp_path):
    nli = _write(tmp_path / "t.tsv", ["sent0\tsent1\thard_neg", 'a "b\tc\td'])
    assert load_nli_triplets(nli).loc[0, "sent0"] == 'a "b'
    csv_file = _write(tmp_path / "t.csv", ["sent0,sent1,hard_neg", '"a, b",c,d'])
    assert load_nli_triplets(csv_file).loc[0, "sent0"] == "a, b"  # CSV: quoted
    txt = _write(tmp_path / "c.txt", ["one", "two"])
    assert load_corpus(path=txt) == ["one", "two"]


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"task": "sts17"}, "unknown task 'sts17'"),
        ({"task": "sts12", "split": "dev"}, "split for task 'sts12'"),
        ({"task": "stsb", "split": "validation"}, "split for task 'stsb'"),
        ({"task": "stsb", "text": "tokenized"}, "unknown text 'tokenized'"),
    ],
)
def test_load_sts_rejects_unknown_names(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_sts(**kwargs)


def test_unknown_corpus_name():
    with pytest.raises(ValueError, match="unknown corpus name 'wiki2m'"):
        load_corpus("wiki2m")


@pytest.mark.parametrize("max_rows", [0, -3])
def test_max_rows_must_be_positive(max_rows):
    with pytest.raises(ValueError, match="max_rows must be an int >= 1 or None"):
        load_sts("stsb", max_rows=max_rows)
    with pytest.raises(ValueError, match="max_rows"):
        load_nli_triplets(max_rows=max_rows)
    with pytest.raises(ValueError, match="max_rows"):
        load_corpus(max_rows=max_rows)


@pytest.mark.parametrize("max_rows", [1.5, "10", True])
def test_max_rows_must_be_an_int(max_rows):
    with pytest.raises(TypeError, match="max_rows must be an int >= 1 or None"):
        load_sts("stsb", max_rows=max_rows)


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "nope"
    for load in (lambda: load_sts("stsb", path=missing), lambda: data_dir(missing)):
        with pytest.raises(FileNotFoundError, match="nope"):
            load()
    with pytest.raises(FileNotFoundError, match="nope"):
        load_corpus(path=missing)


def test_folder_without_the_file_names_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"senteval.sts13\.test\.tsv"):
        load_sts("sts13", text="senteval", path=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nli.triplets\.tsv"):
        load_nli_triplets(tmp_path)


def test_missing_env_folder_names_minicse_data(monkeypatch, tmp_path):
    monkeypatch.setenv("MINICSE_DATA", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="MINICSE_DATA"):
        load_sts("stsb")


def test_path_of_wrong_type():
    with pytest.raises(TypeError, match="path must be a str or path"):
        load_sts("stsb", path=3)


@pytest.mark.parametrize(
    "lines,match",
    [
        (["sentence1\tscore", "a\t1"], r"lacks column\(s\) \['sentence2'\]"),
        ([], r"lacks column\(s\)"),
        (["sentence1\tsentence2\tscore", "a\tb"], "line 2: expected 3 fields"),
        (["sentence1\tsentence2\tscore", "a\tb\t1", "a\tb\t1\tx"], "line 3"),
        (["sentence1\tsentence2\tscore", "a\tb\thigh"], "row 1 has score 'high'"),
        (["sentence1\tsentence2\tscore", "a\tb\t1", "a\tb\tnan"], "row 2 has score"),
        (["sentence1\tsentence2\tscore", "a\tb\tinf"], "finite number"),
        (["sentence1\tsentence2\tscore", "a\tb\t"], "row 1 has score ''"),
        (["sentence1\tsentence2\tscore", "a\t \t1"], "empty 'sentence2'"),
    ],
)
def test_bad_sts_files(tmp_path, lines, match):
    file = tmp_path / "bad.tsv"
    file.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_sts("stsb", path=file)


def test_bad_nli_and_corpus_files(tmp_path):
    nli = _write(tmp_path / "n.tsv", ["sent0\tsent1\thard_neg", "a\t\tc"])
    with pytest.raises(ValueError, match="empty 'sent1'"):
        load_nli_triplets(nli)
    corpus = _write(tmp_path / "c.txt", ["one", "", "three"])
    with pytest.raises(ValueError, match="line 2 is empty"):
        load_corpus(path=corpus)


# ----------------------------------------------------------- hub: fail fast offline


def _isolated_hub(monkeypatch, tmp_path, offline: bool) -> None:
    """No local data, an empty HF cache and the offline flag on or off."""
    from huggingface_hub import constants

    _no_local_data(monkeypatch)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)  # read at import
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # CI: no proxy, no network
    if not offline and _hub.hub_reachable():
        pytest.skip("the hub is reachable here; this test is for machines without it")


LOADERS = {
    "sts": lambda: load_sts("stsb", "dev"),
    "sickr": lambda: load_sts("sickr"),
    "nli": load_nli_triplets,
    "corpus": load_corpus,
}


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "no-flag"])
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_hub_miss_fails_fast_and_says_what_to_set(
    monkeypatch, tmp_path, offline, loader
):
    _isolated_hub(monkeypatch, tmp_path, offline)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        LOADERS[loader]()
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "MINICSE_DATA" in message and "path=" in message
    assert ("offline mode" if offline else "unreachable") in message


def test_senteval_text_is_local_only(monkeypatch):
    _no_local_data(monkeypatch)
    with pytest.raises(ValueError, match="text='raw'"):
        load_sts("sts12", text="senteval")


def test_hub_table_maps_splits_and_scales():
    assert data._hub_sts("stsb", "dev") == (
        "sentence-transformers/stsb",
        "validation",
        5.0,
    )
    assert data._hub_sts("sts15", "test") == ("mteb/sts15-sts", "test", 1.0)
    assert data._hub_sts("sickr", "test")[0] == "mteb/sickr-sts"
