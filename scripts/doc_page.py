"""Writing a generated documentation page, or checking that it is current
(the --check mode of ops_doc.py and protocol_doc.py, run by CTest)."""
import os
import sys


def write_or_check(path, text, check, script):
    """Writes text to path; with check, compares instead and returns 1 when
    the page differs (naming the script that regenerates it), else 0."""
    name = os.path.relpath(path, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not check:
        with open(path, "w") as f:
            f.write(text)
        return 0
    current = open(path).read() if os.path.exists(path) else ""
    if current != text:
        print(f"{name} is stale: run python3 scripts/{script}", file=sys.stderr)
        return 1
    print(f"{name} matches the sources")
    return 0
