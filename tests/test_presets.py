"""Presets: names, environment override, auto choice, the T4 estimate."""

from __future__ import annotations

import pytest
import torch

from minicse.config import PRESETS, get_preset


def test_every_preset_is_complete():
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.model
        assert preset.unsup["batch_size"] > 0 and preset.sup["batch_size"] > 0


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MINICSE_PRESET", "smoke")
    assert get_preset().model == "tiny"
    assert get_preset("cpu").model == "offline-minilm"


def test_auto_follows_cuda(monkeypatch):
    monkeypatch.delenv("MINICSE_PRESET", raising=False)
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert get_preset().name == expected
    assert get_preset("auto").name == expected


def test_unknown_preset_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown preset 'laptop'; choose one of"):
        get_preset("laptop")
    monkeypatch.setenv("MINICSE_PRESET", "fast")
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        get_preset()


def test_gpu_preset_budget_and_batch_512_through_grad_cache():
    from minicse import TrainConfig

    unsup = TrainConfig.from_preset("gpu", "unsup")
    assert (unsup.batch_size, unsup.max_steps, unsup.learning_rate) == (64, 3_500, 3e-5)
    full = TrainConfig.from_preset("gpu", "unsup", max_steps=None)
    assert full.max_steps is None and full.num_epochs == 1  # the paper's full epoch
    sup = TrainConfig.from_preset("gpu", "sup")
    assert (sup.batch_size, sup.grad_cache_chunk, sup.num_epochs) == (512, 128, 3)


def test_sizes_switch_keeps_the_gpu_path_at_smoke_sizes(monkeypatch):
    from minicse import TrainConfig

    monkeypatch.setenv("MINICSE_SIZES", "smoke")
    small, smoke = get_preset("gpu"), PRESETS["smoke"]
    assert (small.name, small.model, small.sizes) == (
        "gpu",
        "bert-base-uncased",
        "smoke",
    )
    rows = (small.corpus_rows, small.triplet_rows, small.sts_rows)
    assert rows == (smoke.corpus_rows, smoke.triplet_rows, smoke.sts_rows)
    assert small.size(smoke=20, cpu=30, gpu=500) == 20
    sup = TrainConfig.from_preset("gpu", "sup")  # the notebooks' call
    assert (sup.batch_size, sup.max_steps, sup.learning_rate) == (32, 10, 3e-4)
    # GradCache stays on, in as many chunks per batch as the full run's 512 / 128
    assert sup.grad_cache_chunk == 8 and sup.num_epochs == 3
    unsup = TrainConfig.from_preset("gpu", "unsup")
    assert (unsup.max_steps, unsup.eval_steps, unsup.dev_rows) == (20, 10, 200)


def test_sizes_switch_drops_settings_the_sizes_preset_leaves_to_defaults():
    at_cpu = get_preset("gpu", sizes="cpu")
    assert "max_steps" not in at_cpu.sup and at_cpu.sup["num_epochs"] == 1
    assert at_cpu.sup["grad_cache_chunk"] == 16  # batch 64 in 4 chunks
    assert at_cpu.unsup == {**PRESETS["cpu"].unsup}
    assert get_preset("gpu", sizes="gpu") is PRESETS["gpu"]
    assert PRESETS["gpu"].size(smoke=1, cpu=2, gpu=3) == 3


def test_unknown_sizes_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MINICSE_SIZES", "tiny")
    with pytest.raises(ValueError, match=r"unknown sizes \(MINICSE_SIZES\) 'tiny'"):
        get_preset("gpu")


def test_cpu_preset_rows_are_bounded_numbers():
    # the hub holds 1M sentences and 275,601 triplets: None would take them all
    cpu = PRESETS["cpu"]
    assert (cpu.corpus_rows, cpu.triplet_rows) == (11_914, 5_881)


def test_cpu_preset_takes_every_row_of_the_data_folder(data_path):
    from minicse.data import load_corpus, load_nli_triplets

    cpu = PRESETS["cpu"]
    corpus = data_path / "corpus" / "wiki1m_head.txt"
    assert len(load_corpus(path=corpus)) == cpu.corpus_rows
    assert (
        len(load_nli_triplets(data_path / "nli" / "triplets.tsv")) == cpu.triplet_rows
    )


def test_step_flops_is_what_a_training_step_computes():
    # FLOPs counted in a real step (forward, backward; GradCache: + a forward)
    from torch.utils.flop_counter import FlopCounterMode

    from minicse import TrainConfig, train_step
    from minicse.batching import make_batch
    from minicse.config import step_flops
    from minicse.encoder import tiny_encoder
    from minicse.train import make_state

    rows = [("alpha beta gamma delta",)] * 8  # no padding: 6 positions each
    for chunk, extra in ((None, 1), (4, 4 / 3)):
        encoder = tiny_encoder(mlp="train")  # shape (2, 64, 256)
        cfg = TrainConfig.unsup(
            batch_size=8, max_steps=2, device="cpu", grad_cache_chunk=chunk
        )
        state = make_state(encoder, rows, cfg)
        batch = make_batch(encoder.tokenizer, rows, 32, chunk=chunk)
        with FlopCounterMode(display=False) as counter:
            train_step(state, batch)
        expected = extra * step_flops((2, 64, 256), rows=16, tokens=6)
        # the rest is the loss's (16, 16) similarity matrix
        assert 0 < counter.get_total_flops() - expected < 1e-3 * expected


