#!/usr/bin/python3
"""Joins the outputs of mt_bench and its peers (bench_numpy.py,
bench_torch_cpu.py) into one Markdown table.

Usage: compare.py OURS.jsonl PEER.jsonl [PEER.jsonl ...]

Each row gives the median time of ours and of every peer, and best/ours:
the faster peer's median over ours (above 1: we are faster); rows where we
are slower than the faster peer are marked. The ratio of the fastest reps is
shown too: it is less sensitive to other load on the machine. The last lines
are the geometric mean of best/ours and the cases where we are slower. A
case a peer cannot run is blank in its column. Exits 1 when a case of ours
has no peer at all, or a peer ran it with another shape.
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


def ratio(theirs, ours):
    return theirs / ours if ours > 0 else math.inf


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ours_meta, ours = read_results(argv[1])
    peers = [read_results(path) for path in argv[2:]]
    names = [meta.get("impl", f"peer{i}") for i, (meta, _) in enumerate(peers)]
    complete = True

    versions = ", ".join(f"{n} {m.get('version', '?')}" for n, (m, _) in zip(names, peers))
    print(f"modaltensor {ours_meta.get('version', '?')} vs {versions}"
          f"{' (--quick sizes)' if ours_meta.get('quick') else ''}")
    print()
    print("| case | shape | ours ms | " + " | ".join(f"{n} ms" for n in names)
          + " | best/ours | min: best/ours |")
    print("|---|---|---:|" + "---:|" * len(names) + "---:|---:|")
    ratios, slower = [], []
    for name, mine in ours.items():
        cells, best, best_min = [], None, None
        for _, theirs in peers:
            other = theirs.get(name)
            if other is None:
                cells.append("")
                continue
            if other["shape"] != mine["shape"]:
                cells.append(f"shape {other['shape']}")
                complete = False
                continue
            cells.append(f"{other['median_ms']:.4g}")
            best = other["median_ms"] if best is None else min(best, other["median_ms"])
            best_min = other["min_ms"] if best_min is None else min(best_min, other["min_ms"])
        if best is None:
            print(f"| {name} | {mine['shape']} | {mine['median_ms']:.4g} | "
                  + " | ".join(cells) + " | (no peer) | |")
            complete = False
            continue
        r = ratio(best, mine["median_ms"])
        ratios.append(r)
        mark = " **slower**" if r < 1.0 else ""
        if r < 1.0:
            slower.append(f"{name} ({r:.2f})")
        print(f"| {name} | {mine['shape']} | {mine['median_ms']:.4g} | " + " | ".join(cells)
              + f" | {r:.2f}{mark} | {ratio(best_min, mine['min_ms']):.2f} |")
    print()
    finite = [r for r in ratios if 0 < r < math.inf]
    if finite:
        geomean = math.exp(sum(math.log(r) for r in finite) / len(finite))
        print(f"geometric mean of best/ours over {len(finite)} cases: {geomean:.2f}")
    print(f"cases where ours is slower than the faster peer: {', '.join(slower) if slower else 'none'}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
