"""CTest entry of the Python tests: runs pytest on the given test files.

Exit status: pytest's, except 77 (CTest's SKIP_RETURN_CODE) when nothing
ran because this interpreter lacks numpy or pytest, or because every test
was skipped (say, hypothesis is not installed); and 1 when pytest found no
test at all, so a broken selection cannot pass as "nothing to do".
"""

import sys

SKIPPED = 77


class Outcomes:
    """pytest plugin counting tests that ran and tests or modules skipped."""

    def __init__(self):
        self.ran = 0
        self.skipped = 0

    def pytest_collectreport(self, report):
        self.skipped += report.skipped

    def pytest_runtest_logreport(self, report):
        if report.skipped:
            self.skipped += 1
        elif report.when == "call":
            self.ran += 1


def main(argv):
    try:
        import numpy  # noqa: F401
        import pytest
    except ImportError as missing:
        print(f"skipped: {missing.name} is not installed for {sys.executable}")
        return SKIPPED
    outcomes = Outcomes()
    status = pytest.main(["-q", "-p", "no:cacheprovider", *argv[1:]], plugins=[outcomes])
    if status in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) and not outcomes.ran:
        return SKIPPED if outcomes.skipped else 1
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
