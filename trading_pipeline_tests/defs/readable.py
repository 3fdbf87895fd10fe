"""What every materialization's metadata must look like in the UI: tables typed with a schema,
Markdown only for a chart (one image) or a list of links, and no float carrying noise."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import dagster as dg

IMAGE = re.compile(
    r"!\[[^\]]*\]\((data:image/png;base64,[A-Za-z0-9+/=]+|https?://[^)\s]+/get-artifact\?[^)\s]+)\)"
)  # a chart: a PNG, or an MLflow run's artifact
LINK = r"\[[^\]]+\]\([^)]+\)"
LINK_LINE = re.compile(rf"- {LINK}( · {LINK})*")  # one item: its links
# float noise shows at the 16th-17th digit (0.053000000000000005); measurements are rounded
# to 4 significant digits, parameters to 6, prices and volumes to 8 (28396.302)
MAX_SIGNIFICANT = 8


def noise_free(x: float) -> bool:
    """``x`` is written with at most ``MAX_SIGNIFICANT`` significant digits."""
    return float(f"{x:.{MAX_SIGNIFICANT}g}") == x


def floats(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, float):
        return [value]
    if isinstance(value, Mapping):
        return [f for v in value.values() for f in floats(v)]
    if isinstance(value, list | tuple):
        return [f for v in value for f in floats(v)]
    return []


def problems(metadata: Mapping[str, dg.MetadataValue]) -> list[str]:
    """Every way ``metadata`` reads poorly (empty when it reads well)."""
    out: list[str] = []
    for name, entry in metadata.items():
        values: list[float] = []
        if isinstance(entry, dg.TableMetadataValue):
            columns = [c.name for c in entry.schema.columns]
            for record in entry.records:
                if list(record.data) != columns:
                    out.append(f"{name}: record {list(record.data)} ≠ schema {columns}")
                values += floats(dict(record.data))
            for column in entry.schema.columns:
                kinds = {
                    dg.TableMetadataValue.infer_column_type(r.data[column.name])
                    for r in entry.records
                    if r.data.get(column.name) is not None
                }
                if kinds - {column.type} - ({"int"} if column.type == "float" else set()):
                    out.append(f"{name}.{column.name}: {kinds} in a {column.type} column")
        elif isinstance(entry, dg.MarkdownMetadataValue):
            text = entry.md_str or ""
            lines = text.strip().splitlines()
            chart = IMAGE.fullmatch(text.strip()) is not None
            links = text.strip() == "none" or all(LINK_LINE.fullmatch(li) for li in lines)
            if not (chart or links):
                out.append(f"{name}: Markdown that is neither one chart nor a list of links")
        elif isinstance(entry, dg.FloatMetadataValue):
            values += floats(entry.value)
        elif isinstance(entry, dg.JsonMetadataValue):
            values += floats(entry.data)
        out += [f"{name}: {x!r} carries noise" for x in values if not noise_free(x)]
    return out
