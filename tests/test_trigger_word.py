"""trigger-word: the raw_data WAV layout (espeak-ng sample, validation naming the bad file or folder), clip
mixing and labels, log-mel features, the Conv1D + GRU detector, detection scoring, and one shrunk end-to-end
run on real Prefect, MLflow and GX that learns to find "activate" far above the all-zero baseline and serves
detections from WAV bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from components.data.formats import trigger_audio
from components.data.log_mel import LogMel, log_mel, mel_filterbank
from components.metrics.trigger import detection_runs, detection_scores, match_detections
from components.models.trigger_word import TriggerWordDetector, TwoClassLogits
from components.projects import get_project
from components.projects.settings.trigger_word import TriggerWordSettings
from components.projects.trigger_word import step_labels, step_times
from components.validation.expectations import DataValidationError
from tests.test_numpy_cnn_rnn_projects import run_pipeline, served_score

SMALL = {  # fewer, shorter clips and a smaller net: ~15 s of training on this (busy) machine
    "clips": {"seconds": 3.0, "train": 240, "val": 60, "test": 80, "max_negatives": 1},
    "model": {"channels": 48, "hidden": 32},
    "train": {"epochs": 8, "lr": 0.006, "patience": 10},
}


def settings(**overrides) -> TriggerWordSettings:
    return TriggerWordSettings.model_validate({"data_dir": "unused", **overrides})


# --- the raw_data layout and its sample --------------------------------------------------------------------------


@pytest.mark.unit
def test_sample_is_the_raw_data_layout_of_16khz_mono_speech_and_noise_and_deterministic(sample_data, tmp_path):
    root = sample_data("trigger-word")
    manifest = trigger_audio.scan_raw_data(root)
    counts = manifest["folder"].value_counts().to_dict()
    assert counts == {"activates": 36, "negatives": 48, "backgrounds": 6}
    assert manifest["decodable"].all() and set(manifest["rate"]) == {16000} and set(manifest["channels"]) == {1}
    words = manifest[manifest["folder"] != "backgrounds"]
    assert words["seconds"].between(0.3, 1.5).all()  # one spoken word each, silence trimmed
    assert any("captivate" in p for p in manifest["path"])  # near-misses of the trigger are among the negatives
    get_project("trigger-word").make_sample(tmp_path / "again")
    digest = lambda p: hashlib.md5(p.read_bytes()).hexdigest()  # noqa: E731
    assert all(digest(root / p) == digest(tmp_path / "again" / p) for p in manifest["path"])


@pytest.mark.unit
def test_a_broken_wav_a_wrong_rate_and_an_empty_folder_fail_validation_by_name(sample_data, tmp_path):
    root = tmp_path / "raw_data"
    shutil.copytree(sample_data("trigger-word"), root)
    (root / "negatives" / "000_action_en-us_150_35.wav").write_bytes(b"not a wav file")
    samples, _, _ = trigger_audio.read_wav(
        root / "activates" / sorted(p.name for p in (root / "activates").iterdir())[0]
    )
    (root / "activates" / "zz_8khz.wav").write_bytes(trigger_audio.encode_wav(samples[::2, 0], 8000))
    (root / "activates" / "zz_long.wav").write_bytes(trigger_audio.encode_wav(np.zeros(16000 * 3), 16000))
    for p in (root / "backgrounds").iterdir():
        p.unlink()
    with pytest.raises(DataValidationError) as err:
        trigger_audio.validate_raw_data(root, trigger_audio.AudioRules())
    message = str(err.value)
    assert "negatives/000_action_en-us_150_35.wav" in message and "decode as PCM WAV" in message
    assert "activates/zz_8khz.wav (8000 Hz" in message and "sample rate 16000 Hz" in message
    assert "activates/zz_long.wav (16000 Hz, 1 ch, 3.00 s)" in message and "a word lasts" in message
    assert "each folder holds at least 1 WAV file" in message and "backgrounds" in message


@pytest.mark.unit
def test_a_missing_espeak_ng_names_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="Debian package `espeak-ng`"):
        trigger_audio.espeak_executable()


# --- clips, labels and features --------------------------------------------------------------------------------


@pytest.mark.unit
def test_mixed_clips_are_seeded_and_place_triggers_where_their_labels_say():
    rate = 1000
    words = {
        "activates": [np.full(200, 0.5, np.float32)],
        "negatives": [np.full(100, -0.5, np.float32)],
        "backgrounds": [np.random.default_rng(0).standard_normal(5000).astype(np.float32)],
    }
    mix = trigger_audio.MixSettings(clip_samples=3000, rate=rate, background_rms=(0.001, 0.001), word_peak=(0.5, 0.5))
    clips, ends = trigger_audio.mix_clips(words, 20, mix, seed=1)
    again, ends_again = trigger_audio.mix_clips(words, 20, mix, seed=1)
    assert clips.dtype == np.int16 and np.array_equal(clips, again) and ends == ends_again
    assert any(len(e) == 2 for e in ends) and any(not e for e in ends)
    for clip, clip_ends in zip(clips, ends):
        for e in clip_ends:  # the 200 samples before each end are the (constant) trigger word
            end = round(e * rate)
            assert np.all(np.abs(clip[end - 200 : end] / 32767 - 0.5) < 0.02)


@pytest.mark.unit
def test_a_step_is_labelled_one_in_the_label_window_after_each_trigger_end():
    s = settings(clips={"label_seconds": 0.4})
    times = step_times(97, s)
    assert times[0] == pytest.approx(0.14) and times[1] - times[0] == pytest.approx(0.04)  # kernel 15, stride 4, 10 ms
    labels = step_labels([[1.0, 3.0], []], 97, s)
    assert labels.shape == (2, 97) and labels[1].sum() == 0
    ones = times[labels[0].numpy() == 1]
    assert len(ones) == 20 and ones.min() > 1.0 and ones.max() <= 3.4 and not np.any((ones > 1.4) & (ones <= 3.0))


@pytest.mark.unit
def test_log_mel_matches_a_direct_numpy_computation_and_has_a_frame_every_hop():
    config = LogMel(rate=8000, n_fft=256, hop=80, mels=20)
    bank = mel_filterbank(8000, 256, 20, f_min=config.f_min)
    assert bank.shape == (20, 129) and np.allclose(bank.max(1), 1, atol=0.2) and (bank >= 0).all()
    wave = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32)
    features = log_mel(wave[None], config)
    assert features.shape == (1, 20, config.frames(8000)) == (1, 20, 101)
    frame = np.pad(wave, 128, mode="reflect")[80 * 50 : 80 * 50 + 256] * np.hanning(257)[:-1]  # torch's periodic Hann
    expected = np.log(bank @ np.abs(np.fft.rfft(frame)) ** 2 + 1e-6)
    np.testing.assert_allclose(features[0, :, 50].numpy(), expected, rtol=1e-3, atol=1e-3)
    assert features[0, :, 50].argmax() == np.argmax(bank[:, round(440 / 8000 * 256)])  # the 440 Hz band is loudest


# --- the detector ------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_detector_gives_one_logit_per_strided_step_and_is_causal():
    torch.manual_seed(0)
    model = TriggerWordDetector(mels=16, channels=8, kernel=15, stride=4, hidden=8).eval()
    x = torch.randn(2, 16, 401)
    out = model(x)
    assert out.shape == (2, model.output_steps(401)) == (2, 97)
    changed = x.clone()
    changed[:, :, 300:] += 5  # the future: steps whose window ends before frame 300 must not change
    last_unaffected = (300 - 15) // 4
    torch.testing.assert_close(model(changed)[:, : last_unaffected + 1], out[:, : last_unaffected + 1])
    assert not torch.allclose(model(changed)[:, -1], out[:, -1])


@pytest.mark.unit
def test_two_class_cross_entropy_is_the_per_step_binary_cross_entropy_and_gradients_flow():
    torch.manual_seed(0)
    detector = TriggerWordDetector(mels=8, channels=8, kernel=5, stride=2, hidden=8)
    x, y = torch.randn(3, 8, 41), torch.randint(0, 2, (3, 19))
    logits = TwoClassLogits(detector)(x)
    assert logits.shape == (3, 2, 19)
    ce = torch.nn.functional.cross_entropy(logits, y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 1], y.float())
    torch.testing.assert_close(ce, bce)
    ce.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in detector.parameters())


@pytest.mark.unit
def test_normalisation_is_kept_in_buffers_and_standardises_each_mel_bin():
    model = TriggerWordDetector(mels=4)
    features = torch.randn(10, 4, 50) * torch.tensor([1.0, 2, 3, 4])[:, None] + 7
    model.set_normalisation(features)
    z = (features - model.mean) / model.std
    torch.testing.assert_close(z.mean(dim=(0, 2)), torch.zeros(4), atol=1e-5, rtol=0)
    assert {"mean", "std"} <= set(model.state_dict())


# --- detections --------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_detections_are_runs_above_threshold_matched_once_within_the_window():
    p = np.array([0, 0.9, 0.8, 0, 0.7, 0, 0, 0, 0.6, 0.2, 0])
    assert detection_runs(p, 0.5, merge_gap=0) == [(1, 2), (4, 4), (8, 8)]
    assert detection_runs(p, 0.5, merge_gap=1) == [(1, 4), (8, 8)]
    assert detection_runs(np.zeros(5)) == []
    # a trigger ending at 1.0 s (window 1.0-1.4 s, tolerance 0.1): 1.05 hits, the second hit on it is a false alarm
    assert match_detections([1.05, 1.2, 2.5], [1.0], 0.4, 0.1) == (1, 2, 0)
    assert match_detections([0.95], [1.0, 3.0], 0.4, 0.1) == (1, 0, 1)
    scores = detection_scores([[1.05], [], [2.0]], [[1.0], [2.0], []], 0.4, 0.1)
    assert (scores["true_positives"], scores["false_positives"], scores["false_negatives"]) == (1, 1, 1)
    assert scores["detection_f1"] == pytest.approx(0.5)
    assert detection_scores([[], []], [[1.0], [2.0]], 0.4, 0.1)["detection_f1"] == 0  # the all-zero baseline


# --- end to end --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trigger_run(prefect_server, tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("trigger-root")
    return root, run_pipeline(root, "trigger-word", sample_data("trigger-word"), SMALL)


@pytest.mark.e2e
def test_the_detector_finds_unseen_voices_far_above_the_all_zero_baseline(trigger_run):
    _, r = trigger_run
    assert r["baseline_detection_f1"] == 0 and r["test_triggers"] >= 50
    assert r["detection_f1"] >= 0.6  # the shrunk run reaches 0.90 here (precision 0.82, recall 0.99)
    assert r["step_roc_auc"] >= 0.9 and r["step_recall"] > 0.5  # 0.977 and 0.88
    client = MlflowClient()
    plots = {a.path for a in client.list_artifacts(r["run_id"], "plots")}
    assert {"plots/loss_curves.png", "plots/test_clips.png"} <= plots
    assert len(client.get_metric_history(r["run_id"], "val_step_accuracy")) == SMALL["train"]["epochs"]


@pytest.mark.integration
def test_the_registered_model_serves_trigger_times_from_wav_bytes(trigger_run, sample_data):
    root, r = trigger_run
    assert MlflowClient().get_model_version_by_alias("trigger-word", "challenger").version == r["model_version"]
    model = mlflow.pyfunc.load_model("models:/trigger-word@challenger")
    spec = get_project("trigger-word")
    from flows.promotion import load_settings

    _, s = load_settings("trigger-word", "params.yaml", root)
    data = spec.prepare(s)
    clips = [i for i, e in enumerate(data.ends["test"]) if len(e) == 1][:1] + [
        i for i, e in enumerate(data.ends["test"]) if not e
    ][:1]
    wavs = data.test_wavs()
    out = model.predict(pd.DataFrame({"wav_base64": [wavs[i] for i in clips]}))
    assert list(out.columns[:2]) == ["triggers", "n_triggers"] and out["steps"].tolist() == [72, 72]
    probabilities = np.array(json.loads(out["probabilities"][0]))
    assert len(probabilities) == 72 and out["max_probability"][0] == pytest.approx(probabilities.max(), abs=1e-3)
    assert out["max_probability"][0] > out["max_probability"][1]  # the clip with "activate" scores higher
    # 44.1 kHz input is resampled: the same clip gives nearly the same probabilities
    from scipy.signal import resample_poly

    mono = data.test_audio[clips[0]].astype(np.float32) / 32768
    wav = base64.b64encode(trigger_audio.encode_wav(resample_poly(mono, 441, 160), 44100)).decode()
    resampled = model.predict(pd.DataFrame({"wav_base64": [wav]}))
    assert np.abs(np.array(json.loads(resampled["probabilities"][0])) - probabilities).max() < 0.2
    assert served_score(root, "trigger-word", model)["detection_f1"] == pytest.approx(r["detection_f1"])
