"""transformer: an encoder-decoder Transformer from scratch that translates parallel text.

Its attention equals torch.nn.MultiheadAttention given the same weights, the causal mask keeps the future
out, padding changes nothing, the positional encoding is the paper's formula; the sample is a real-format TSV
of numbers and their English words; a bad file fails validation naming its lines; and a shrunk pipeline run
on real Prefect, MLflow and GX learns to translate and registers a model that serves translations.
"""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from torch import nn

from components.data.formats.images import MissingDataError
from components.data.formats.parallel_text import PairRules, number_words, read_lines, read_pairs, validate_pairs
from components.data.vocab import Vocab
from components.models.transformer import MultiHeadAttention, PositionalEncoding, Transformer, causal_mask, padding_mask
from components.projects import get_project
from components.projects.settings.transformer import TransformerSettings
from components.validation.expectations import DataValidationError

SMALL = {  # a quarter of the default width and one layer each side: ~20 s of CPU training
    "model": {"d_model": 32, "heads": 4, "encoder_layers": 1, "decoder_layers": 1, "d_ff": 64, "dropout": 0.0},
    "train": {"epochs": 8, "batch_size": 64, "lr": 0.005},
    "decoding": {"max_len": 16},
}


# --- data: the real format, the sample, validation --------------------------------------------------------


@pytest.mark.unit
def test_numbers_are_written_in_english_words_without_and_or_hyphens():
    assert number_words(0) == "zero"
    assert number_words(13) == "thirteen"
    assert number_words(40) == "forty"
    assert number_words(105) == "one hundred five"
    assert number_words(347) == "three hundred forty seven"
    assert number_words(1000) == "one thousand"
    assert number_words(12005) == "twelve thousand five"
    assert number_words(700017) == "seven hundred thousand seventeen"
    assert number_words(999999) == "nine hundred ninety nine thousand nine hundred ninety nine"
    with pytest.raises(ValueError):
        number_words(1_000_000)


@pytest.mark.unit
def test_sample_is_a_deterministic_tsv_of_digits_and_their_words(sample_data, tmp_path):
    path = sample_data("transformer") / "pairs.tsv"
    lines = read_lines(path)
    assert len(lines) == 5000 and all(line.count("\t") == 1 for line in lines)
    assert "347\tthree hundred forty seven" in lines and "0\tzero" in lines
    pairs = read_pairs(path, PairRules())
    assert pairs["source"].is_unique and all(
        number_words(int(s)) == t for s, t in pairs.head(200).itertuples(index=False)
    )
    assert pairs["source"].str.len().max() == 6  # numbers up to 999,999
    get_project("transformer").make_sample(tmp_path)
    assert (tmp_path / "pairs.tsv").read_bytes() == path.read_bytes()


@pytest.mark.unit
def test_tatoeba_style_lines_with_an_attribution_column_and_crlf_are_read(tmp_path):
    path = tmp_path / "fra.txt"
    rows = [f"Go {i}.\tVa {i} !\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}" for i in range(5)]
    path.write_bytes("\r\n".join(rows).encode("utf-8") + b"\r\n")
    pairs = read_pairs(path, PairRules("word", "word", min_pairs=5))
    assert list(pairs.columns) == ["source", "target"]
    assert pairs.iloc[3].tolist() == ["Go 3.", "Va 3 !"]


@pytest.mark.unit
def test_a_bad_pairs_file_fails_validation_naming_the_lines(tmp_path):
    good = [f"{n}\t{number_words(n)}" for n in range(20)]
    bad = ["no tab on this line", "12\t", "\ttwelve", "1234567\tone million two hundred ..."]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(good[:3] + bad + good[3:]) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        validate_pairs(path, PairRules("char", "word", max_source_tokens=6, min_pairs=100))
    message = str(err.value)
    assert "line 4: 'no tab on this line'" in message and "source<TAB>target" in message
    assert "line 5: '12\\t'" in message  # empty target
    assert "line 6: '\\ttwelve'" in message  # empty source
    assert "line 7: '1234567\\t" in message and "source of 1 to 6 char tokens" in message  # too long
    assert "at least 100 pairs" in message
    assert "line 1:" not in message and "line 8:" not in message  # good lines are not named


