"""Tests for minicse.train and minicse.checkpoint: the training loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import minicse.train as train_module
from minicse import checkpoint as ckpt
from minicse import score_sts_pairs
from minicse.config import TrainConfig, head_for
from minicse.encoder import SentenceEncoder, tiny_encoder
from minicse.train import train_sup, train_unsup

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(batch_size=8, max_steps=4, eval_steps=None, progress=False, log_every=2)


@pytest.fixture(scope="module")
def sentences(data_path: Path) -> list[str]:
    """64 distinct real sentences: 8 batches of 8."""
    lines = (data_path / "corpus" / "wiki1m_head.txt").read_text().splitlines()
    return list(dict.fromkeys(lines))[:64]


@pytest.fixture(scope="module")
def triplets(data_path: Path) -> pd.DataFrame:
    from minicse.data import load_nli_triplets

    return load_nli_triplets(data_path, max_rows=32)


def _weights(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


# -- config --------------------------------------------------------------------


def test_defaults_are_the_papers():
    unsup, sup = TrainConfig.unsup(), TrainConfig.sup()
    assert (unsup.batch_size, unsup.learning_rate, unsup.num_epochs) == (64, 3e-5, 1)
    assert (unsup.max_length, unsup.temperature, unsup.seed) == (32, 0.05, 42)
    assert (unsup.pooling, unsup.mlp, unsup.eval_steps) == ("cls", "auto", 125)
    assert head_for(unsup) == "train"  # --pooler_type cls --mlp_only_train
    assert (sup.batch_size, sup.learning_rate, sup.num_epochs) == (512, 5e-5, 3)
    assert (head_for(sup), sup.hard_negative_weight, sup.objective) == (
        "always",
        0.0,
        "sup",
    )
    assert TrainConfig() == unsup


def test_from_preset_applies_sizes_then_overrides():
    cfg = TrainConfig.from_preset("smoke", "sup", learning_rate=1e-4)
    assert (cfg.objective, cfg.batch_size, cfg.max_steps) == ("sup", 32, 10)
    assert (cfg.learning_rate, cfg.dev_rows, head_for(cfg)) == (1e-4, 200, "always")


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset 'laptop'"):
        TrainConfig.from_preset("laptop")


def test_unknown_field_lists_valid_ones():
    with pytest.raises(TypeError, match="unknown TrainConfig field.*lr_rate"):
        TrainConfig.unsup(lr_rate=1e-3)


def test_preset_keyword_points_to_from_preset(sentences):
    with pytest.raises(
        TypeError, match=r"config=TrainConfig.from_preset\('cpu', 'sup'"
    ):
        train_sup("tiny", [tuple(sentences[:3])] * 8, preset="cpu")


@pytest.mark.parametrize("value", [0, -5])
def test_eval_steps_must_be_positive(value):
    with pytest.raises(ValueError, match="eval_steps must be an int >= 1 or None"):
        TrainConfig(eval_steps=value)


def test_resume_needs_output_dir():
    with pytest.raises(ValueError, match="resume=True needs output_dir"):
        TrainConfig(resume=True)


# -- bad input: clear errors before any training starts -------------------------


@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if a run gets as far as building its optimizer."""

    def forbidden(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(train_module, "make_state", forbidden)


def test_empty_corpus(no_training):
    with pytest.raises(ValueError, match="sentences is empty"):
        train_unsup("tiny", [], **FAST)


def test_whitespace_sentences(no_training):
    with pytest.raises(ValueError, match=r"sentences\[0\] is empty or whitespace"):
        train_unsup("tiny", ["  ", "\t"], **FAST)


def test_unknown_corpus_name(no_training):
    with pytest.raises(ValueError, match="neither .wiki1m. nor a file"):
        train_unsup("tiny", "wiki2m", **FAST)


def test_triplet_with_missing_field(no_training):
    rows = [("a cat", "a feline", "a dog"), ("a car", "", "a bike")]
    with pytest.raises(ValueError, match=r"triplets\[1\] field 'sent1' is missing"):
        train_sup("tiny", rows, **FAST)


def test_triplet_with_too_few_fields(no_training):
    with pytest.raises(ValueError, match=r"triplets\[1\] must have 3 fields"):
        train_sup("tiny", [("a", "b", "c"), ("a", "b")], **FAST)


def test_dataframe_without_columns(no_training):
    frame = pd.DataFrame({"premise": ["a"], "hypothesis": ["b"]})
    with pytest.raises(ValueError, match="needs columns sent0, sent1"):
        train_sup("tiny", frame, **FAST)


def test_batch_larger_than_data(no_training):
    with pytest.raises(ValueError, match="batch_size=64 is larger than the 3"):
        train_unsup("tiny", ["a b", "c d", "e f"], batch_size=64, progress=False)


def test_eval_steps_zero_in_call(no_training):
    with pytest.raises(ValueError, match="eval_steps"):
        train_unsup("tiny", ["a b"] * 8, batch_size=4, eval_steps=0)


def test_bad_model_type(no_training):
    with pytest.raises(TypeError, match="model must be a SentenceEncoder"):
        train_unsup(42, ["a b"] * 8, **FAST)


# -- training ------------------------------------------------------------------


def test_smoke_preset_lowers_the_loss_quickly(data_path):
    from minicse import get_preset
    from minicse.data import load_corpus

    preset = get_preset("smoke")
    texts = load_corpus(path=data_path, max_rows=preset.corpus_rows)
    start = time.perf_counter()
    encoder = train_unsup(
        preset.model,
        texts,
        config=TrainConfig.from_preset("smoke"),
        log_every=5,
        progress=False,
    )
    seconds = time.perf_counter() - start
    losses = [r["loss"] for r in encoder.history if "loss" in r]
    devs = [r["dev"] for r in encoder.history if "dev" in r]
    print(
        f"smoke: loss {losses[0]:.3f} -> {losses[-1]:.3f}, dev {devs}, {seconds:.1f} s"
    )
    assert losses[-1] < losses[0]
    assert len(devs) == 2 and encoder.history[-1]["step"] == 20
    if os.getloadavg()[0] <= os.cpu_count():  # wall time means little when shared
        assert seconds < 30


def test_returns_best_model_and_writes_it(sentences, tmp_path):
    encoder = train_unsup(
        "tiny",
        sentences,
        batch_size=8,
        max_steps=4,
        eval_steps=2,
        dev_rows=40,
        output_dir=str(tmp_path),
        progress=False,
    )
    assert isinstance(encoder, SentenceEncoder)
    assert [r["step"] for r in encoder.history if "dev" in r] == [2, 4]
    saved = SentenceEncoder.load(tmp_path)
    texts = sentences[:5]
    torch.testing.assert_close(saved.encode(texts), encoder.encode(texts))
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint-4"


def test_worse_model_never_replaces_the_best(sentences, tmp_path, monkeypatch):
    scores = iter([50.0, 40.0, 45.0, 30.0])
    monkeypatch.setattr(
        train_module, "sts_dev_metrics", lambda *a, **k: {"dev": next(scores)}
    )
    encoder = train_unsup(
        "tiny",
        sentences,
        batch_size=8,
        max_steps=4,
        eval_steps=1,
        output_dir=str(tmp_path),
        progress=False,
    )
    best = (tmp_path / "best.json").read_text()
    assert '"step": 1' in best and '"dev": 50.0' in best
    kept = SentenceEncoder.load(tmp_path)  # the best model, saved once
    _assert_same(_weights(kept), {k: v.cpu() for k, v in _weights(encoder).items()})


def test_the_best_model_is_written_with_checkpoints_not_at_every_new_best(
    sentences, tmp_path, monkeypatch
):
    """Each new best costs a model on disk only at the next checkpoint (a Drive)."""
    scores = iter([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 55.0, 45.0])
    monkeypatch.setattr(
        train_module, "sts_dev_metrics", lambda *a, **k: {"dev": next(scores)}
    )
    steps, real = [], ckpt.save_best_model
    monkeypatch.setattr(
        ckpt,
        "save_best_model",
        lambda enc, out, info: steps.append(info["step"]) or real(enc, out, info),
    )
    encoder = train_unsup(
        "tiny",
        sentences,
        **{**FAST, "max_steps": 8, "eval_steps": 1, "save_steps": 4},
        output_dir=str(tmp_path),
    )
    assert steps == [4, 6]  # six new bests, two writes: at checkpoints 4 and 8
    kept = SentenceEncoder.load(tmp_path)
    _assert_same(_weights(kept), {k: v.cpu() for k, v in _weights(encoder).items()})
    assert '"step": 6' in (tmp_path / "best.json").read_text()


def test_sup_accepts_triplets_pairs_and_frames(triplets):
    rows = list(triplets.itertuples(index=False, name=None))
    for data in (triplets, rows, [row[:2] for row in rows]):
        encoder = train_sup("tiny", data, **{**FAST, "max_steps": 2})
        assert encoder.history[-1]["step"] == 2
        assert encoder.mlp == "always"


def test_grad_cache_gives_the_plain_step(sentences):
    def run(**extra):
        encoder = tiny_encoder(mlp="train")
        for module in encoder.modules():  # no dropout: both paths see equal inputs
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        # fp32 explicitly: "auto" is bf16 on bf16 CPUs, where chunking changes the
        # rounding (see test_grad_cache_under_bf16_is_close_to_the_plain_step).
        config = {**FAST, "max_steps": 2, "log_every": 1, "precision": "fp32", **extra}
        encoder = train_unsup(encoder, sentences, **config)
        return [r["loss"] for r in encoder.history], _weights(encoder)

    (plain_losses, plain), (cached_losses, cached) = run(), run(grad_cache_chunk=3)
    assert cached_losses == pytest.approx(plain_losses, rel=1e-5)
    for key in plain:  # chunks are padded separately: float noise, Adam-amplified
        torch.testing.assert_close(cached[key], plain[key], atol=1e-5, rtol=1e-4)


def _no_dropout_tiny() -> SentenceEncoder:
    encoder = tiny_encoder(mlp="train")
    for module in encoder.modules():  # no dropout: every grouping sees equal inputs
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return encoder


_REAL_STEP = train_module.train_step


def _on_optimizer_step(state, hook):
    """Call ``hook(state)`` just before each optimizer step (gradients still set)."""
    real = state.optimizer.step

    def step(*args, **kwargs):
        hook(state)
        return real(*args, **kwargs)

    state.optimizer.step = step


def _first_step(monkeypatch, train, data, **config):
    """Loss and gradients of step 1 (captured just before the optimizer step)."""
    seen = {}

    def capture(state):
        seen["grads"] = {
            name: p.grad.clone() for name, p in state.encoder.named_parameters()
        }

    def train_step(state, batch):
        seen["batch"] = batch
        _on_optimizer_step(state, capture)
        return _REAL_STEP(state, batch)

    monkeypatch.setattr(train_module, "train_step", train_step)
    config = {**FAST, "max_steps": 1, "log_every": 1, **config}
    encoder = train(_no_dropout_tiny(), data, device="cpu", **config)
    return encoder.history[0]["loss"], seen


@pytest.mark.parametrize("objective", ["unsup", "sup"])
def test_length_groups_give_the_same_step(objective, sentences, triplets, monkeypatch):
    train, data = (
        (train_unsup, sentences) if objective == "unsup" else (train_sup, triplets)
    )
    # fp32 explicitly ("auto" is bf16 on bf16 CPUs): see the bf16 twin at the end.
    fp32 = {"precision": "fp32"}
    loss1, one = _first_step(monkeypatch, train, data, length_groups=1, **fp32)
    loss3, three = _first_step(monkeypatch, train, data, length_groups=3, **fp32)
    assert (len(one["batch"].pieces), one["batch"].restore) == (1, None)
    widths = [p["input_ids"].shape[1] for p in three["batch"].pieces]
    full = one["batch"].pieces[0]["input_ids"].shape[1]
    assert len(widths) == 3 and widths == sorted(widths) and widths[0] < full
    assert loss3 == pytest.approx(loss1, rel=1e-5, abs=1e-5)
    assert one["grads"].keys() == three["grads"].keys() and len(one["grads"]) > 10
    for name, grad in one["grads"].items():
        torch.testing.assert_close(three["grads"][name], grad, atol=1e-5, rtol=1e-4)


def test_length_groups_look_up_the_words_once(sentences):
    encoder, lookups = tiny_encoder(), []
    table = encoder.model.get_input_embeddings()
    table.register_forward_hook(lambda module, args, out: lookups.append(args[0]))
    seen = []
    encoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs), with_kwargs=True
    )
    config = {**FAST, "max_steps": 1, "precision": "fp32"}
    train_unsup(encoder, sentences, length_groups=3, **config)
    assert len(seen) == 3 and all("input_ids" not in kw for kw in seen)
    assert len(lookups) == 1  # one lookup, so one dense (vocab, E) gradient
    rows = sum(kw["attention_mask"].numel() for kw in seen)
    assert lookups[0].shape == (rows,)  # every position of every piece
    for kw in seen:
        assert kw["inputs_embeds"].shape == (
            *kw["attention_mask"].shape,
            table.embedding_dim,
        )


