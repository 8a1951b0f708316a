"""``retail-etl report``: one self-contained HTML page of charts over the marts, readable offline.

The page reads the marts (``mart_daily_sales``, ``mart_product_performance``, ``mart_customer_360``,
``mart_inventory_health``) and, for its data-quality section, ``rejections`` and ``pos_file_ledger`` of the
warehouse at ``RETAIL_WAREHOUSE_URL``, through the ``Warehouse`` resource and portable SQL; the failed checks come
from the asset check evaluations of the Dagster instance at ``DAGSTER_HOME`` when there is one. plotly.js is
embedded once in the page, so the file works without a network; a mart that has not been built yet shows as an
empty section, not an error.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from retail_assets.resources import Warehouse
from retail_assets.schemas import ALL_TABLES
from retail_assets.schemas.marts import (
    MART_CUSTOMER_360,
    MART_DAILY_SALES,
    MART_INVENTORY_HEALTH,
    MART_PRODUCT_PERFORMANCE,
    RFM_SEGMENTS,
    STOCK_STATUSES,
)
from retail_assets.settings import load_settings
from retail_assets.transforms.normalise import normalise_sku

if TYPE_CHECKING:
    import dagster as dg

TOP_PRODUCTS = 15
AT_RISK_ROWS = 20
CHANNEL_COLOURS = {"store": "#1f77b4", "online": "#ff7f0e"}
STATUS_COLOURS = {"stock_out": "#d62728", "low": "#ff7f0e", "ok": "#2ca02c", "overstock": "#9467bd"}
SEVERITY_COLOURS = {"ERROR": "#d62728", "WARN": "#ff7f0e"}
FILE_STATUS_COLOURS = {"rejected": "#d62728", "held": "#9467bd"}
ONLINE_STORE = "ONLINE"
CHECK_RUNS = 1000  # newest runs whose check evaluations the data-quality section reads
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_STORE_IN_PATH = re.compile(r"(?:^|/)(?:sales|stock)_([A-Za-z0-9]+)_\d{8}\.|(?:^|/)([A-Za-z0-9]+)_\d{8}\.txt$")


@dataclass
class Section:
    """One part of the page: a heading, a sentence saying how to read it, and charts or tables as HTML."""

    title: str
    note: str
    body: list[str]
    anchor: str = field(default="")


MISSING_SKU = "SKUs missing from the catalog"


def sku_texts(skus: Iterable[object]) -> list[str]:
    """SKUs as the page writes them everywhere, charts and tables: the key the warehouse matches SKUs by
    (``normalise_sku``, once for the whole column: upper case, no punctuation, so the catalog's ``KT-832954`` and a
    POS file's ``kt832954`` read alike); a SKU missing from the catalog says so."""
    values = pd.Series(list(skus), dtype="object")
    codes = normalise_sku(values.where(values.notna()).astype("string"))
    return [MISSING_SKU if pd.isna(code) or code in ("", "UNKNOWN") else str(code) for code in codes]


def sku_text(sku: object) -> str:
    return sku_texts([sku])[0]


def product_labels(skus: Iterable[object], names: Iterable[object]) -> list[str]:
    """Products as charts and tables write them: ``SKU · name`` (the SKU alone when the name is unknown)."""
    return [code if code == MISSING_SKU or name is None or (isinstance(name, float) and pd.isna(name))
            or not str(name) else f"{code} · {name}"
            for code, name in zip(sku_texts(skus), names, strict=True)]


def product_label(sku: object, name: object) -> str:
    return product_labels([sku], [name])[0]


def _figure_html(fig: go.Figure, div_id: str | None = None, height: int = 420) -> str:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 60, "b": 50})
    if fig.layout.height is None:
        fig.update_layout(height=height)
    return fig.to_html(full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG, div_id=div_id)


