"""The shared figures: what a Panel asks for is what the axes show."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from components.evaluation.plots import Panel, compare_curves, confusion_figure, roc_figure, training_curves

pytestmark = pytest.mark.unit


@pytest.fixture
def history():
    epochs = np.arange(1, 6)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 1 / epochs,
            "val_loss": 1.2 / epochs,
            "val_accuracy": 1 - 0.5 / epochs,
            "val_exact_match": 0.8 - 0.5 / epochs,
        }
    )


def lines(ax) -> dict[str, list[float]]:
    return {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}


def test_the_default_is_a_classifiers_losses_and_validation_accuracy(history):
    fig = training_curves(history)
    loss, accuracy = fig.axes
    assert lines(loss) == {"train": list(history["train_loss"]), "validation": list(history["val_loss"])}
    assert list(accuracy.get_lines()[0].get_ydata()) == list(history["val_accuracy"])
    assert (loss.get_title(), accuracy.get_title(), loss.get_xlabel()) == ("Loss", "Validation accuracy", "epoch")
    assert loss.get_legend() is not None and accuracy.get_legend() is None  # a lone curve is named by its title
    plt.close(fig)


def test_panels_set_scale_limits_legend_and_reference_lines(history):
    panel = Panel(
        {"val_accuracy": "per token", "val_exact_match": "exact match"},
        "validation",
        "Accuracy",
        yscale="log",
        ylim=(0.1, 1.02),
        references={"baseline 0.300": 0.3, "model (test) 0.700": 0.7},
        legend={"fontsize": 8, "loc": "lower right"},
    )
    fig = training_curves(history, [panel], marker="o", figsize=(6, 4))
    (ax,) = fig.axes
    assert lines(ax)["baseline 0.300"] == [0.3, 0.3] and lines(ax)["model (test) 0.700"] == [0.7, 0.7]
    assert ax.get_lines()[0].get_marker() == "o"
    assert (ax.get_yscale(), ax.get_ylim(), ax.get_ylabel()) == ("log", (0.1, 1.02), "validation")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "per token",
        "exact match",
        "baseline 0.300",
        "model (test) 0.700",
    ]
    assert tuple(fig.get_size_inches()) == (6, 4)
    plt.close(fig)


def test_another_x_column_and_one_panel_per_metric(history):
    history = history.rename(columns={"epoch": "step"})
    panels = [Panel({c: None}, c, c.title()) for c in ("train_loss", "val_loss", "val_accuracy")]
    fig = training_curves(history, panels, x="step")
    assert [ax.get_title() for ax in fig.axes] == ["Train_Loss", "Val_Loss", "Val_Accuracy"]
    assert all(ax.get_xlabel() == "step" for ax in fig.axes)
    assert tuple(fig.get_size_inches()) == (13.5, 3.5)
    plt.close(fig)


def test_compare_curves_draws_one_line_per_run_named_by_the_run(history):
    runs = {"rnn": history, "lstm": history.assign(val_loss=history["val_loss"] / 2)}
    fig = compare_curves(runs, Panel({"val_loss": None}, "validation loss", "RNN vs LSTM", references={"target": 0.2}))
    assert lines(fig.axes[0]) == {
        "rnn": list(history["val_loss"]),
        "lstm": list(history["val_loss"] / 2),
        "target": [0.2, 0.2],
    }
    plt.close(fig)


def test_a_missing_history_column_is_a_key_error_naming_it(history):
    with pytest.raises(KeyError, match="val_map50"):
        training_curves(history, [Panel({"val_map50": None}, "mAP", "mAP")])
    plt.close("all")


def test_confusion_and_roc_figures_show_the_counts_and_the_curve():
    fig = confusion_figure(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["cat", "dog"])
    counts = sorted(int(t.get_text()) for t in fig.axes[0].texts)
    assert counts == [0, 1, 1, 2] and fig.axes[0].get_title() == "Confusion matrix (test)"
    plt.close(fig)
    fig = roc_figure([0, 0.5, 1], [0, 0.9, 1], 0.95, positive="dog")
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "AUC = 0.950"
    plt.close(fig)