def test_forward_takes_ids_or_their_vectors_not_both():
    encoder = tiny_encoder().eval()
    batch = encoder.tokenize(["a cat sat", "a dog"])
    words = encoder.model.get_input_embeddings()(batch["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(inputs_embeds=words, attention_mask=batch["attention_mask"]),
            encoder(**batch),
        )
    with pytest.raises(TypeError, match="input_ids or inputs_embeds"):
        encoder(**batch, inputs_embeds=words)
    with pytest.raises(TypeError, match="attention_mask"):
        encoder(input_ids=batch["input_ids"])


def test_length_groups_auto_and_where_they_are_off():
    from minicse.distributed import DistInfo

    encoder, cpu = tiny_encoder(), DistInfo()
    cuda = DistInfo(device=torch.device("cuda"))
    two = DistInfo(world_size=2)
    assert train_module.length_groups(TrainConfig.unsup(), cpu, encoder) == 8
    assert train_module.length_groups(TrainConfig.unsup(), cuda, encoder) == 1
    assert (
        train_module.length_groups(TrainConfig.unsup(length_groups=2), two, encoder)
        == 1
    )
    config = TrainConfig.unsup(length_groups=2, grad_cache_chunk=4)
    assert train_module.length_groups(config, cpu, encoder) == 1
    assert (
        train_module.length_groups(TrainConfig.unsup(length_groups=5), cpu, encoder)
        == 5
    )


@pytest.mark.parametrize(
    "value, error",
    [(0, ValueError), (-2, ValueError)]
    + [(v, TypeError) for v in (1.5, True, "4", "AUTO", None)],
)
def test_length_groups_must_be_positive_int_or_auto(value, error):
    with pytest.raises(error, match="length_groups must be an int >= 1 or 'auto'"):
        TrainConfig.unsup(length_groups=value)


def test_bf16_autocast_runs(sentences):
    encoder = train_unsup("tiny", sentences, precision="bf16", **FAST)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in encoder.history)


