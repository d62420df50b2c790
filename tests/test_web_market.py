"""The market pages: watch list, search, instrument quote/depth/history and the option chain."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from blueprints.market_pages import (
    format_number,
    format_quantity,
    format_signed,
    group_indian,
)
from config import Settings
from services.clock import IST, FixedClock
from services.market.analytics import OptionsAnalytics
from services.market.master import expiry_code
from tests.conftest import desk_env, desk_of, login, make_user

# Monday 2026-11-23, 11:00 IST: a trading day, NSE open.
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=IST)
PAGES = ["/market", "/market/NSE/RELIANCE", "/market/chain"]

_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
def market_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    folder = Path(tmp_path_factory.mktemp("market-pages"))
    settings = Settings.from_mapping(desk_env(folder, MARKET_MODE="CALENDAR"))
    flask_app = create_app(settings, clock=FixedClock(NOW))
    desk_of(flask_app).market.master.prepare_search()  # build master and search index once
    make_user(flask_app)
    yield flask_app
    desk_of(flask_app).close()


@pytest.fixture(scope="module")
def signed_in(market_app: Flask) -> FlaskClient:
    client = market_app.test_client()
    assert login(client).status_code == 302
    return client


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    text = response.get_data(as_text=True)
    assert response.status_code == status, text[:2000]
    assert "Traceback" not in text
    return text


def text_of(cell: str) -> str:
    return html.unescape(_TAG.sub("", cell)).strip()


def cells(markup: str, css_class: str) -> list[str]:
    """The text of every <td> whose class list includes `css_class`."""
    pattern = rf'<td class="[^"]*\b{re.escape(css_class)}\b[^"]*">(.*?)</td>'
    return [text_of(found) for found in re.findall(pattern, markup, re.DOTALL)]


def rows(markup: str, row_class: str) -> list[str]:
    return re.findall(rf'<tr class="{row_class}[^"]*"[^>]*>(.*?)</tr>', markup, re.DOTALL)


def watch_row(markup: str, symbol: str) -> list[str]:
    for row in rows(markup, "watch-row"):
        cells_of_row = [text_of(cell) for cell in _CELL.findall(row)]
        if cells_of_row[0].split()[0] == symbol:
            return cells_of_row
    raise AssertionError(f"{symbol} not in the watch list")


# --- formatting ------------------------------------------------------------------------------


def test_numbers_use_indian_grouping_and_two_decimals() -> None:
    assert group_indian("1234567") == "12,34,567"
    assert group_indian("999") == "999"
    assert format_number(Decimal("25670.85")) == "25,670.85"
    assert format_number(Decimal("1234567.891")) == "12,34,567.89"
    assert format_number(Decimal("0.005")) == "0.01"
    assert format_number(Decimal("-1234.5")) == "\u22121,234.50"
    assert format_number(None) == "—"
    assert format_signed(Decimal("12.3")) == "+12.30"
    assert format_signed(Decimal("-0.4")) == "\u22120.40"
    assert format_signed(Decimal(0)) == "0.00"
    assert format_quantity(10_000_000) == "1,00,00,000"
    assert format_quantity(0) == "—"


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_pages_need_a_signed_in_trader(market_app: Flask, url: str) -> None:
    response = market_app.test_client().get(url)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


# --- watch list and search -------------------------------------------------------------------


def test_watch_list_shows_indices_and_stocks_at_the_source_price(
    market_app: Flask, signed_in: FlaskClient
) -> None:
    markup = page(signed_in, "/market")
    market = desk_of(market_app).market
    for symbol, exchange in (("NIFTY", "NSE_INDEX"), ("SENSEX", "BSE_INDEX"), ("SBIN", "NSE")):
        quote = market.source.quote(market.instrument(symbol, exchange))
        row = watch_row(markup, symbol)
        change = quote.ltp - quote.prev_close
        assert row[1] == format_number(quote.ltp)
        assert row[2] == format_signed(change)
        assert row[2][0] in "+\u2212" or change == 0  # the sign, not only the colour
        assert row[4:7] == [format_number(quote.open), format_number(quote.high),
                            format_number(quote.low)]  # fmt: skip
    assert len(rows(markup, "watch-row")) == 14
    assert "Simulated market — follows the NSE calendar" in markup
    assert "23 Nov 2026 11:00:00 IST" in markup
    assert 'href="/market/chain?underlying=NIFTY&amp;exchange=NSE_INDEX"' in markup


def test_search_lists_matches_with_links(signed_in: FlaskClient) -> None:
    markup = page(signed_in, "/market?q=reliance")
    assert 'href="/market/NSE/RELIANCE"' in markup
    results = re.search(r'<table class="data search-results">(.*?)</table>', markup, re.DOTALL)
    assert results is not None
    assert 1 < len(re.findall(r"<tr>", results.group(1))) <= 51  # header + at most 50
    assert "Nothing matches" in page(signed_in, "/market?q=zzqqxx")


# --- instrument page -------------------------------------------------------------------------


def test_instrument_page_shows_five_levels_of_the_book(
    market_app: Flask, signed_in: FlaskClient
) -> None:
    markup = page(signed_in, "/market/NSE/RELIANCE")
    market = desk_of(market_app).market
    depth = market.source.depth(market.instrument("RELIANCE", "NSE"))
    assert cells(markup, "bid-price") == [format_number(level.price) for level in depth.buy]
    assert cells(markup, "ask-price") == [format_number(level.price) for level in depth.sell]
    assert len(depth.buy) == len(depth.sell) == 5
    assert cells(markup, "total-buy") == [format_quantity(depth.total_buy_quantity)]
    assert cells(markup, "total-sell") == [format_quantity(depth.total_sell_quantity)]
    assert "Reliance Industries Ltd" in markup
    assert 'href="/market/chain?underlying=RELIANCE&amp;exchange=NSE"' in markup


def test_instrument_page_shows_the_last_ten_sessions(
    market_app: Flask, signed_in: FlaskClient
) -> None:
    markup = page(signed_in, "/market/NSE_INDEX/NIFTY")
    days = [date.fromisoformat(found) for found in re.findall(r'<time datetime="([^"]+)"', markup)]
    assert len(rows(markup, "candle")) == len(days) == 10
    calendar = desk_of(market_app).market.calendar
    assert all(calendar.is_trading_day("NSE", day) for day in days)
    assert days == sorted(days, reverse=True)
    assert days[0] == NOW.date()
    assert "no order book" in markup  # an index is not traded


def test_option_page_shows_contract_and_links_to_its_chain(signed_in: FlaskClient) -> None:
    markup = page(signed_in, "/market/NFO/NIFTY01DEC2625650CE")
    assert "Open interest" in markup
    assert "25,650.00" in markup
    assert 'href="/market/NSE_INDEX/NIFTY"' in markup
    assert "underlying=NIFTY&amp;exchange=NSE_INDEX&amp;expiry=01DEC26" in markup


def test_symbols_with_an_ampersand_work(signed_in: FlaskClient) -> None:
    markup = page(signed_in, "/market?q=mahindra")
    link = re.search(r'href="(/market/NSE/M[^"]*M)"', markup)
    assert link is not None
    for url in (html.unescape(link.group(1)), "/market/NSE/M%26M", "/market/NSE/M&M"):
        assert "Mahindra &amp; Mahindra" in page(signed_in, url)


def test_unknown_symbol_and_exchange_are_error_pages(signed_in: FlaskClient) -> None:
    assert "Symbol NOSUCH not found in exchange NSE" in page(signed_in, "/market/NSE/NOSUCH", 404)
    assert "NASDAQ" in page(signed_in, "/market/NASDAQ/AAPL", 400)


# --- option chain ----------------------------------------------------------------------------


def test_chain_shows_strikes_around_a_highlighted_atm(
    market_app: Flask, signed_in: FlaskClient
) -> None:
    market = desk_of(market_app).market
    expiry = expiry_code(market.master.expiries("NIFTY", "NFO", "options")[1])
    markup = page(signed_in, f"/market/chain?underlying=NIFTY&exchange=NSE_INDEX&expiry={expiry}")
    chain = OptionsAnalytics(market).chain(
        "NIFTY", "NSE_INDEX", expiry, 10, True, market.settings.interest_rate
    )
    strikes = [Decimal(found) for found in re.findall(r'data-strike="([^"]+)"', markup)]
    assert strikes == [row.strike for row in chain.rows]
    assert len(strikes) == 21
    atm = re.findall(r'<tr class="chain-row atm" data-strike="([^"]+)"', markup)
    assert [Decimal(found) for found in atm] == [chain.atm_strike] == [strikes[10]]
    assert f'<strong class="atm-strike">{format_number(chain.atm_strike)}</strong>' in markup
    assert (
        f'<strong class="underlying-ltp">{format_number(chain.underlying.ltp)}</strong>' in markup
    )
    # Calls below ATM and puts above it are in the money: shaded on both sides of each row.
    by_strike = dict(zip(strikes, rows(markup, "chain-row"), strict=True))
    assert "itm" in by_strike[strikes[0]] and "itm" in by_strike[strikes[-1]]
    assert " itm" not in by_strike[chain.atm_strike]
    assert "IV %" in markup and "Delta" in markup
    assert f'<option value="{expiry}" selected>' in markup


def test_chain_expiry_picker_lists_every_expiry_nearest_first(
    market_app: Flask, signed_in: FlaskClient
) -> None:
    markup = page(signed_in, "/market/chain?underlying=NIFTY&exchange=NSE_INDEX")
    listed = desk_of(market_app).market.master.expiries("NIFTY", "NFO", "options")
    select = re.search(r'<select name="expiry">(.*?)</select>', markup, re.DOTALL)
    assert select is not None
    values = re.findall(r'<option value="([^"]+)"', select.group(1))
    assert values == [expiry_code(day) for day in listed]
    assert f'<option value="{values[0]}" selected>' in select.group(1)


def test_chain_options_and_other_underlyings(signed_in: FlaskClient) -> None:
    markup = page(
        signed_in, "/market/chain?underlying=SENSEX&exchange=BSE_INDEX&strikes=3&greeks=0"
    )
    assert len(rows(markup, "chain-row")) == 7
    assert "BFO" in markup
    assert "IV %" not in markup and "Delta" not in markup
    assert len(rows(page(signed_in, "/market/chain?strikes=500"), "chain-row")) <= 101
    assert "RELIANCE option chain" in page(
        signed_in, "/market/chain?underlying=reliance&exchange=NSE"
    )


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("expiry=XYZ", 400, "XYZ"),
        ("expiry=31FEB26", 400, "31FEB26"),
        ("expiry=25DEC26", 404, "25DEC26"),
        ("underlying=NOSUCH", 404, "NOSUCH"),
        ("exchange=NASDAQ", 400, "NASDAQ"),
        ("strikes=ten", 400, "ten"),
    ],
)
def test_bad_chain_parameters_are_explained(
    signed_in: FlaskClient, query: str, status: int, message: str
) -> None:
    assert message in page(signed_in, f"/market/chain?{query}", status)
