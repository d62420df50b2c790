"""The market-data half of the API, driven end to end by the real `openalgo` SDK."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from openalgo import api as OpenAlgo

from services.clock import IST
from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk, served_desk

pytestmark = pytest.mark.slow


desk = served_desk("market-desk")


@pytest.fixture(scope="module")
def client(desk: RunningDesk) -> OpenAlgo:
    return OpenAlgo(api_key=desk.admin_key(STRONG_PASSWORD), host=desk.url, timeout=60)


def today_ist() -> date:
    return datetime.now(IST).date()


def _nearest(strikes: list[float], price: float) -> float:
    return min(strikes, key=lambda strike: (abs(strike - price), strike))


def test_quotes_of_an_index_and_a_stock(client: OpenAlgo) -> None:
    for symbol, exchange in (("NIFTY", "NSE_INDEX"), ("RELIANCE", "NSE")):
        result = client.quotes(symbol=symbol, exchange=exchange)
        assert result["status"] == "success", result
        data = result["data"]
        assert data["low"] <= data["ltp"] <= data["high"]
        assert data["prev_close"] > 0
    stock = client.quotes(symbol="RELIANCE", exchange="NSE")["data"]
    assert stock["bid"] < stock["ask"]


def test_unknown_symbol_is_a_clear_error(client: OpenAlgo) -> None:
    result = client.quotes(symbol="NOSUCHCO", exchange="NSE")
    assert result["status"] == "error"
    assert "NOSUCHCO" in result["message"]


def test_multiquotes_reports_bad_entries_without_failing(client: OpenAlgo) -> None:
    result = client.multiquotes(
        symbols=[{"symbol": "INFY", "exchange": "NSE"}, {"symbol": "NOSUCHCO", "exchange": "NSE"}]
    )
    assert result["status"] == "success"
    good, bad = result["results"]
    assert good["symbol"] == "INFY" and good["data"]["ltp"] > 0
    assert bad["symbol"] == "NOSUCHCO" and "not found" in bad["error"]


def test_depth_has_five_sorted_levels(client: OpenAlgo) -> None:
    data = client.depth(symbol="SBIN", exchange="NSE")["data"]
    bids = [level["price"] for level in data["bids"]]
    asks = [level["price"] for level in data["asks"]]
    assert len(bids) == len(asks) == 5
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    assert data["totalbuyqty"] == sum(level["quantity"] for level in data["bids"])


def test_daily_history_is_a_dataframe_of_past_days(client: OpenAlgo) -> None:
    end = today_ist()
    start = end - timedelta(days=60)
    frame = client.history(symbol="NIFTY", exchange="NSE_INDEX", interval="D",
                           start_date=start.isoformat(), end_date=end.isoformat())  # fmt: skip
    assert isinstance(frame, pd.DataFrame), frame
    assert len(frame) >= 30
    assert frame.index.is_monotonic_increasing
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    # Daily bars are stamped 00:00 of their date (the SDK leaves them naive).
    assert all(stamp.hour == 0 and stamp.minute == 0 for stamp in frame.index)


def test_intraday_history_agrees_with_the_daily_bar(client: OpenAlgo) -> None:
    day = (today_ist() - timedelta(days=3)).isoformat()
    minutes = client.history(symbol="TCS", exchange="NSE", interval="1m",
                             start_date=day, end_date=day)  # fmt: skip
    daily = client.history(symbol="TCS", exchange="NSE", interval="D",
                           start_date=day, end_date=day)  # fmt: skip
    assert isinstance(minutes, pd.DataFrame) and isinstance(daily, pd.DataFrame)
    assert str(minutes.index.tz) == "Asia/Kolkata"
    bar = daily.iloc[0]
    assert minutes["high"].max() == pytest.approx(bar["high"])
    assert minutes["low"].min() == pytest.approx(bar["low"])
    assert minutes["close"].iloc[-1] == pytest.approx(bar["close"])
    five = client.history(symbol="TCS", exchange="NSE", interval="5m",
                          start_date=day, end_date=day)  # fmt: skip
    assert len(five) * 5 == pytest.approx(len(minutes), abs=5)


def test_intervals(client: OpenAlgo) -> None:
    data = client.intervals()["data"]
    assert data["minutes"] == ["1m", "3m", "5m", "10m", "15m", "30m"]
    assert data["hours"] == ["1h"] and data["days"] == ["D"]


def test_symbol_of_a_nifty_future_has_the_exchange_lot(client: OpenAlgo) -> None:
    futures = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="futures")["data"]
    first = futures[0].replace("-", "")
    result = client.symbol(symbol=f"NIFTY{first[:5]}{first[5:]}FUT", exchange="NFO")
    assert result["status"] == "success", result
    assert result["data"]["lotsize"] == 65
    assert result["data"]["instrumenttype"] == "FUT"


def test_expiry_list_starts_with_the_shifted_november_monthly(client: OpenAlgo) -> None:
    result = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options")
    assert result["status"] == "success"
    days = pd.to_datetime(result["data"], format="%d-%b-%y")
    assert list(days) == sorted(days)
    # Tue 2026-11-24 is Guru Nanak Jayanti: that monthly expires on Monday 2026-11-23.
    if today_ist() <= date(2026, 11, 23):
        assert "23-NOV-26" in result["data"]
        assert "24-NOV-26" not in result["data"]


def test_search_multi_term(client: OpenAlgo) -> None:
    result = client.search(query="NIFTY 26000 DEC CE", exchange="NFO")
    assert result["status"] == "success"
    assert result["data"], result["message"]
    for row in result["data"]:
        assert row["symbol"].startswith("NIFTY") and row["symbol"].endswith("26000CE")
        assert "DEC" in row["expiry"]


def test_instruments_download(client: OpenAlgo) -> None:
    frame = client.instruments(exchange="NSE_INDEX")
    assert isinstance(frame, pd.DataFrame)
    assert {"NIFTY", "BANKNIFTY", "INDIAVIX"} <= set(frame["symbol"])


def test_option_chain_is_sorted_and_labelled(client: OpenAlgo) -> None:
    expiry = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options")["data"][1]
    result = client.optionchain(underlying="NIFTY", exchange="NSE_INDEX",
                                expiry_date=expiry.replace("-", ""), strike_count=5)  # fmt: skip
    assert result["status"] == "success", result
    chain = result["chain"]
    strikes = [row["strike"] for row in chain]
    assert strikes == sorted(strikes) and len(strikes) == 11
    atm_index = strikes.index(result["atm_strike"])
    assert atm_index == 5
    for index, row in enumerate(chain):
        steps = index - atm_index
        ce, pe = row["ce"]["label"], row["pe"]["label"]
        if steps == 0:
            assert ce == pe == "ATM"
        elif steps < 0:
            assert (ce, pe) == (f"ITM{-steps}", f"OTM{-steps}")
        else:
            assert (ce, pe) == (f"OTM{steps}", f"ITM{steps}")
    # Calls get cheaper as the strike rises; puts dearer.
    calls = [row["ce"]["ltp"] for row in chain]
    puts = [row["pe"]["ltp"] for row in chain]
    assert calls == sorted(calls, reverse=True)
    assert puts == sorted(puts)


def test_option_symbol_resolves_atm_to_the_nearest_listed_strike(client: OpenAlgo) -> None:
    expiry = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options")["data"][1]
    chain = client.optionchain(underlying="NIFTY", exchange="NSE_INDEX",
                               expiry_date=expiry.replace("-", ""))  # fmt: skip
    strikes = [row["strike"] for row in chain["chain"]]
    result = client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX",
                                 expiry_date=expiry.replace("-", ""), offset="ATM",
                                 option_type="CE")  # fmt: skip
    assert result["status"] == "success", result
    atm = _nearest(strikes, result["underlying_ltp"])
    assert result["symbol"] == f"NIFTY{expiry.replace('-', '')}{int(atm)}CE"
    assert result["lotsize"] == 65
    otm = client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX",
                              expiry_date=expiry.replace("-", ""), offset="OTM2",
                              option_type="PE")  # fmt: skip
    otm_strike = float(otm["symbol"].removeprefix(f"NIFTY{expiry.replace('-', '')}")[:-2])
    atm_now = _nearest(strikes, otm["underlying_ltp"])
    assert otm_strike == strikes[strikes.index(atm_now) - 2]


def test_option_greeks_are_sane(client: OpenAlgo) -> None:
    expiry = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options")["data"][1]
    symbol = client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX",
                                 expiry_date=expiry.replace("-", ""), offset="ATM",
                                 option_type="CE")["symbol"]  # fmt: skip
    result = client.optiongreeks(symbol=symbol, exchange="NFO", interest_rate=6.5)
    assert result["status"] == "success", result
    assert 3 < result["implied_volatility"] < 80
    greeks = result["greeks"]
    assert 0.3 < greeks["delta"] < 0.7
    assert greeks["gamma"] > 0 and greeks["vega"] > 0 and greeks["theta"] < 0


def test_synthetic_future_is_near_the_carry_forward(client: OpenAlgo) -> None:
    expiry = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options")["data"][1]
    result = client.syntheticfuture(underlying="NIFTY", exchange="NSE_INDEX",
                                    expiry_date=expiry.replace("-", ""))  # fmt: skip
    assert result["status"] == "success", result
    assert result["synthetic_future_price"] == pytest.approx(result["underlying_ltp"], rel=0.03)


def test_holidays_and_timings(client: OpenAlgo) -> None:
    holidays = client.holidays(year=2026)
    assert holidays["status"] == "success"
    days = {row["date"]: row for row in holidays["data"]}
    assert days["2026-11-24"]["holiday_type"] == "TRADING_HOLIDAY"
    assert "NSE" in days["2026-11-24"]["closed_exchanges"]
    timings = client.timings(date="2026-11-23")
    windows = {row["exchange"]: row for row in timings["data"]}
    nse = windows["NSE"]
    start = pd.Timestamp(nse["start_time"], unit="ms", tz="UTC").tz_convert("Asia/Kolkata")
    end = pd.Timestamp(nse["end_time"], unit="ms", tz="UTC").tz_convert("Asia/Kolkata")
    assert (start.hour, start.minute, end.hour, end.minute) == (9, 15, 15, 30)
    # On an NSE holiday only MCX trades, and only its evening session.
    holiday = client.timings(date="2026-11-24")["data"]
    assert [row["exchange"] for row in holiday] == ["MCX"]
    evening = pd.Timestamp(holiday[0]["start_time"], unit="ms", tz="UTC").tz_convert("Asia/Kolkata")
    assert (evening.hour, evening.minute) == (17, 0)
    assert client.timings(date="2026-11-22")["data"] == []  # a Sunday