# -- nothing lost: NaN guard, Ctrl-C, resume, SIGKILL ----------------------------


def test_nan_loss_stops_and_keeps_the_best(sentences, tmp_path, monkeypatch):
    calls, real = {"n": 0}, train_module.info_nce_loss
    scores = iter(range(10, 100, 10))  # every evaluation would be a new best

    def nan_from_step_4(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 4 else loss

    monkeypatch.setattr(train_module, "info_nce_loss", nan_from_step_4)
    monkeypatch.setattr(
        train_module, "sts_dev_metrics", lambda *a, **k: {"dev": float(next(scores))}
    )
    with pytest.raises(FloatingPointError, match="at step 4.*checkpoint-3"):
        train_unsup(
            "tiny",
            sentences,
            batch_size=8,
            max_steps=8,
            eval_steps=1,
            output_dir=str(tmp_path),
            progress=False,
        )
    assert '"step": 3' in (tmp_path / "best.json").read_text()
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint-3"
    best = SentenceEncoder.load(tmp_path)
    assert all(torch.isfinite(p).all() for p in best.parameters())


def test_ctrl_c_saves_returns_and_resumes_exactly(
    sentences, tmp_path, monkeypatch, capsys
):
    reference = train_unsup(tiny_encoder(), sentences, **FAST)
    real, calls = train_module.train_step, {"n": 0}

    def interrupt_third(state, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(state, batch)

    monkeypatch.setattr(train_module, "train_step", interrupt_third)
    partial = train_unsup(tiny_encoder(), sentences, **FAST)  # no output_dir given
    message = capsys.readouterr().err
    assert "interrupted at step 2/4" in message and "resume=True" in message
    folder = Path(partial.history[-1]["interrupted"])
    assert folder.name == "checkpoint-2" and (folder / "state.pt").is_file()
    monkeypatch.setattr(train_module, "train_step", real)
    resumed = train_unsup(
        tiny_encoder(), sentences, output_dir=str(folder.parent), resume=True, **FAST
    )
    _assert_same(_weights(resumed), _weights(reference))  # bitwise


def test_resume_refuses_another_run(sentences, tmp_path):
    train_unsup("tiny", sentences, output_dir=str(tmp_path), save_steps=2, **FAST)
    with pytest.raises(ValueError, match="resume needs the same data, batch_size"):
        train_unsup(
            "tiny",
            sentences,
            output_dir=str(tmp_path),
            resume=True,
            **{**FAST, "batch_size": 4},
        )


def _two_checkpoints(folder):
    """A tiny run's state with checkpoints at steps 2, 4 and 6 (the newest two kept)."""
    from minicse.train import make_state

    cfg = TrainConfig.unsup(batch_size=4, max_steps=6, device="cpu")
    state = make_state(tiny_encoder(), [("a",)] * 8, cfg)
    for step in (2, 4, 6):
        state.step = step
        ckpt.save(state, folder)
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == [
        "checkpoint-4",
        "checkpoint-6",
    ]
    state.step = 0
    return state


@pytest.mark.parametrize("name", ["model.safetensors", "state.pt", "config.json"])
def test_a_damaged_checkpoint_falls_back_to_the_previous(tmp_path, name, monkeypatch):
    state = _two_checkpoints(tmp_path)
    monkeypatch.setattr(ckpt, "set_rng_state", lambda rng: None)  # no RNG saved here
    file = tmp_path / "checkpoint-6" / name
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.warns(UserWarning, match=f"{name} is .*resuming from checkpoint-4"):
        assert ckpt.resume(state, tmp_path).name == "checkpoint-4"
    assert state.step == 4
    assert (tmp_path / "checkpoint-6.damaged" / name).is_file()  # kept, not deleted
    damaged = tmp_path / "checkpoint-4" / name
    damaged.write_bytes(damaged.read_bytes()[:10])
    with pytest.raises(ckpt.DamagedFileError, match="no earlier checkpoint is left"):
        ckpt.resume(state, tmp_path)
    assert (tmp_path / "checkpoint-4.damaged").is_dir()


def test_half_written_checkpoint_is_ignored(tmp_path):
    (tmp_path / ".checkpoint-9.tmp").mkdir()
    (tmp_path / "checkpoint-7").mkdir()  # no state.pt: incomplete
    assert ckpt.latest_checkpoint(tmp_path) is None


_KILLED_RUN = """
import sys, time
import minicse.train as loop
real = loop.train_step
def slow(state, batch):
    time.sleep(0.4)
    return real(state, batch)
loop.train_step = slow
from minicse.train import train_unsup
sentences = open(sys.argv[1]).read().splitlines()
train_unsup("tiny", sentences, output_dir=sys.argv[2], **eval(sys.argv[3]))
"""


def test_sigkill_then_resume_matches_an_uninterrupted_run(sentences, tmp_path):
    """Bitwise equal weights on CPU (same seed, same thread count)."""
    config = dict(
        batch_size=8,
        max_steps=10,
        eval_steps=4,
        save_steps=2,
        dev_rows=40,
        progress=False,
    )
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences) + "\n")
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(corpus), str(killed), repr(config)],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 240
        while ckpt.latest_checkpoint(killed) is None:
            assert process.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    step = int(ckpt.latest_checkpoint(killed).name.split("-")[1])
    assert process.returncode == -signal.SIGKILL and step < 10
    resumed = train_unsup(
        "tiny", sentences, output_dir=str(killed), resume=True, **config
    )
    straight = train_unsup("tiny", sentences, output_dir=str(tmp_path / "ok"), **config)
    _assert_same(_weights(resumed), _weights(straight))  # the selected best model
    last = "checkpoint-10/model.safetensors"
    _assert_same(load_file(str(killed / last)), load_file(str(tmp_path / "ok" / last)))
    history = [r for r in resumed.history if "dev" in r]
    assert [r["step"] for r in history] == [4, 8, 10]


