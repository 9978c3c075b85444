"""Tests for minicse.data: the real data folder, tiny fixture files, offline errors."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import hubcache
import pandas as pd
import pytest

from minicse import data, hub
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
    assert on_disk == set(table)  # 44 data files with row counts + 11 license texts
    assert sum(rows is not None for rows, _ in table.values()) == 44


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
def test_senteval_and_raw_variants_align(task, split, data_path):
    raw, senteval = load_sts(task, split), load_sts(task, split, text="senteval")
    assert len(raw) == len(senteval)
    assert raw["score"].tolist() == senteval["score"].tolist()
    for column in ("sentence1", "sentence2"):
        assert (
            raw[column].map(_letters).tolist()
            == senteval[column].map(_letters).tolist()
        )
    notes = (data_path / "README.md").read_text(encoding="utf-8")
    if task == "sickr" and "Written by `python -m minicse data`" in notes:
        # written from the hub, whose SICK-R raw text is SentEval's own (4,927 pairs)
        assert raw["sentence1"].tolist() == senteval["sentence1"].tolist()
    else:
        assert (raw["sentence1"] != senteval["sentence1"]).any()  # a different text


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
    with pytest.raises(ValueError, match=r"unknown corpus name .*'wiki2m'"):
        load_corpus("wiki2m")


@pytest.mark.parametrize("name", ["corpus.txt", Path("wiki1m"), "sub/wiki1m"])
def test_corpus_file_given_as_name_is_sent_to_path(name):
    with pytest.raises(ValueError, match=r"unknown corpus name .*path="):
        load_corpus(name)


def test_corpus_file_is_read_from_path(tmp_path):
    txt = _write(tmp_path / "c.txt", ["one", "two"])
    assert load_corpus(path=txt, max_rows=1) == ["one"]


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


@pytest.mark.parametrize(
    "name,load",
    [
        ("corpus.txt", lambda f: load_corpus(path=f)),
        ("pairs.tsv", lambda f: load_sts("stsb", path=f)),
        ("pairs.tsv", lambda f: load_sts("stsb", path=f, subsets=True)),
        ("nli.csv", load_nli_triplets),
    ],
)
def test_a_file_that_is_not_utf8_is_named_with_the_fix(tmp_path, name, load):
    file = tmp_path / name  # Latin-1, as a spreadsheet on Windows may save it
    header = {"corpus.txt": "", "pairs.tsv": "sentence1\tsentence2\tscore\n"}
    text = (
        header.get(name, "sent0,sent1,hard_neg\n") + "Café au lait\t\u00e9t\u00e9\t1\n"
    )
    file.write_bytes(text.encode("latin-1"))
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(file))} is not UTF-8 text.*save it as UTF-8"
    ):
        load(file)


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
    if not offline and hub.hub_reachable():
        pytest.skip("the hub is reachable here; this test is for machines without it")


LOADERS = {
    "sts": lambda: load_sts("stsb", "dev"),
    "sickr": lambda: load_sts("sickr"),
    "senteval": lambda: load_sts("sts12", text="senteval"),
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


def test_hub_table_maps_splits_and_scales():
    assert hub.hub_sts("stsb", "dev") == (
        "sentence-transformers/stsb",
        None,
        "validation",
        "score",
        5.0,
    )
    assert hub.hub_sts("sts15", "test") == (
        "mteb/sts15-sts",
        None,
        "test",
        "score",
        1.0,
    )
    assert hub.hub_sts("stsb", "dev", "de") == (
        "PhilipMay/stsb_multi_mt",
        "de",
        "dev",
        "similarity_score",
        1.0,
    )


# ------------------------------------------------ hub: SimCSE's senteval.tar (faked)

SENTEVAL_ORDER, SICK_HEADER = hubcache.SENTEVAL_ORDER, hubcache.SICK_HEADER


def _make_tar(path: Path, files: dict[str, str], prefix: str = "downstream/") -> Path:
    """An uncompressed tar holding ``files`` ({member: text}) below ``prefix``."""
    with tarfile.open(path, "w") as tar:
        for name, text in files.items():
            payload = text.encode("utf-8")
            info = tarfile.TarInfo(prefix + name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _hub_returns(monkeypatch, tar: Path) -> list[str]:
    """No local data; the hub download returns ``tar``. Logs the files asked for."""
    _no_local_data(monkeypatch)
    asked = []

    def download(filename: str, what: str) -> Path:
        asked.append(filename)
        return tar

    monkeypatch.setattr(data, "hub_file", download)
    return asked


def _toy_senteval() -> dict[str, str]:
    """SentEval's files, two scored pairs and one unscored pair per STS subset."""
    files = {}
    for task, subsets in SENTEVAL_ORDER.items():
        folder = f"STS/{task.upper()}-en-test"
        for subset in subsets:
            inputs = [f"{task} {subset}\tsecond  one", "no\tscore", f"{subset}\tend "]
            files[f"{folder}/STS.input.{subset}.txt"] = "\n".join(inputs) + "\n"
            files[f"{folder}/STS.gs.{subset}.txt"] = "4.2\n\n0\n"
    for split in ("train", "dev", "test"):
        row = ["main-captions", "MSRvid", "2012test", "0001", "3.800"]
        line = "\t".join([*row, f"a {split}  pair .", "the pair", "extra"])
        files[f"STS/STSBenchmark/sts-{split}.csv"] = line + "\n"
    rows = [SICK_HEADER, "1\tA man isn ' t  here\tA dog runs\t3.6\tNEUTRAL"]
    files["SICK/SICK_test_annotated.txt"] = "\r\n".join([*rows, "2\tB\tC\t1\tX"])
    for split in ("train", "trial"):  # SICK-R test only: these must not be read
        files[f"SICK/SICK_{split}.txt"] = f"{SICK_HEADER}\n9\t{split}\tpair\t5\tX\n"
    return files


