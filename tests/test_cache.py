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
    assert not list(tmp_path.glob("*.partial-*"))


def test_an_interrupted_run_is_not_cached(tmp_path, monkeypatch):
    import minicse.loop as loop

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
