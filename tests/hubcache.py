"""An offline copy of the Hugging Face hub, in its real cache layouts, for tests.

``fill_hub_cache(HF_HOME, data)`` writes, from the local data folder ``data``:

* ``HF_HOME/hub``: tiny random BERTs (MiniLM's WordPiece vocab) as
  ``bert-base-uncased`` and ``bert-base-multilingual-uncased`` (``model.safetensors``,
  ``bert.*``/``cls.*`` keys) and ``princeton-nlp/{unsup,sup}-simcse-bert-base-uncased``
  (``BertModel`` keys, a trained-looking ``pooler.dense``, only ``pytorch_model.bin``
  on ``main``, as on the hub); SimCSE's ``wiki1m_for_simcse.txt`` (the local
  lines, two blank ones after line 100 and one at the end), ``nli_for_simcse.csv``
  (the local triplets, CSV-quoted, a row with an empty ``hard_neg`` before the
  11th) and a gzipped ``senteval.tar`` (SentEval's layout and subset order).
  Each repo: ``refs/main``, ``snapshots/<commit>/`` -> ``blobs/``.
* ``HF_HOME/datasets``: ``datasets``' Arrow cache of ``mteb/{sts12..16,sickr}-sts``
  (SICK-R: the 4,927 local rows, 9,927 on the hub), ``mteb/stsbenchmark-sts`` (with
  ``genre``), ``sentence-transformers/stsb`` (scores 0-1) and
  ``PhilipMay/stsb_multi_mt`` (de en es fr zh).

Shell: ``python tests/hubcache.py HF_HOME [--data DIR]``, then run with
``HF_HOME=HF_HOME HF_HUB_OFFLINE=1`` and ``MINICSE_DATA`` unset.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

MODELS = ("bert-base-uncased", "bert-base-multilingual-uncased")
SIMCSE = (
    "princeton-nlp/unsup-simcse-bert-base-uncased",
    "princeton-nlp/sup-simcse-bert-base-uncased",
)
SIMCSE_DATA = "princeton-nlp/datasets-for-simcse"
LANGUAGES = ("de", "en", "es", "fr", "zh")  # those of the local data folder
SENTEVAL_ORDER = {  # senteval/sts.py's subset order (STS14: images before OnWN)
    "sts12": "MSRpar MSRvid SMTeuroparl surprise.OnWN surprise.SMTnews".split(),
    "sts13": "FNWN headlines OnWN".split(),
    "sts14": "deft-forum deft-news headlines images OnWN tweet-news".split(),
    "sts15": "answers-forums answers-students belief headlines images".split(),
    "sts16": "answer-answer headlines plagiarism postediting question-question".split(),
}
SICK_HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"


def commit_of(repo: str) -> str:
    """The (fake, fixed) 40-hex commit of ``repo``'s ``main``."""
    return hashlib.sha1(repo.encode()).hexdigest()


def read_tsv(file: Path) -> list[dict[str, str]]:
    """Rows of a data-folder TSV (header, no quoting)."""
    with open(file, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def put_repo(hub: Path, repo: str, files: dict[str, bytes], kind: str = "model"):
    """Write ``files`` as huggingface_hub does: blobs, snapshot links, refs/main."""
    folder = hub / f"{kind}s--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit_of(repo)
    for name, payload in files.items():
        blob = folder / "blobs" / hashlib.sha256(payload).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(payload)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit_of(repo))
    return snapshot