# -- several processes -----------------------------------------------------------


def _run_launcher(command: list[str]) -> subprocess.CompletedProcess:
    """Run a (multi-process) training command offline, one thread per process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def _train_two_ranks(launcher: list[str], sentences, tmp_path):
    """``launcher ... -m minicse train-unsup tiny`` (3 steps); checks the one model.

    Returns the finished process, after checking it exited 0, that rank 0 alone
    reported, and that one model (+ its checkpoint) was saved and loads.
    """
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences) + "\n")
    out = tmp_path / "out"
    command = [
        sys.executable,
        *launcher,
        "-m",
        "minicse",
        "train-unsup",
        "tiny",
        "--data",
        str(corpus),
        "--batch-size",
        "8",
        "--max-steps",
        "3",
        "--eval-steps",
        "3",
        "--dev-rows",
        "40",
        "--output-dir",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
    ]
    result = _run_launcher(command)
    assert result.returncode == 0, result.stderr[-3000:]
    # Two 1-process runs would both evaluate and report; rank 0 of 2 alone does.
    assert result.stdout.count("best stsb Spearman") == 1, result.stdout
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]
    assert len(list(out.rglob("modules.json"))) == 2  # the model + checkpoint copy
    SentenceEncoder.load(out).encode(["a sentence"])
    return result


@pytest.mark.slow
def test_two_process_gloo_run_saves_one_model(sentences, tmp_path):
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    _train_two_ranks(launcher, sentences, tmp_path)


# -- results on real data (the offline MiniLM; minutes) ---------------------------


def _dev_score(encoder: SentenceEncoder) -> float:
    from minicse.data import load_sts
    from minicse.evaluate import score_sts_pairs

    dev = load_sts("stsb", "dev")
    return score_sts_pairs(
        encoder,
        dev["sentence1"].tolist(),
        dev["sentence2"].tolist(),
        dev["score"].tolist(),
        batch_size=128,
    )


@pytest.mark.slow
def test_cpu_preset_unsup_lifts_minilm_cls_by_four_points(data_path):
    from minicse import get_preset
    from minicse.data import load_corpus

    preset = get_preset("cpu")
    config = TrainConfig.from_preset("cpu", "unsup", progress=False)
    model = SentenceEncoder.from_pretrained(  # no max_length: dev is untruncated
        preset.model, pooling=config.pooling, mlp=head_for(config)
    )
    before = _dev_score(model)
    texts = load_corpus(path=data_path, max_rows=preset.corpus_rows)
    start = time.perf_counter()
    model = train_unsup(model, texts, config=config)
    seconds = time.perf_counter() - start
    devs = {r["step"]: round(r["dev"], 2) for r in model.history if "dev" in r}
    after = _dev_score(model)
    print(
        f"\ncpu unsup: STS-B dev {before:.2f} -> {after:.2f} (by step: {devs}); "
        f"{config.max_steps} steps of {config.batch_size} in {seconds:.0f} s"
    )
    assert before == pytest.approx(79.7, abs=1.5)
    # 100 steps: +4.17, +4.43 and +4.52 with three initialisations of the MLP head
    assert after - before >= 4.0


@pytest.mark.slow
def test_cpu_preset_sup_improves_on_the_starting_model(data_path):
    from minicse import get_preset
    from minicse.data import load_nli_triplets

    preset = get_preset("cpu")
    config = TrainConfig.from_preset("cpu", "sup", progress=False)
    model = SentenceEncoder.from_pretrained(preset.model, pooling=config.pooling)
    before = _dev_score(model)  # the starting CLS model, no MLP head yet
    triplets = load_nli_triplets(data_path, max_rows=preset.triplet_rows)
    start = time.perf_counter()
    model = train_sup(preset.model, triplets, config=config)
    seconds = time.perf_counter() - start
    devs = {r["step"]: round(r["dev"], 2) for r in model.history if "dev" in r}
    after = _dev_score(model)
    print(
        f"\ncpu sup: STS-B dev {before:.2f} -> {after:.2f} (by step: {devs}); "
        f"{len(triplets)} triplets, batch {config.batch_size}, {seconds:.0f} s"
    )
    assert after > before


# -- fp16 autocast with a GradScaler (torch runs both on CPU too) -----------------


def _scaler_state(output_dir: Path) -> dict:
    """The GradScaler state in the latest checkpoint (``{}`` from a disabled one)."""
    folder = ckpt.latest_checkpoint(output_dir)
    return torch.load(folder / "state.pt", weights_only=True)["scaler"]


def test_fp16_trains_with_an_enabled_grad_scaler(sentences, tmp_path):
    encoder, dtypes = tiny_encoder(), set()
    linear = next(m for m in encoder.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    encoder = train_unsup(
        encoder, sentences, precision="fp16", output_dir=str(tmp_path), **FAST
    )
    losses = torch.tensor([r["loss"] for r in encoder.history])
    assert len(losses) == 2 and losses.isfinite().all()
    assert dtypes == {torch.float16}  # autocast really ran the matmuls in fp16
    scaler = _scaler_state(tmp_path)
    assert scaler, "GradScaler was disabled"
    assert 1.0 <= scaler["scale"] <= 2.0**16  # the default 2**16, halved per skip
    assert all(p.isfinite().all() for p in encoder.parameters())


def test_fp16_resume_restores_the_grad_scaler(sentences, tmp_path, monkeypatch):
    """Bitwise equal weights and scaler state after a Ctrl-C at step 2 + resume."""
    config = {**FAST, "precision": "fp16"}
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    reference = train_unsup(
        tiny_encoder(), sentences, output_dir=str(straight), **config
    )
    real, calls = train_module.train_step, {"n": 0}

    def interrupt_third(state, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(state, batch)

    monkeypatch.setattr(train_module, "train_step", interrupt_third)
    partial = train_unsup(tiny_encoder(), sentences, output_dir=str(cut), **config)
    assert Path(partial.history[-1]["interrupted"]).name == "checkpoint-2"
    assert _scaler_state(cut), "the checkpoint lost the GradScaler state"
    monkeypatch.setattr(train_module, "train_step", real)
    resumed = train_unsup(
        tiny_encoder(), sentences, output_dir=str(cut), resume=True, **config
    )
    _assert_same(_weights(resumed), _weights(reference))  # bitwise
    assert _scaler_state(cut) == _scaler_state(straight)  # scale and growth tracker


class _OverflowingScaler(torch.amp.GradScaler):
    """Starts at scale 2**40 (fp16 gradients overflow) and backs off to 1 at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, init_scale=2.0**40, backoff_factor=2.0**-40, **kwargs)


