#!/usr/bin/env python3
"""plot_bench.py: `rotary bench --json` results as a PNG: GB/s per implementation and thread count, each bar with
the streaming limit measured in its own rounds.

Input: files holding the JSON objects that `rotary bench --json` prints, one per line (scripts/bench-all.sh's
output, with its "### options" lines, works as is; "-" reads stdin). Runs are grouped into one panel per case
(everything in the header but the thread count); within a panel, one group of bars per implementation and one bar
per thread count. A bar is the median GB/s over the runs of that case (whiskers: the smallest and largest run); the
black tick is the streaming pass of the same rounds (the limit); the bar's label gives GB/s and its percent of
that limit. A hatched bar with "!" was flagged by the
bench (faster than its limit: a disturbed run); "~" marks times ranging wider than their median.
Needs matplotlib. Usage: scripts/plot_bench.py [-o bench.png] [--title TEXT] FILE..."""
import argparse
import json
import statistics
import sys

SHORT = {  # implementation id -> bar label
    "composed": "(a) C model of\nHF eager ops",
    "naive": "(b) naive loop",
    "fused": "(c) rotary_apply",
    "fused_table_free": "(c) table-free",
    "torch_eager": "torch eager\nHF recipe",
    "copy": "memcpy",
    "stream": "streaming pass\n(the limit)",
}


def read_runs(paths):
    """Every JSON object in the files, in order."""
    runs = []
    for path in paths:
        f = sys.stdin if path == "-" else open(path)
        with f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if line.startswith("{"):
                    try:
                        runs.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        sys.exit("%s:%d: not JSON: %s" % (path, n, e))
    if not runs:
        sys.exit("no rotary bench --json output in %s" % ", ".join(paths))
    return runs


def case_of(run):
    """The case a run belongs to: its header without the thread count, as a readable title."""
    s = run["shape"]
    who = run["model"] + ", " if run.get("model") else ""
    if run["mode"] == "decode":
        what = "decode %d x 1 token" % s["batch"]
    else:
        what = "prefill %d x %d tokens" % (s["batch"], s["tokens"])
    return "%s%s, %d q / %d k heads, head_dim %d (rotary %d), %s, %s, %s, %s" % (
        who, what, s["heads"], s["kv_heads"], s["head_dim"], s["rotary_dim"], s["layout"], run["dtype"],
        s["pairing"], "in place" if s["in_place"] else "out of place")


def group(runs):
    """case -> {impl -> {threads -> [rows]}}: cases in first-seen order, implementations in the table's order."""
    cases = {}
    for run in runs:
        impls = cases.setdefault(case_of(run), {})
        for row in run["rows"]:
            impls.setdefault(row["impl"], {}).setdefault(run["threads"], []).append(row)
    order = list(SHORT)
    rank = lambda impl: order.index(impl) if impl in order else order.index("torch_eager") - 0.5
    return {case: dict(sorted(impls.items(), key=lambda kv: rank(kv[0]))) for case, impls in cases.items()}


def draw_case(ax, title, impls):
    threads = sorted({t for per in impls.values() for t in per})
    width = 0.8 / len(threads)
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860"]
    top = 0
    for ti, t in enumerate(threads):
        for x, (impl, per) in enumerate(impls.items()):
            rows = per.get(t)
            if not rows:
                continue
            gb = [r["gb_per_s"] for r in rows]
            lim = statistics.median(r["limit_gb_per_s"] for r in rows)
            mid = statistics.median(gb)
            flags = {f for r in rows for f in r.get("flags", [])}
            pos = x - 0.4 + width * (ti + 0.5)
            ax.bar(pos, mid, width * 0.9, color=colors[ti % len(colors)], hatch="//" if "beats_limit" in flags else None,
                   label="%d thread%s" % (t, "" if t == 1 else "s") if x == 0 or impl == "fused" else None,
                   yerr=[[mid - min(gb)], [max(gb) - mid]] if len(gb) > 1 else None, capsize=2)
            ax.plot([pos - width * 0.45, pos + width * 0.45], [lim, lim], color="black", lw=2)
            mark = ("!" if "beats_limit" in flags else "") + ("~" if "wide_range" in flags else "")
            ax.text(pos, mid, "%.3g%s\n%.0f%%" % (mid, mark, 100 * mid / lim), ha="center", va="bottom", fontsize=7)
            top = max(top, mid, lim, max(gb))
    ax.set_xticks(range(len(impls)))
    ax.set_xticklabels([SHORT.get(i, i) for i in impls], fontsize=8)
    ax.set_ylabel("GB/s (ideal single pass / median)")
    ax.set_ylim(0, top * 1.15)
    ax.set_title(title, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    seen["limit: streaming pass in the same rounds"] = ax.plot([], [], color="black", lw=2)[0]
    ax.legend(seen.values(), seen.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", help="rotary bench --json output ('-': stdin)")
    p.add_argument("-o", "--output", default="bench.png", help="the PNG to write (default bench.png)")
    p.add_argument("--title", default=None, help="a line above the panels")
    a = p.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_bench.py needs matplotlib: pip install matplotlib")
    runs = read_runs(a.files)
    cases = group(runs)
    fig, axes = plt.subplots(len(cases), 1, figsize=(12, 4.2 * len(cases)), squeeze=False)
    for ax, (title, impls) in zip(axes[:, 0], cases.items()):
        draw_case(ax, title, impls)
    head = a.title or "rotary bench %s, kernel %s" % (runs[0]["version"], runs[0]["kernel"])
    fig.suptitle(head, fontsize=10)
    fig.tight_layout()
    fig.savefig(a.output, dpi=110)
    print("wrote %s (%d run%s, %d case%s)" % (a.output, len(runs), "" if len(runs) == 1 else "s", len(cases),
                                              "" if len(cases) == 1 else "s"))


if __name__ == "__main__":
    main()
