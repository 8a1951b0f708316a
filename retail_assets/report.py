"""``retail-etl report``: one self-contained HTML page of charts over the marts, readable offline.

The page reads only the marts (``mart_daily_sales``, ``mart_product_performance``, ``mart_customer_360``,
``mart_inventory_health``) of the warehouse at ``RETAIL_WAREHOUSE_URL``, through the ``Warehouse`` resource and
portable SQL. plotly.js is embedded once in the page, so the file works without a network; a mart that has
not been built yet shows as an empty section, not an error.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from retail_assets.resources import Warehouse
from retail_assets.schemas.marts import (
    MART_CUSTOMER_360,
    MART_DAILY_SALES,
    MART_INVENTORY_HEALTH,
    MART_PRODUCT_PERFORMANCE,
    RFM_SEGMENTS,
    STOCK_STATUSES,
)
from retail_assets.settings import load_settings

TOP_PRODUCTS = 15
AT_RISK_ROWS = 20
CHANNEL_COLOURS = {"store": "#1f77b4", "online": "#ff7f0e"}
STATUS_COLOURS = {"stock_out": "#d62728", "low": "#ff7f0e", "ok": "#2ca02c", "overstock": "#9467bd"}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass
class Section:
    """One part of the page: a heading, a sentence saying how to read it, and charts or tables as HTML."""

    title: str
    note: str
    body: list[str]


def _figure_html(fig: go.Figure) -> str:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 60, "b": 50}, height=420)
    return fig.to_html(full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG)


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
    products["label"] = (products["product_name"].fillna(products["sku"]) + " (" + products["sku"] + ")").where(
        products["sku"] != "UNKNOWN", "SKUs missing from the catalog")
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
    note = "Stock at the close of the latest business date in mart_inventory_health against the last 28 days of sales."
    if latest is None:
        return Section("Inventory at risk", note, [_empty(MART_INVENTORY_HEALTH.name)])
    stock = warehouse.query(
        "SELECT store_code, sku, product_name, category, on_hand, avg_daily_units, days_of_supply, stock_status "
        "FROM mart_inventory_health WHERE business_date = :day", day=latest)
    day = pd.Timestamp(latest)
    counts = stock.groupby(["store_code", "stock_status"]).size().unstack(fill_value=0)
    fig = go.Figure([
        go.Bar(x=counts.index, y=counts[status], name=status, marker_color=STATUS_COLOURS[status])
        for status in STOCK_STATUSES if status in counts.columns
    ])
    fig.update_layout(title=f"Inventory at risk on {day:%Y-%m-%d}: products per stock status and store",
                      barmode="stack", yaxis_title="products")
    at_risk = stock[stock["stock_status"].isin(["stock_out", "low"])].copy()
    at_risk["avg_daily_units"] = pd.to_numeric(at_risk["avg_daily_units"]).astype("float64").round(2)
    at_risk["days_of_supply"] = pd.to_numeric(at_risk["days_of_supply"]).astype("float64").round(1)
    at_risk = at_risk.sort_values(["days_of_supply", "avg_daily_units"], ascending=[True, False]).head(AT_RISK_ROWS)
    table = (f"<h3>Most urgent ({len(at_risk)} of {int(stock['stock_status'].isin(['stock_out', 'low']).sum())} "
             f"stock-outs and low stock)</h3>" + _table(at_risk)) if len(at_risk) else "<p>Nothing at risk.</p>"
    return Section("Inventory at risk", note, [_figure_html(fig), table])


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


def build_report(warehouse: Warehouse, *, currency: str = "USD", title: str = "Retail report") -> str:
    """The whole page as one HTML string, plotly.js included."""
    warehouse.ensure([MART_DAILY_SALES, MART_PRODUCT_PERFORMANCE, MART_CUSTOMER_360, MART_INVENTORY_HEALTH])
    sales, kpis = _sales_section(warehouse, currency)
    sections = [sales, _products_section(warehouse, currency), _customers_section(warehouse, currency),
                _inventory_section(warehouse)]
    tiles = "".join(f'<div class="kpi"><div class="label">{html.escape(k)}</div><div class="value">{v}</div></div>'
                    for k, v in kpis)
    body = "".join(
        f'<section><h2>{html.escape(s.title)}</h2><p class="note">{html.escape(s.note)}</p>{"".join(s.body)}</section>'
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
    try:
        page = build_report(warehouse, currency=settings.currency)
    finally:
        warehouse.dispose()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