@pytest.mark.parametrize("max_grad_norm", [None, 1.0])
def test_fp16_overflow_skips_the_step_not_the_run(
    sentences, tmp_path, monkeypatch, max_grad_norm
):
    """Inf gradients: the scaler skips step 1 (weights untouched), the loss stays
    finite, so neither the NaN guard nor the checkpoint's weight check fires."""
    monkeypatch.setattr(torch.amp, "GradScaler", _OverflowingScaler)
    encoder = tiny_encoder()
    initial, moved = _weights(encoder), []

    def train_step(state, batch):
        loss = _REAL_STEP(state, batch)
        weights = state.encoder.state_dict()
        moved.append(any(not torch.equal(weights[k], v) for k, v in initial.items()))
        return loss

    monkeypatch.setattr(train_module, "train_step", train_step)
    encoder = train_unsup(
        encoder,
        sentences,
        precision="fp16",
        max_grad_norm=max_grad_norm,
        output_dir=str(tmp_path),
        **FAST,
    )
    assert moved == [False, True, True, True]
    assert torch.tensor([r["loss"] for r in encoder.history]).isfinite().all()
    assert [r["step"] for r in encoder.history] == [2, 4]
    scaler = _scaler_state(tmp_path)
    assert (scaler["scale"], scaler["_growth_tracker"]) == (1.0, 3)  # 1 skip, 3 steps
    assert all(p.isfinite().all() for p in encoder.parameters())


# -- accelerate launch -----------------------------------------------------------


@pytest.mark.slow
def test_accelerate_launch_runs_two_ranks_and_saves_one_model(sentences, tmp_path):
    """``accelerate launch --multi_gpu`` starts 2 gloo processes on a CPU-only
    machine (``--cpu --num_processes 2`` starts just one)."""
    import socket

    pytest.importorskip("accelerate")
    logs = tmp_path / "logs"
    with socket.socket() as probe:  # a free port for the rank-0 rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
        "--tee",
        "3",
        "--log_dir",
        str(logs),
    ]
    result = _train_two_ranks(launcher, sentences, tmp_path)
    ranks = sorted(p.parent.name for p in logs.rglob("stdout.log"))
    assert ranks == ["0", "1"], ranks  # one log folder per process
    assert result.stdout.count("model saved to") == 1, result.stdout


# -- bf16 (what "auto" runs on bf16 CPUs and GPUs): bf16 tolerances ----------------
# bf16 keeps 8 mantissa bits (2**-8 ~ 4e-3 a rounding). At BERT's init the tiny model
# embeds every sentence alike and bf16 swamps its gradients (see ``spread_tiny``),
# so these runs start from the spread-out tiny model. Measured on an AVX2 CPU, step
# 1 in bf16 vs fp32: loss within 2.4e-3 relative, gradients (||g - g32|| / ||g32||,
# all parameters) 0.026-0.032 (fp32 regroupings: 2e-6); bf16 length groups or
# GradCache vs one bf16 forward: loss 2e-4, gradients 0.004-0.024. Bounds: loss
# 1e-2 relative (4x), gradients 0.1 (25 x 2**-8, 3x the worst measured); a lost
# group or mis-ordered rows is off by far more (> 1 in test_gradcache.py).
BF16_LOSS, BF16_GRADS = 1e-2, 0.1


def _relative_error(grads: dict, reference: dict) -> float:
    """``||g - ref|| / ||ref||`` over all parameters together (scale-free)."""
    diff = sum(((grads[n] - ref) ** 2).sum() for n, ref in reference.items())
    return float(diff.sqrt() / sum((ref**2).sum() for ref in reference.values()).sqrt())


@pytest.fixture(scope="module")
def first_step(sentences, triplets, spread_tiny):
    """``get(objective, **config)``: step 1's loss, gradients and forward widths.

    Memoized, so tests share runs. Gradients come from parameter hooks (the last
    accumulation of step 1), widths from a forward hook (training forwards only).
    """
    done = {}

    def get(objective, **config):
        key = (objective, tuple(sorted(config.items())))
        if key not in done:
            train, data = {
                "unsup": (train_unsup, sentences),
                "sup": (train_sup, triplets),
            }[objective]
            encoder, grads, widths = spread_tiny(mlp="train"), {}, []

            def record_width(module, args, kwargs):
                if torch.is_grad_enabled():  # not GradCache's no-grad first pass
                    widths.append(kwargs["attention_mask"].shape[1])

            for name, param in encoder.named_parameters():
                param.register_post_accumulate_grad_hook(
                    lambda p, name=name: grads.__setitem__(name, p.grad.clone())
                )
            encoder.model.register_forward_pre_hook(record_width, with_kwargs=True)
            config = {**FAST, "max_steps": 1, "log_every": 1} | config
            encoder = train(encoder, data, device="cpu", **config)
            done[key] = encoder.history[0]["loss"], grads, widths
        return done[key]

    return get


@pytest.mark.parametrize("objective", ["unsup", "sup"])
def test_length_groups_under_bf16_are_close_to_one_forward(objective, first_step):
    loss32, grads32, _ = first_step(objective, precision="fp32", length_groups=1)
    loss1, one, widths1 = first_step(objective, precision="bf16", length_groups=1)
    loss3, three, widths3 = first_step(objective, precision="bf16", length_groups=3)
    assert len(widths1) == 1 and len(widths3) == 3 and max(widths3) == widths1[0]
    assert one.keys() == three.keys() == grads32.keys() and len(one) > 10
    assert loss1 == pytest.approx(loss32, rel=BF16_LOSS)
    assert loss3 == pytest.approx(loss1, rel=BF16_LOSS)
    assert _relative_error(one, grads32) < BF16_GRADS
    assert _relative_error(three, grads32) < BF16_GRADS
    assert _relative_error(three, one) < BF16_GRADS


def test_grad_cache_under_bf16_is_close_to_the_plain_step(first_step):
    loss32, grads32, _ = first_step("unsup", precision="fp32", length_groups=1)
    loss1, plain, _ = first_step("unsup", precision="bf16", length_groups=1)
    cached_loss, cached, widths = first_step(
        "unsup", precision="bf16", grad_cache_chunk=3
    )
    assert len(widths) >= 3  # 8 sentences (16 views) in chunks of 3: really chunked
    assert cached.keys() == plain.keys() == grads32.keys()
    assert cached_loss == pytest.approx(loss1, rel=BF16_LOSS)
    assert cached_loss == pytest.approx(loss32, rel=BF16_LOSS)
    assert _relative_error(cached, grads32) < BF16_GRADS
    assert _relative_error(cached, plain) < BF16_GRADS


