"""Tables as aligned plain text, as HTML, or as a pandas DataFrame (the log's and the
dashboard's views; pandas stays optional)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["dataframe", "html_table", "text_table"]


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """rows[0] is the header; columns are padded to their widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def html_table(rows: Sequence[Sequence[str]]) -> str:
    """rows[0] is the header; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def dataframe(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Any:
    """A pandas DataFrame of records (also with none: the columns stay)."""
    try:
        import pandas as pd  # an optional dependency
    except ImportError as exc:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
    return pd.DataFrame(list(records), columns=list(columns))
