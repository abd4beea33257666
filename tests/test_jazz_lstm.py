"""jazz-lstm: MIDI melodies as note tokens, an LSTM language model that beats count baselines, and solos it
improvises written as MIDI that parses back to the sampled notes; a shrunk end-to-end run on real Prefect,
MLflow (SQLite) and GX registers a model that serves solos and re-scores to the pipeline's test loss."""

from __future__ import annotations

import base64

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from components.data.formats import midi_melodies as mm
from components.data.formats.images import MissingDataError
from components.models.note_lstm import NoteLSTM
from components.training.token_lm import bigram_loss, sequence_nll, unigram_loss, windows
from components.validation.expectations import DataValidationError
from tests.test_numpy_cnn_rnn_projects import run_pipeline, served_score

SMALL = {  # ~10 s of training on the 120 training melodies (the default trains a bigger net for 40 epochs)
    "model": {"embed_dim": 32, "hidden_size": 64, "dropout": 0.0},
    "train": {"epochs": 30, "lr": 0.01},
    "generation": {"length": 32, "count": 5},
}


# --- the real format and the sample ----------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_a_folder_of_bach_soprano_midi_files_written_the_same_every_run(sample_data, tmp_path):
    root = sample_data("jazz-lstm")
    files = mm.midi_files(root)
    assert len(files) == 300 and all(f.suffix == ".mid" and f.read_bytes()[:4] == b"MThd" for f in files)
    assert "Bach, not jazz" in (root / "SOURCE.txt").read_text()
    melody = mm.read_melody(root / "bwv10.7.mid")
    assert len(melody) > 30 and all(60 <= n.pitch <= 81 for n in melody)  # a soprano's range, C4 to A5
    from music21 import corpus  # music21's own score parser hears the same soprano line in the corpus file

    soprano = corpus.parse("bach/bwv10.7").parts["Soprano"].stripTies().flatten().notes
    assert mm.melody_tokens(melody) == mm.melody_tokens(
        [mm.Note(n.pitch.midi, float(n.offset), float(n.quarterLength)) for n in soprano]
    )
    mm.generate(tmp_path, count=5)  # the first five chorales again: byte for byte the same files
    again = sorted(tmp_path.glob("*.mid"))
    assert [f.name for f in again] == [f.name for f in files[:5]]
    assert all(a.read_bytes() == f.read_bytes() for a, f in zip(again, files))


@pytest.mark.unit
def test_a_midi_file_from_another_writer_reads_as_its_first_parts_top_line(tmp_path):
    from music21 import chord, note, stream

    melody, bass = stream.Part(), stream.Part()
    for element in [
        note.Note("C5", quarterLength=1),
        note.Note("E5", quarterLength=2),
        chord.Chord(["C5", "G5"], quarterLength=1),
        note.Rest(quarterLength=1),
        note.Note("D5", quarterLength=0.5),
    ]:
        melody.append(element)
    bass.append(note.Note("C3", quarterLength=5.5))
    stream.Score([melody, bass]).write("midi", fp=tmp_path / "two_parts.mid")  # music21's score writer, not ours
    notes = mm.read_melody(tmp_path / "two_parts.mid")
    assert mm.melody_tokens(notes) == ["72/1", "76/2", "79/1", "R/1", "74/0.5"]  # the chord's top note; no bass


@pytest.mark.unit
def test_tokens_written_as_midi_read_back_as_the_same_notes(tmp_path):
    tokens = ["R/1", "67/0.5", "<unk>", "R/0.25", "R/0.25", "69/1.5", "71/0.25", "R/2"]
    mm.write_midi(tokens, tmp_path / "solo.mid")
    assert (
        mm.read_melody(tmp_path / "solo.mid")
        == mm.token_notes(tokens)
        == [mm.Note(67, 1.0, 0.5), mm.Note(69, 2.0, 1.5), mm.Note(71, 3.5, 0.25)]
    )
    # Back to tokens: leading and trailing silence is not part of a melody, adjacent rests merge.
    assert mm.melody_tokens(mm.read_melody(tmp_path / "solo.mid")) == ["67/0.5", "R/0.5", "69/1.5", "71/0.25"]
    assert mm.write_midi(tokens) == (tmp_path / "solo.mid").read_bytes()