def test_grad_cache_under_fp16_matches_the_plain_fp16_step(first_step):
    # A T4's autocast is fp16: GradCache takes G from the scaled loss, as a plain
    # scaler.scale(loss).backward() does, so both give the same (scaled) gradients;
    # an unscaled G would be 2**16 times too small (relative error 1).
    loss1, plain, _ = first_step("sup", precision="fp16", length_groups=1)
    cached_loss, cached, widths = first_step(
        "sup", precision="fp16", grad_cache_chunk=3
    )
    assert len(widths) >= 3  # really chunked
    assert cached.keys() == plain.keys() and len(plain) > 10
    assert cached_loss == pytest.approx(loss1, rel=BF16_LOSS)  # logged unscaled
    assert _relative_error(cached, plain) < BF16_GRADS


# -- minicse 0.2: SimCSE's semantics ---------------------------------------------


LONG = " ".join(["a long sentence that keeps going"] * 12)  # ~ 60 tokens


def test_training_length_never_becomes_the_encoders(sentences, tmp_path):
    """SimCSE truncates training inputs at 32 tokens, never evaluation inputs."""
    encoder = train_unsup("tiny", sentences, output_dir=str(tmp_path), **FAST)
    assert encoder.max_length is None
    assert len(encoder.tokenize([LONG])["input_ids"][0]) > 32
    saved = SentenceEncoder.load(tmp_path)
    assert saved.max_length is None
    st = (tmp_path / "sentence_bert_config.json").read_text()
    assert '"max_seq_length": 512' in st


def test_dev_selection_sees_untruncated_sentences(sentences, monkeypatch):
    import minicse.encoder as encoder_module

    limits, real = [], encoder_module.tokenize

    def tokenize(tokenizer, texts, max_length):  # encode()'s only, not training's
        limits.append(max_length)
        return real(tokenizer, texts, max_length)

    monkeypatch.setattr(encoder_module, "tokenize", tokenize)
    train_unsup("tiny", sentences, **{**FAST, "eval_steps": 2, "dev_rows": 8})
    assert limits and set(limits) == {512}  # the model's limit, not max_length=32


@pytest.mark.parametrize(
    ("pooling", "objective", "head"),
    [
        ("cls", "unsup", "train"),
        ("cls", "sup", "always"),
        ("cls_before_pooler", "unsup", None),
        ("cls_before_pooler", "sup", None),
        ("mean", "unsup", None),
        ("first_last_mean", "sup", None),
    ],
)
def test_the_mlp_exists_only_where_simcse_has_it(pooling, objective, head):
    cfg = TrainConfig.from_preset("smoke", objective, pooling=pooling)
    assert head_for(cfg) == head
    train = train_unsup if objective == "unsup" else train_sup
    data = [f"sentence number {i}" for i in range(16)]
    if objective == "sup":
        data = [(t, t + " again", "not " + t) for t in data]
    encoder = train("tiny", data, pooling=pooling, **{**FAST, "max_steps": 1})
    assert (encoder.pooling, encoder.mlp) == (pooling, head)
    assert (encoder.mlp_head is None) == (head is None)


def test_a_head_on_other_poolers_only_when_asked(sentences):
    encoder = train_unsup("tiny", sentences, pooling="mean", mlp="train", **FAST)
    assert (encoder.pooling, encoder.mlp) == ("mean", "train")
    with pytest.raises(ValueError, match="cls_before_pooler.*cannot take mlp"):
        TrainConfig(pooling="cls_before_pooler", mlp="train")


def test_dev_evaluation_follows_the_runs_precision(sentences, monkeypatch):
    precisions = []
    real_encode = SentenceEncoder.encode

    def encode(self, texts, *args, precision="auto", **kwargs):
        precisions.append(precision)
        return real_encode(self, texts, *args, precision=precision, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "encode", encode)
    config = {**FAST, "eval_steps": 2, "dev_rows": 8}
    train_unsup("tiny", sentences, precision="fp32", **config)
    assert precisions and set(precisions) == {"fp32"}


def test_resume_with_another_number_of_processes_is_refused(sentences, tmp_path):
    out = tmp_path / "out"
    train_unsup("tiny", sentences, output_dir=str(out), save_steps=2, **FAST)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences) + "\n")
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command = [sys.executable, *launcher, "-m", "minicse", "train-unsup", "tiny"]
    command += ["--data", str(corpus), "--batch-size", "8", "--max-steps", "4"]
    command += ["--output-dir", str(out), "--resume", "--no-progress", "--device"]
    command += ["cpu", "--eval-steps", "100", "--dev-rows", "8"]
    result = _run_launcher(command)
    assert result.returncode != 0
    assert "'world_size': 1" in result.stderr and "number of processes" in result.stderr


def test_official_clip_matches_a_scaled_gradient():
    """SimCSE's N-GPU gradient is 1/N of the true one. Under AdamW the scale
    cancels (up to eps) but the clip does not: clipping the 1/N gradient at 1.0
    is clipping the true one at N, as TrainConfig.max_grad_norm says."""
    n, norms = 4, []

    def run(scale: float, clip: float) -> torch.Tensor:
        torch.manual_seed(0)
        net = torch.nn.Linear(8, 8)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
        x, target = torch.randn(32, 8), torch.randn(32, 8)
        for _ in range(20):
            loss = 5 * scale * ((net(x) - target) ** 2).mean()  # |g| in (1, 4)
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), clip)))
            opt.step()
            opt.zero_grad()
        return net.weight.detach()

    official, matched = run(1 / n, 1.0), run(1.0, float(n))
    torch.testing.assert_close(official, matched, rtol=1e-4, atol=1e-5)  # Adam's eps
    true_norms = norms[20:]  # between 1 and N: minicse's 1.0 clips, SimCSE's does not
    assert all(1.0 < g < n for g in true_norms), true_norms
    assert not torch.allclose(run(1.0, 1.0), official, atol=1e-3)


def test_output_dir_that_is_a_file_fails_before_training(tmp_path, no_training):
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(ValueError, match="output_dir=.*is an existing file"):
        train_unsup("tiny", ["a b", "c d"], output_dir=str(file), **FAST)


def test_resume_without_a_checkpoint_is_refused(tmp_path, no_training):
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        train_unsup(
            "tiny", ["a b", "c d"] * 4, output_dir=str(tmp_path), resume=True, **FAST
        )


def test_progress_bar_shows_no_dev_score_before_there_is_one(sentences, monkeypatch):
    postfixes = []
    real = train_module.tqdm

    def bar(*args, **kwargs):
        progress = real(*args, **kwargs)
        original = progress.set_postfix
        progress.set_postfix = lambda **kw: postfixes.append(kw) or original(**kw)
        return progress

    monkeypatch.setattr(train_module, "tqdm", bar)
    config = {**FAST, "eval_steps": 4, "dev_rows": 8, "log_every": 1}
    train_unsup("tiny", sentences, **config)
    before = postfixes[: next(i for i, p in enumerate(postfixes) if "dev" in p)]
    assert before and all("dev" not in p and "best" not in p for p in before)
    assert all("inf" not in str(v) for p in postfixes for v in p.values())


