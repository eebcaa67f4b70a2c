"""Report tables as files the owner downloads: CSV, Excel or HTML, one table
or several (one sheet each)."""

from __future__ import annotations

import io

import pandas as pd

from pipeline.reports.data import ReportError

FORMATS = ("csv", "xlsx", "html")


def table(df: pd.DataFrame, fmt: str, title: str = "report") -> bytes:
    """A table as CSV (UTF-8 with BOM, so Excel reads Cyrillic), XLSX or a standalone HTML page."""
    if fmt == "csv":
        return df.to_csv(index=False).encode("utf-8-sig")
    if fmt == "xlsx":
        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as writer:
            df.to_excel(writer, index=False, sheet_name=title[:31] or "report")
        return buf.getvalue()
    if fmt == "html":
        body = df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0, classes="report")
        style = ("body{font-family:sans-serif;margin:2em}table.report{border-collapse:collapse}"
                 "table.report td,table.report th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style>"
                f"</head><body><h1>{title}</h1>{body}</body></html>").encode("utf-8")
    raise ReportError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")


def tables(dfs: dict[str, pd.DataFrame], fmt: str) -> bytes:
    """Several reports in one file: XLSX sheets or HTML sections (CSV takes one table)."""
    if fmt == "xlsx":
        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as writer:
            for name, df in dfs.items():
                df.to_excel(writer, index=False, sheet_name=name[:31])
        return buf.getvalue()
    if fmt == "html":
        parts = [table(df, "html", name).decode("utf-8") for name, df in dfs.items()]
        bodies = [p.split("<body>", 1)[1].rsplit("</body>", 1)[0] for p in parts]
        head = parts[0].split("<body>", 1)[0].replace("<title>" + next(iter(dfs)), "<title>callreview reports")
        return (head + "<body>" + "".join(bodies) + "</body></html>").encode("utf-8")
    raise ReportError("Several reports go into one XLSX or HTML file; for CSV ask for one report at a time.")