@pytest.mark.unit
def test_loader_errors_say_what_and_where(tmp_path):
    with pytest.raises(MissingDataError, match="dlfolio data transformer"):
        read_lines(tmp_path / "missing.tsv")
    (tmp_path / "latin1.tsv").write_bytes("1\tone\n2\tdeux\n3\ttr\xe8s\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"line 3 is not UTF-8"):
        read_lines(tmp_path / "latin1.tsv")


@pytest.mark.unit
def test_vocabulary_comes_from_training_text_with_specials_first_and_unknowns_mapped():
    words = Vocab.build(["three hundred", "three thousand"], "word")
    assert words.tokens[:4] == ("<pad>", "<bos>", "<eos>", "<unk>") and words.tokens[4] == "three"  # most frequent
    assert words.encode("Three Million", bos=True) == [1, words.index["three"], words.unk_id, 2]
    assert words.decode([1, words.index["three"], words.index["hundred"], 2, 5, 0]) == "three hundred"
    chars = Vocab.build(["347", "12"], "char")
    assert len(chars) == 4 + 5 and chars.decode(chars.encode("3471")) == "3471"
    assert words.normalize("  Three   HUNDRED ") == "three hundred"


@pytest.mark.unit
def test_heads_must_divide_the_model_width(tmp_path):
    with pytest.raises(ValueError, match="divisible by heads"):
        TransformerSettings(data_dir=tmp_path, model={"d_model": 30, "heads": 4})


# --- the model parts -------------------------------------------------------------------------------------


def torch_mha_with_our_weights(ours: MultiHeadAttention, d_model: int, heads: int) -> nn.MultiheadAttention:
    theirs = nn.MultiheadAttention(d_model, heads, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)
    return theirs.eval()


@pytest.mark.unit
@pytest.mark.parametrize("masks", ["none", "padding", "causal", "causal+padding"])
def test_multi_head_attention_equals_torch_multihead_attention(masks):
    torch.manual_seed(0)
    d_model, heads, batch, length = 32, 4, 3, 7
    ours = MultiHeadAttention(d_model, heads).eval()
    theirs = torch_mha_with_our_weights(ours, d_model, heads)
    x = torch.randn(batch, length, d_model)
    pad = torch.zeros(batch, length, dtype=torch.bool)
    pad[0, 5:], pad[2, 3:] = True, True  # rows of different lengths
    key_padding = pad if "padding" in masks else None
    attn_mask = causal_mask(length) if "causal" in masks else None
    blocked = None
    if key_padding is not None:
        blocked = key_padding[:, None, None, :]
    if attn_mask is not None:
        blocked = attn_mask if blocked is None else blocked | attn_mask
    out, weights = ours(x, x, x, blocked)
    expected, expected_weights = theirs(
        x, x, x, key_padding_mask=key_padding, attn_mask=attn_mask, need_weights=True, average_attn_weights=False
    )
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=1e-5)


@pytest.mark.unit
def test_cross_attention_over_a_padded_memory_equals_torch_too():
    torch.manual_seed(1)
    ours = MultiHeadAttention(16, 2).eval()
    theirs = torch_mha_with_our_weights(ours, 16, 2)
    query, memory = torch.randn(2, 4, 16), torch.randn(2, 9, 16)
    src = torch.tensor([[5, 6, 7, 8, 9, 4, 5, 6, 2], [5, 6, 2, 0, 0, 0, 0, 0, 0]])
    out, weights = ours(query, memory, memory, padding_mask(src, 0))
    expected, expected_weights = theirs(query, memory, memory, key_padding_mask=src == 0, average_attn_weights=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=1e-5)
    assert weights[1, :, :, 3:].abs().max() == 0  # no attention on padding


@pytest.mark.unit
def test_positional_encoding_is_the_sinusoid_formula():
    d_model = 16
    pe = PositionalEncoding(d_model, max_len=50)
    assert torch.equal(pe(torch.zeros(1, 50, d_model))[0], pe.pe)
    for pos in (0, 1, 7, 49):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert pe.pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe.pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert "pe" not in pe.state_dict()  # a formula, not a weight


def tiny_transformer() -> Transformer:
    torch.manual_seed(0)
    return Transformer(
        src_vocab=12,
        tgt_vocab=15,
        d_model=16,
        heads=2,
        encoder_layers=2,
        decoder_layers=2,
        d_ff=32,
        dropout=0.0,
        max_len=20,
    ).eval()


