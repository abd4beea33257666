"""A file that exists but is not in the expected format fails like any other validation: with a report."""

from __future__ import annotations

from components.validation.expectations import DataValidationError, ExpectationOutcome, ValidationReport


def format_error(dataset: str, expectation: str, detail: str, failing: list[str] | None = None) -> DataValidationError:
    """A one-expectation report, e.g. ``format_error(path, "expect_columns", "missing 'celsius'")``."""
    outcome = ExpectationOutcome(expectation, "", False, detail, list(failing or []))
    return DataValidationError(ValidationReport(dataset, [outcome], 0))