def _models(hub: Path) -> None:
    """The four tiny BERTs (two base models, two released SimCSE checkpoints)."""
    import torch
    from safetensors.torch import save
    from transformers import BertConfig, BertForPreTraining, BertModel

    from minicse.encoder import offline_model_path

    minilm = offline_model_path()
    vocab = (minilm / "vocab.txt").read_bytes()
    config = BertConfig(
        vocab_size=len(vocab.splitlines()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=0,
    )
    tokenizer = {
        "vocab.txt": vocab,
        "tokenizer_config.json": b'{"do_lower_case": true, "model_max_length": 512}',
        "special_tokens_map.json": (minilm / "special_tokens_map.json").read_bytes(),
    }
    for seed, repo in enumerate(MODELS + SIMCSE):
        torch.manual_seed(seed)
        base = repo in MODELS
        model = BertForPreTraining(config) if base else BertModel(config)
        if not base:  # SimCSE's MLP, trained: far from BERT's N(0, 0.02) init
            torch.nn.init.normal_(model.pooler.dense.weight, std=0.2)
        state = {
            k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
        }
        arch = "BertForMaskedLM" if base else "BertModel"
        meta = json.loads(config.to_json_string()) | {"architectures": [arch]}
        files = {"config.json": json.dumps(meta, indent=2).encode(), **tokenizer}
        if base:
            files["model.safetensors"] = save(state)
            files["tokenizer.json"] = (minilm / "tokenizer.json").read_bytes()
        else:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            files["pytorch_model.bin"] = buffer.getvalue()
        put_repo(hub, repo, files)


def senteval_tar(data: Path, mode: str = "w:gz") -> bytes:
    """SentEval's STS/SICK-R files (``senteval.tar``'s layout) from ``data``."""
    sts, files = data / "sts", {}
    for task, subsets in SENTEVAL_ORDER.items():
        rows = read_tsv(sts / f"senteval/{task}.test.tsv")
        names = [r["subset"] for r in read_tsv(sts / f"meta/{task}.test.meta.tsv")]
        for name in subsets:
            mine = [r for r, n in zip(rows, names, strict=True) if n == name]
            pairs = [f"{r['sentence1']}\t{r['sentence2']}" for r in mine]
            folder = f"STS/{task.upper()}-en-test"  # + one unscored pair
            files[f"{folder}/STS.input.{name}.txt"] = "\n".join([*pairs, "a\tb"])
            files[f"{folder}/STS.gs.{name}.txt"] = "\n".join([r["score"] for r in mine])
            files[f"{folder}/STS.gs.{name}.txt"] += "\n\n"
    for split in ("train", "dev", "test"):
        rows = read_tsv(sts / f"senteval/stsb.{split}.tsv")
        meta = read_tsv(sts / f"meta/stsb.{split}.meta.tsv")
        lines = [
            "\t".join(
                [
                    m["genre"],
                    m["filename"],
                    m["year"],
                    m["sid"],
                    r["score"],
                    r["sentence1"],
                    r["sentence2"],
                ]
            )
            for r, m in zip(rows, meta, strict=True)
        ]
        files[f"STS/STSBenchmark/sts-{split}.csv"] = "\n".join(lines) + "\n"
    rows = read_tsv(sts / "senteval/sickr.test.tsv")
    meta = read_tsv(sts / "meta/sickr.test.meta.tsv")
    fields = zip(meta, rows, strict=True)
    lines = [
        "\t".join(
            [
                m["pair_ID"],
                r["sentence1"],
                r["sentence2"],
                r["score"],
                m["entailment_judgment"],
            ]
        )
        for m, r in fields
    ]
    files["SICK/SICK_test_annotated.txt"] = "\r\n".join([SICK_HEADER, *lines]) + "\r\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, text in files.items():
            payload = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _simcse_files(hub: Path, data: Path) -> None:
    """SimCSE's hub dataset: wiki1m (+ blank lines), NLI csv (+ an empty hard_neg)."""
    lines = (data / "corpus/wiki1m_head.txt").read_text(encoding="utf-8").split("\n")
    lines[100:100] = ["", "   "]  # blank lines, as SimCSE's train.py tolerates
    corpus = "\n".join(lines) + "\n"  # the file's final newline: one more blank
    triplets = read_tsv(data / "nli/triplets.tsv")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sent0", "sent1", "hard_neg"])
    for i, row in enumerate(triplets):
        if i == 10:
            writer.writerow(["A premise without a contradiction.", "It is one.", ""])
        writer.writerow([row["sent0"], row["sent1"], row["hard_neg"]])
    files = {
        "wiki1m_for_simcse.txt": corpus.encode(),
        "senteval.tar": senteval_tar(data),
    }
    files["nli_for_simcse.csv"] = out.getvalue().encode()
    put_repo(hub, SIMCSE_DATA, files, kind="dataset")


def _arrow(cache: Path, repo: str, config: str, splits: dict[str, list[dict]]) -> None:
    """Prepare ``repo``/``config`` with the packaged Json builder, as datasets reads it.

    Offline, datasets 4.x looks for ``<namespace>___<name>/<config>/<version>/<hash>``:
    the builder writes ``<config>-<hash>``, which is renamed to ``<config>``.
    """
    from datasets import disable_progress_bars
    from datasets.packaged_modules.json.json import Json

    disable_progress_bars()
    namespace, name = repo.split("/")
    build = cache / "_build"
    source = build / "src" / name / config
    source.mkdir(parents=True, exist_ok=True)
    data_files = {}
    for split, rows in splits.items():
        file = source / f"{split}.jsonl"
        file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        data_files[split] = [str(file)]
    builder = Json(
        cache_dir=str(build),
        dataset_name=name,
        config_name=config,
        hash=commit_of(repo)[:16],
        data_files=data_files,
    )
    builder.download_and_prepare()
    target = cache / f"{namespace}___{name}" / config
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(Path(builder.cache_dir).parents[1]), str(target))