@pytest.mark.unit
def test_a_key_estimate_moves_a_g_major_tune_up_to_c_and_a_d_minor_tune_down_to_a_minor():
    g_major = mm.token_notes("67/1 71/1 74/1 78/0.5 79/1 72/1 69/1 66/0.5 67/2".split())
    assert [n.pitch for n in mm.transpose_to_c(g_major)] == [p + 5 for p in [67, 71, 74, 78, 79, 72, 69, 66, 67]]
    d_minor = mm.token_notes("62/2 65/1 69/1 70/1 69/1 67/0.5 65/0.5 64/1 61/0.5 62/2".split())
    assert mm.transpose_to_c(d_minor)[0].pitch == 57  # D4 -> A3: the tonic moves by a fifth down


@pytest.mark.unit
def test_broken_short_out_of_range_and_zero_length_files_fail_validation_by_name(tmp_path, sample_data):
    for f in mm.midi_files(sample_data("jazz-lstm"))[:3]:
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "broken.mid").write_bytes(b"MThd this is not midi")
    mm.write_midi(["60/1", "62/1", "64/1"], tmp_path / "short.mid")
    mm.write_midi(["60/1"] * 8 + ["110/1"], tmp_path / "high.mid")
    mm.write_midi(["60/1"] * 8 + ["62/0.0001"], tmp_path / "zero.MIDI")  # rounds to 0 ticks
    with pytest.raises(DataValidationError) as err:
        mm.validate_melodies(tmp_path, mm.MelodyRules(min_notes=8, max_pitch=108))
    message = str(err.value)
    assert "broken.mid (broken.mid: not a readable MIDI file" in message
    assert "short.mid" in message and "at least 8 notes" in message
    assert "high.mid" in message and "pitches in [0, 108]" in message
    assert "zero.MIDI" in message and "longer than zero" in message
    assert not any(f in message for f in ("bwv1.6", "bwv10.7"))
    with pytest.raises(MissingDataError, match="dlfolio data jazz-lstm"):
        mm.midi_files(tmp_path / "nothing-here")


# --- the model ------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_lstm_scores_a_sequence_the_same_whole_step_by_step_and_padded_in_a_batch():
    torch.manual_seed(0)
    model = NoteLSTM(vocab_size=12, embed_dim=8, hidden_size=16).eval()
    ids = torch.randint(1, 12, (1, 9))
    whole, _ = model(ids)
    assert whole.shape == (1, 9, 12)
    state, steps = None, []
    for t in range(9):
        out, state = model(ids[:, t : t + 1], state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), whole)
    seqs = [ids[0].tolist(), ids[0, :4].tolist()]
    nll, counts = sequence_nll(model, seqs, torch.device("cpu"), pad_id=0)
    alone, _ = sequence_nll(model, seqs[1:], torch.device("cpu"), pad_id=0)
    assert list(counts) == [8, 3] and nll[1] == pytest.approx(alone[0], rel=1e-6)
    logp = torch.log_softmax(whole[0, :-1], -1)
    assert nll[0] == pytest.approx(-logp[torch.arange(8), ids[0, 1:]].sum().item(), rel=1e-5)


@pytest.mark.unit
def test_sampling_is_greedy_at_temperature_zero_never_draws_banned_ids_and_is_seeded():
    torch.manual_seed(1)
    model = NoteLSTM(vocab_size=10, embed_dim=8, hidden_size=16)
    greedy = model.sample([1], 12, temperature=0)
    ids = [1]
    for _ in range(12):  # the same, the slow way: the whole history through the net each step
        ids.append(int(model(torch.tensor([ids]))[0][0, -1].argmax()))
    assert greedy == ids[1:]
    drawn = model.sample([1], 300, temperature=2.0, banned=(0, 1, 2), generator=torch.Generator().manual_seed(0))
    assert len(drawn) == 300 and not {0, 1, 2} & set(drawn) and len(set(drawn)) > 3
    assert drawn == model.sample([1], 300, 2.0, banned=(0, 1, 2), generator=torch.Generator().manual_seed(0))


