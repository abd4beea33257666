"""Data validation with Great Expectations 1.x suites over tables that describe a dataset."""
