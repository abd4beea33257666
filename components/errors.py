"""The one base class of errors a user can fix: bad params.yaml, bad or missing data, an unknown name.

A ``DlfolioError`` is expected: its message alone says what is wrong and what to fix (the YAML path, the file
and the failed expectation, the command that writes the missing data), so the CLI prints it once, without a
traceback, and exits with status 2 (flows/cli.py). Anything else is a bug and keeps its traceback.

Each subclass also keeps the built-in base it had before (``ValueError``, ``FileNotFoundError``,
``LookupError``), so ``except ValueError`` in callers and tests behaves as it always did. This module imports
nothing, so any component can raise these without pulling in a dependency.
"""

from __future__ import annotations


class DlfolioError(Exception):
    """An expected, user-fixable error; the message says what to fix."""


class DataFormatError(DlfolioError, ValueError):
    """A data file exists but is not in the format its project reads; the message names the file and the rule."""


class BusyError(DlfolioError, RuntimeError):
    """Another dlfolio process holds what this one needs (a project's run, a label state); the message names
    the holder (pid, since when) and what to wait for."""


class TrainingDiverged(DlfolioError, ArithmeticError):
    """The training loss (or the weights) stopped being finite: the message names the epoch and the loss, so the
    fix (a lower learning rate, gradient clipping, scaled inputs) is looked for in the settings, not in the
    metric that later chokes on NaN predictions."""

    def __init__(self, epoch: int, loss: float, what: str = "loss", step: str = "epoch"):
        super().__init__(
            f"training diverged at {step} {epoch} ({what} {loss:g}); lower train.lr, clip gradients or scale the inputs"
        )
        self.epoch, self.loss = epoch, loss

    @classmethod
    def check(cls, epoch: int, loss: float, step: str = "epoch") -> None:
        """Raise when ``loss`` (a float) is NaN or infinite: what the NumPy trainers call once an epoch."""
        if not abs(loss) < float("inf"):  # False for NaN too
            raise cls(epoch, float(loss), step=step)


class NotWritableError(DlfolioError, PermissionError):
    """A directory dlfolio must write to (outputs/, a labels folder) is read-only; the message names it."""