@pytest.mark.unit
def test_causal_mask_keeps_future_target_tokens_out_of_earlier_predictions():
    model = tiny_transformer()
    src = torch.tensor([[4, 5, 6, 7, 2]])
    tgt = torch.tensor([[1, 4, 5, 6, 7, 8, 9]])
    logits = model(src, tgt)
    for t in range(tgt.size(1) - 1):  # change everything after position t: outputs up to t must not move
        changed = tgt.clone()
        changed[0, t + 1 :] = torch.randint(4, 15, (tgt.size(1) - t - 1,), generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(model(src, changed)[:, : t + 1], logits[:, : t + 1], atol=1e-6, rtol=0)
        assert not torch.allclose(model(src, changed)[:, t + 1 :], logits[:, t + 1 :])

    # The same seen through gradients: position 3's output depends on target embeddings 0..3 only.
    embedded = []

    def keep_grad(module, inputs, out):
        out.retain_grad()
        embedded.append(out)

    hook = model.tgt_embed.register_forward_hook(keep_grad)
    model(src, tgt)[0, 3].sum().backward()
    hook.remove()
    grad = embedded[0].grad[0].abs().sum(-1)  # one number per target position
    assert (grad[:4] > 0).all() and (grad[4:] == 0).all()


@pytest.mark.unit
def test_padding_the_source_changes_no_output():
    model = tiny_transformer()
    src, tgt = torch.tensor([[4, 5, 6, 2]]), torch.tensor([[1, 7, 8, 9]])
    padded = torch.cat([src, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(padded, tgt), model(src, tgt), atol=1e-5, rtol=1e-5)


@pytest.mark.unit
def test_greedy_decoding_picks_the_argmax_of_its_own_prefix_and_stops_at_eos():
    model = tiny_transformer()
    src = torch.tensor([[4, 5, 6, 2], [7, 8, 2, 0]])
    out = model.greedy_decode(src, bos_id=1, eos_id=2, max_len=10)
    assert out.shape[0] == 2 and out.shape[1] <= 10
    tgt_in = torch.cat([torch.ones(2, 1, dtype=torch.long), out[:, :-1]], dim=1)
    argmax = model(src, tgt_in).argmax(-1)
    for row in range(2):
        length = int((out[row] == 2).nonzero()[0]) + 1 if (out[row] == 2).any() else out.size(1)
        assert torch.equal(argmax[row, :length], out[row, :length])
        assert (out[row, length:] == 0).all()  # padding after <eos>


# --- end to end -------------------------------------------------------------------------------------------


def run_pipeline(root, data_dir, overrides: dict) -> dict:
    from flows.pipeline import project_pipeline
    from tests.conftest import REPO, deep_merge

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = deep_merge(params["projects"]["transformer"], overrides) | {"data_dir": str(data_dir)}
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params["defaults"], "projects": {"transformer": section}})
    )
    return project_pipeline(project="transformer", root=str(root))


@pytest.fixture(scope="module")
def transformer_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("transformer-root")
    return root, run_pipeline(root, sample_data("transformer"), SMALL)


@pytest.mark.e2e
def test_shrunk_transformer_learns_to_translate_numbers_into_words(transformer_run):
    root, result = transformer_run
    # A constant answer gets 0; the default configuration reaches ~0.99 exact match.
    assert result["exact_match"] >= 0.4, result  # ~0.7 measured
    assert result["token_accuracy"] >= 0.85 and result["constant_baseline_exact_match"] < 0.01
    client = MlflowClient()
    run_id = result["run_id"]
    assert len(client.get_metric_history(run_id, "val_exact_match")) == SMALL["train"]["epochs"]
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/training_curves.png", "plots/cross_attention.png"} <= plots
    predictions = pd.read_csv(root / "outputs" / "transformer" / "plots" / "test_predictions.csv")
    assert len(predictions) == 500 and predictions["correct"].mean() == pytest.approx(result["exact_match"])


@pytest.mark.integration
def test_registered_transformer_serves_translations_and_rescores_the_same(transformer_run):
    from flows.promotion import load_settings

    root, result = transformer_run
    assert MlflowClient().get_model_version_by_alias("transformer", "challenger").version == result["model_version"]
    model = mlflow.pyfunc.load_model("models:/transformer@challenger")
    out = model.predict(pd.DataFrame({"source": ["7", "40", "300"]}))
    assert list(out.columns) == ["source", "target"] and out["source"].tolist() == ["7", "40", "300"]
    assert all(isinstance(t, str) and t for t in out["target"])
    spec, settings = load_settings("transformer", "params.yaml", root)
    assert spec.score(model, spec.prepare(settings), settings)["exact_match"] == pytest.approx(result["exact_match"])
