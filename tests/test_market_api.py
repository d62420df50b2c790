"""The market-data endpoints through the Flask client: shapes, validation and errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from config import Settings
from services.clock import IST, FixedClock
from tests.conftest import desk_env, desk_of, make_user

# Monday 2026-11-23, 11:00 IST: a trading day (the November NIFTY monthly expires today).
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=IST)


@pytest.fixture(scope="module")
def market_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    folder = Path(tmp_path_factory.mktemp("market-api"))
    settings = Settings.from_mapping(desk_env(folder, MARKET_MODE="CALENDAR"))
    flask_app = create_app(settings, clock=FixedClock(NOW))
    desk_of(flask_app).market.master  # noqa: B018  (build the master once for the module)
    yield flask_app
    desk_of(flask_app).close()


@pytest.fixture(scope="module")
def key(market_app: Flask) -> str:
    return desk_of(market_app).api_keys.create(make_user(market_app).id)


@pytest.fixture
def client(market_app: Flask) -> FlaskClient:
    return market_app.test_client()


def post(client: FlaskClient, key: str, path: str, **body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.post(f"/api/v1/{path}", json=body, headers={"X-API-KEY": key})
    return response.status_code, response.get_json()


def test_every_market_endpoint_needs_a_key(client: FlaskClient) -> None:
    for path in ("quotes", "depth", "history", "symbol", "search", "optionchain",
                 "market/holidays", "market/timings"):  # fmt: skip
        response = client.post(f"/api/v1/{path}", json={"symbol": "SBIN", "exchange": "NSE"})
        assert response.status_code == 401, path
    assert client.get("/api/v1/instruments").status_code == 401


def test_quote_shape_and_numbers(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "quotes", symbol="SBIN", exchange="NSE")
    assert status == 200
    assert list(body) == ["status", "data"]
    data = body["data"]
    assert set(data) == {"open", "high", "low", "ltp", "ask", "bid", "prev_close", "volume", "oi"}
    for name in ("open", "high", "low", "ltp", "ask", "bid", "prev_close"):
        assert isinstance(data[name], float)
        assert round(data[name] * 20) == pytest.approx(data[name] * 20)  # on the 0.05 tick
    assert isinstance(data["volume"], int)


def test_numeric_strings_are_accepted(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "optionchain", underlying="NIFTY", exchange="NSE_INDEX",
                        expiry_date="29DEC26", strike_count="2")  # fmt: skip
    assert status == 200, body
    assert len(body["chain"]) == 5


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("quotes", {"exchange": "NSE"}, "symbol"),
        ("quotes", {"symbol": "SBIN", "exchange": 5}, "exchange"),
        ("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "7m",
                     "start_date": "2026-11-02", "end_date": "2026-11-20"}, "interval"),
        ("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "D",
                     "start_date": "02-11-2026", "end_date": "2026-11-20"}, "start_date"),
        ("history", {"symbol": "SBIN", "exchange": "NSE", "interval": "D",
                     "start_date": "2026-11-20", "end_date": "2026-11-02"}, "end_date"),
        ("expiry", {"symbol": "NIFTY", "exchange": "NSE", "instrumenttype": "options"},
         "exchange"),
        ("optionchain", {"underlying": "NIFTY", "exchange": "NSE_INDEX",
                         "expiry_date": "29DEC26", "strike_count": 0}, "strike_count"),
        ("optionsymbol", {"underlying": "NIFTY", "exchange": "NSE_INDEX",
                          "expiry_date": "29DEC26", "offset": "ATM", "option_type": "XX"},
         "option_type"),
        ("multiquotes", {"symbols": []}, "symbols"),
        ("market/timings", {"date": "tomorrow"}, "date"),
        ("market/holidays", {"year": 1999}, "year"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(
    client: FlaskClient,
    key: str,
    path: str,
    body: dict,
    field: str,  # type: ignore[type-arg]
) -> None:
    status, answer = post(client, key, path, **body)
    assert status == 400, answer
    assert answer["status"] == "error"
    assert field in answer["errors"], answer
    assert isinstance(answer["message"], str) and field in answer["message"]


def test_unknown_symbol_is_404_with_the_master_message(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "symbol", symbol="NOSUCH", exchange="NSE")
    assert status == 404
    assert body["message"] == "Symbol NOSUCH not found in exchange NSE"


def test_unknown_exchange_is_400(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "quotes", symbol="SBIN", exchange="NASDAQ")
    assert status == 400
    assert "exchange" in body["errors"]


def test_expiry_required_for_options_helpers(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "optionsymbol", underlying="NIFTY", exchange="NSE_INDEX",
                        offset="ATM", option_type="CE")  # fmt: skip
    assert status == 400
    assert body["message"].startswith("Expiry date required")


def test_embedded_expiry_in_the_underlying(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "optionsymbol", underlying="NIFTY29DEC26FUT",
                        exchange="NFO", offset="ITM1", option_type="CE")  # fmt: skip
    assert status == 200, body
    assert body["symbol"].startswith("NIFTY29DEC26") and body["symbol"].endswith("CE")


def test_offset_beyond_the_listed_strikes_is_404(client: FlaskClient, key: str) -> None:
    request = {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "29DEC26"}
    status, chain = post(client, key, "optionchain", **request)
    assert status == 200, chain
    strikes = [row["strike"] for row in chain["chain"]]
    # Steps of 1,000 points: ten of them leave the listed strikes (about 25% around NIFTY).
    status, body = post(client, key, "optionsymbol", offset="OTM10", option_type="CE",
                        strike_int=1000, **request)  # fmt: skip
    assert status == 404, body
    assert "not found in NFO" in body["message"]
    assert chain["atm_strike"] + 10 * 1000 > strikes[-1]
    status, atm = post(client, key, "optionsymbol", offset="ATM", option_type="CE", **request)
    assert status == 200 and atm["symbol"] == f"NIFTY29DEC26{int(chain['atm_strike'])}CE"


def test_history_daily_timestamps_are_midnight_utc_of_the_ist_date(
    client: FlaskClient, key: str
) -> None:
    status, body = post(client, key, "history", symbol="INFY", exchange="NSE", interval="D",
                        start_date="2026-11-16", end_date="2026-11-20")  # fmt: skip
    assert status == 200
    stamps = [row["timestamp"] for row in body["data"]]
    assert [datetime.fromtimestamp(s, IST).strftime("%Y-%m-%d %H:%M") for s in stamps] == [
        f"2026-11-{day} 05:30" for day in (16, 17, 18, 19, 20)
    ]


def test_intraday_history_stops_at_now(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "history", symbol="INFY", exchange="NSE", interval="15m",
                        start_date="2026-11-23", end_date="2026-11-23")  # fmt: skip
    assert status == 200
    stamps = [row["timestamp"] for row in body["data"]]
    first = datetime.fromtimestamp(stamps[0], IST)
    assert (first.hour, first.minute) == (9, 15)
    assert max(stamps) <= NOW.timestamp()  # the forming candle may start at this second
    assert stamps == sorted(set(stamps))


def test_instruments_csv(client: FlaskClient, key: str) -> None:
    response = client.get(f"/api/v1/instruments?apikey={key}&exchange=NSE_INDEX&format=csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "instruments_NSE_INDEX.csv" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("symbol,brsymbol,name,exchange")
    assert any(line.startswith("NIFTY,") for line in lines[1:])


def test_ticker_json_and_text(client: FlaskClient, key: str) -> None:
    url = f"/api/v1/ticker/NSE:SBIN?apikey={key}&interval=D&from=2026-11-16&to=2026-11-20"
    body = client.get(url).get_json()
    assert body["status"] == "success" and len(body["data"]) == 5
    text = client.get(url + "&format=txt").get_data(as_text=True).splitlines()
    assert text[0] == "Ticker,Date,Open,High,Low,Close,Volume"
    assert text[1].startswith("SBIN,2026-11-16,")
    bad = client.get(f"/api/v1/ticker/SBIN?apikey={key}&from=2026-11-16&to=2026-11-20")
    assert bad.status_code == 400


def test_multioptiongreeks_reports_each_symbol(client: FlaskClient, key: str) -> None:
    status, chain = post(client, key, "optionchain", underlying="NIFTY", exchange="NSE_INDEX",
                         expiry_date="29DEC26", strike_count=1)  # fmt: skip
    good = chain["chain"][1]["ce"]["symbol"]
    status, body = post(client, key, "multioptiongreeks", interest_rate=6.5,
                        symbols=[{"symbol": good, "exchange": "NFO"},
                                 {"symbol": "NIFTY29DEC2612345CE", "exchange": "NFO"}])  # fmt: skip
    assert status == 200
    assert body["summary"] == {"total": 2, "success": 1, "failed": 1}
    assert body["data"][0]["greeks"]["delta"] > 0
    assert "not found" in body["data"][1]["message"]


def test_chain_greeks_use_the_parity_forward(client: FlaskClient, key: str) -> None:
    status, body = post(client, key, "optionchain", underlying="NIFTY", exchange="NSE_INDEX",
                        expiry_date="29DEC26", strike_count=3, with_greeks=True,
                        interest_rate=6.5)  # fmt: skip
    assert status == 200, body
    assert body["greeks_included"] is True
    atm = next(row for row in body["chain"] if row["strike"] == body["atm_strike"])
    # ATM call delta near one half, put delta near minus one half; IV in percent.
    assert 0.35 < atm["ce"]["delta"] < 0.65
    assert -0.65 < atm["pe"]["delta"] < -0.35
    assert 5 < atm["ce"]["implied_volatility"] < 60
    assert body["forward_price"] == pytest.approx(body["underlying_ltp"], rel=0.03)
