"""The dashboard over the served warehouse: its queries and its page (Streamlit's AppTest), with
expectations computed by pandas from gold read with deltalake; and once in headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import deltalake
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from lakehouse_dagster.dashboard import queries
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.serving.local_server import free_port

from .browser import CHROMIUM_FLAGS
from .served_pipeline import ServedPipeline

APP = Path(queries.__file__).with_name("app.py")


def gold(pipeline: ServedPipeline, table: str) -> pd.DataFrame:
    delta = deltalake.DeltaTable(pipeline.layout.table_uri(TableName("gold", table)))
    return pa.table(
        deltalake.QueryBuilder().register("t", delta).execute("SELECT * FROM t").read_all()
    ).to_pandas()


def revenue_per_currency(sales: pd.DataFrame) -> dict[str, Decimal]:
    return {currency: sum(group["revenue"], Decimal(0)) for currency, group in sales.groupby("currency")}


def test_the_queries_answer_what_gold_says(served_pipeline: ServedPipeline) -> None:
    url = served_pipeline.warehouse_url
    daily = gold(served_pipeline, "daily_sales")
    first, last = daily["order_date"].min(), daily["order_date"].max()
    assert queries.sales_dates(url) == (first, last)
    second = first + timedelta(days=1)
    chosen = queries.daily_sales(url, second, last)
    expected = daily[(daily["order_date"] >= second) & (daily["order_date"] <= last)]
    assert len(chosen) == len(expected) and set(chosen["order_date"]) == set(expected["order_date"])
    totals = queries.revenue_by_currency(chosen)
    assert dict(zip(totals["currency"], totals["revenue"], strict=True)) == revenue_per_currency(expected)

    products = gold(served_pipeline, "product_performance")
    ranked = products.sort_values(["revenue_usd", "product_id"], ascending=[False, True])
    assert list(queries.top_products(url, 7)["product_id"]) == list(ranked["product_id"][:7])
    category = sorted(products["category"].dropna().unique())[0]
    in_category = ranked[ranked["category"] == category]
    assert list(queries.top_products(url, 50, category)["product_id"]) == list(in_category["product_id"])

    customers = gold(served_pipeline, "customer_360")
    segments = queries.sales_segments(url).set_index("customer_segment")["customers"].to_dict()
    assert segments == customers["customer_segment"].value_counts().to_dict()
    served = queries.served_tables(url)
    assert set(served["table_name"]) == {
        "daily_sales",
        "customer_segments",
        "customer_360",
        "product_performance",
        "customer_features",
        "customer_churn_scores",
    }
    assert served["last_loaded_at"].notna().all()


@pytest.fixture
def page(served_pipeline: ServedPipeline, monkeypatch) -> AppTest:
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URL", served_pipeline.warehouse_url)
    return AppTest.from_file(str(APP), default_timeout=60).run()


def metrics(page: AppTest) -> dict[str, Decimal]:
    return {m.label.removeprefix("Revenue "): Decimal(m.value.replace(",", "")) for m in page.metric}


def table_with(page: AppTest, column: str) -> pd.DataFrame:
    return next(frame.value for frame in page.dataframe if column in frame.value.columns)


def test_the_page_shows_revenue_per_currency_for_the_chosen_days(page: AppTest, served_pipeline) -> None:
    assert not page.exception, page.exception
    daily = gold(served_pipeline, "daily_sales")
    last = daily["order_date"].max()
    shown = daily[daily["order_date"] >= last - timedelta(days=29)]
    assert metrics(page) == revenue_per_currency(shown)

    page.date_input[0].set_value((last, last)).run()

    assert not page.exception
    assert metrics(page) == revenue_per_currency(daily[daily["order_date"] == last])
    currency = page.radio[0].value
    rows = table_with(page, "average_order_value")
    assert set(rows["currency"]) == {currency} and set(rows["order_date"]) == {last}


def test_the_page_shows_segments_and_the_top_products_of_a_category(page: AppTest, served_pipeline) -> None:
    segments = table_with(page, "share_of_customers")
    crm = gold(served_pipeline, "customer_segments")
    assert int(segments["customers"].sum()) == int(crm["customers"].sum())

    assert len(table_with(page, "rank_in_category")) == 10
    page.slider[0].set_value(5).run()
    assert len(table_with(page, "rank_in_category")) == 5
    category = page.selectbox[0].options[1]
    page.selectbox[0].select(category).run()
    best = table_with(page, "rank_in_category")
    assert set(best["category"]) == {category} and list(best["rank_in_category"]) == sorted(
        best["rank_in_category"]
    )


def test_without_a_warehouse_the_page_says_how_to_start_one(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("LAKEHOUSE_WAREHOUSE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .warehouse/url here
    page = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not page.exception
    assert any("make warehouse" in error.value for error in page.error)


# In a real browser ---------------------------------------------------------------------------------


@pytest.fixture
def dashboard_server(served_pipeline: ServedPipeline, tmp_path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
            "--client.toolbarMode=viewer",
        ],
        env={**os.environ, "LAKEHOUSE_WAREHOUSE_URL": served_pipeline.warehouse_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "streamlit.log").read_text()) from None
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_the_dashboard_renders_in_headless_chromium(chromium: str, dashboard_server: str, tmp_path) -> None:
    from PIL import Image, ImageStat
    from playwright.sync_api import sync_playwright

    shot = tmp_path / "dashboard.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.goto(dashboard_server, timeout=60_000)
            page.get_by_text("Top products").wait_for(timeout=60_000)
            page.locator('[data-testid="stMetric"]').first.wait_for(timeout=30_000)
            page.locator(
                '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'
            ).first.wait_for(timeout=30_000)
            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000)
            page.wait_for_timeout(1_000)  # let the charts finish drawing
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stMetric"]').count() >= 1
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    image = Image.open(shot).convert("RGB")
    assert image.width == 1280 and image.height >= 1600
    top = image.crop((0, 0, image.width, 1600))
    colours = len(top.resize((320, 400)).getcolors(maxcolors=320 * 400))
    assert colours > 40, "a blank or single-colour page"
    brightness = ImageStat.Stat(top.convert("L")).mean[0]
    assert 120 < brightness < 252, f"mean brightness {brightness}: the page is neither empty nor all dark"


# A warehouse of hand-made rows -----------------------------------------------------------------

JUNE_1, JUNE_2, JUNE_3 = date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)
#: serving.daily_sales as gold would have it: order 100 (a book and a toy) and order 101 (books)
#: in USD on June 2, so order 100 is in both the books and the toys row; EUR sold on June 1 and 3.
HAND_MADE_SALES = [
    # order_date, category, currency, orders, units, revenue
    (JUNE_1, "books", "EUR", 1, 1, Decimal("10.00")),
    (JUNE_2, "books", "USD", 2, 3, Decimal("30.00")),
    (JUNE_2, "toys", "USD", 1, 1, Decimal("5.00")),
    (JUNE_3, "books", "EUR", 1, 2, Decimal("30.00")),
]


@pytest.fixture
def hand_made_page(warehouse_url: str, monkeypatch) -> AppTest:
    """The page over a warehouse whose only served table is HAND_MADE_SALES's daily_sales."""
    with psycopg.connect(warehouse_url) as connection:
        connection.execute("CREATE SCHEMA serving")
        connection.execute("CREATE TABLE serving._loads (table_name text, loaded_at timestamptz)")
        connection.execute("INSERT INTO serving._loads VALUES ('daily_sales', now())")
        connection.execute(
            "CREATE TABLE serving.daily_sales (order_date date, category text, currency text, "
            "orders bigint, units bigint, revenue numeric(38, 2), average_order_value numeric(38, 2), "
            "cancelled_share double precision, _loaded_at timestamptz DEFAULT now())"
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO serving.daily_sales (order_date, category, currency, orders, units, "
                "revenue, cancelled_share) VALUES (%s, %s, %s, %s, %s, %s, 0)",
                HAND_MADE_SALES,
            )
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URL", warehouse_url)
    return AppTest.from_file(str(APP), default_timeout=60).run()


def test_the_revenue_metrics_claim_no_order_count_daily_sales_cannot_give(hand_made_page) -> None:
    """USD has 2 distinct orders, but daily_sales' orders add up to 3 (order 100 is in two
    categories): no served table counts orders per currency, so the page shows units, which add up."""
    page = hand_made_page
    assert not page.exception, page.exception
    assert metrics(page) == {"EUR": Decimal("40.00"), "USD": Decimal("35.00")}
    helps = {m.label.removeprefix("Revenue "): m.proto.help for m in page.metric}
    assert helps == {"EUR": "3 units sold", "USD": "4 units sold"}
    assert not any("order" in text for text in helps.values())


def chart_rows(page: AppTest) -> pd.DataFrame:
    """The rows the page's one line chart draws (one column per category when there is one)."""
    (chart,) = page.get("vega_lite_chart")
    datasets = [chart.proto.data, *(named.data for named in chart.proto.datasets)]
    (rows,) = [convert_arrow_bytes_to_pandas_df(d.data) for d in datasets if d.data]
    return rows


def test_the_revenue_chart_draws_a_day_without_sales_in_the_currency_as_zero(hand_made_page) -> None:
    """EUR sold books on June 1 and 3 only (USD sold on June 2): the EUR line is 0 on June 2."""
    page = hand_made_page
    assert not page.exception, page.exception
    assert page.radio[0].value == "EUR" and page.date_input[0].value == (JUNE_1, JUNE_3)
    rows = chart_rows(page)
    assert list(rows.columns) == ["order_date", "books"]
    drawn = {
        pd.Timestamp(day).date(): value for day, value in zip(rows["order_date"], rows["books"], strict=True)
    }
    assert drawn == {JUNE_1: 10.0, JUNE_2: 0.0, JUNE_3: 30.0}


def test_a_warehouse_that_is_down_gets_the_page_error_not_a_traceback(monkeypatch, tmp_path) -> None:
    port = free_port()  # free: nothing listens on it
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URL", f"postgresql://lakehouse:s3cret@127.0.0.1:{port}/lakehouse")
    monkeypatch.chdir(tmp_path)
    page = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not page.exception, page.exception
    (error,) = page.error
    assert f"127.0.0.1:{port}" in error.value and "make warehouse" in error.value
    assert "s3cret" not in error.value