def _empty(what: str) -> str:
    return f'<p class="empty">No rows in <code>{html.escape(what)}</code> yet: materialise the marts first.</p>'


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {html.escape(currency)}"


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _sales_section(warehouse: Warehouse, currency: str) -> tuple[Section, list[tuple[str, str]]]:
    trend = warehouse.query(
        "SELECT business_date, channel, SUM(net_revenue) AS net_revenue, SUM(units) AS units, "
        "SUM(receipts) AS receipts, SUM(sales_amount) AS sales_amount, SUM(units_sold) AS units_sold, "
        "SUM(units_returned) AS units_returned "
        "FROM mart_daily_sales GROUP BY business_date, channel ORDER BY business_date, channel"
    )
    note = "Net revenue (sales minus returns) per business day and channel, from mart_daily_sales."
    if trend.empty:
        return Section("Sales trend by channel", note, [_empty(MART_DAILY_SALES.name)]), []
    for col in ("net_revenue", "sales_amount"):
        trend[col] = pd.to_numeric(trend[col]).astype("float64")
    for col in ("units", "receipts", "units_sold", "units_returned"):
        trend[col] = pd.to_numeric(trend[col]).astype("int64")
    trend["business_date"] = pd.to_datetime(trend["business_date"])
    fig = go.Figure()
    for channel, rows in trend.groupby("channel", sort=True):
        fig.add_trace(go.Scatter(
            x=rows["business_date"], y=rows["net_revenue"], mode="lines+markers", name=str(channel),
            line={"color": CHANNEL_COLOURS.get(str(channel))},
            customdata=rows[["units", "receipts"]].to_numpy(),
            hovertemplate=f"%{{x|%Y-%m-%d}}<br>net revenue %{{y:,.2f}} {currency}<br>units %{{customdata[0]}}"
                          "<br>receipts %{customdata[1]}<extra>%{fullData.name}</extra>",
        ))
    fig.update_layout(title="Sales trend by channel", xaxis_title="business date",
                      yaxis_title=f"net revenue ({currency})", hovermode="x unified")
    receipts, sold = int(trend["receipts"].sum()), int(trend["units_sold"].sum())
    kpis = [
        ("Net revenue", _money(float(trend["net_revenue"].sum()), currency)),
        ("Units (net)", f"{int(trend['units'].sum()):,}"),
        ("Receipts", f"{receipts:,}"),
        ("Average basket", _money(float(trend["sales_amount"].sum()) / receipts, currency) if receipts else "-"),
        ("Return rate", f"{int(trend['units_returned'].sum()) / sold:.1%}" if sold else "-"),
        ("Days", f"{trend['business_date'].min():%Y-%m-%d} .. {trend['business_date'].max():%Y-%m-%d}"),
    ]
    return Section("Sales trend by channel", note, [_figure_html(fig)]), kpis


def _products_section(warehouse: Warehouse, currency: str) -> Section:
    products = warehouse.query(
        "SELECT sku, product_name, category, SUM(net_revenue) AS net_revenue, SUM(margin) AS margin, "
        "SUM(units) AS units FROM mart_product_performance GROUP BY sku, product_name, category"
    )
    note = ("All weeks of mart_product_performance: products by net revenue, and categories (current catalog "
            "category) by net revenue and margin. Margin counts only weeks whose unit cost is known.")
    if products.empty:
        return Section("Top products and categories", note, [_empty(MART_PRODUCT_PERFORMANCE.name)])
    for col in ("net_revenue", "margin"):
        products[col] = pd.to_numeric(products[col]).astype("float64")
    products["label"] = product_labels(products["sku"], products["product_name"])
    products["category"] = products["category"].fillna("(unknown)")
    top = products.nlargest(TOP_PRODUCTS, "net_revenue").iloc[::-1]
    fig_products = go.Figure(go.Bar(
        x=top["net_revenue"], y=top["label"], orientation="h", marker_color="#1f77b4",
        customdata=top[["category", "units"]].to_numpy(),
        hovertemplate=f"%{{y}}<br>%{{customdata[0]}}<br>net revenue %{{x:,.2f}} {currency}"
                      "<br>units %{customdata[1]}<extra></extra>",
    ))
    fig_products.update_layout(title=f"Top {min(TOP_PRODUCTS, len(products))} products by net revenue",
                               xaxis_title=f"net revenue ({currency})", height=480)
    categories = (products.groupby("category", as_index=False)[["net_revenue", "margin"]].sum()
                  .sort_values("net_revenue", ascending=False))
    fig_categories = go.Figure([
        go.Bar(x=categories["category"], y=categories["net_revenue"], name="net revenue", marker_color="#1f77b4"),
        go.Bar(x=categories["category"], y=categories["margin"], name="margin", marker_color="#2ca02c"),
    ])
    fig_categories.update_layout(title="Categories: net revenue and margin", barmode="group",
                                 yaxis_title=currency)
    return Section("Top products and categories", note, [_figure_html(fig_products), _figure_html(fig_categories)])


