"""The model registry's promotion gate and its listing: MLflow aliases and tags, never the deprecated stages.

Each project's registered model has versions; alias ``challenger`` marks the newest candidate (set when the
pipeline registers it) and alias ``champion`` the version that serves. ``promote`` moves ``champion`` to a
candidate only when the candidate beats the current champion on the project's primary metric, both scored now,
on the same test data, by a caller-supplied ``score`` function (numbers logged at training time may come from
another data version, so they are never compared). ``force`` overrides the gate and needs a reason. Every
decision is written to the candidate's tags (``promotion.*``) and returned.

Re-scoring on today's data has its own trap: if the data changed (say two CSV columns swapped, which still
passes validation), a good champion collapses and any candidate trained on the new data wins. So each model is
also held against the score its run logged when it was registered: if the champion's score now moved beyond
``drift_tolerance`` (relative) from that score, the gate refuses and names the data change (``data.md5`` at
registration and now); ``force`` still overrides it, with a reason.

Two promotions racing must leave one champion that was chosen on fresh reads: the read of the champion, the
scoring and the alias move happen under an exclusive lock (a file beside the SQLite store on one host; the
caller's shared lock, a Prefect global concurrency limit, for a team's servers), and the champion is read once
more right before the alias moves (which also covers a store no lock covers).

A crash must not leave a moved alias without its record: the decision is written first with
``promotion.status=pending``, then the alias moves, then the status becomes ``done``. The next promotion of the
model (under the lock) repairs what a crash left: a pending version that holds ``champion`` is marked done (and
its predecessor tagged), any other pending one ``rolled_back``. Only a version whose run FINISHED is promoted.

Loading a version runs code: its predictor is a pickle. ``load_model`` loads only versions whose artifacts lie
in the project's own artifact store (its experiment's artifact location) or under a URI listed in
``DLFOLIO_TRUSTED_MODEL_STORES``, and checks the predictor file against the sha256 recorded at registration
(tag ``predictor.sha256``) before anything is unpickled.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.errors import DlfolioError
from components.tracking.runs import CHALLENGER, CHAMPION, PREDICTOR_SHA256

TAG = "promotion."
STATUS = TAG + "status"  # pending -> done, or rolled_back when a crash stopped the promotion before the alias moved
Scorer = Callable[[Any], float]  # a loaded pyfunc model -> the primary metric on the current test data
DRIFT_TOLERANCE = 0.10  # how far (relative) the champion's score may move from its score at registration
TRUSTED_STORES_ENV = "DLFOLIO_TRUSTED_MODEL_STORES"  # comma-separated artifact URIs to load models from as well
ALLOW_UNVERIFIED_ENV = "DLFOLIO_ALLOW_UNVERIFIED_MODELS"  # "1": load versions registered without a predictor hash


class RegistryError(DlfolioError, LookupError):
    """The model, version or alias asked for is not in the registry."""


class UntrustedModelError(DlfolioError, PermissionError):
    """A version's artifacts are outside the trusted stores, or its predictor is not the file registered."""


class NotPromotableError(DlfolioError, ValueError):
    """The version cannot be promoted: its run did not finish."""


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
    # what each version's run logged at registration, and the data hash it was registered on
    candidate_registered_score: float | None = None
    champion_registered_score: float | None = None
    champion_data_md5: str | None = None
    drifted: bool = False  # the champion's score moved beyond the tolerance from its score at registration
    repairs: tuple[str, ...] = ()  # what this promotion finished or rolled back of one a crash interrupted

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
        def number(x: float | None) -> str:
            return "none" if x is None else f"{x:.6f}"

        tags = {
            "decision": self.outcome,
            "reason": self.reason,
            "metric": self.metric,
            "candidate_score": number(self.candidate_score),
            "candidate_registered_score": number(self.candidate_registered_score),
            "champion_version": self.champion or "none",
            "champion_score": number(self.champion_score),
            "champion_registered_score": number(self.champion_registered_score),
            "champion_data_md5": self.champion_data_md5 or "unknown",
            "data_md5": self.data_md5 or "unknown",
            "drifted": str(self.drifted),
            "decided_at": when,
            "decided_by": who,
        }
        return {TAG + k: v[:5000] for k, v in tags.items()}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome}


def moved(then: float, now: float, tolerance: float) -> bool:
    """Whether ``now`` differs from ``then`` by more than ``tolerance`` relative to ``then`` (absolute at 0)."""
    return abs(now - then) > tolerance * (abs(then) if then else 1.0)


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


