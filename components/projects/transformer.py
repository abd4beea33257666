"""transformer: an encoder-decoder Transformer written from scratch, trained to translate [seed 003].

Real format: parallel text, a UTF-8 TSV file of ``source<TAB>target`` pairs (``<data_dir>/<data.file>``), as
the Tatoeba / ManyThings files (their third, attribution column is ignored). Offline sample: 5000 numbers in
digits and in English words ("347" -> "three hundred forty seven"). Vocabularies (word- or character-level
per side) come from the training split and travel with the served model. Metrics on the test split: exact
match of greedy translations and teacher-forced token accuracy; figures: the training curves and the
cross-attention of one test example.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from components.data.formats import parallel_text
from components.data.splits import random_split
from components.data.vocab import Vocab, tokenize
from components.evaluation.plots import Panel, training_curves
from components.evaluation.report import Report
from components.models.params import count_parameters
from components.models.transformer import Transformer
from components.projects.base import Project, Trained
from components.projects.settings.transformer import CAPABILITIES, ParallelTextSettings, TransformerSettings
from components.serving.inputs import as_text_list
from components.serving.predictor import Predictor
from components.training.loop import fit, resolve_device
from components.training.seq2seq import encode_pairs, exact_match, teacher_forced_metrics, translate
from components.training.tasks import Seq2SeqTask
from components.validation.expectations import ValidationReport


@dataclass
class PairSplits:
    train: pd.DataFrame  # columns source, target
    val: pd.DataFrame
    test: pd.DataFrame
    src_vocab: Vocab
    tgt_vocab: Vocab

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def build_model(settings: TransformerSettings, src_vocab: Vocab, tgt_vocab: Vocab) -> Transformer:
    m, d = settings.model, settings.data
    # +2: <bos> on the decoder side, <eos> on both; max_len bounds greedy decoding as well.
    max_len = max(d.max_source_tokens, d.max_target_tokens, settings.decoding.max_len) + 2
    return Transformer(
        len(src_vocab),
        len(tgt_vocab),
        m.d_model,
        m.heads,
        m.encoder_layers,
        m.decoder_layers,
        m.d_ff,
        m.dropout,
        max_len,
        pad_id=Vocab.pad_id,
    )


TRAINING_CURVES = (
    Panel(
        {"train_loss": "train", "val_loss": "validation"}, "cross-entropy per target token", "Loss (teacher forcing)"
    ),
    Panel(
        {"val_token_accuracy": "token accuracy (teacher forcing)", "val_exact_match": "exact match (greedy)"},
        "validation",
        "Validation accuracy",
        ylim=(0, 1.02),
        legend={"fontsize": 8},
    ),
)


@torch.no_grad()
def cross_attention(model: Transformer, source: str, prediction: str, src_vocab: Vocab, tgt_vocab: Vocab):
    """The last decoder layer's cross-attention (H, T, S) while it produced ``prediction`` (and its <eos>)."""
    model.eval()
    device = next(model.parameters()).device
    src = torch.tensor([src_vocab.encode(source)], device=device)
    tgt_in = torch.tensor([tgt_vocab.encode(prediction, bos=True, eos=False)], device=device)
    memory, src_blocked = model.encode(src)
    return model.decode(tgt_in, memory, src_blocked)[1][-1][0].float().cpu().numpy()


def attention_figure(
    weights: np.ndarray, source: str, prediction: str, src_vocab: Vocab, tgt_vocab: Vocab
) -> plt.Figure:
    src_labels = tokenize(source, src_vocab.level, src_vocab.lowercase) + ["<eos>"]
    tgt_labels = tokenize(prediction, tgt_vocab.level, tgt_vocab.lowercase) + ["<eos>"]
    heads = weights.shape[0]
    fig, axes = plt.subplots(
        1, heads, figsize=(2.2 + 0.35 * len(src_labels) * heads, 1.5 + 0.3 * len(tgt_labels)), squeeze=False
    )
    for h, ax in enumerate(axes[0]):
        ax.imshow(weights[h], cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(src_labels)), src_labels, rotation=90, fontsize=8)
        ax.set_yticks(range(len(tgt_labels)), tgt_labels if h == 0 else [""] * len(tgt_labels), fontsize=8)
        ax.set_title(f"head {h}", fontsize=9)
    fig.suptitle(f"Cross-attention, last decoder layer: {source!r} -> {prediction!r}", fontsize=9)
    fig.tight_layout()
    return fig


class TranslationPredictor(Predictor):
    """Served model: a column ``source`` (text) -> ``target``, its greedy translation. Runs on the CPU."""

    def __init__(self, model: Transformer, src_vocab: Vocab, tgt_vocab: Vocab, max_len: int):
        self.model = model.float().cpu().eval()
        self.src_vocab, self.tgt_vocab, self.max_len = src_vocab, tgt_vocab, max_len

    def predict_frame(self, inputs) -> pd.DataFrame:
        sources = as_text_list(inputs, "source")
        targets = translate(self.model, sources, self.src_vocab, self.tgt_vocab, self.max_len, torch.device("cpu"))
        return pd.DataFrame({"source": sources, "target": targets})


