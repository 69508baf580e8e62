#!/usr/bin/env python3
"""bench_summary.py: the output of scripts/bench-all.sh as a Markdown table, one line per option set.

Each cell is the median over the runs of that option set, with the range in brackets when there were several:
the fused call's median time and its percent of the same run's streaming pass; where the run has them, the fused
call's speed against the copy, the table-free row's percent of the streaming pass, the real torch row (--torch)
against the fused call, and how many runs the bench flagged as unstable (a row faster than its limit, or times
ranging wider than their median; docs/bench.md). Runs of `rotary bench --streams` get a table of their own: per
rope (table, table-free) the 1-D call's and the streams call's median times and the streams call's speed as a
share of the 1-D call's (the ratio of the two medians of each run).
Usage: scripts/bench_summary.py bench-all-output.txt"""
import json
import statistics
import sys


def cell(values, fmt):
    mid = fmt % statistics.median(values)
    if len(values) == 1:
        return mid
    return "%s [%s-%s]" % (mid, fmt % min(values), fmt % max(values))


def streams_table(runs):
    print("| options | runs | rope | 1-D ids ms | streams ms | streams speed / 1-D |")
    print("| --- | --- | --- | --- | --- | --- |")
    for options, results in runs.items():
        for rope, one, multi in (("table", "fused_ids", "fused_streams"),
                                 ("table-free", "fused_ids_table_free", "fused_streams_table_free")):
            if multi not in results[0]:
                continue
            one_ms = [r[one]["median_ms"] for r in results]
            multi_ms = [r[multi]["median_ms"] for r in results]
            ratio = [r[multi]["speed_vs_ids"] * 100 for r in results]
            fmt = "%.4f" if max(one_ms) < 0.1 else "%.3f"
            print("| `%s` | %d | %s | %s | %s | %s%% |" % (options, len(results), rope, cell(one_ms, fmt),
                                                        cell(multi_ms, fmt), cell(ratio, "%.1f")))


def main(path):
    runs = {}  # options -> list of {impl: row}
    streams = {}  # the same for --streams runs
    options = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("### "):
                options = line[4:]
            elif line.startswith("{") and options is not None:
                doc = json.loads(line)
                rows = {r["impl"]: r for r in doc["rows"]}
                (streams if "streams" in doc else runs).setdefault(options, []).append(rows)
    if streams:
        streams_table(streams)
        if runs:
            print()
    if not runs:
        return
    print("| options | runs | fused ms | fused % stream | other rows, % stream |")
    print("| --- | --- | --- | --- | --- |")
    for options, results in runs.items():
        fused_ms = [r["fused"]["median_ms"] for r in results]
        fused_pct = [r["fused"]["pct_of_stream"] for r in results]
        others = []
        ms_fmt = "%.4f" if max(fused_ms) < 0.1 else "%.2f"
        if "copy" in results[0]:
            vs_copy = [r["copy"]["median_ms"] / r["fused"]["median_ms"] * 100 for r in results]
            others.append("fused at %s%% of memcpy's speed" % cell(vs_copy, "%.0f"))
        if "fused_table_free" in results[0]:
            free = [r["fused_table_free"]["pct_of_stream"] for r in results]
            others.append("table-free %s%% of stream" % cell(free, "%.0f"))
        if "torch_eager" in results[0]:
            torch_ms = [r["torch_eager"]["median_ms"] for r in results]
            vs = [r["torch_eager"]["median_ms"] / r["fused"]["median_ms"] for r in results]
            others.append("torch eager %s ms, fused %sx faster" % (cell(torch_ms, ms_fmt), cell(vs, "%.1f")))
        flagged = sum(1 for r in results if any(row.get("flags") for row in r.values()))
        if flagged:
            others.append("%d of %d runs flagged unstable" % (flagged, len(results)))
        print("| `%s` | %d | %s | %s%% | %s |" % (options, len(results), cell(fused_ms, ms_fmt),
                                              cell(fused_pct, "%.0f"), "; ".join(others) or "-"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
