"""cached_train: one training per (model, rows, settings), a clean miss otherwise."""

from __future__ import annotations

import pytest
import torch

from minicse import TrainConfig, cached_train

TEXTS = [f"sentence number {i} about topic {i % 3}" for i in range(16)]
TRIPLETS = [(f"a {i}", f"b {i}", f"c {i}") for i in range(8)]


def config(**overrides):
    values = {
        **dict(
            batch_size=8, max_steps=2, eval_steps=None, progress=False, precision="fp32"
        ),
        **overrides,
    }
    return TrainConfig.unsup(**values)


def test_a_hit_loads_the_same_model_and_history(tmp_path, capsys):
    first = cached_train("tiny", TEXTS, config(), cache=tmp_path)
    assert "cache" not in capsys.readouterr().out  # a miss trains quietly
    again = cached_train("tiny", TEXTS, config(progress=True), cache=tmp_path)
    assert f"from the cache: {first.cache_path}" in capsys.readouterr().out
    assert again.cache_path == first.cache_path
    assert again.history == first.history
    first.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            again.encode(TEXTS[:4], precision="fp32"),
            first.encode(TEXTS[:4], precision="fp32"),
        )


def test_the_key_changes_with_settings_rows_model_and_objective(tmp_path):
    base = cached_train("tiny", TEXTS, config(), cache=tmp_path).cache_path
    paths = {
        cached_train("tiny", TEXTS, config(seed=1), cache=tmp_path).cache_path,
        cached_train(
            "tiny", TEXTS[:-1] + ["changed"], config(), cache=tmp_path
        ).cache_path,
        cached_train(
            "tiny",
            TRIPLETS,
            TrainConfig.sup(batch_size=4, max_steps=1, eval_steps=None, progress=False),
            cache=tmp_path,
        ).cache_path,
    }
    assert base not in paths and len(paths) == 3
    assert all(path.name.startswith(("unsup-tiny-", "sup-tiny-")) for path in paths)
    assert sorted(tmp_path.iterdir()) == sorted([base, *paths])  # no temp folders


def test_the_key_holds_the_precision_auto_takes_here(tmp_path, monkeypatch):
    # "auto" is bf16 on one CPU and fp32 on another: a model trained at one must not
    # be served to a run at the other (MINICSE_CPU_BF16 flips what auto means).
    names = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("MINICSE_CPU_BF16", flag)
        auto = cached_train("tiny", TEXTS[:8], config(precision="auto"), cache=tmp_path)
        names[flag] = auto.cache_path.name
    assert names["0"] != names["1"]
    monkeypatch.setenv("MINICSE_CPU_BF16", "0")  # auto is fp32: the same run as fp32
    fp32 = cached_train("tiny", TEXTS[:8], config(precision="fp32"), cache=tmp_path)
    assert fp32.cache_path.name == names["0"]


def test_the_key_changes_with_the_dev_pairs_content(tmp_path):
    from minicse import load_sts

    dev = load_sts("stsb", "dev", language="de", max_rows=30)
    run = config(eval_steps=2)

    def path(cfg=run, **kw):
        return cached_train("tiny", TEXTS, cfg, cache=tmp_path, **kw).cache_path

    pairs = path(dev=dev)
    assert path(dev=list(dev.itertuples(index=False, name=None))) == pairs  # a hit
    file = tmp_path / "dev.tsv"
    dev.to_csv(file, sep="\t", index=False)
    assert path(dev=str(file)) == pairs  # the same pairs from a file: the same run
    rescored = dev.assign(score=[*dev.score[:-1], dev.score.iloc[-1] + 0.5])
    others = {path(dev=rescored), path(), path(dev="stsb-de")}  # all 1,500 pairs
    assert pairs not in others and len(others) == 3
    # no selection is one run, however it is asked for
    assert path(config(eval_steps=2, dev=None)) == path(config())
    loaded = cached_train("tiny", TEXTS, run, cache=tmp_path, dev=str(file))
    assert loaded.selected_on["dev"] == "pairs"  # the hit: as saved


def test_an_interrupted_run_is_not_cached(tmp_path, monkeypatch):
    import minicse.train as loop

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "fit", stop)
    encoder = cached_train("tiny", TEXTS, config(), cache=tmp_path)
    assert any("interrupted" in record for record in encoder.history)
    assert not encoder.cache_path.exists()


