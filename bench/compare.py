#!/usr/bin/python3
"""Joins the outputs of mt_bench and bench_numpy.py into one Markdown table.

Usage: compare.py OURS.jsonl NUMPY.jsonl

Each row gives the median time of both and numpy/ours (above 1: we are
faster); rows where we are slower are marked. The ratio of the fastest reps
is shown too: it is less sensitive to other load on the machine. The last line is the geometric
mean of numpy/ours over the cases both ran. Exits 1 when a case ran on only
one side or with different shapes, since the comparison is then incomplete.
"""
import json
import math
import sys


def read_results(path):
    """(meta, {case: record}) from a JSON-lines file."""
    meta, cases = {}, {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"compare.py: {path}:{lineno}: not JSON ({e})")
            if "meta" in record:
                meta = record["meta"]
            else:
                cases[record["case"]] = record
    return meta, cases


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    ours_meta, ours = read_results(argv[1])
    numpy_meta, theirs = read_results(argv[2])
    complete = True

    print(f"modaltensor {ours_meta.get('version', '?')} vs numpy {numpy_meta.get('version', '?')}"
          f"{' (--quick sizes)' if ours_meta.get('quick') else ''}")
    print()
    print("| case | shape | ours ms | numpy ms | numpy/ours | min: numpy/ours |")
    print("|---|---|---:|---:|---:|---:|")
    ratios, slower = [], []
    for name, mine in ours.items():
        other = theirs.get(name)
        if other is None:
            print(f"| {name} | {mine['shape']} | {mine['median_ms']:.3f} | (missing) | |")
            complete = False
            continue
        if other["shape"] != mine["shape"]:
            print(f"| {name} | {mine['shape']} vs {other['shape']} | | | shapes differ |")
            complete = False
            continue
        ratio = other["median_ms"] / mine["median_ms"] if mine["median_ms"] > 0 else math.inf
        ratios.append(ratio)
        mark = " **slower**" if ratio < 1.0 else ""
        if ratio < 1.0:
            slower.append(name)
        min_ratio = other["min_ms"] / mine["min_ms"] if mine["min_ms"] > 0 else math.inf
        print(f"| {name} | {mine['shape']} | {mine['median_ms']:.3f} | {other['median_ms']:.3f} "
              f"| {ratio:.2f}{mark} | {min_ratio:.2f} |")
    for name in theirs:
        if name not in ours:
            print(f"| {name} | {theirs[name]['shape']} | (missing) | "
                  f"{theirs[name]['median_ms']:.3f} | |")
            complete = False
    print()
    finite = [r for r in ratios if 0 < r < math.inf]
    if finite:
        geomean = math.exp(sum(math.log(r) for r in finite) / len(finite))
        print(f"geometric mean of numpy/ours over {len(finite)} cases: {geomean:.2f}")
    print(f"cases where ours is slower than numpy: {', '.join(slower) if slower else 'none'}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