def check_finished(client: MlflowClient, name: str, version: str) -> None:
    """Refuse a version whose run did not finish (still RUNNING after a crash, FAILED, KILLED) or has no run."""
    mv = client.get_model_version(name, str(version))
    if not mv.run_id:
        raise NotPromotableError(f"{name} version {version} has no run, so nothing shows it was trained; not promoted")
    try:
        status = client.get_run(mv.run_id).info.status
    except MlflowException:
        raise NotPromotableError(f"{name} version {version}: its run {mv.run_id} is gone; not promoted") from None
    if status != "FINISHED":
        raise NotPromotableError(
            f"{name} version {version} comes from run {mv.run_id}, which is {status} (not FINISHED): a crashed or "
            "failed run's model is never promoted; run the pipeline again"
        )


def registered_score(client: MlflowClient, name: str, version: str, metric: str) -> tuple[float | None, str | None]:
    """The primary metric the version's run logged on its test split (``test_<metric>``), and ``data.md5``."""
    mv = client.get_model_version(name, str(version))
    tags = mv.tags or {}
    score = None
    if mv.run_id:
        try:
            score = client.get_run(mv.run_id).data.metrics.get(f"test_{metric}")
        except MlflowException:
            pass  # the run was deleted; the version's tag below may still say
    if score is None and f"test_{metric}" in tags:
        score = float(tags[f"test_{metric}"])
    return score, tags.get("data.md5")


def trusted_stores(client: MlflowClient, experiment: str) -> list[str]:
    """The artifact location of the project's experiment in the tracking store, and ``DLFOLIO_TRUSTED_MODEL_STORES``."""
    stores = [s.strip() for s in os.environ.get(TRUSTED_STORES_ENV, "").split(",") if s.strip()]
    found = client.get_experiment_by_name(experiment)
    return ([found.artifact_location] if found is not None else []) + stores


def lies_within(uri: str, store: str) -> bool:
    def local(u: str) -> Path | None:
        parsed = urlparse(u)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path)).resolve()  # resolved: no `..` or symlink out of the store
        return None

    path, root = local(uri), local(store)
    if path is not None or root is not None:
        return path is not None and root is not None and path.is_relative_to(root)
    if ".." in urlparse(uri).path.split("/"):
        return False  # a remote URI is compared as text: no climbing out of the store
    return uri.rstrip("/") == store.rstrip("/") or uri.startswith(store.rstrip("/") + "/")


def check_trusted(client: MlflowClient, name: str, version: str, experiment: str | None = None) -> str:
    """The version's artifact URI, if it lies in a trusted store (see ``trusted_stores``); refuse it otherwise."""
    uri = client.get_model_version_download_uri(name, str(version))
    stores = trusted_stores(client, experiment or name)
    if not any(lies_within(uri, store) for store in stores):
        raise UntrustedModelError(
            f"{name} version {version}: its artifacts ({uri}) are outside the project's artifact store "
            f"({', '.join(stores) or f'no experiment {experiment or name!r}'}); a model is a pickle and loading it "
            f"runs code, so it is not loaded (trust another store with {TRUSTED_STORES_ENV}=URI)"
        )
    return uri


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def predictor_path(model_dir: Path) -> Path | None:
    """The file of the pyfunc model's ``predictor`` artifact, as its MLmodel names it (None: it names none)."""
    from mlflow.models import Model

    artifacts = Model.load(str(model_dir)).flavors.get("python_function", {}).get("artifacts") or {}
    return model_dir / artifacts["predictor"]["path"] if "predictor" in artifacts else None


def verify_predictor(model_dir: Path, expected: str | None, what: str) -> None:
    """Compare the pyfunc model's predictor artifact with the sha256 recorded at registration, before unpickling."""
    file = predictor_path(model_dir)
    if file is None:
        raise UntrustedModelError(f"{what}: its MLmodel names no predictor artifact; not loaded")
    if expected is None:
        if os.environ.get(ALLOW_UNVERIFIED_ENV) == "1":
            return
        raise UntrustedModelError(
            f"{what}: no {PREDICTOR_SHA256} tag was recorded at registration, so {file.name} cannot be checked "
            f"before it is unpickled; re-run its pipeline, or set {ALLOW_UNVERIFIED_ENV}=1 to trust it"
        )
    actual = sha256_file(file)
    if actual != expected:
        raise UntrustedModelError(
            f"{what}: {file.name} has sha256 {actual[:12]}…, not the {expected[:12]}… recorded at registration "
            "(the file was changed); not loaded"
        )