def test_gpu_runs_fit_the_t4_budget_and_the_full_run_is_one_switch():
    from minicse.config import estimate_minutes, matmul_params

    assert matmul_params(12, 768, 3072) == 84_934_656  # not bert-base's 110M
    for objective in ("unsup", "sup"):
        assert 12 < estimate_minutes("gpu", objective) <= 25
        assert estimate_minutes("gpu", objective, max_steps=None) > 60
    slower = estimate_minutes("gpu", "sup", tflops=6)  # minutes scale as 1/rate
    assert slower == pytest.approx(estimate_minutes("gpu", "sup") * 8 / 6)
    from minicse import TrainConfig

    full = TrainConfig.from_preset("gpu", "sup", max_steps=None)
    assert (full.max_steps, full.num_epochs, full.batch_size) == (None, 3, 512)
    assert 3 * (275_601 // 512) == 1_614  # the paper's steps


def test_estimate_of_a_name_ignores_minicse_sizes(monkeypatch):
    from minicse.config import estimate_minutes

    own = estimate_minutes("gpu", "unsup")
    monkeypatch.setenv("MINICSE_SIZES", "smoke")
    assert estimate_minutes("gpu", "unsup") == own
    assert estimate_minutes(get_preset("gpu"), "unsup") < own / 100


def test_tokens_per_row_match_the_data(data_path):
    import importlib.util
    from pathlib import Path

    from minicse.config import TOKENS_PER_ROW

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_estimate.py"
    spec = importlib.util.spec_from_file_location("gpu_estimate", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measured = module.measure(batches=4)
    assert measured["unsup"] == pytest.approx(TOKENS_PER_ROW["unsup"], abs=0.5)
    assert measured["dev"] == pytest.approx(TOKENS_PER_ROW["dev"], abs=0.5)
    assert measured["sup (SNLI dev/test)"] < TOKENS_PER_ROW["sup"]  # MNLI: longer


CPU_ROWS_FROM_THE_HUB = """
import json
from minicse import get_preset, load_corpus, load_nli_triplets
cpu = get_preset("cpu")
corpus = load_corpus("wiki1m", max_rows=cpu.corpus_rows)
nli = load_nli_triplets(max_rows=cpu.triplet_rows)
print(json.dumps([corpus, nli.values.tolist()]))
"""


def test_cpu_preset_takes_the_same_rows_from_the_hub(tmp_path, data_path):
    """The hub's files hold more rows than the data folder (1M lines, 275,601
    triplets); the cpu preset takes the data folder's counts from either."""
    import csv
    import io
    import json

    import hubcache

    from minicse.data import load_corpus, load_nli_triplets

    cpu = PRESETS["cpu"]
    corpus = (data_path / "corpus" / "wiki1m_head.txt").read_text(encoding="utf-8")
    corpus += "".join(f"A later hub sentence number {i}.\n" for i in range(50))
    triplets = hubcache.read_tsv(data_path / "nli" / "triplets.tsv")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sent0", "sent1", "hard_neg"])
    writer.writerows([r["sent0"], r["sent1"], r["hard_neg"]] for r in triplets)
    writer.writerows([f"p {i}", f"e {i}", f"c {i}"] for i in range(50))
    files = {
        "wiki1m_for_simcse.txt": corpus.encode(),
        "nli_for_simcse.csv": out.getvalue().encode(),
    }
    hubcache.put_repo(tmp_path / "hub", hubcache.SIMCSE_DATA, files, kind="dataset")
    hub_corpus, hub_nli = json.loads(
        hubcache.run_offline(tmp_path, "-c", CPU_ROWS_FROM_THE_HUB).splitlines()[-1]
    )
    local_corpus = load_corpus(path=data_path, max_rows=cpu.corpus_rows)
    local_nli = load_nli_triplets(data_path, max_rows=cpu.triplet_rows)
    assert hub_corpus == local_corpus  # wiki1m_head.txt: the hub's first lines
    assert hub_nli == local_nli.values.tolist()


def test_estimate_rejects_bad_input_before_counting():
    from dataclasses import replace

    from minicse.config import estimate_minutes

    with pytest.raises(ValueError, match="tflops"):
        estimate_minutes("gpu", "unsup", tflops=0)
    with pytest.raises(ValueError, match="no FLOP count for model 'roberta-base'"):
        estimate_minutes(replace(PRESETS["gpu"], model="roberta-base"))
    with pytest.raises(ValueError, match="unknown objective"):
        estimate_minutes("gpu", "both")