def _customers_section(warehouse: Warehouse, currency: str) -> Section:
    segments = warehouse.query(
        "SELECT rfm_segment, COUNT(*) AS customers, SUM(lifetime_net) AS lifetime_net "
        "FROM mart_customer_360 GROUP BY rfm_segment"
    )
    note = ("Current customers of mart_customer_360 by RFM segment (threshold rules on recency, orders and "
            "lifetime net; see the mart's description), and what each segment has spent.")
    if segments.empty:
        return Section("Customer segments", note, [_empty(MART_CUSTOMER_360.name)])
    segments["customers"] = pd.to_numeric(segments["customers"]).astype("int64")
    segments["lifetime_net"] = pd.to_numeric(segments["lifetime_net"]).astype("float64")
    order = {name: i for i, name in enumerate(RFM_SEGMENTS)}
    segments = segments.sort_values("rfm_segment", key=lambda s: s.map(order))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("customers", f"lifetime net ({currency})"))
    fig.add_trace(go.Bar(x=segments["rfm_segment"], y=segments["customers"], name="customers",
                         marker_color="#17becf"), row=1, col=1)
    fig.add_trace(go.Bar(x=segments["rfm_segment"], y=segments["lifetime_net"], name="lifetime net",
                         marker_color="#bcbd22"), row=1, col=2)
    fig.update_layout(title="Customer segments (RFM)", showlegend=False)
    return Section("Customer segments", note, [_figure_html(fig)])


def _inventory_section(warehouse: Warehouse) -> Section:
    latest = warehouse.scalar("SELECT MAX(business_date) FROM mart_inventory_health")
    note = ("Stock at the close of the latest business date in mart_inventory_health against the last 28 days of "
            f"sales: products per stock status, the stores on the left and the {ONLINE_STORE} warehouse (which "
            "carries far more products) on the right, each panel on its own scale.")
    if latest is None:
        return Section("Inventory at risk", note, [_empty(MART_INVENTORY_HEALTH.name)], "inventory")
    stock = warehouse.query(
        "SELECT store_code, sku, product_name, category, on_hand, avg_daily_units, days_of_supply, stock_status "
        "FROM mart_inventory_health WHERE business_date = :day", day=latest)
    day = pd.Timestamp(latest)
    counts = stock.groupby(["store_code", "stock_status"]).size().unstack(fill_value=0)
    panels = [("stores", counts[counts.index != ONLINE_STORE]), (ONLINE_STORE, counts[counts.index == ONLINE_STORE])]
    panels = [(name, rows) for name, rows in panels if len(rows)]
    fig = make_subplots(rows=1, cols=len(panels), column_widths=[0.8, 0.2][:len(panels)] if len(panels) == 2
                        else None, subplot_titles=[f"{name}: products per status" for name, _ in panels],
                        horizontal_spacing=0.1)
    for col, (name, rows) in enumerate(panels, start=1):
        shares = rows.div(rows.sum(axis=1), axis=0)
        for status in STOCK_STATUSES:
            if status not in rows.columns:
                continue
            fig.add_trace(go.Bar(
                x=rows.index, y=rows[status], name=status, legendgroup=status, showlegend=col == 1,
                marker_color=STATUS_COLOURS[status], meta=name, customdata=shares[status].to_numpy(),
                hovertemplate="%{x}: %{y} products " + status + " (%{customdata:.0%})<extra></extra>",
            ), row=1, col=col)
        fig.update_yaxes(title_text="products" if col == 1 else None, row=1, col=col)
    fig.update_layout(title=f"Inventory at risk on {day:%Y-%m-%d}: products per stock status and store",
                      barmode="stack", legend_title_text="stock status")
    at_risk = stock[stock["stock_status"].isin(["stock_out", "low"])].copy()
    at_risk["avg_daily_units"] = pd.to_numeric(at_risk["avg_daily_units"]).astype("float64").round(2)
    at_risk["days_of_supply"] = pd.to_numeric(at_risk["days_of_supply"]).astype("float64").round(1)
    at_risk = at_risk.sort_values(["days_of_supply", "avg_daily_units"], ascending=[True, False]).head(AT_RISK_ROWS)
    at_risk.insert(1, "product", product_labels(at_risk["sku"], at_risk["product_name"]))
    at_risk = at_risk.drop(columns=["sku", "product_name"])
    table = (f"<h3>Most urgent ({len(at_risk)} of {int(stock['stock_status'].isin(['stock_out', 'low']).sum())} "
             f"stock-outs and low stock)</h3>" + _table(at_risk)) if len(at_risk) else "<p>Nothing at risk.</p>"
    return Section("Inventory at risk", note, [_figure_html(fig, "inventory-chart"), table], "inventory")


