"""The sales dashboard over the warehouse: ``make dashboard`` (http://127.0.0.1:8501).

    .venv/bin/streamlit run lakehouse_dagster/dashboard/app.py

Reads the warehouse of the deployment: ``LAKEHOUSE_WAREHOUSE_URL``, else the project-local
PostgreSQL of ``make warehouse``. Any PostgreSQL-protocol warehouse with the ``serving``
schema will do.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from lakehouse_dagster.dashboard import queries
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.serving.postgres import PostgresWarehouse
from lakehouse_dagster.serving.warehouse import WarehouseUnavailableError

#: Seconds between refreshes of the tables without a view of their own (real-time ones among them).
REFRESH_SECONDS = 30


def warehouse_url() -> str:
    settings = LakehouseSettings.from_env().warehouse
    return PostgresWarehouse(url=settings.url, local_dir=settings.local_dir).resolved_url()


@st.cache_data(ttl=60, show_spinner=False)
def cached(name: str, url: str, *arguments):
    return getattr(queries, name)(url, *arguments)


def header(url: str) -> set[str]:
    st.title("Lakehouse sales")
    served = cached("served_tables", url)
    if served.empty:
        st.warning("The warehouse has no served tables yet: run `make run` to load it.")
        return set()
    last = served["last_loaded_at"].max()
    st.caption(f"Warehouse loaded at {last:%Y-%m-%d %H:%M:%S} UTC · {len(served)} served tables")
    return set(served["table_name"])


def sales_section(url: str) -> None:
    st.header("Daily sales")
    bounds = cached("sales_dates", url)
    if bounds is None:
        st.info("No daily sales loaded yet.")
        return
    first, last = bounds
    chosen = st.date_input(
        "Order dates", value=(max(first, last - timedelta(days=29)), last), min_value=first, max_value=last
    )
    if not isinstance(chosen, tuple) or len(chosen) != 2:
        st.info("Pick the last day of the range.")
        return
    start, end = chosen
    sales = cached("daily_sales", url, start, end)
    totals = queries.revenue_by_currency(sales)
    columns = st.columns(max(len(totals), 1))
    for column, row in zip(columns, totals.itertuples(), strict=False):
        column.metric(f"Revenue {row.currency}", f"{row.revenue:,.2f}", help=f"{row.units:,} units sold")
    currencies = sorted(sales["currency"].unique())
    if not currencies:
        st.info("No sales in these days.")
        return
    currency = st.radio("Currency", currencies, horizontal=True)
    in_currency = sales[sales["currency"] == currency]
    # A day of the range without sales in a category (or in the currency) sold nothing: 0, not a
    # gap in the line. The pivot holds only days with sales, hence the reindex over every day.
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    chart = in_currency.pivot_table(index="order_date", columns="category", values="revenue", aggfunc="sum")
    chart = chart.reindex(days).rename_axis("order_date")
    st.line_chart(chart.astype(float).fillna(0.0), y_label=f"revenue ({currency})")
    st.dataframe(in_currency, hide_index=True, width="stretch")


def segments_section(url: str, served: set[str]) -> None:
    st.header("Customer segments")
    left, right = st.columns(2)
    if queries.CUSTOMER_SEGMENTS in served:
        crm = cached("segments", url)
        left.subheader("CRM customers by activity")
        left.bar_chart(crm.groupby("customer_segment")["customers"].sum())
        left.dataframe(crm, hide_index=True, width="stretch")
    if queries.CUSTOMER_360 in served:
        buyers = cached("sales_segments", url)
        right.subheader("Sales customers by recency of their last order")
        right.bar_chart(buyers.set_index("customer_segment")["customers"])
        right.dataframe(buyers, hide_index=True, width="stretch")


def products_section(url: str) -> None:
    st.header("Top products")
    left, right = st.columns([1, 3])
    limit = left.slider("Products", min_value=5, max_value=50, value=10, step=5)
    category = left.selectbox("Category", ["all", *cached("categories", url)])
    best = cached("top_products", url, limit, None if category == "all" else category)
    right.dataframe(best, hide_index=True, width="stretch")


def other_tables_section(url: str, served: set[str]) -> None:
    others = sorted(served - set(queries.DEDICATED))
    if not others:
        return
    st.header("Other served tables")

    @st.fragment(run_every=REFRESH_SECONDS)
    def refreshed() -> None:
        try:
            for table in others:
                st.subheader(table)
                st.dataframe(queries.latest_rows(url, table), hide_index=True, width="stretch")
        except WarehouseUnavailableError as error:
            st.error(str(error))
        st.caption(f"Refreshed every {REFRESH_SECONDS} s.")

    refreshed()


def main() -> None:
    st.set_page_config(page_title="Lakehouse sales", layout="wide")
    try:
        url = warehouse_url()
        served = header(url)
        if queries.DAILY_SALES in served:
            sales_section(url)
        segments_section(url, served)
        if queries.PRODUCT_PERFORMANCE in served:
            products_section(url)
        other_tables_section(url, served)
    except WarehouseUnavailableError as error:  # not there, or gone since the last query
        st.error(str(error))


main()
