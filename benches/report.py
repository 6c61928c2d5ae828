"""What benches/peers.py and benches/cluster.py share: the printed table
and the JSON records."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence, Tuple

HEADER = ("scenario", "system", "metric", "value", "unit", "vs taskmanager")
# The same with the repetitions' range beside the median.
HEADER_RANGE = ("scenario", "system", "metric", "median", "[min - max]", "unit", "vs taskmanager")


def fmt_value(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def record_row(r: Dict[str, Any], ratio: str) -> Tuple[str, ...]:
    """A record as a table row: scenario, system, metric, median, [min -
    max], unit, and ``ratio`` against ours (empty for ours)."""
    span = f"[{fmt_value(r['min'])} - {fmt_value(r['max'])}]"
    return (r["scenario"], r["system"], r["metric"], fmt_value(r["value"]), span, r["unit"], ratio)


def print_table(rows: Sequence[Tuple[str, ...]]) -> None:
    """Rows of (scenario, system, metric, value, unit, ratio), or of
    (scenario, system, metric, median, range, unit, ratio), a rule between
    scenarios; values and ratios right-aligned."""
    if not rows:
        return
    header = HEADER_RANGE if len(rows[0]) == len(HEADER_RANGE) else HEADER
    widths = [max(len(row[i]) for row in list(rows) + [header]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print(line)
    prev = None
    for row in rows:
        if prev is not None and row[0] != prev:
            print(line)
        prev = row[0]
        right = {3, 4, 6} if header is HEADER_RANGE else {3, 5}
        print("  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    print(line)


def write_json(path: str, records: List[Dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f, indent=2)
        f.write("\n")
    print(f"wrote {len(records)} records to {path}")