def load_model(name: str, version: str, experiment: str | None = None):
    """A registered version as a pyfunc model, only from a trusted store and only if its predictor is the file
    registered (checked on the downloaded copy, which is what loads); versions pickled before the layout move
    load too."""
    import mlflow.artifacts
    import mlflow.pyfunc

    from components.serving.legacy import old_module_names

    client = MlflowClient()
    uri = check_trusted(client, name, version, experiment)
    # Kept for the process, as MLflow does for models:/ URIs: the model's bundled code stays on sys.path.
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tempfile.mkdtemp(prefix="dlfolio-")))
    tags = client.get_model_version(name, str(version)).tags or {}
    verify_predictor(local, tags.get(PREDICTOR_SHA256), f"{name} version {version}")
    with old_module_names():
        return mlflow.pyfunc.load_model(str(local))


def _crash_point(name: str) -> None:
    """Tests kill the process here (``DLFOLIO_CRASH_AT=name``) to check what the next promotion repairs."""
    if os.environ.get("DLFOLIO_CRASH_AT") == name:
        os._exit(137)


def repair_pending(client: MlflowClient, name: str) -> list[str]:
    """Finish or roll back the promotions a crash left pending; returns what was done, one line each."""
    champion = champion_version(client, name)
    done = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        tags = mv.tags or {}
        if tags.get(STATUS) != "pending":
            continue
        version, now = str(mv.version), datetime.now(UTC).isoformat(timespec="seconds")
        if version == champion:  # the alias moved, the final tags were lost
            _finish(client, name, version, tags.get(TAG + "champion_version", "none"), now)
            done.append(f"version {version}: an interrupted promotion had moved {CHAMPION!r}; its record is completed")
        else:  # the alias never moved: the decision did not take effect
            client.set_model_version_tag(name, version, TAG + "decision", "interrupted")
            client.set_model_version_tag(name, version, STATUS, "rolled_back")
            client.set_model_version_tag(name, version, TAG + "rolled_back_at", now)
            done.append(f"version {version}: an interrupted promotion had not moved {CHAMPION!r}; rolled back")
    return done


def _finish(client: MlflowClient, name: str, candidate: str, previous: str | None, now: str) -> None:
    if previous not in (None, "none", candidate):
        client.set_model_version_tag(name, previous, TAG + "replaced_by", candidate)
        client.set_model_version_tag(name, previous, TAG + "replaced_at", now)
    client.set_model_version_tag(name, candidate, STATUS, "done")


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
    drift_tolerance: float = DRIFT_TOLERANCE,
    lock_path: Path | None = None,
    loader: Callable[[str, str], Any] = load_model,
    lock: AbstractContextManager | None = None,
) -> Decision:
    """Score the candidate and the current champion on the same data and move ``champion`` if the candidate wins
    and the champion's score has not moved beyond ``drift_tolerance`` from its score at registration (or
    ``force``, which needs a ``reason``). The decision is tagged on the candidate and returned.

    ``lock`` serialises promotions of ``name`` across hosts (flows/promotion.py passes a Prefect global
    concurrency limit when a team's Prefect server is configured); the file lock beside the store (``lock_path``),
    which serialises the processes of one host, is taken in any case."""
    if force and not (reason and reason.strip()):
        raise ValueError("a forced promotion needs a reason (--reason TEXT); it is recorded on the version")
    candidate = resolve_candidate(client, name, version)
    scores: dict[str, float] = {}

    def score_of(v: str) -> float:
        if v not in scores:
            scores[v] = float(score(loader(name, v)))
        return scores[v]

    def registered(v: str) -> tuple[float | None, str | None]:
        return registered_score(client, name, v, metric)

    # The host's file lock always (a promotion on this host without the team's server settings takes only that
    # one), inside the shared lock when there is one; every process takes them in this order.
    with lock if lock is not None else nullcontext(), exclusive(lock_path or lock_path_for(client.tracking_uri)):
        repairs = tuple(repair_pending(client, name))
        check_finished(client, name, candidate)
        for _ in range(5):  # re-decide if the champion moved while we scored (a store the lock does not cover)
            champion = champion_version(client, name)
            decision = _decide(
                name,
                candidate,
                champion,
                score_of,
                registered,
                metric,
                higher_is_better,
                force,
                reason,
                data_md5,
                drift_tolerance,
            )
            if champion_version(client, name) == champion:
                break
        else:
            raise RuntimeError(f"{name}: the champion kept moving during promotion; try again")
        decision = Decision(**{**asdict(decision), "repairs": repairs})
        now, who = datetime.now(UTC).isoformat(timespec="seconds"), getpass.getuser()
        if decision.outcome == "unchanged":
            # Nothing moves, so the tags of the decision that made it champion stay; a reason given is still
            # recorded (who checked it, when and why) beside them.
            if reason and reason.strip():
                for key, value in {"checked_at": now, "checked_by": who, "checked_reason": reason[:5000]}.items():
                    client.set_model_version_tag(name, candidate, TAG + key, value)
            return decision
        # The record first, then the alias, then "done": a crash between leaves "pending", repaired next time.
        tags = {**decision.tags(now, who), STATUS: "pending" if decision.promoted else "done"}
        for key, value in tags.items():
            client.set_model_version_tag(name, candidate, key, value)
        if decision.promoted:
            _crash_point("before_alias")
            client.set_registered_model_alias(name, CHAMPION, candidate)
            _crash_point("after_alias")
            _finish(client, name, candidate, champion, now)
    return decision