# ------------------------------------------- dropout, the fixed mask, dev metrics


@pytest.mark.parametrize(
    "extra,error,match",
    [
        ({"dropout": 1.0}, ValueError, r"dropout must be None or .* in \[0, 1\)"),
        ({"dropout": -0.1}, ValueError, "dropout must be"),
        ({"dropout": "0.1"}, TypeError, "dropout must be None or a number"),
        ({"fixed_mask": 1}, TypeError, "fixed_mask must be True or False"),
    ],
)
def test_dropout_and_fixed_mask_are_checked(extra, error, match):
    with pytest.raises(error, match=match):
        TrainConfig.unsup(**extra)
    with pytest.raises(ValueError, match="fixed_mask=True is an unsupervised"):
        TrainConfig.sup(fixed_mask=True)


def test_dropout_setting_reaches_every_dropout_of_the_model(sentences):
    encoder = train_unsup("tiny", sentences, **FAST, dropout=0.0)
    rates = {m.p for m in encoder.modules() if isinstance(m, torch.nn.Dropout)}
    config = encoder.model.config
    assert rates == {0.0}
    assert config.hidden_dropout_prob == config.attention_probs_dropout_prob == 0.0
    default = train_unsup("tiny", sentences, **FAST)  # None: the model's own 0.1
    assert {m.p for m in default.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}


def test_fixed_mask_is_one_pass_used_as_both_views(sentences):
    from minicse import info_nce_loss, make_batch, make_state, set_seed, train_step

    cfg = TrainConfig.unsup(
        batch_size=8, max_steps=1, eval_steps=None, precision="fp32", device="cpu",
        length_groups=1, fixed_mask=True, progress=False,
    )  # fmt: skip
    rows = [(s,) for s in sentences[:8]]
    ours, reference = tiny_encoder(mlp="train"), tiny_encoder(mlp="train")
    batch = make_batch(ours.tokenizer, rows, cfg.max_length, twice=False)
    assert batch.views == 1 and batch.pieces[0]["input_ids"].shape[0] == 8
    state = make_state(ours, rows, cfg)
    set_seed(5)
    loss = train_step(state, batch)
    set_seed(5)  # the same dropout mask: one forward pass, anchors = positives
    h = reference.train()(**batch.pieces[0])
    torch.testing.assert_close(loss, info_nce_loss(h, h, temperature=0.05).detach())
    two = make_batch(ours.tokenizer, rows, cfg.max_length)  # two masks: harder
    state = make_state(tiny_encoder(mlp="train"), rows, cfg)
    assert float(train_step(state, two)) > float(loss)


def test_fixed_mask_without_dropout_is_the_plain_step(sentences, monkeypatch):
    plain_loss, plain = _first_step(
        monkeypatch, train_unsup, sentences, precision="fp32"
    )
    fixed_loss, fixed = _first_step(
        monkeypatch, train_unsup, sentences, precision="fp32", fixed_mask=True
    )
    assert fixed["batch"].views == 1 and plain["batch"].views == 2
    assert fixed_loss == pytest.approx(plain_loss, rel=1e-6)
    for name, grad in plain["grads"].items():
        torch.testing.assert_close(fixed["grads"][name], grad, atol=1e-6, rtol=1e-5)


def test_dev_evaluations_record_alignment_and_uniformity(sentences):
    import torch.nn.functional as F

    from minicse import load_sts

    encoder = train_unsup(
        "tiny", sentences, batch_size=8, max_steps=4, eval_steps=2, dev_rows=120,
        precision="fp32", progress=False,
    )  # fmt: skip
    rows = [r for r in encoder.history if "dev" in r]
    assert [sorted(r) for r in rows] == [["alignment", "dev", "step", "uniformity"]] * 2
    best = max(rows, key=lambda r: r["dev"])  # the returned encoder holds these
    dev = load_sts("stsb", "dev", max_rows=120)
    a = F.normalize(encoder.encode(list(dev.sentence1), precision="fp32").double())
    b = F.normalize(encoder.encode(list(dev.sentence2), precision="fp32").double())
    positive = torch.tensor((dev.score > 4).to_numpy())
    assert positive.sum() > 5
    align = (a[positive] - b[positive]).norm(dim=1).pow(2).mean()  # Wang & Isola
    distinct = list(dict.fromkeys([*dev.sentence1, *dev.sentence2]))
    u = F.normalize(encoder.encode(distinct, precision="fp32").double())
    uniform = torch.pdist(u).pow(2).mul(-2).exp().mean().log()
    assert best["alignment"] == pytest.approx(float(align), rel=1e-5)
    assert best["uniformity"] == pytest.approx(float(uniform), rel=1e-5)


# ------------------------------------------ dev=: selection on any scored pairs


@pytest.fixture(scope="module")
def german_dev() -> pd.DataFrame:
    from minicse.data import load_sts

    frame = load_sts("stsb", "dev", language="de", max_rows=40)
    frame.loc[0, "sentence1"] = 'Ein "Mann", zitiert.'  # read back unquoted, as TSV
    return frame


def _dev_forms(frame: pd.DataFrame, folder: Path) -> dict:
    tsv, csv = folder / "dev.tsv", folder / "dev.csv"
    lines = ["\t".join(map(str, row)) for row in frame.itertuples(index=False)]
    tsv.write_text("\n".join(["sentence1\tsentence2\tscore", *lines]) + "\n")
    frame.assign(extra=1).to_csv(csv, index=False)  # quoted where needed
    rows = list(frame.itertuples(index=False, name=None))
    return {"frame": frame, "triples": rows, "tsv": str(tsv), "csv": csv}


@pytest.mark.parametrize("form", ["frame", "triples", "tsv", "csv"])
def test_dev_pairs_select_the_model_on_those_pairs(
    form, sentences, german_dev, tmp_path, monkeypatch
):
    """At every evaluation the history's dev score is the fp32 Spearman x100 of
    the model on exactly these pairs, computed independently."""
    dev = _dev_forms(german_dev, tmp_path)[form]
    expected, real = {}, train_module.evaluate

    def evaluate(state, pairs, bar=None):
        fp32 = SimpleNamespace(encode=partial(state.encoder.encode, precision="fp32"))
        g = german_dev
        expected[state.step] = score_sts_pairs(fp32, g.sentence1, g.sentence2, g.score)
        state.encoder.train()
        return real(state, pairs, bar)

    monkeypatch.setattr(train_module, "evaluate", evaluate)
    encoder = train_unsup(
        "tiny", sentences, **{**FAST, "eval_steps": 2}, precision="fp32", dev=dev
    )
    got = {r["step"]: r["dev"] for r in encoder.history if "dev" in r}
    assert got.keys() == expected.keys() == {2, 4}
    assert got == pytest.approx(expected, abs=1e-6)
    name = str(dev) if form in ("tsv", "csv") else "pairs"
    assert encoder.selected_on["dev"] == name and encoder.selected_on["pairs"] == 40


