"""The test oracle for usage summaries: totals and groups summed in plain Python from rows.

Both the ledger-level tests (test_storage) and the rollup-level tests (test_costs) compare
``summarize_usage`` against these, so the two can never drift apart in what "exact" means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from storage.stores import UsageTotals


def expected_totals(rows: Sequence[Mapping[str, Any]]) -> UsageTotals:
    def total(field: str) -> int:
        return sum(int(r[field]) for r in rows if r[field] is not None)

    return UsageTotals(
        cost_nano=total("cost_nano"),
        chats=sum(r["outcome"] != "error" for r in rows),
        failed=sum(r["outcome"] == "error" for r in rows),
        prompt_tokens=total("prompt_tokens"),
        cached_tokens=total("cached_tokens"),
        completion_tokens=total("completion_tokens"),
        computed_cost_chats=sum(
            r["cost_source"] in ("computed", "estimated") and r["cost_nano"] is not None
            for r in rows
        ),
        unknown_cost_chats=sum(r["cost_nano"] is None and r["outcome"] != "error" for r in rows),
    )


def expected_groups(rows: Sequence[Mapping[str, Any]], key: str) -> list[tuple[str, UsageTotals]]:
    """Groups by ``model`` (served, else requested), ``user_id`` or ``channel_id``, sorted by
    cost descending then name, as ``summarize_usage`` returns them."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        name = (row["model_served"] or row["model_requested"]) if key == "model" else row[key]
        groups[str(name)].append(row)
    result = [(name, expected_totals(group)) for name, group in groups.items()]
    return sorted(result, key=lambda item: (-item[1].cost_nano, item[0]))
