"""Draws the benchmark plots for BENCHMARKS.md from the JSON records that
`cargo bench --bench peers -- --json` and `python benches/peers.py --json`
write.

    pip install matplotlib
    python benches/plot.py rust.json python.json --out benches/plots
    python benches/plot.py rust.json python.json --markdown   # tables for BENCHMARKS.md
    python benches/plot.py cluster.json --latency cluster.latency.json --out benches/plots

One PNG per scenario: grouped bars, one group per metric, one bar per
system, ours highlighted, the min-max over repetitions as a range where
the records have it; log scale where systems differ by orders of
magnitude. ``--latency`` also draws the distribution of every latency
sample (``benches/cluster.py`` writes them beside its records) as one
cumulative curve per system.
"""

import argparse
import json
import math
import os
from collections import OrderedDict


OURS = "taskmanager"
# Per metric: does a higher value win?
HIGHER_IS_BETTER = {"tasks_per_s", "jobs_per_s"}


def load(paths):
    records = []
    for path in paths:
        with open(path) as f:
            records.extend(json.load(f))
    return records


def by_scenario(records):
    scenarios = OrderedDict()
    for r in records:
        if r.get("value") is None:
            continue
        scenarios.setdefault(r["scenario"], []).append(r)
    return scenarios


def number(v):
    v = 0.0 if abs(v) < 0.05 else v
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def markdown(scenario, records):
    """A Markdown table of one scenario: each system's value and its ratio
    to ours."""
    ours = {r["metric"]: r["value"] for r in records if r["system"] == OURS}
    lines = [f"**{scenario}**", "", "| system | metric | median [min-max] | unit | vs taskmanager |", "|---|---|---:|---|---:|"]
    for r in records:
        base = ours.get(r["metric"])
        ratio = ""
        # A ratio to (nearly) zero says nothing; leave it out.
        if r["system"] != OURS and base and abs(base) >= 0.5:
            ratio = f"{r['value'] / base:.2f}x"
        value = number(r["value"])
        if r.get("reps", 1) > 1 or r.get("min", r["value"]) != r.get("max", r["value"]):
            value += f" [{number(r['min'])}-{number(r['max'])}]"
        name = f"**{r['system']}**" if r["system"] == OURS else r["system"]
        lines.append(f"| {name} | {r['metric']} | {value} | {r['unit']} | {ratio} |")
    return "\n".join(lines) + "\n"


def plot(scenario, records, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(OrderedDict.fromkeys(r["metric"] for r in records))
    systems = list(OrderedDict.fromkeys(r["system"] for r in records))
    value = {(r["system"], r["metric"]): r["value"] for r in records}
    spread = {(r["system"], r["metric"]): (r["min"], r["max"]) for r in records if r.get("reps", 1) > 1}
    unit = {r["metric"]: r["unit"] for r in records}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics) + 1, 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        names = [s for s in systems if (s, metric) in value]
        vals = [value[(s, metric)] for s in names]
        colors = ["#d62728" if s == OURS else "#7f7f7f" for s in names]
        ax.bar(range(len(names)), vals, color=colors)
        ranged = [i for i, s in enumerate(names) if (s, metric) in spread]
        if ranged:
            lows = [vals[i] - spread[(names[i], metric)][0] for i in ranged]
            highs = [spread[(names[i], metric)][1] - vals[i] for i in ranged]
            ax.errorbar(ranged, [vals[i] for i in ranged], yerr=[lows, highs], fmt="none", ecolor="black",
                        elinewidth=0.8, capsize=2)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        better = "higher" if metric in HIGHER_IS_BETTER else "lower"
        ax.set_title(f"{metric} ({unit[metric]}), {better} is better", fontsize=9)
        positive = [v for v in vals if v > 0]
        if positive and max(positive) / max(min(positive), 1e-9) > 30:
            ax.set_yscale("log")
        for i, v in enumerate(vals):
            label = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2g}"
            ax.text(i, v if v > 0 else 0, label, ha="center", va="bottom", fontsize=7)
    fig.suptitle(scenario, fontsize=11)
    fig.tight_layout()
    path = os.path.join(out_dir, f"{scenario}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(path, out_dir):
    """One cumulative distribution curve per system of its latency samples
    (ms, log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    with open(path) as f:
        samples = json.load(f)
    fig, ax = plt.subplots(figsize=(7, 4))
    for system, values in samples.items():
        values = sorted(v for v in values if v > 0)
        if not values:
            continue
        n = len(values)
        ours = system == OURS
        ax.plot(values, [(i + 1) / n for i in range(n)], label=system, linewidth=2.2 if ours else 1.1,
                color="#d62728" if ours else None, zorder=3 if ours else 2)
    ax.set_xscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("enqueue to start (ms, log scale)")
    ax.set_ylabel("fraction of jobs")
    ax.axhline(0.99, color="#bbbbbb", linewidth=0.8, linestyle="--")
    ax.set_title("cluster-latency: distribution of every job of every repetition", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(out_dir, "cluster-latency-distribution.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", help="record files from the benchmark programs")
    parser.add_argument("--out", default="benches/plots", help="directory for the PNG files")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables instead of plotting")
    parser.add_argument("--latency", metavar="PATH", help="latency samples from benches/cluster.py, to plot")
    args = parser.parse_args()
    scenarios = by_scenario(load(args.json))
    if args.markdown:
        for scenario, records in scenarios.items():
            print(markdown(scenario, records))
        return
    os.makedirs(args.out, exist_ok=True)
    for scenario, records in scenarios.items():
        print(plot(scenario, records, args.out))
    if args.latency:
        print(plot_latency(args.latency, args.out))


if __name__ == "__main__":
    main()
