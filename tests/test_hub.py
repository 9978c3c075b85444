"""minicse's hub path against an offline copy of the hub (``tests/hubcache.py``).

The readers and ``from_pretrained`` run in a subprocess (``hubcache.run_offline``)
with ``HF_HOME`` at the copy, ``HF_HUB_OFFLINE=1`` and no ``MINICSE_DATA``:
huggingface_hub and datasets read those settings at import.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import hubcache
import pandas as pd
import pytest

from minicse import hub
from minicse.data import STS_TASKS, load_corpus, load_nli_triplets, load_sts
from minicse.encoder import SentenceEncoder

SPLITS = [
    (t, s)
    for t in STS_TASKS
    for s in (("train", "dev", "test") if t == "stsb" else ("test",))
]


READ_ALL = """
import pickle, sys, warnings
from minicse.data import STS_TASKS, load_corpus, load_nli_triplets, load_sts
out, warned = {}, {}

def get(key, load, *args, **kwargs):  # each read on its own: one failure, one test
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out[key] = load(*args, **kwargs)
        except Exception as err:
            out[key] = RuntimeError(repr(err))
    warned[key] = [str(w.message).split(": ", 1)[-1] for w in caught]

for task in STS_TASKS:
    for split in ("train", "dev", "test") if task == "stsb" else ("test",):
        for text in ("raw", "senteval"):
            get((task, split, text), load_sts, task, split, text)
        get((task, split, "subsets"), load_sts, task, split, "senteval", subsets=True)
for lang in ("de", "en", "es", "fr", "zh"):
    for split in ("train", "dev", "test"):
        get(("stsb", split, lang), load_sts, "stsb", split, language=lang)
get("corpus", load_corpus)
get("corpus200", load_corpus, max_rows=200)
get("nli", load_nli_triplets)
get("nli20", load_nli_triplets, max_rows=20)
from datasets import load_dataset  # chapter 10 reads STS-B's genres from MTEB's copy
get("genres", lambda: load_dataset("mteb/stsbenchmark-sts", split="test").to_pandas())
pickle.dump((out, warned), open(sys.argv[1], "wb"))
"""


@pytest.fixture(scope="module")
def from_hub(hub_home, tmp_path_factory):
    """``from_hub(key)``: what a reader returned from the hub copy (one subprocess)."""
    file = tmp_path_factory.mktemp("read") / "frames.pkl"
    hubcache.run_offline(hub_home, "-c", READ_ALL, str(file))
    out, warned = pickle.loads(file.read_bytes())

    def read(*key):
        key = key if len(key) > 1 else key[0]
        if isinstance(out[key], Exception):
            raise out[key]
        return out[key]

    read.warned = warned
    return read


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.parametrize("task,split", SPLITS)
def test_sts_from_the_hub_equals_the_data_folder(from_hub, data_path, task, split):
    raw, tokens = from_hub(task, split, "raw"), from_hub(task, split, "senteval")
    local = load_sts(task, split, "senteval", path=data_path)
    # SentEval's tar orders STS14's images before OnWN; the data folder does not
    pd.testing.assert_frame_equal(_sorted(tokens), _sorted(local))
    if task != "sts14":
        pd.testing.assert_frame_equal(tokens, local)
    if task != "sickr":  # SICK-R: the tar's (SentEval's) text, as the hub's has 9,927
        local = load_sts(task, split, path=data_path)
    pd.testing.assert_frame_equal(raw, local, rtol=1e-12)  # STS-B: 0-1 scores x 5
    subsets = from_hub(task, split, "subsets")
    named = load_sts(task, split, "senteval", path=data_path, subsets=True)
    assert sorted(subsets.subset.value_counts().items()) == sorted(
        named.subset.value_counts().items()
    )


@pytest.mark.parametrize("lang", hubcache.LANGUAGES)
def test_multilingual_stsb_from_the_hub(from_hub, data_path, lang):
    for split in ("train", "dev", "test"):
        local = load_sts("stsb", split, language=lang, path=data_path)
        pd.testing.assert_frame_equal(from_hub("stsb", split, lang), local)


def test_hub_corpus_skips_blank_lines_and_counts_them(from_hub, data_path):
    local = load_corpus(path=data_path)
    assert from_hub("corpus") == local  # the hub copy has 3 blank lines more
    assert from_hub("corpus200") == local[:200]  # max_rows counts sentences
    assert from_hub.warned["corpus"] == ["skipped 3 blank lines"]
    assert from_hub.warned["corpus200"] == ["skipped 2 blank lines"]  # first 202


def test_hub_nli_drops_an_empty_hard_negative_and_counts_it(from_hub, data_path):
    local = load_nli_triplets(path=data_path)
    pd.testing.assert_frame_equal(from_hub("nli"), local)  # triplets: 3 columns
    pd.testing.assert_frame_equal(from_hub("nli20"), local.iloc[:20])
    for key in ("nli", "nli20"):
        assert from_hub.warned[key] == ["skipped 1 rows with empty fields"]


def test_blank_lines_in_a_readers_own_file_are_still_an_error(tmp_path, hub_home):
    snapshot = hub_home / "hub/datasets--princeton-nlp--datasets-for-simcse/snapshots"
    hub_file = next(snapshot.glob("*/wiki1m_for_simcse.txt"))
    with pytest.raises(ValueError, match="line 101 is empty"):
        load_corpus(path=shutil.copy(hub_file, tmp_path / "mine.txt"))
    nli = next(snapshot.glob("*/nli_for_simcse.csv"))
    with pytest.raises(ValueError, match="data row 11 has an empty 'hard_neg'"):
        load_nli_triplets(path=shutil.copy(nli, tmp_path / "mine.csv"))


ENCODE = """
import json, sys, torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel
from minicse import SentenceEncoder
texts = ["A man is playing a guitar.", "YMCA in South Australia", "a cat"]
out = {}
for name in sys.argv[1:]:
    mine = SentenceEncoder.from_pretrained(name).encode(texts, precision="fp32")
    released = "simcse" in name  # only pytorch_model.bin on main
    file = "pytorch_model.bin" if released else "model.safetensors"
    file = hf_hub_download(name, file)
    weights = torch.load(file, weights_only=True) if released else load_file(file)
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    model = BertModel(BertConfig.from_pretrained(name)).eval()
    model.load_state_dict({k: v for k, v in weights.items() if k[:4] != "cls."})
    tokenizer = AutoTokenizer.from_pretrained(name)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hf = model(**batch)
    ref = hf.pooler_output if "/sup-" in name else hf.last_hidden_state[:, 0]
    out[name] = (mine - ref).abs().max().item()
