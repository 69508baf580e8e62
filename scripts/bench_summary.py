#!/usr/bin/env python3
"""bench_summary.py: the output of scripts/bench-all.sh as a Markdown table, one line per option set.

Each cell is the median over the runs of that option set, with the range in brackets when there were several:
the fused call's median time and its percent of the same run's streaming pass; where the run has them, the fused
call's speed against the copy, the table-free row's percent of the streaming pass and its speed as a share of the
table call's (timed in pairs), the real torch row (--torch)
against the fused call, and how many runs the bench flagged as unstable (a row faster than its limit, or times
ranging wider than their median; docs/bench.md). Runs of `rotary bench --streams` get a table of their own: per
rope (table, table-free) the 1-D call's and the streams call's median times and the streams call's speed as a
share of the 1-D call's (the ratio of the two medians of each run).
With --compare, the output of scripts/tune-compare.sh (bench-all.sh with COMPARE_TUNING: "### [default] options"
and "### [tuned] options" runs): per option set and fused row, the default and tuned medians of % of stream (of
limit, for kv-write) with their ranges, the times, and the tuned / default time ratio of each pair of runs (run
back to back); a row is flagged "slower" when the tuned median time is above the slowest default run and every
pair's tuned run was the slower one (beyond the spread: no overlap, no lucky pair), "faster" when the tuned median
is below the fastest default run; exit status 1 when a row is flagged slower.
Usage: scripts/bench_summary.py [--compare] bench-all-output.txt"""
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


def compare_rows(doc):
    """{impl: (percent of the limit, median ms)} of the rows a tuning can change (the fused call's)."""
    out = {}
    for r in doc.get("rows", []):
        pct = r.get("pct_of_stream", r.get("pct_of_limit"))
        if pct is not None and (r["impl"].startswith("fused") or r["impl"] == "kv_fused"):
            out[r["impl"]] = (pct, r["median_ms"])
    return out


def settings_text(doc):
    return ", ".join("%s %s (%s)" % (k, "off" if v["value"] == -1 else v["value"], v["source"])
                     for k, v in doc.get("settings", {}).items())


def compare(path):
    runs = {}  # options -> {"default": [doc], "tuned": [doc]}
    side = options = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("### [default] ") or line.startswith("### [tuned] "):
                side, options = line[5:].split("] ", 1)
            elif line.startswith("{") and options is not None:
                runs.setdefault(options, {"default": [], "tuned": []})[side].append(json.loads(line))
    if not runs:
        sys.exit("no '### [default]' / '### [tuned]' runs in %s (scripts/tune-compare.sh writes them)" % path)
    for options, sides in runs.items():
        for doc in sides["tuned"]:
            if doc.get("tuning_env_error"):
                sys.exit("`%s`: the tuning file did not load: %s" % (options, doc["tuning_env_error"]))
    first = next(iter(runs.values()))
    for name in ("default", "tuned"):
        if first[name]:
            print("%s settings: %s" % (name, settings_text(first[name][0])))
    print()
    print("| options | row | runs | default % of limit | tuned % of limit | default ms | tuned ms "
          "| tuned / default time | |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    flagged = 0
    for options, sides in runs.items():
        pairs = list(zip(sides["default"], sides["tuned"]))
        if not pairs:
            continue
        for impl in compare_rows(pairs[0][0]):
            d = [compare_rows(a)[impl] for a, b in pairs if impl in compare_rows(b)]
            t = [compare_rows(b)[impl] for a, b in pairs if impl in compare_rows(b)]
            d_ms, t_ms = [x[1] for x in d], [x[1] for x in t]
            ratio = [y / x for x, y in zip(d_ms, t_ms)]
            fmt = "%.4f" if max(d_ms + t_ms) < 0.1 else "%.3f"
            mark = ""
            if len(d) < 3:  # one or two runs have no spread to speak of
                pass
            elif statistics.median(t_ms) > max(d_ms) and min(ratio) > 1:
                mark, flagged = "**slower**", flagged + 1
            elif statistics.median(t_ms) < min(d_ms):
                mark = "faster"
            print("| `%s` | %s | %d | %s%% | %s%% | %s | %s | %s | %s |" % (
                options, impl, len(d), cell([x[0] for x in d], "%.1f"), cell([x[0] for x in t], "%.1f"),
                cell(d_ms, fmt), cell(t_ms, fmt), cell(ratio, "%.3f"), mark))
    print()
    if min(len(v["default"]) for v in runs.values()) < 3:
        print("fewer than 3 runs of some rows: no row is flagged slower or faster (RUNS=5 for the closing table)")
    else:
        print("%d row(s) slower with the tuning file beyond the defaults' spread" % flagged)
        if flagged:
            sys.exit(1)


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
                if "table_free_pairs" in doc:
                    rows["_table_free_pairs"] = doc["table_free_pairs"]
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
        if "_table_free_pairs" in results[0]:
            share = [100.0 / r["_table_free_pairs"]["ratio_median"] for r in results]
            others.append("table-free at %s%% of the table call's speed (in pairs)" % cell(share, "%.1f"))
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
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        compare(sys.argv[2])
    elif len(sys.argv) == 2 and not sys.argv[1].startswith("--"):
        main(sys.argv[1])
    else:
        sys.exit(__doc__)