def _sts_datasets(cache: Path, data: Path) -> None:
    """The STS sets that ``minicse.data`` reads through ``load_dataset``."""

    def rows(file: str, score: str = "score", scale: float = 1.0) -> list[dict]:
        return [
            {
                "sentence1": r["sentence1"],
                "sentence2": r["sentence2"],
                score: float(r["score"]) / scale,
            }
            for r in read_tsv(data / file)
        ]

    for task in ("sts12", "sts13", "sts14", "sts15", "sts16", "sickr"):
        _arrow(
            cache, f"mteb/{task}-sts", "default", {"test": rows(f"sts/{task}.test.tsv")}
        )
    names = (("train", "train"), ("validation", "dev"), ("test", "test"))
    stsb = {hub: rows(f"sts/stsb.{split}.tsv", scale=5.0) for hub, split in names}
    _arrow(cache, "sentence-transformers/stsb", "default", stsb)
    mteb = {}  # MTEB's STS-B: scores 0-5 and the genre of each pair
    for hub, split in names:
        meta = read_tsv(data / f"sts/meta/stsb.{split}.meta.tsv")
        extra = [{"split": hub, "genre": m["genre"], "dataset": m["filename"],
                  "year": m["year"], "sid": m["sid"]} for m in meta]  # fmt: skip
        pairs = rows(f"sts/stsb.{split}.tsv")
        mteb[hub] = [e | p for e, p in zip(extra, pairs, strict=True)]
    _arrow(cache, "mteb/stsbenchmark-sts", "default", mteb)
    for lang in LANGUAGES:
        splits = {
            s: rows(f"sts/stsb_multi_mt/{lang}.{s}.tsv", "similarity_score")
            for s in ("train", "dev", "test")
        }
        _arrow(cache, "PhilipMay/stsb_multi_mt", lang, splits)
    shutil.rmtree(cache / "_build")
    for lock in cache.rglob("*.lock"):
        lock.unlink()


def run_offline(hf_home: Path, *argv: str, cwd: Path | None = None) -> str:
    """Run ``python *argv`` seeing only the copy (no MINICSE_DATA); its stdout."""
    drop = ("MINICSE_DATA", "HF_DATASETS_CACHE", "HF_HUB_CACHE", "TRANSFORMERS_CACHE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONWARNINGS="always")
    command = [sys.executable, *argv]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def fill_hub_cache(hf_home: Path, data: Path) -> Path:
    """Fill ``hf_home`` (an HF_HOME) from the data folder ``data``; return it."""
    hf_home, data = Path(hf_home), Path(data)
    if not (data / "nli/triplets.tsv").is_file():
        raise FileNotFoundError(f"{data} is not a data folder (no nli/triplets.tsv)")
    _models(hf_home / "hub")
    _simcse_files(hf_home / "hub", data)
    _sts_datasets(hf_home / "datasets", data)
    return hf_home


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("hf_home", type=Path, help="the HF_HOME to fill (new folder)")
    default = os.environ.get("MINICSE_DATA", "../shared/data")
    parser.add_argument("--data", type=Path, default=default, help="data folder")
    args = parser.parse_args()
    if args.hf_home.exists() and any(args.hf_home.iterdir()):
        parser.error(f"{args.hf_home} is not empty")
    print(f"filled {fill_hub_cache(args.hf_home, args.data)}")