def _decide(
    name, candidate, champion, score_of, registered, metric, higher_is_better, force, reason, data_md5, tolerance
) -> Decision:
    candidate_score = score_of(candidate)
    candidate_then, _ = registered(candidate)
    common = dict(
        model=name, candidate=candidate, champion=champion, metric=metric, higher_is_better=higher_is_better,
        candidate_score=candidate_score, data_md5=data_md5, candidate_registered_score=candidate_then,
    )  # fmt: skip
    if champion == candidate:
        return Decision(
            **common,
            champion_score=candidate_score,
            promoted=False,
            forced=False,
            reason=f"version {candidate} already holds alias {CHAMPION!r}",
        )
    champion_score = score_of(champion) if champion is not None else None
    champion_then, champion_md5 = registered(champion) if champion is not None else (None, None)
    drifted = champion_then is not None and moved(champion_then, champion_score, tolerance)
    if drifted:
        promoted = False
        data = (
            f"the data changed: data.md5 {champion_md5 or 'unknown'} at registration, {data_md5 or 'unknown'} now"
            if champion_md5 != data_md5
            else f"the data did not change (data.md5 {data_md5}), so the model or the scoring did"
        )
        why = (
            f"champion (version {champion}) {metric}={champion_score:.4f} on today's data but {champion_then:.4f} "
            f"at registration, beyond the {tolerance:.0%} tolerance: {data}; a candidate is not compared on data "
            "that broke the champion (check the data, or --force --reason)"
        )
    else:
        promoted, why = compare(candidate_score, champion_score, metric, higher_is_better, champion)
    if force:
        why = f"forced by {getpass.getuser()}: {reason.strip()} (gate said: {why})"
    return Decision(
        **common,
        champion_score=champion_score,
        promoted=promoted or force,
        forced=force,
        reason=why,
        champion_registered_score=champion_then,
        champion_data_md5=champion_md5,
        drifted=drifted,
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


def sync_challenger(client: MlflowClient, recorded: dict[str, str]) -> str:
    """Point alias `challenger` at the version a project's DVC outputs belong to (``recorded``: what
    ``RunOutputs.record_registration`` wrote). DVC restores outputs from its run cache without running the
    pipeline, so after a revert the outputs may hold an older version than `challenger`. Returns what it did;
    raises ``RegistryError`` (naming what to run) when the registry no longer holds that version."""
    name, version, run_id = recorded["model"], str(recorded["version"]), recorded["run_id"]
    rerun = f"run `dvc repro --force run-{name}` to train and register what the outputs should hold"
    try:
        held = client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(
            f"{name}: outputs/{name} belong to version {version}, which the registry does not hold; {rerun}"
        ) from None
    if held.run_id != run_id:
        raise RegistryError(
            f"{name}: outputs/{name} belong to run {run_id}, but version {version} came from run {held.run_id} "
            f"(another tracking store?); {rerun}"
        )
    current = registered_model(client, name).aliases.get(CHALLENGER)
    if current is not None and str(current) == version:
        return f"{name}: challenger is version {version}, the one outputs/{name} hold"
    client.set_registered_model_alias(name, CHALLENGER, version)
    return f"{name}: challenger re-pointed from version {current} to {version}, the one outputs/{name} hold"