@pytest.mark.unit
def test_training_windows_predict_every_target_once_and_the_baselines_count():
    seq = list(range(1, 12))  # 10 targets
    parts = windows([seq], 4)
    assert [p[1:] for p in parts] == [[2, 3, 4, 5], [6, 7, 8, 9], [10, 11]] and parts[1][0] == 5
    train = [[1, 4, 5, 4, 5, 2]] * 20  # <bos>=1, <eos>=2; after a 5 comes a 4 or the end, half the time each
    assert bigram_loss(train, train, 6, k=1e-9) == pytest.approx(2 * np.log(2) / 5)
    assert unigram_loss(train, train, 6, k=1e-9) == pytest.approx(-(4 * np.log(0.4) + np.log(0.2)) / 5)


# --- end to end -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jazz_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("jazz-lstm-root")
    return root, run_pipeline(root, "jazz-lstm", sample_data("jazz-lstm"), SMALL)


@pytest.mark.e2e
def test_note_lstm_beats_the_unigram_baseline_and_samples_like_its_training_music(jazz_run):
    _, r = jazz_run
    # unigram ~3.5 nats/token on the transposed chorales, bigram ~2.5; this small net reaches ~2.2
    assert r["loss"] < r["unigram_loss"] - 1.0, (r["loss"], r["unigram_loss"])
    assert r["loss"] < r["bigram_loss"] + 0.1, (r["loss"], r["bigram_loss"])
    assert r["perplexity"] == pytest.approx(np.exp(r["loss"]))
    assert r["sample_in_vocab_fraction"] > 0.95 and r["sample_pair_seen_fraction"] > 0.6
    assert r["sample_pitch_class_distance"] < 0.25


@pytest.mark.integration
def test_run_logs_curves_a_piano_roll_and_the_generated_solo_as_midi(jazz_run, tmp_path):
    root, r = jazz_run
    client = MlflowClient()
    assert {"plots/loss_curve.png", "plots/piano_roll.png"} <= {
        a.path for a in client.list_artifacts(r["run_id"], "plots")
    }
    solo = mlflow.artifacts.download_artifacts(f"runs:/{r['run_id']}/files/generated_solo.mid", dst_path=str(tmp_path))
    samples = pd.read_csv(root / "outputs" / "jazz-lstm" / "plots" / "samples.csv")
    assert mm.read_melody(solo) == mm.token_notes(samples["tokens"][0].split())  # the first sample, note for note
    assert len(samples) == 5 and all(len(s.split()) == 32 for s in samples["tokens"])
    assert (root / "outputs" / "jazz-lstm" / "files" / "generated_solo.mid").read_bytes() == open(solo, "rb").read()
    assert len(client.get_metric_history(r["run_id"], "val_loss")) >= 8


@pytest.mark.integration
def test_registered_model_continues_prefixes_as_midi_and_rescores_to_the_test_loss(jazz_run, tmp_path):
    root, r = jazz_run
    assert MlflowClient().get_model_version_by_alias("jazz-lstm", "challenger").version == r["model_version"]
    model = mlflow.pyfunc.load_model("models:/jazz-lstm@challenger")
    frame = pd.DataFrame(
        {
            "prefix": ["", "72/1 71/0.5 69/0.5", "72/1 71/0.5 69/0.5"],
            "length": [16, 8, 0],
            "temperature": [1.0, 0.5, 1.0],
        }
    )
    out = model.predict(frame)
    assert list(out.columns) == ["prefix", "tokens", "midi_base64", "score"]
    tokens = [t.split() for t in out["tokens"]]
    assert len(tokens[0]) == 16 and tokens[1][:3] == ["72/1", "71/0.5", "69/0.5"] and len(tokens[1]) == 11
    assert out["tokens"][2] == "72/1 71/0.5 69/0.5"  # length 0 adds nothing
    (tmp_path / "served.mid").write_bytes(base64.b64decode(out["midi_base64"][1]))
    assert mm.read_melody(tmp_path / "served.mid") == mm.token_notes(tokens[1])
    assert out["score"][1] < out["score"][0]  # a stepwise phrase is likelier than an empty piece
    pd.testing.assert_frame_equal(model.predict(frame), out)  # seeded: same input, same solo
    assert served_score(root, "jazz-lstm", model)["loss"] == pytest.approx(r["loss"], rel=1e-6)
