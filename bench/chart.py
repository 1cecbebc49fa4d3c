"""`python chart.py results.json out.png`: bars of each figure for ours, the official client and the ceiling.

Runs in the bench venv (`.cache/bench-venv`, which has matplotlib); run.py calls it.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    results = json.loads(open(sys.argv[1]).read())
    figures = results["figures"]
    names = list(figures)
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.2, rows * 3.0))
    colors = {"ours": "#2b8cbe", "official": "#bdbdbd", "ceiling": "#74c476"}
    for ax, name in zip(axes.flat, names, strict=False):
        figure = figures[name]
        labels, values = [], []
        for who in ("ours", "official", "ceiling"):
            value = figure.get(who)
            if isinstance(value, int | float):
                labels.append(who)
                values.append(value)
        ax.bar(labels, values, color=[colors[label] for label in labels])
        if "ceiling" in labels and not figure["higher_is_better"]:
            # For a time, the third bar is the floor under it: a bare script sending the same request.
            ax.set_xticks(range(len(labels)), [label if label != "ceiling" else "floor" for label in labels])
        ax.set_title(
            f"{name}\n({figure['unit']}, {'higher' if figure['higher_is_better'] else 'lower'} is better)",
            fontsize=8,
        )
        ax.tick_params(labelsize=8)
        for i, value in enumerate(values):
            ax.text(i, value, f"{value:.3g}", ha="center", va="bottom", fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("mcli benchmark (medians)", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