@dataclass
class FailedCheck:
    """One asset check whose latest evaluation for a day failed."""

    day: str
    asset: str
    check: str
    severity: str
    details: str


def failed_checks_from_instance(instance: dg.DagsterInstance, runs: int = CHECK_RUNS) -> list[FailedCheck]:
    """The asset checks whose latest evaluation per (asset, check, day) failed, over the newest ``runs`` runs.

    The day is the run's partition (a business date); a run without one (the reference data, the marts over the
    whole history) counts under ``not by day``."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    from retail_assets.runner import check_details

    seen: set[tuple[str, str, str]] = set()
    failed: list[FailedCheck] = []
    for record in instance.get_run_records(limit=runs):  # newest first: the first evaluation seen is the latest
        run = record.dagster_run
        day = run.tags.get("dagster/partition") or "not by day"
        events = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                                              ascending=False).records
        for event in events:
            evaluation = event.event_log_entry.dagster_event.event_specific_data
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name, day)
            if key in seen:
                continue
            seen.add(key)
            if not evaluation.passed:
                severity = "ERROR" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "WARN"
                failed.append(FailedCheck(day, key[0], key[1], severity, check_details(evaluation.metadata or {})))
    return sorted(failed, key=lambda c: (c.day, c.asset, c.check))


def _rejection_store(source_system: str, source_ref: str, stores_by_path: dict[str, str]) -> str:
    """The store a rejected row belongs to: a POS file's store (from the ledger, else its name), the online
    shop's ``ONLINE``, or the source system's name in brackets."""
    if source_system == "pos":
        if stores_by_path.get(source_ref):
            return stores_by_path[source_ref]
        match = _STORE_IN_PATH.search(source_ref or "")
        return (match.group(1) or match.group(2)).upper() if match else "(file not named for a store)"
    return ONLINE_STORE if source_system == "online" else f"({source_system})"


def _data_quality_section(warehouse: Warehouse, failed: list[FailedCheck] | None, checks_from: str) -> Section:
    rejections = warehouse.query(
        "SELECT source_system, source_ref, reason_code, COUNT(*) AS n FROM rejections "
        "GROUP BY source_system, source_ref, reason_code")
    ledger = warehouse.query(
        "SELECT DISTINCT path, store_code, business_date, status FROM pos_file_ledger")
    note = ("Every source line or row that did not reach the warehouse is in the rejections table with a reason: "
            "here counted by reason and by store (a POS file's store; the online shop as ONLINE). "
            + checks_from + " POS files refused or held (pos_file_ledger) are counted per business date.")
    body: list[str] = []
    rejections["n"] = pd.to_numeric(rejections["n"]).astype("int64") if len(rejections) else []
    total = int(rejections["n"].sum()) if len(rejections) else 0
    if total:
        stores_by_path = {str(p): str(c) for p, c in zip(ledger["path"], ledger["store_code"], strict=True)
                          if c is not None and not pd.isna(c)}
        rejections["store"] = [_rejection_store(str(s), str(r), stores_by_path)
                               for s, r in zip(rejections["source_system"], rejections["source_ref"], strict=True)]
        by_reason = (rejections.groupby("reason_code", as_index=False)["n"].sum()
                     .sort_values(["n", "reason_code"], ascending=[False, True]))
        by_store = rejections.pivot_table(index="store", columns="reason_code", values="n", aggfunc="sum",
                                          fill_value=0)
        by_store = by_store.loc[by_store.sum(axis=1).sort_values(ascending=False).index]
        fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.22,
                            subplot_titles=("by reason", "by store and reason"))
        fig.add_trace(go.Bar(x=by_reason["n"], y=by_reason["reason_code"], orientation="h", marker_color="#d62728",
                             text=by_reason["n"], textposition="auto", showlegend=False,
                             hovertemplate="%{y}: %{x} rows<extra></extra>"), row=1, col=1)
        for reason in by_reason["reason_code"]:
            fig.add_trace(go.Bar(x=by_store.index, y=by_store[reason], name=reason, legendgroup=reason,
                                 hovertemplate="%{x}: %{y} rows " + reason + "<extra></extra>"), row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=1)
        fig.update_xaxes(title_text="rows", row=1, col=1)
        fig.update_yaxes(title_text="rows", row=1, col=2)
        fig.update_layout(title=f"Rejected rows: {total:,} by reason and by store", barmode="stack",
                          legend_title_text="reason", height=max(420, 60 + 28 * len(by_reason)))
        reason_table = by_reason.rename(columns={"reason_code": "reason", "n": "rows"})
        body += [_figure_html(fig, "rejections-chart"),
                 '<h3>Rejected rows by reason</h3><div id="rejections-by-reason">' + _table(reason_table) + "</div>"]
    else:
        body.append('<p id="rejections-by-reason">No rejected rows: every source line reached the warehouse.</p>')

    if failed is not None:
        if failed:
            frame = pd.DataFrame([vars(c) for c in failed])
            per_day = frame.groupby(["day", "severity"]).size().unstack(fill_value=0)
            fig = go.Figure([go.Bar(x=per_day.index, y=per_day[sev], name=sev, marker_color=SEVERITY_COLOURS[sev])
                             for sev in ("ERROR", "WARN") if sev in per_day.columns])
            fig.update_layout(title=f"Failed checks by day: {len(failed)}", barmode="stack", yaxis_title="checks",
                              xaxis={"type": "category", "title": "business date"}, legend_title_text="severity")
            frame["check"] = frame["asset"] + " / " + frame["check"]
            body += [_figure_html(fig, "checks-chart"), "<h3>Failed checks</h3><div id=\"failed-checks\">"
                     + _table(frame[["day", "check", "severity", "details"]]) + "</div>"]
        else:
            body.append('<p id="failed-checks">No failed checks: the latest evaluation of every check passed.</p>')

    files = ledger[ledger["status"].isin(["rejected", "held"])].drop_duplicates(["path", "status"]).copy()
    if len(files):
        files["day"] = [f"{pd.Timestamp(d):%Y-%m-%d}" if d is not None and not pd.isna(d) else "undated"
                        for d in files["business_date"]]
        per_day = files.groupby(["day", "status"]).size().unstack(fill_value=0)
        fig = go.Figure([go.Bar(x=per_day.index, y=per_day[st], name=("refused" if st == "rejected" else st),
                                marker_color=FILE_STATUS_COLOURS[st])
                         for st in ("rejected", "held") if st in per_day.columns])
        fig.update_layout(title=f"POS files refused or held by day: {len(files)}", barmode="stack",
                          yaxis_title="files", xaxis={"type": "category", "title": "business date"}, height=360)
        body.append(_figure_html(fig, "files-chart"))
    else:
        body.append("<p>No POS file refused or held.</p>")
    return Section("Data quality", note, body, "data-quality")


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1.5rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
.kpis { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 1rem 0 1.5rem; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 1rem; min-width: 9rem; }
.kpi .label { color: #666; font-size: 0.85rem; } .kpi .value { font-size: 1.25rem; font-weight: 600; }
section { margin-bottom: 2.5rem; } .note { color: #555; } .empty { color: #a33; }
table.grid { border-collapse: collapse; font-size: 0.85rem; }
table.grid th, table.grid td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; }
"""