def test_dev_stsb_de_selects_on_german_dev(sentences, german_dev, monkeypatch):
    from minicse.data import load_sts

    seen = []

    def metrics(encoder, s1, s2, scores, **kwargs):
        seen.append([list(s1), list(s2), list(scores)])
        return {"dev": 50.0}

    monkeypatch.setattr(train_module, "sts_dev_metrics", metrics)
    encoder = train_unsup(
        "tiny", sentences, **{**FAST, "eval_steps": 4}, dev="stsb-de", dev_rows=30
    )
    german = load_sts("stsb", "dev", language="de", max_rows=30)
    want = [german[c].tolist() for c in ("sentence1", "sentence2", "score")]
    assert seen == [want]
    assert encoder.selected_on["dev"] == "stsb-de"
    assert encoder.selected_on["pairs"] == 30


def test_dev_none_evaluates_nothing_and_keeps_the_last_weights(sentences, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("dev=None evaluated")

    monkeypatch.setattr(train_module, "sts_dev_metrics", forbidden)
    none = train_unsup("tiny", sentences, **{**FAST, "eval_steps": 2}, dev=None)
    assert not [r for r in none.history if "dev" in r]
    assert none.selected_on == {"dev": None}
    plain = train_unsup("tiny", sentences, **FAST)  # eval_steps=None: the last
    _assert_same(_weights(none), _weights(plain))


@pytest.mark.parametrize(
    "change, error, message",
    [
        (
            lambda f: f.drop(columns="score"),
            ValueError,
            r"lacks column\(s\) \['score'\]",
        ),
        (lambda f: f.assign(score=[float("nan"), *f.score[1:]]), ValueError, "finite"),
        (lambda f: f.head(19), ValueError, "19 pairs"),
        (lambda f: f.assign(score=2.5), ValueError, "1 distinct score"),
        (lambda f: f.assign(sentence2=[" ", *f.sentence2[1:]]), ValueError, "empty"),
        (lambda f: [r[:2] for r in f.itertuples(index=False)], ValueError, "columns"),
        (lambda f: 42, TypeError, "scored pairs"),
        (lambda f: "stsb-xx", ValueError, "stsb-<language>"),
        (lambda f: "no/such/dev.tsv", FileNotFoundError, "no such"),
    ],
)
def test_bad_dev_pairs_error_before_the_model_loads(
    change, error, message, german_dev, monkeypatch
):
    def forbidden(*args, **kwargs):
        raise AssertionError("the model loaded despite bad dev pairs")

    monkeypatch.setattr(train_module, "_as_encoder", forbidden)
    texts = [f"sentence {i}" for i in range(16)]
    run = {**FAST, "eval_steps": 2, "dev": change(german_dev.copy())}
    with pytest.raises(error, match=message):
        train_unsup("tiny", texts, **run)


def test_bad_dev_file_names_the_missing_column(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "_as_encoder", None)  # never reached
    file = tmp_path / "dev.tsv"
    file.write_text("sentence1\tsentence2\nA.\tB.\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['score'\].*dev=None"):
        train_unsup("tiny", ["a", "b"], **{**FAST, "eval_steps": 2, "dev": str(file)})


def test_dev_choice_is_saved_with_the_model_and_guards_resume(
    sentences, german_dev, tmp_path
):
    import json

    run = {**FAST, "eval_steps": 2, "output_dir": str(tmp_path)}
    encoder = train_unsup("tiny", sentences, **run, dev=german_dev)
    saved = json.loads((tmp_path / "minicse.json").read_text())["selected_on"]
    assert saved == encoder.selected_on and saved["dev"] == "pairs"
    assert SentenceEncoder.load(tmp_path).selected_on == saved
    checkpoint = ckpt.latest_checkpoint(tmp_path)
    assert SentenceEncoder.load(checkpoint).selected_on == saved
    other = german_dev.assign(score=german_dev.score[::-1].to_numpy())
    with pytest.raises(ValueError, match="processes and dev pairs"):
        train_unsup("tiny", sentences, **run, resume=True, dev=other)
    again = train_unsup("tiny", sentences, **run, resume=True, dev=german_dev)
    assert again.selected_on == saved  # the same pairs continue the run


def test_dev_config_field_accepts_names_paths_and_none(tmp_path):
    assert TrainConfig().dev == "stsb"
    assert TrainConfig(dev="stsb-zh").dev == "stsb-zh"
    assert TrainConfig(dev=tmp_path / "dev.tsv").dev == str(tmp_path / "dev.tsv")
    assert TrainConfig(dev=None).dev is None
    with pytest.raises(TypeError, match="as dev="):
        TrainConfig(dev=[("a", "b", 1.0)])


@pytest.mark.parametrize("dev", ["stsb-de", "own"])
def test_smoke_preset_selects_on_german_dev_or_own_pairs(dev, triplets, tmp_path):
    from minicse.data import load_sts

    if dev == "own":  # a user's pairs: the first 50 of the French dev, as a .tsv
        own = load_sts("stsb", "dev", language="fr", max_rows=50)
        dev = str(tmp_path / "mine.tsv")
        own.to_csv(dev, sep="\t", index=False)
    cfg = TrainConfig.from_preset("smoke", "sup", dev=dev, progress=False)
    encoder = train_sup("tiny", triplets, cfg, precision="fp32")
    scores = {r["step"]: r["dev"] for r in encoder.history if "dev" in r}
    assert list(scores) == [5, 10]
    best = max(scores, key=scores.get)
    assert encoder.selected_on["dev"] == dev
    assert encoder.selected_on["pairs"] == (200 if dev == "stsb-de" else 50)
    fp32 = SimpleNamespace(encode=partial(encoder.encode, precision="fp32"))
    pairs = load_sts(
        "stsb",
        "dev",
        path=None if dev == "stsb-de" else dev,
        language="de" if dev == "stsb-de" else None,
        max_rows=200,
    )
    got = score_sts_pairs(fp32, pairs.sentence1, pairs.sentence2, pairs.score)
    assert got == pytest.approx(scores[best], abs=1e-6)  # the best model returned


def test_batch_smaller_than_grad_cache_chunk(no_training):
    sizes = {**FAST, "batch_size": 4, "grad_cache_chunk": 8}
    with pytest.raises(ValueError, match=r"batch_size=4 must be >= .*_chunk=8"):
        train_unsup("tiny", ["a b"] * 8, **sizes)


def test_total_steps_is_max_steps_or_full_epochs():
    assert TrainConfig.unsup(max_steps=7).total_steps(100) == 7
    assert TrainConfig.unsup(batch_size=4, num_epochs=2).total_steps(10) == 4  # 2 x 2
