"""Data validation with Great Expectations 1.x suites, run on small tables that describe a dataset.

A dataset is first described as a table (an image manifest: one row per file; a class table: one row per
class), then a GX suite runs over each table. Failures name the expectation and the offending rows (file
paths, class names), and ``DataValidationError`` carries the whole report.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from components.errors import DlfolioError


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str
    success: bool
    detail: str = ""
    failing: list[str] = field(default_factory=list)

    def line(self) -> str:
        shown = ", ".join(self.failing[:10]) + (
            f" ... and {len(self.failing) - 10} more" if len(self.failing) > 10 else ""
        )
        return f"{self.expectation}({self.column}) failed{': ' + self.detail if self.detail else ''}" + (
            f" -> {shown}" if shown else ""
        )


@dataclass
class ValidationReport:
    dataset: str
    outcomes: list[ExpectationOutcome]
    rows: int

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "success": self.success,
            "rows": self.rows,
            "outcomes": [asdict(o) for o in self.outcomes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        failed = self.failures
        if not failed:
            return f"{self.dataset}: all {len(self.outcomes)} expectations passed on {self.rows} rows"
        head = f"{self.dataset}: {len(failed)} of {len(self.outcomes)} expectations failed"
        return "\n".join([head, *("  - " + o.line() for o in failed)])


class DataValidationError(DlfolioError, ValueError):
    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__("data validation failed\n" + report.summary())


def image_size_expectations(min_size: int, max_size: int) -> list:
    """Width and height each in [min_size, max_size] px: the size check every image format's suite holds."""
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column=side,
            min_value=min_size,
            max_value=max_size,
            meta={"explain": f"{side} in [{min_size}, {max_size}] px"},
        )
        for side in ("width", "height")
    ]


def _context():
    import great_expectations as gx

    # GX sets this module's logger to INFO itself; its "temporary docs site" line is noise in a pipeline log.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context


def run_suite(
    table: pd.DataFrame, expectations: list, *, name: str, id_column: str, context=None
) -> list[ExpectationOutcome]:
    """Validate ``table`` against GX expectation objects; failing rows are reported by ``id_column``."""
    import great_expectations as gx

    context = context or _context()
    source = context.data_sources.add_or_update_pandas(name)
    batch_def = source.add_dataframe_asset(f"{name}-table").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=f"{name}-suite", expectations=expectations))
    batch = batch_def.get_batch(batch_parameters={"dataframe": table.reset_index(drop=True)})
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [id_column]}
    )
    outcomes = []
    for r in result.results:
        config = r.expectation_config
        column = config.kwargs.get("column", "")
        failing = [str(row[id_column]) for row in r.result.get("unexpected_index_list") or []]
        detail = (config.meta or {}).get("explain", "")
        if not r.success and not failing and "partial_unexpected_list" in r.result:
            failing = [str(v) for v in r.result["partial_unexpected_list"]]
        if not r.success and r.result.get("observed_value") is not None:
            detail = f"{detail}; observed {r.result['observed_value']}".lstrip("; ")
        outcomes.append(ExpectationOutcome(config.type, column, bool(r.success), detail, failing))
    return outcomes


@dataclass(frozen=True)
class ImageRules:
    classes: tuple[str, ...]
    min_size: int = 16
    max_size: int = 4096
    channels: tuple[int, ...] = (1, 3, 4)
    min_per_class: int = 1
    min_class_share: float = 0.0  # share of the smallest class; 0.2 means no class below 20% of the data
    group_pattern: str | None = None  # a regex every file name must match; its first group names the person


def image_manifest_expectations(rules: ImageRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToBeInSet(
            column="decodable", value_set=[True], meta={"explain": "file must decode as an image"}
        ),
        E.ExpectColumnValuesToBeInSet(
            column="label",
            value_set=list(rules.classes),
            meta={"explain": f"folder must be one of {list(rules.classes)}"},
        ),
        *image_size_expectations(rules.min_size, rules.max_size),
        E.ExpectColumnValuesToBeInSet(
            column="channels", value_set=list(rules.channels), meta={"explain": f"channels in {list(rules.channels)}"}
        ),
        E.ExpectColumnValuesToBeUnique(column="sha256", meta={"explain": "duplicate file contents"}),
        *(
            [
                E.ExpectColumnValuesToMatchRegex(
                    column="file_name",
                    # pandas' str.contains warns on capturing groups; the split reads them, the check need not
                    regex=re.sub(r"(?<!\\)\((?!\?)", "(?:", rules.group_pattern),
                    meta={
                        "explain": f"file name must match data.group_pattern {rules.group_pattern!r}, which names "
                        "the person (group) an image shows, so one person stays in one split"
                    },
                )
            ]
            if rules.group_pattern
            else []
        ),
    ]


def class_table(labels: pd.Series, classes: tuple[str, ...]) -> pd.DataFrame:
    counts = labels.value_counts()
    table = pd.DataFrame({"label": list(classes), "count": [int(counts.get(c, 0)) for c in classes]})
    table["share"] = table["count"] / max(1, int(table["count"].sum()))
    return table


def class_expectations(rules: ImageRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToBeBetween(
            column="count",
            min_value=rules.min_per_class,
            meta={"explain": f"each class needs at least {rules.min_per_class} item(s)"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="share",
            min_value=rules.min_class_share,
            meta={"explain": f"class balance: each class at least {rules.min_class_share:.0%}"},
        ),
    ]


def validate_image_folder(root: str | Path, rules: ImageRules) -> tuple[ValidationReport, pd.DataFrame]:
    """Scan ``root`` and validate it; returns the report and the manifest. Raises on failure."""
    from components.data.formats.images import scan_image_folder

    manifest = scan_image_folder(root)
    context = _context()
    outcomes = run_suite(
        manifest.assign(file_name=manifest["path"].map(lambda p: Path(p).name)),
        image_manifest_expectations(rules),
        name="image-manifest",
        id_column="path",
        context=context,
    )
    # A corrupt file names its decoder error next to its path, so the user knows what is wrong with it.
    errors = dict(zip(manifest["path"], manifest["error"]))
    for o in outcomes:
        o.failing = [f"{p} ({errors[p]})" if errors.get(p) else p for p in o.failing]
    outcomes += run_suite(
        class_table(manifest["label"], rules.classes),
        class_expectations(rules),
        name="classes",
        id_column="label",
        context=context,
    )
    report = ValidationReport(str(root), outcomes, len(manifest))
    if not report.success:
        raise DataValidationError(report)
    return report, manifest
