"""The model registry's promotion gate and its listing: MLflow aliases and tags, never the deprecated stages.

Each project's registered model has versions; alias ``challenger`` marks the newest candidate (set when the
pipeline registers it) and alias ``champion`` the version that serves. ``promote`` moves ``champion`` to a
candidate only when the candidate beats the current champion on the project's primary metric, both scored now,
on the same test data, by a caller-supplied ``score`` function (numbers logged at training time may come from
another data version, so they are never compared). ``force`` overrides the gate and needs a reason. Every
decision is written to the candidate's tags (``promotion.*``) and returned.

Two promotions racing must leave one champion that was chosen on fresh reads: the read of the champion, the
scoring and the alias move happen under an exclusive file lock beside the SQLite store, and the champion is
read once more right before the alias moves (which also covers a remote tracking server the lock cannot see).
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.errors import DlfolioError
from components.tracking.runs import CHALLENGER, CHAMPION

TAG = "promotion."
Scorer = Callable[[Any], float]  # a loaded pyfunc model -> the primary metric on the current test data


class RegistryError(DlfolioError, LookupError):
    """The model, version or alias asked for is not in the registry."""


@dataclass(frozen=True)
class Decision:
    model: str
    candidate: str
    champion: str | None  # the champion the candidate was compared with (None: there was none)
    metric: str
    higher_is_better: bool
    candidate_score: float
    champion_score: float | None
    promoted: bool
    forced: bool
    reason: str
    data_md5: str | None = None

    @property
    def outcome(self) -> str:
        if self.forced:
            return "forced"
        if self.candidate == self.champion:
            return "unchanged"
        return "promoted" if self.promoted else "refused"

    def summary(self) -> str:
        verb = {
            "forced": "FORCED to champion",
            "promoted": "promoted to champion",
            "refused": "REFUSED; champion stays",
            "unchanged": "already champion",
        }[self.outcome]
        return f"{self.model} version {self.candidate}: {verb}. {self.reason}"

    def tags(self, when: str, who: str) -> dict[str, str]:
        tags = {
            "decision": self.outcome,
            "reason": self.reason,
            "metric": self.metric,
            "candidate_score": f"{self.candidate_score:.6f}",
            "champion_version": self.champion or "none",
            "champion_score": "none" if self.champion_score is None else f"{self.champion_score:.6f}",
            "data_md5": self.data_md5 or "unknown",
            "decided_at": when,
            "decided_by": who,
        }
        return {TAG + k: v[:5000] for k, v in tags.items()}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome}


def compare(
    candidate: float, champion: float | None, metric: str, higher_is_better: bool, champion_version: str | None = None
) -> tuple[bool, str]:
    """Whether the candidate wins, and why. Strictly better wins; a tie keeps the champion."""
    if champion is None:
        return True, f"no champion yet; candidate {metric}={candidate:.4f}"
    better = candidate > champion if higher_is_better else candidate < champion
    direction = "higher" if higher_is_better else "lower"
    versus = f"candidate {metric}={candidate:.4f} vs champion (version {champion_version}) {metric}={champion:.4f}"
    if better:
        return True, f"{versus}: better ({direction} is better)"
    return False, f"{versus}: not better ({direction} is better; a tie keeps the champion)"


def champion_version(client: MlflowClient, name: str) -> str | None:
    champion = registered_model(client, name).aliases.get(CHAMPION)
    return None if champion is None else str(champion)


def registered_model(client: MlflowClient, name: str):
    try:
        return client.get_registered_model(name)
    except MlflowException:
        raise RegistryError(
            f"no registered model {name!r} in the registry; run its pipeline first (`dlfolio run {name}`)"
        ) from None


def resolve_candidate(client: MlflowClient, name: str, version: int | str | None) -> str:
    """The version asked for, or the one holding alias ``challenger``."""
    model = registered_model(client, name)
    if version is None:
        if CHALLENGER not in model.aliases:
            raise RegistryError(f"{name}: no version has alias {CHALLENGER!r}; pass a version explicitly")
        return str(model.aliases[CHALLENGER])
    try:
        return str(client.get_model_version(name, str(version)).version)
    except MlflowException:
        raise RegistryError(f"{name}: no version {version} in the registry") from None


def lock_path_for(tracking_uri: str) -> Path:
    """A lock file beside the SQLite store; for other stores, one per store URI in the temp dir."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///") + ".promote.lock")
    digest = hashlib.md5(tracking_uri.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"dlfolio-promote-{digest}.lock"


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """An exclusive lock between processes, and between threads (each holds its own open file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_model(name: str, version: str):
    """A registered version as a pyfunc model; versions pickled before the layout move load too."""
    import mlflow.pyfunc

    from components.serving.legacy import old_module_names

    with old_module_names():
        return mlflow.pyfunc.load_model(f"models:/{name}/{version}")


def promote(
    client: MlflowClient,
    name: str,
    score: Scorer,
    *,
    metric: str,
    higher_is_better: bool,
    version: int | str | None = None,
    force: bool = False,
    reason: str | None = None,
    data_md5: str | None = None,
    lock_path: Path | None = None,
    loader: Callable[[str, str], Any] = load_model,
) -> Decision:
    """Score the candidate and the current champion on the same data and move ``champion`` if the candidate wins
    (or ``force``, which needs a ``reason``). The decision is tagged on the candidate and returned."""
    if force and not (reason and reason.strip()):
        raise ValueError("a forced promotion needs a reason (--reason TEXT); it is recorded on the version")
    candidate = resolve_candidate(client, name, version)
    scores: dict[str, float] = {}

    def score_of(v: str) -> float:
        if v not in scores:
            scores[v] = float(score(loader(name, v)))
        return scores[v]

    lock = lock_path or lock_path_for(client.tracking_uri)
    with exclusive(lock):
        for _ in range(5):  # re-decide if the champion moved while we scored (a store the lock does not cover)
            champion = champion_version(client, name)
            decision = _decide(name, candidate, champion, score_of, metric, higher_is_better, force, reason, data_md5)
            if champion_version(client, name) == champion:
                break
        else:
            raise RuntimeError(f"{name}: the champion kept moving during promotion; try again")
        if decision.outcome == "unchanged":
            return decision  # nothing decided: keep the tags of the decision that made it champion
        now, who = datetime.now(UTC).isoformat(timespec="seconds"), getpass.getuser()
        if decision.promoted:
            client.set_registered_model_alias(name, CHAMPION, candidate)
            if champion is not None:
                client.set_model_version_tag(name, champion, TAG + "replaced_by", candidate)
                client.set_model_version_tag(name, champion, TAG + "replaced_at", now)
        for key, value in decision.tags(now, who).items():
            client.set_model_version_tag(name, candidate, key, value)
    return decision


def _decide(name, candidate, champion, score_of, metric, higher_is_better, force, reason, data_md5) -> Decision:
    candidate_score = score_of(candidate)
    if champion == candidate:
        return Decision(
            name,
            candidate,
            champion,
            metric,
            higher_is_better,
            candidate_score,
            candidate_score,
            False,
            False,
            f"version {candidate} already holds alias {CHAMPION!r}",
            data_md5,
        )
    champion_score = score_of(champion) if champion is not None else None
    promoted, why = compare(candidate_score, champion_score, metric, higher_is_better, champion)
    if force:
        why = f"forced by {getpass.getuser()}: {reason.strip()} (gate said: {why})"
    return Decision(
        name,
        candidate,
        champion,
        metric,
        higher_is_better,
        candidate_score,
        champion_score,
        promoted or force,
        force,
        why,
        data_md5,
    )


def list_versions(client: MlflowClient, name: str) -> pd.DataFrame:
    """One row per version, newest first: aliases, when, the run's test metrics, data hash and last decision."""
    model = registered_model(client, name)
    aliases: dict[str, list[str]] = {}
    for alias, v in model.aliases.items():
        aliases.setdefault(str(v), []).append(alias)
    rows = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        metrics = {}
        if mv.run_id:
            try:
                metrics = {k: v for k, v in client.get_run(mv.run_id).data.metrics.items() if k.startswith("test_")}
            except MlflowException:
                pass  # the run was deleted; the version still lists
        tags = mv.tags or {}
        rows.append(
            {
                "version": int(mv.version),
                "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
                "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
                **metrics,
                "data_md5": tags.get("data.md5", "")[:8],
                "git": tags.get("git.commit", "")[:8],
                "decision": tags.get(TAG + "decision", ""),
                "reason": tags.get(TAG + "reason", ""),
            }
        )
    return pd.DataFrame(rows).sort_values("version", ascending=False).reset_index(drop=True) if rows else pd.DataFrame()
