"""What the dashboard asks the warehouse: plain SQL over the ``serving`` schema, as DataFrames.

Free of Streamlit, so that the same queries serve any front end and are tested on their own.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import psycopg
from psycopg import sql

from lakehouse_dagster.serving.spec import LOADED_AT, SERVING_SCHEMA
from lakehouse_dagster.serving.warehouse import LOADS_TABLE, WarehouseUnavailableError

#: The served tables the dashboard has a view of its own for.
DAILY_SALES, CUSTOMER_SEGMENTS, CUSTOMER_360, PRODUCT_PERFORMANCE = (
    "daily_sales",
    "customer_segments",
    "customer_360",
    "product_performance",
)
DEDICATED = (DAILY_SALES, CUSTOMER_SEGMENTS, CUSTOMER_360, PRODUCT_PERFORMANCE)


def location(url: str) -> str:
    """The warehouse's host, port and database, without the URL's user and password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        info = {}
    host, port, database = info.get("host", ""), info.get("port", ""), info.get("dbname", "")
    return f"{host}:{port}/{database}" if host else url.split("@")[-1]


def frame(url: str, query: sql.Composable | str, parameters: list | tuple = ()) -> pd.DataFrame:
    """The rows of ``query``; WarehouseUnavailableError if the warehouse cannot be reached."""
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as error:
        reason = next(iter(str(error).strip().splitlines()), "").rstrip(".")
        raise WarehouseUnavailableError(
            f"cannot connect to the warehouse at {location(url)} ({reason}). Is it running? Start "
            "the project-local PostgreSQL with `make warehouse`, or set LAKEHOUSE_WAREHOUSE_URL to a "
            "reachable PostgreSQL URL."
        ) from None
    with connection, connection.cursor() as cursor:
        cursor.execute(query, parameters)
        columns = [column.name for column in cursor.description or []]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def served_tables(url: str) -> pd.DataFrame:
    """Every table of the serving schema with its rows and its last load (UTC)."""
    tables = frame(
        url,
        "SELECT c.relname AS table_name, c.reltuples::bigint AS approximate_rows FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
        "AND c.relname <> %s ORDER BY 1",
        [SERVING_SCHEMA, LOADS_TABLE],
    )
    if tables.empty:
        return tables.assign(last_loaded_at=pd.Series(dtype="datetime64[ns, UTC]"))
    loads = frame(
        url,
        sql.SQL("SELECT table_name, max(loaded_at) AS last_loaded_at FROM {} GROUP BY 1").format(
            sql.Identifier(SERVING_SCHEMA, LOADS_TABLE)
        ),
    )
    return tables.merge(loads, on="table_name", how="left")


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(SERVING_SCHEMA, name)


def sales_dates(url: str) -> tuple[date, date] | None:
    result = frame(
        url, sql.SQL("SELECT min(order_date), max(order_date) FROM {}").format(_table(DAILY_SALES))
    )
    first, last = result.iloc[0]
    return None if first is None else (first, last)


def daily_sales(url: str, start: date, end: date) -> pd.DataFrame:
    """Daily sales of the days from ``start`` to ``end`` (both included), by category and currency."""
    return frame(
        url,
        sql.SQL(
            "SELECT order_date, category, currency, orders, units, revenue, average_order_value, "
            "cancelled_share FROM {} WHERE order_date BETWEEN %s AND %s "
            "ORDER BY order_date, category, currency"
        ).format(_table(DAILY_SALES)),
        [start, end],
    )


def revenue_by_currency(sales: pd.DataFrame) -> pd.DataFrame:
    """Units and revenue per currency (amounts in different currencies are never added).

    No order count: daily_sales counts an order once per category it has lines in, so its
    ``orders`` do not add up to the orders of a currency, and no served table has one row per
    order to count them from. Units and revenue are per line, so they add up exactly.
    """
    if sales.empty:
        return pd.DataFrame(columns=["currency", "units", "revenue"])
    return (
        sales.groupby("currency", as_index=False)[["units", "revenue"]]
        .sum()
        .sort_values("currency")
        .reset_index(drop=True)
    )


def segments(url: str) -> pd.DataFrame:
    """CRM customers per segment and country."""
    return frame(
        url,
        sql.SQL(
            "SELECT customer_segment, country, customers, share_of_customers, avg_days_since_activity "
            "FROM {} ORDER BY customer_segment, customers DESC, country"
        ).format(_table(CUSTOMER_SEGMENTS)),
    )


def sales_segments(url: str) -> pd.DataFrame:
    """Sales customers per segment: how many, and their lifetime revenue in USD."""
    return frame(
        url,
        sql.SQL(
            "SELECT customer_segment, count(*) AS customers, "
            "sum(lifetime_revenue_usd) AS lifetime_revenue_usd FROM {} GROUP BY 1 ORDER BY 1"
        ).format(_table(CUSTOMER_360)),
    )


def categories(url: str) -> list[str]:
    result = frame(
        url, sql.SQL("SELECT DISTINCT category FROM {} ORDER BY 1").format(_table(PRODUCT_PERFORMANCE))
    )
    return [c for c in result["category"] if c is not None]


def top_products(url: str, limit: int, category: str | None = None) -> pd.DataFrame:
    """The best sellers by USD revenue (of ``category`` when given); ties by product id."""
    where, parameters = sql.SQL(""), []
    if category is not None:
        where, parameters = sql.SQL("WHERE category = %s "), [category]
    return frame(
        url,
        sql.SQL(
            "SELECT product_id, name, category, units_sold, revenue_usd, cancel_rate, rank_in_category "
            "FROM {} {}ORDER BY revenue_usd DESC NULLS LAST, product_id LIMIT %s"
        ).format(_table(PRODUCT_PERFORMANCE), where),
        [*parameters, limit],
    )


def latest_rows(url: str, table: str, limit: int = 200) -> pd.DataFrame:
    """The rows of the latest load of any served table (newest first)."""
    return frame(
        url,
        sql.SQL("SELECT * FROM {} ORDER BY {} DESC LIMIT %s").format(
            _table(table), sql.Identifier(LOADED_AT)
        ),
        [limit],
    )
