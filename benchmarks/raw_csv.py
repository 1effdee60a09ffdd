"""Raw tables written as the CSV files a user would give ``storecast load``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

#: The columns each benchmark file carries: what a demand-only retailer has (the rest of a
#: raw table's columns are optional and left out, NULL or their default).
HEADERS: dict[str, list[str]] = {
    "stores": ["store_id", "store_name", "region"],
    "products": ["product_id", "title", "category", "list_price"],
    "orders": ["order_id", "store_id", "ordered_at", "channel"],
    "order_items": ["order_id", "line_no", "product_id", "quantity", "unit_price"],
    "promotions": [
        "promotion_id",
        "product_id",
        "store_id",
        "start_date",
        "end_date",
        "discount_pct",
        "feature_ad",
    ],
    "shelf_prices": ["price_id", "product_id", "store_id", "start_date", "end_date", "shelf_price"],
    "calendar_events": ["event_date", "event"],
    "store_calendar_events": ["store_id", "event_date", "event"],
}


class RawFiles:
    """CSV files in ``folder``, one per raw table, in the order written (the order to load them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: dict[str, Path] = {}

    def write(self, table: str, rows: Sequence[Sequence[object]]) -> None:
        """Write ``table``'s rows under its :data:`HEADERS` (None becomes an empty field, NULL)."""
        self.paths[table] = self.folder / f"{table}.csv"
        with self.paths[table].open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(HEADERS[table])
            out.writerows(rows)