print(json.dumps(out))
"""


def test_from_pretrained_of_each_hub_id_equals_plain_transformers(hub_home):
    """Released SimCSE: main's .bin, pooler_output (sup) / raw [CLS] (unsup)."""
    names = [*hubcache.MODELS, *hubcache.SIMCSE]
    errors = json.loads(
        hubcache.run_offline(hub_home, "-c", ENCODE, *names).splitlines()[-1]
    )
    assert sorted(errors) == sorted(names)
    assert max(errors.values()) < 1e-5, errors


def _hub_copy(hub_home: Path, tmp_path: Path, monkeypatch, name: str) -> Path:
    """A copy of ``name``'s cache folder as this process's whole hub cache."""
    from huggingface_hub import constants

    folder = f"models--{name.replace('/', '--')}"
    shutil.copytree(hub_home / "hub" / folder, tmp_path / "hub" / folder, symlinks=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hub" / folder


def test_a_download_that_stopped_half_way_is_retried(hub_home, tmp_path, monkeypatch):
    name = hubcache.SIMCSE[1]
    folder = _hub_copy(hub_home, tmp_path, monkeypatch, name)
    assert hub.resolve_source(name) == (name, True)  # complete: from the cache
    weights = next(folder.glob("snapshots/*/pytorch_model.bin"))
    weights.resolve().unlink()  # as after a stop: config.json there, weights not
    weights.unlink()
    with pytest.raises(OSError, match="part-way.*has no model.safetensors or .*bin"):
        SentenceEncoder.from_pretrained(name)  # offline: say what is missing
    monkeypatch.setattr(hub, "hub_status", lambda: None)  # online
    assert hub.resolve_source(name) == (name, False)  # the hub completes it


def test_loading_a_bin_starts_no_conversion_download(monkeypatch, minilm_path):
    """transformers would fetch a bot PR's model.safetensors in a background thread."""
    from transformers import AutoModel

    seen, original = [], AutoModel.from_pretrained
    monkeypatch.delenv("DISABLE_SAFETENSORS_CONVERSION", raising=False)

    def spy(*args, **kwargs):
        seen.append(os.environ.get("DISABLE_SAFETENSORS_CONVERSION"))
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModel, "from_pretrained", spy)
    SentenceEncoder.from_pretrained(minilm_path)
    assert seen == ["1"] and "DISABLE_SAFETENSORS_CONVERSION" not in os.environ


def test_mtebs_stsb_has_the_genres(from_hub, data_path):
    genres = pd.DataFrame(hubcache.read_tsv(data_path / "sts/meta/stsb.test.meta.tsv"))
    frame = from_hub("genres")
    assert list(frame.genre) == list(genres.genre)
    assert list(frame.sentence1) == list(load_sts("stsb", path=data_path).sentence1)


README_SNIPPET = """
import sys
import torch
from sentence_transformers import SentenceTransformer

scope = {}
exec(compile(sys.argv[1], "README.md", "exec"), scope)  # as written, nothing changed
loaded, vectors = scope["model"], scope["vectors"]
texts = ["A man plays a guitar.", "Someone makes music."]
print("VECTORS", tuple(vectors.shape), torch.equal(loaded.encode(texts), vectors))
st = SentenceTransformer("runs/unsup-bert", device="cpu").encode(texts)
mine = loaded.encode(texts, precision="fp32")
print("ST", float((torch.from_numpy(st) - mine).abs().max()))
print("SELECTED", loaded.selected_on["dev"], loaded.selected_on["pairs"])
"""


def test_readmes_train_your_own_model_runs_as_written(
    hub_home, tmp_path, readme_blocks
):
    """README's snippet, unchanged, from a fresh folder: wiki1m and bert-base-uncased
    from the hub (the copy: wiki1m's first 11,914 lines, a tiny BERT), the paper's
    defaults (186 steps at batch 64), all seven STS tasks, then load and export."""
    (snippet,) = readme_blocks("Train your own model", "python")
    out = hubcache.run_offline(hub_home, "-c", README_SNIPPET, snippet, cwd=tmp_path)
    table = out.split("VECTORS")[0].split()  # the printed evaluate_sts table
    assert all(task in table for task in (*STS_TASKS, "avg")), out[-2000:]
    assert "VECTORS (2, 32) True" in out, out[-2000:]  # saved = trained
    assert float(out.split("ST ")[1].split()[0]) < 1e-5  # and read by ST
    assert "SELECTED stsb 1500" in out
    best = json.loads((tmp_path / "runs/unsup-bert/best.json").read_text())
    assert best["step"] in (125, 186), best  # dev every 125 steps and at the end
