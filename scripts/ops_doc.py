#!/usr/bin/env python3
"""Writes docs/OPS.md, the list of ops, from src/core/ops.def and kinds.def.

    python3 scripts/ops_doc.py           # rewrite docs/OPS.md
    python3 scripts/ops_doc.py --check   # exit 1 when docs/OPS.md is stale (CTest: ops_doc)

The table is the one source; this page is derived from it, never edited by hand.
"""

import os
import re
import sys

from doc_page import write_or_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS_DEF = os.path.join(ROOT, "src", "core", "ops.def")
KINDS_DEF = os.path.join(ROOT, "src", "core", "kinds.def")
OUT = os.path.join(ROOT, "docs", "OPS.md")

ROW = re.compile(r"^MT_OP\((\w+), (\w+), (\w+), (-?\d+), (\d+), (\w+), ([^,]*), (NOGRAD|GRAD\(\w+, [^)]*\))\)")
SECTION = re.compile(r"^/\* -*\s*(.*?)\s*-*\s*\*/$")
KIND = re.compile(r'^MT_KIND\((\w+), "(.*)"\)')


def attrs_text(attrs):
    """'A_S0|A_DTYPE' as 's0, dtype'."""
    names = [a.strip()[2:].lower() for a in attrs.split("|") if a.strip() != "A_NONE"]
    return ", ".join(names) if names else "-"


def optional_text(mask):
    value = int(mask, 0)
    return ", ".join(str(i) for i in range(32) if value >> i & 1) or "-"


def render():
    lines = ["# Ops", "",
             "Generated from `src/core/ops.def` and `src/core/kinds.def` by `scripts/ops_doc.py`",
             "(CTest `ops_doc` fails when this page is stale). The wire number of an op is its",
             "row. Attributes name the `mti_attrs` slots and flags the op reads; semantics are in",
             "`include/modaltensor.h`.", ""]
    number = 0
    for line in open(OPS_DEF).read().splitlines():
        section = SECTION.match(line.strip())
        if section and not line.startswith(" *") and section.group(1):
            lines += ["", f"## {section.group(1)}", "",
                      "| # | op | kind | inputs | optional | outputs | attributes | gradient |",
                      "|---|---|---|---|---|---|---|---|"]
            continue
        row = ROW.match(line)
        if row:
            _, name, kind, arity, nout, optional, attrs, grad = row.groups()
            inputs = "n" if arity == "-1" else arity
            lines.append(f"| {number} | `mt_{name}` | {kind} | {inputs} | "
                         f"{optional_text(optional)} | {nout} | {attrs_text(attrs)} | "
                         f"{grad_text(grad)} |")
            number += 1
    lines += ["", "## Kinds", "", "| kind | computes |", "|---|---|"]
    for line in open(KINDS_DEF).read().splitlines():
        kind = KIND.match(line)
        if kind:
            lines.append(f"| {kind.group(1)} | {kind.group(2)} |")
    # Sections with no rows yet keep their heading only.
    text = "\n".join(lines) + "\n"
    return re.sub(r"\| # \| op .*\n\|---\|---\|---\|---\|---\|---\|---\|---\|\n(?=\n|$)", "", text)


def grad_text(grad):
    """NOGRAD, or GRAD(rule, saves) as "rule (keeps in0, out0)"."""
    rule = re.match(r"GRAD\((\w+), ([^)]*)\)", grad)
    if not rule:
        return "none"
    saves = [s.strip()[2:].lower() for s in rule.group(2).split("|") if s.strip() != "0"]
    return f"`grad_{rule.group(1)}`" + (f" (keeps {', '.join(saves)})" if saves else "")


def main(argv):
    return write_or_check(OUT, render(), "--check" in argv, "ops_doc.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