def test_bad_arguments_fail_before_training(tmp_path):
    from minicse import SentenceEncoder

    with pytest.raises(TypeError, match="name or folder"):
        cached_train(
            SentenceEncoder.from_pretrained("tiny"), TEXTS, config(), cache=tmp_path
        )
    with pytest.raises(ValueError, match="output_dir"):
        cached_train(
            "tiny", TEXTS, config(output_dir=str(tmp_path / "x")), cache=tmp_path
        )
    with pytest.raises(TypeError, match="TrainConfig"):
        cached_train("tiny", TEXTS, {"batch_size": 8}, cache=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    from minicse import cache_dir

    monkeypatch.setenv("MINICSE_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert cache_dir(tmp_path / "other") == tmp_path / "other"


def test_another_minicse_is_another_run(tmp_path, monkeypatch):
    import minicse.cache as cache

    first = cached_train("tiny", TEXTS, config(), cache=tmp_path).cache_path
    monkeypatch.setattr(cache, "_source_digest", lambda: "changed library code")
    assert cached_train("tiny", TEXTS, config(), cache=tmp_path).cache_path != first


# -- resume after a disconnect, damaged files -----------------------------------

# 8 steps, STS-B dev every 2: checkpoints at steps 2, 4, 6 and 8
RESUMABLE = dict(max_steps=8, eval_steps=2, dev_rows=40, log_every=2)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The RESUMABLE run, uninterrupted."""
    cache = tmp_path_factory.mktemp("straight")
    return cached_train("tiny", TEXTS, config(**RESUMABLE), cache=cache)


def _weights(encoder):
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def _crash_after_checkpoint(monkeypatch, step):
    """Make checkpoint.save raise (a lost runtime) right after it wrote ``step``'s."""
    import minicse.checkpoint as loop

    real = loop.save

    def save_then_crash(state, *args, **kwargs):
        real(state, *args, **kwargs)
        if state.step == step:
            raise ConnectionError("runtime disconnected")

    monkeypatch.setattr(loop, "save", save_then_crash)


def test_a_second_call_resumes_an_interrupted_run_exactly(
    tmp_path, capsys, monkeypatch, straight
):
    _crash_after_checkpoint(monkeypatch, 4)
    with pytest.raises(ConnectionError):
        cached_train("tiny", TEXTS, config(**RESUMABLE), cache=tmp_path / "b")
    work = next((tmp_path / "b").glob("*.checkpoints"))
    assert sorted(p.name for p in work.glob("checkpoint-*")) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    monkeypatch.undo()
    name = work.name.removesuffix(".checkpoints")
    (work.parent / f".{name}.tmp").mkdir()  # a write the lost runtime left
    resumed = cached_train(
        "tiny", TEXTS, config(**RESUMABLE, progress=True), cache=tmp_path / "b"
    )
    assert (
        f"Resuming the interrupted run from {work / 'checkpoint-4'}"
        in capsys.readouterr().out
    )
    assert resumed.history == straight.history
    assert [r["step"] for r in resumed.history if "dev" in r] == [2, 4, 6, 8]
    for key, value in _weights(straight).items():  # fp32: bitwise
        assert torch.equal(_weights(resumed)[key], value), key
    assert not work.exists()  # the cache's own checkpoints go once the model is in
    assert [p.name for p in (tmp_path / "b").iterdir()] == [resumed.cache_path.name]


def test_a_failed_save_of_the_model_leaves_no_half_model(tmp_path, monkeypatch):
    from minicse import SentenceEncoder

    real = SentenceEncoder.save

    def full_disk(self, path):
        real(self, path)
        if ".tmp" in str(path) and "checkpoint" not in str(path):  # the cache's
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(SentenceEncoder, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        cached_train("tiny", TEXTS, config(**RESUMABLE), cache=tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".checkpoints"]
    monkeypatch.undo()
    again = cached_train("tiny", TEXTS, config(**RESUMABLE), cache=tmp_path)
    assert [r["step"] for r in again.history if "dev" in r] == [2, 4, 6, 8]
    assert (again.cache_path / "history.json").is_file()


@pytest.mark.parametrize("name", ["model.safetensors", "history.json", "minicse.json"])
def test_a_truncated_cached_model_is_named_and_kept(tmp_path, name):
    from minicse.encoder import DamagedFileError

    folder = cached_train("tiny", TEXTS, config(), cache=tmp_path).cache_path
    file = folder / name
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedFileError, match="shutil.rmtree") as caught:
        cached_train("tiny", TEXTS, config(), cache=tmp_path)
    assert str(file) in str(caught.value)
    assert file.stat().st_size == len(data) // 2  # nothing deleted or rewritten


def test_a_damaged_checkpoint_falls_back_to_the_one_before(
    tmp_path, monkeypatch, straight
):
    _crash_after_checkpoint(monkeypatch, 6)
    with pytest.raises(ConnectionError):
        cached_train("tiny", TEXTS, config(**RESUMABLE), cache=tmp_path / "b")
    monkeypatch.undo()
    work = next((tmp_path / "b").glob("*.checkpoints"))
    state = work / "checkpoint-6" / "state.pt"
    state.write_bytes(state.read_bytes()[:1000])  # a disconnect mid-upload
    with pytest.warns(UserWarning, match="state.pt is damaged.*from checkpoint-4"):
        resumed = cached_train("tiny", TEXTS, config(**RESUMABLE), cache=tmp_path / "b")
    assert resumed.history == straight.history