def _toy_expected(task: str, split: str) -> list[tuple[str, str, float]]:
    if task == "stsb":
        return [(f"a {split} pair .", "the pair", 3.8)]
    if task == "sickr":
        return [("A man isn ' t here", "A dog runs", 3.6), ("B", "C", 1.0)]
    rows = []
    for subset in SENTEVAL_ORDER[task]:  # the unscored middle line is left out
        rows += [(f"{task} {subset}", "second one", 4.2), (subset, "end", 0.0)]
    return rows


def _records(frame) -> list[tuple[str, str, float]]:
    return list(frame.itertuples(index=False, name=None))


def test_sickr_from_the_hub_is_sentevals_test_set(monkeypatch, tmp_path):
    asked = _hub_returns(monkeypatch, _make_tar(tmp_path / "s.tar", _toy_senteval()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no more "9,927 pairs" warning
        raw = load_sts("sickr")
    assert asked == ["senteval.tar"]
    assert _records(raw) == [
        ("A man isn ' t  here", "A dog runs", 3.6),  # the file's text as is
        ("B", "C", 1.0),
    ]
    assert raw["score"].dtype == float
    tokens = load_sts("sickr", text="senteval")
    assert _records(tokens) == _toy_expected("sickr", "test")
    assert _records(load_sts("sickr", max_rows=1)) == _records(raw)[:1]


@pytest.mark.parametrize("task,split", SPLITS)
def test_senteval_text_from_the_hub_reads_the_tar(monkeypatch, tmp_path, task, split):
    asked = _hub_returns(monkeypatch, _make_tar(tmp_path / "s.tar", _toy_senteval()))
    frame = load_sts(task, split, text="senteval")
    assert asked == ["senteval.tar"]
    assert list(frame.columns) == ["sentence1", "sentence2", "score"]
    assert _records(frame) == _toy_expected(task, split)


@pytest.mark.parametrize("prefix", ["", "./", "downstream/", "SentEval/data/"])
def test_senteval_tar_members_may_sit_below_any_folder(monkeypatch, tmp_path, prefix):
    tar = _make_tar(tmp_path / "s.tar", _toy_senteval(), prefix=prefix)
    _hub_returns(monkeypatch, tar)
    want = _toy_expected("sts13", "test")
    assert _records(load_sts("sts13", text="senteval")) == want


def test_senteval_tar_is_indexed_once(monkeypatch, tmp_path):
    tar = _make_tar(tmp_path / "s.tar", _toy_senteval())
    _hub_returns(monkeypatch, tar)
    opened, real_open = [], tarfile.open

    def counting_open(*args, **kwargs):
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(data.tarfile, "open", counting_open)
    for task in STS_TASKS:
        load_sts(task, text="senteval")
    assert len(opened) == 1  # one scan of the member list, then seek + read


def _without(name: str) -> dict[str, str]:
    files = _toy_senteval()
    del files[name]
    return files


def _replaced(name: str, text: str) -> dict[str, str]:
    return _toy_senteval() | {name: text}


@pytest.mark.parametrize(
    "files,task,error,match",
    [
        (
            _without("STS/STS14-en-test/STS.gs.images.txt"),
            "sts14",
            FileNotFoundError,
            r"no member downstream/STS/STS14-en-test/STS\.gs\.images\.txt",
        ),
        (
            _without("SICK/SICK_test_annotated.txt"),
            "sickr",
            FileNotFoundError,
            r"no member downstream/SICK/SICK_test_annotated\.txt",
        ),
        (
            _replaced("STS/STS12-en-test/STS.gs.MSRvid.txt", "1\n2\n"),
            "sts12",
            ValueError,
            r"STS\.input\.MSRvid\.txt has 3 lines but .*STS\.gs\.MSRvid\.txt has 2",
        ),
        (
            _replaced("STS/STS15-en-test/STS.input.belief.txt", "a\tb\nc\nd\te\n"),
            "sts15",
            ValueError,
            r"STS\.input\.belief\.txt, line 2: expected at least 2 tab-separated",
        ),
        (
            _replaced("STS/STSBenchmark/sts-test.csv", "g\tf\ty\t1\t2.0\tonly one\n"),
            "stsb",
            ValueError,
            r"sts-test\.csv, line 1: expected at least 7 tab-separated fields, got 6",
        ),
        (
            _replaced("SICK/SICK_test_annotated.txt", f"{SICK_HEADER}\n1\ta\tb\tn/a\n"),
            "sickr",
            ValueError,
            r"senteval\.tar \(sickr, test\): data row 1 has score 'n/a'",
        ),
    ],
)
def test_broken_senteval_tar_errors(monkeypatch, tmp_path, files, task, error, match):
    _hub_returns(monkeypatch, _make_tar(tmp_path / "s.tar", files))
    with pytest.raises(error, match=match):
        load_sts(task, text="senteval")


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_senteval_tar_is_read(monkeypatch, tmp_path, mode):
    tar = tmp_path / "senteval.tar"  # the name says nothing of the compression
    with tarfile.open(tar, mode) as archive:
        for name, text in _toy_senteval().items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    _hub_returns(monkeypatch, tar)
    assert _records(load_sts("sickr", text="senteval")) == _toy_expected(
        "sickr", "test"
    )


def test_a_file_that_is_no_tar_names_the_fix(monkeypatch, tmp_path):
    (tar := tmp_path / "senteval.tar").write_bytes(b"<html>an error page</html>")
    _hub_returns(monkeypatch, tar)
    with pytest.raises(ValueError, match="not a tar file.*delete it"):
        load_sts("sickr")


def _tsv(file: Path) -> pd.DataFrame:
    return pd.read_csv(
        file, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False
    )


def test_full_size_senteval_tar_reproduces_the_data_folder(
    monkeypatch, tmp_path, data_path
):
    tar = tmp_path / "senteval.tar"  # gzipped, SentEval's layout and subset order
    tar.write_bytes(hubcache.senteval_tar(data_path))
    local = {
        (task, split): load_sts(task, split, "senteval", path=data_path)
        for task, split in SPLITS
    }
    _hub_returns(monkeypatch, tar)
    sizes = {}  # (task, split): pairs
    for (task, split), want in local.items():
        if task in SENTEVAL_ORDER:  # the data folder keeps STS14's OnWN before images
            subset = _tsv(data_path / f"sts/meta/{task}.test.meta.tsv")["subset"]
            rank = subset.map(SENTEVAL_ORDER[task].index)
            want = want.iloc[rank.argsort(kind="stable")].reset_index(drop=True)
        got = load_sts(task, split, text="senteval")
        pd.testing.assert_frame_equal(got, want)
        named = load_sts(task, split, text="senteval", subsets=True)  # the tar's
        folder = load_sts(task, split, "senteval", path=data_path, subsets=True)
        assert sorted(named.subset.value_counts().items()) == sorted(
            folder.subset.value_counts().items()
        )
        sizes[task, split] = len(got)
    tests = (3108, 1500, 3750, 3000, 1186, 1379, 4927)
    assert sizes == {(t, "test"): n for t, n in zip(STS_TASKS, tests, strict=True)} | {
        ("stsb", "train"): 5749,
        ("stsb", "dev"): 1500,
    }
    raw_sick = load_sts("sickr")  # the tar's text as is: SentEval's, already tokens
    pd.testing.assert_frame_equal(raw_sick, local["sickr", "test"])


def test_data_layer_imports_no_model_code():
    """Dependencies run one way: utils <- hub probing <- {data, encoder}."""
    code = (
        "import sys, minicse.data; "
        "print(sorted(m for m in sys.modules if m.startswith(('minicse.', "
        "'transformers', 'sentence_transformers'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "minicse.encoder" not in out and "transformers" not in out
    assert "minicse.data" in out