def build_report(warehouse: Warehouse, *, currency: str = "USD", title: str = "Retail report",
                 instance: dg.DagsterInstance | None = None, instance_note: str = "") -> str:
    """The whole page as one HTML string, plotly.js included. With ``instance`` the data-quality section shows
    the failed asset checks by day; ``instance_note`` says why there is none."""
    warehouse.ensure([MART_DAILY_SALES, MART_PRODUCT_PERFORMANCE, MART_CUSTOMER_360, MART_INVENTORY_HEALTH,
                      ALL_TABLES["rejections"], ALL_TABLES["pos_file_ledger"]])
    sales, kpis = _sales_section(warehouse, currency)
    failed: list[FailedCheck] | None = None
    if instance is not None:
        try:
            failed = failed_checks_from_instance(instance)
        except Exception as exc:  # noqa: BLE001 - an instance out of reach costs the checks, not the page
            instance_note = f"the Dagster instance could not be read ({type(exc).__name__})"
    if failed is not None:
        checks_from = ("Failed checks by day are the asset checks whose latest evaluation failed, read from the "
                       "Dagster instance (the runs' partition is the day).")
    else:
        checks_from = ("Failed checks are not shown: " + (instance_note or "no Dagster instance was given") + ".")
    sections = [sales, _products_section(warehouse, currency), _customers_section(warehouse, currency),
                _inventory_section(warehouse), _data_quality_section(warehouse, failed, checks_from)]
    tiles = "".join(f'<div class="kpi"><div class="label">{html.escape(k)}</div><div class="value">{v}</div></div>'
                    for k, v in kpis)
    body = "".join(
        f'<section{f" id={chr(34)}{s.anchor}{chr(34)}" if s.anchor else ""}><h2>{html.escape(s.title)}</h2>'
        f'<p class="note">{html.escape(s.note)}</p>{"".join(s.body)}</section>'
        for s in sections
    )
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=\"meta\">Warehouse {html.escape(warehouse.display_url)}, "
        f"generated {generated}, amounts in {html.escape(currency)}.</p>"
        f"<div class=\"kpis\">{tiles}</div>{body}</body></html>\n"
    )


def write_report(out: str | Path = "report.html", warehouse_url: str | None = None) -> Path:
    """Write the report for the configured warehouse (or ``warehouse_url``) to ``out``; the path written."""
    settings = load_settings()
    warehouse = Warehouse(url=warehouse_url or settings.warehouse_url)
    instance, why = _open_instance(settings.dagster_home)
    try:
        page = build_report(warehouse, currency=settings.currency, instance=instance, instance_note=why)
    finally:
        warehouse.dispose()
        if instance is not None:
            instance.dispose()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _open_instance(home: Path) -> tuple[dg.DagsterInstance | None, str]:
    """The Dagster instance at ``home`` when it exists (nothing is created), else None and why not."""
    if not (home / "dagster.yaml").is_file():
        return None, f"no Dagster instance at DAGSTER_HOME ({home})"
    import dagster as dg

    try:
        return dg.DagsterInstance.from_config(str(home)), ""
    except Exception as exc:  # noqa: BLE001 - the page is still useful without the checks
        return None, f"the Dagster instance at DAGSTER_HOME ({home}) could not be opened ({type(exc).__name__})"