class TransformerProject(Project):
    name = "transformer"
    capabilities = CAPABILITIES
    summary = "Encoder-decoder Transformer from scratch: attention, positional encoding, masks (parallel text TSV)"
    primary_metric = "exact_match"
    Settings = TransformerSettings

    def make_sample(self, out_dir: Path) -> dict:
        return parallel_text.generate(out_dir, ParallelTextSettings().file)

    def rules(self, settings: TransformerSettings) -> parallel_text.PairRules:
        d = settings.data
        return parallel_text.PairRules(
            d.source_tokens, d.target_tokens, d.lowercase, d.max_source_tokens, d.max_target_tokens, d.min_pairs
        )

    def validate(self, settings: TransformerSettings) -> ValidationReport:
        return parallel_text.validate_pairs(settings.data_dir / settings.data.file, self.rules(settings))[0]

    def prepare(self, settings: TransformerSettings) -> PairSplits:
        d = settings.data
        pairs = parallel_text.read_pairs(settings.data_dir / d.file, self.rules(settings))
        # A pair listed twice would otherwise land in train and test at once.
        pairs = pairs.drop_duplicates(ignore_index=True)
        split = random_split(len(pairs), {"test": settings.split.test, "val": settings.split.val}, settings.seed)
        train, val, test = (pairs.iloc[split[part]].reset_index(drop=True) for part in ("train", "val", "test"))
        return PairSplits(
            train,
            val,
            test,
            Vocab.build(train["source"], d.source_tokens, d.lowercase),
            Vocab.build(train["target"], d.target_tokens, d.lowercase),
        )

    def train(self, data: PairSplits, settings: TransformerSettings, *, on_epoch, checkpoint_dir: Path) -> Trained:
        device = resolve_device(settings.device)
        torch.manual_seed(settings.seed)
        model = build_model(settings, data.src_vocab, data.tgt_vocab)
        encode = lambda split: encode_pairs(
            split["source"].tolist(),
            split["target"].tolist(),  # noqa: E731
            data.src_vocab,
            data.tgt_vocab,
        )
        val_sources, val_targets = data.val["source"].tolist(), data.val["target"].tolist()

        def val_exact_match(m) -> float:
            predictions = translate(m, val_sources, data.src_vocab, data.tgt_vocab, settings.decoding.max_len, device)
            return exact_match(predictions, val_targets, data.tgt_vocab)

        task = Seq2SeqTask(Vocab.pad_id, settings.train.label_smoothing, exact_match=val_exact_match)
        result = fit(
            model,
            task,
            encode(data.train),
            encode(data.val),
            settings.train,
            device,
            seed=settings.seed,
            on_epoch=on_epoch,
            checkpoint_dir=checkpoint_dir,
            resume=True,
            progress=False,
        )
        history, best_epoch = result.as_rows(), result.best_epoch
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"model": model.state_dict(), "src_vocab": data.src_vocab.tokens, "tgt_vocab": data.tgt_vocab.tokens},
            checkpoint_dir / "best.pt",
        )
        info = {
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "device": device.type,
            "parameters": count_parameters(model),
            "source_vocabulary": len(data.src_vocab),
            "target_vocabulary": len(data.tgt_vocab),
            **data.sizes(),
        }
        return Trained(model, pd.DataFrame(history), info)

    def evaluate(self, trained: Trained, data: PairSplits, settings: TransformerSettings) -> Report:
        model, device = trained.model, resolve_device(settings.device)
        sources, targets = data.test["source"].tolist(), data.test["target"].tolist()
        predictions = translate(model, sources, data.src_vocab, data.tgt_vocab, settings.decoding.max_len, device)
        forced = teacher_forced_metrics(
            model, encode_pairs(sources, targets, data.src_vocab, data.tgt_vocab), device, Vocab.pad_id
        )
        normalize = data.tgt_vocab.normalize
        correct = [normalize(p) == normalize(t) for p, t in zip(predictions, targets)]
        # The most frequent training target, predicted for everything: what a model that ignores the source gets.
        constant = data.train["target"].map(normalize).mode().iloc[0]
        metrics = {
            "exact_match": exact_match(predictions, targets, data.tgt_vocab),
            "token_accuracy": forced["token_accuracy"],
            "loss": forced["loss"],
            "constant_baseline_exact_match": float(np.mean([normalize(t) == constant for t in targets])),
        }
        i = min(settings.decoding.attention_example, len(sources) - 1)
        weights = cross_attention(model, sources[i], predictions[i], data.src_vocab, data.tgt_vocab)
        figures = {
            "training_curves": training_curves(trained.history, TRAINING_CURVES),
            "cross_attention": attention_figure(weights, sources[i], predictions[i], data.src_vocab, data.tgt_vocab),
        }
        tables = {
            "history": trained.history,
            "test_predictions": pd.DataFrame(
                {"source": sources, "target": targets, "predicted": predictions, "correct": correct}
            ),
        }
        return Report(metrics, figures, tables)

    def score(self, model, data: PairSplits, settings: TransformerSettings) -> dict[str, float]:
        """Exact match of the served model's translations of the test sources."""
        frame = model.predict(pd.DataFrame({"source": data.test["source"]}))
        return {"exact_match": exact_match(frame["target"].tolist(), data.test["target"].tolist(), data.tgt_vocab)}

    def predictor(self, trained: Trained, data: PairSplits, settings: TransformerSettings):
        model = copy.deepcopy(trained.model)  # the served copy moves to the CPU; the trained one stays put
        example = pd.DataFrame({"source": data.test["source"].head(3).tolist()})
        return TranslationPredictor(model, data.src_vocab, data.tgt_vocab, settings.decoding.max_len), example
