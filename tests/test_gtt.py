"""GTT orders in process: the API's rules and shapes, and firing on the simulated price."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from blueprints.api.gtt import book_of, check_gtts
from config import Settings
from services.clock import IST, FixedClock
from services.errors import InvalidRequest, NotFound
from services.orders.model import OrderRequest, PriceType, Product, Side
from services.orders.pipeline import Trader
from services.sandbox.gtt import (
    PRODUCT_MESSAGE,
    GttBook,
    GttSpec,
    GttStatus,
    TriggerType,
    pipeline_placer,
)
from tests.conftest import desk_env, desk_of, make_user

# Monday 2026-11-23, 11:00 IST: a trading day, the market open.
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=IST)
SCAN_SECONDS = 1800


@pytest.fixture(scope="module")
def gtt_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    folder = Path(tmp_path_factory.mktemp("gtt"))
    settings = Settings.from_mapping(desk_env(folder, MARKET_MODE="CALENDAR"))
    flask_app = create_app(settings, clock=FixedClock(NOW))
    desk_of(flask_app).market.master  # noqa: B018  (build the master once for the module)
    yield flask_app
    desk_of(flask_app).close()


@pytest.fixture(scope="module")
def users(gtt_app: Flask) -> dict[str, tuple[int, str]]:
    found = {}
    for name in ("alice", "bob"):
        user = make_user(gtt_app, name)
        found[name] = (user.id, desk_of(gtt_app).api_keys.create(user.id))
    return found


@pytest.fixture
def clock(gtt_app: Flask) -> Iterator[FixedClock]:
    fixed = desk_of(gtt_app).clock
    assert isinstance(fixed, FixedClock)
    fixed.set(NOW)
    yield fixed
    fixed.set(NOW)


@pytest.fixture
def client(gtt_app: Flask, clock: FixedClock) -> FlaskClient:
    return gtt_app.test_client()


def post(client: FlaskClient, key: str, path: str, **body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.post(f"/api/v1/{path}", json=body, headers={"X-API-KEY": key})
    return response.status_code, response.get_json()


def ltp(app: Flask, at: datetime, symbol: str = "SBIN") -> Decimal:
    market = desk_of(app).market
    return market.source.quote(market.instrument(symbol, "NSE"), at).ltp


def up(value: Decimal, tick: Decimal = Decimal("0.05")) -> Decimal:
    return (value / tick).to_integral_value(ROUND_CEILING) * tick


def down(value: Decimal, tick: Decimal = Decimal("0.05")) -> Decimal:
    return (value / tick).to_integral_value(ROUND_FLOOR) * tick


def path(app: Flask, start: datetime, symbol: str = "SBIN") -> list[Decimal]:
    return [ltp(app, start + timedelta(seconds=s), symbol) for s in range(SCAN_SECONDS)]


def first_at_or_above(prices: list[Decimal], level: Decimal) -> int:
    return next(i for i, price in enumerate(prices) if price >= level)


def single(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "strategy": "gtt-test",
        "trigger_type": "SINGLE",
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "BUY",
        "product": "CNC",
        "quantity": 1,
        "pricetype": "LIMIT",
    }
    body.update(overrides)
    return body


class Recorder:
    """A place callback that places through the pipeline and remembers each order."""

    def __init__(self, app: Flask) -> None:
        self.placed: list[tuple[int, OrderRequest, str]] = []
        self._place = pipeline_placer(desk_of(app))

    def __call__(self, user_id: int, request: OrderRequest) -> str:
        order_id = self._place(user_id, request)  # raises when the order is refused
        self.placed.append((user_id, request, order_id))
        return order_id


def own_book(app: Flask) -> tuple[GttBook, Recorder]:
    desk = desk_of(app)
    recorder = Recorder(app)
    return GttBook(desk.databases, desk.market, desk.clock, recorder), recorder


def cancel_all(app: Flask) -> None:
    book = book_of(app)
    for gtt in book.active():
        book.cancel(gtt.user_id, gtt.trigger_id)


# -- the API -------------------------------------------------------------------------------


def test_place_list_modify_cancel(
    gtt_app: Flask, client: FlaskClient, users: dict[str, tuple[int, str]]
) -> None:
    cancel_all(gtt_app)
    _, key = users["alice"]
    price = ltp(gtt_app, NOW)
    trigger = up(price * Decimal("1.05"))
    status, body = post(
        client, key, "placegttorder", **single(triggerprice_tg=str(trigger), price=str(trigger))
    )
    assert status == 200, body
    assert body["status"] == "success" and body["mode"] == "analyze"
    trigger_id = body["trigger_id"]
    assert isinstance(trigger_id, str) and trigger_id.isdigit()

    status, book = post(client, key, "gttorderbook")
    assert status == 200, book
    (row,) = book["data"]
    assert set(row) >= {
        "trigger_id", "trigger_type", "status", "symbol", "exchange", "trigger_prices",
        "last_price", "legs", "created_at", "updated_at", "expires_at",
    }  # fmt: skip
    assert row["trigger_id"] == trigger_id and row["trigger_type"] == "single"
    assert row["status"] == "active" and row["trigger_prices"] == [float(trigger)]
    assert row["last_price"] == float(price)
    assert row["legs"] == [
        {"action": "BUY", "quantity": 1, "price": float(trigger), "pricetype": "LIMIT",
         "product": "CNC"}
    ]  # fmt: skip
    assert row["expires_at"].startswith("2027-11-23")

    higher = trigger + Decimal("1")
    status, body = post(
        client,
        key,
        "modifygttorder",
        trigger_id=trigger_id,
        **single(triggerprice_tg=float(higher), price=float(higher), quantity=2),
    )
    assert status == 200, body
    assert body["trigger_id"] == trigger_id
    (row,) = post(client, key, "gttorderbook")[1]["data"]
    assert row["trigger_prices"] == [float(higher)] and row["legs"][0]["quantity"] == 2

    status, body = post(client, key, "cancelgttorder", trigger_id=trigger_id, strategy="x")
    assert status == 200 and body["trigger_id"] == trigger_id
    assert post(client, key, "gttorderbook")[1]["data"] == []
    status, body = post(client, key, "cancelgttorder", trigger_id=trigger_id, strategy="x")
    assert status == 400 and "cancelled" in body["message"]


def test_mis_is_refused_with_the_documented_message(
    client: FlaskClient, users: dict[str, tuple[int, str]], gtt_app: Flask
) -> None:
    _, key = users["alice"]
    trigger = up(ltp(gtt_app, NOW) * Decimal("1.05"))
    status, body = post(
        client,
        key,
        "placegttorder",
        **single(product="MIS", triggerprice_tg=float(trigger), price=1),
    )
    assert status == 400
    assert body["message"] == PRODUCT_MESSAGE


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"triggerprice_sl": "-", "triggerprice_tg": "+"}, "triggerprice_sl", "exactly one"),
        ({}, "triggerprice_sl", "exactly one"),
        ({"triggerprice_sl": "+"}, "triggerprice_sl", "below the last price"),
        ({"triggerprice_tg": "-"}, "triggerprice_tg", "above the last price"),
        ({"trigger_type": "OCO", "triggerprice_sl": "-", "triggerprice_tg": "+",
          "stoploss": "-"}, "target", "Required for OCO"),
        ({"trigger_type": "OCO", "triggerprice_sl": "+", "triggerprice_tg": "-",
          "stoploss": "+", "target": "-"}, "triggerprice_sl", "less than target"),
        ({"triggerprice_tg": "+", "price": 0}, "price", "price > 0"),
        ({"triggerprice_tg": "+", "quantity": 1.5}, "quantity", "Fractional"),
        ({"triggerprice_tg": "+", "trigger_type": "TWO"}, "trigger_type", "SINGLE"),
        ({"triggerprice_tg": "+", "pricetype": "SL"}, "pricetype", "LIMIT"),
    ],
)  # fmt: skip
def test_bad_gtts_are_400_naming_the_field(
    client: FlaskClient,
    users: dict[str, tuple[int, str]],
    gtt_app: Flask,
    overrides: dict[str, object],
    field: str,
    words: str,
) -> None:
    price = ltp(gtt_app, NOW)
    below, above = down(price * Decimal("0.95")), up(price * Decimal("1.05"))
    body = single(price=float(price))
    for name, value in overrides.items():
        body[name] = {"-": float(below), "+": float(above)}.get(value, value)  # type: ignore[call-overload]
    status, answer = post(client, users["alice"][1], "placegttorder", **body)
    assert status == 400, answer
    assert field in answer.get("errors", {}), answer
    assert words in answer["message"], answer


def test_unknown_symbol_is_404(client: FlaskClient, users: dict[str, tuple[int, str]]) -> None:
    status, body = post(client, users["alice"][1], "placegttorder",
                        **single(symbol="NOSUCH", triggerprice_tg=10, price=10))  # fmt: skip
    assert status == 404, body


def test_modify_cannot_change_the_fixed_fields_and_others_cannot_touch_it(
    gtt_app: Flask, client: FlaskClient, users: dict[str, tuple[int, str]]
) -> None:
    _, alice = users["alice"]
    _, bob = users["bob"]
    trigger = down(ltp(gtt_app, NOW) * Decimal("0.9"))
    terms = single(action="SELL", triggerprice_sl=float(trigger), price=float(trigger))
    trigger_id = post(client, alice, "placegttorder", **terms)[1]["trigger_id"]

    status, body = post(client, alice, "modifygttorder", trigger_id=trigger_id,
                        **{**terms, "action": "BUY"})  # fmt: skip
    assert status == 400 and "action" in body["errors"]
    status, body = post(client, alice, "modifygttorder", trigger_id=trigger_id,
                        **{**terms, "trigger_type": "OCO", "triggerprice_tg": 99999,
                           "stoploss": 1, "target": 99999})  # fmt: skip
    assert status == 400 and "trigger_type" in body["errors"]

    assert post(client, bob, "gttorderbook")[1]["data"] == []
    assert post(client, bob, "cancelgttorder", trigger_id=trigger_id)[0] == 404
    assert post(client, bob, "modifygttorder", trigger_id=trigger_id, **terms)[0] == 404
    assert post(client, alice, "cancelgttorder", trigger_id="999")[0] == 404
    assert post(client, alice, "cancelgttorder", trigger_id=trigger_id)[0] == 200


def test_semi_auto_queues_a_new_gtt_and_lets_the_sandbox_cancel(
    gtt_app: Flask, client: FlaskClient
) -> None:
    desk = desk_of(gtt_app)
    user = make_user(gtt_app, "carol")
    key = desk.api_keys.create(user.id)
    trigger = up(ltp(gtt_app, NOW) * Decimal("1.05"))
    gtt = single(triggerprice_tg=float(trigger), price=float(trigger))
    trigger_id = post(client, key, "placegttorder", **gtt)[1]["trigger_id"]
    desk.action_center.set_mode(user.id, "semi_auto", actor="carol")
    # A new GTT waits for approval: nothing is placed until then.
    status, body = post(client, key, "placegttorder", **gtt)
    assert status == 200 and body["mode"] == "semi_auto"
    assert [g.trigger_id for g in desk.gtt.active(user.id)] == [trigger_id]
    pending = desk.action_center.get(user.id, body["pending_order_id"])
    assert pending.kind == "gtt" and pending.status == "pending"
    # Changing or cancelling is blocked only against a live broker (API.md 1.7): paper
    # trading allows it.
    status, body = post(client, key, "cancelgttorder", trigger_id=trigger_id)
    assert status == 200 and body["trigger_id"] == trigger_id


# -- firing on the simulated price ---------------------------------------------------------


def test_a_gtt_fires_when_the_price_crosses_and_not_before(
    gtt_app: Flask, clock: FixedClock, users: dict[str, tuple[int, str]]
) -> None:
    user_id, _ = users["alice"]
    prices = path(gtt_app, NOW)
    start, high = prices[0], max(prices)
    assert high > start + Decimal("0.05"), "the price does not rise in the window"
    # Halfway between the price now and the window's high: crossed some seconds later.
    trigger = up((start + high) / 2)
    crossing = first_at_or_above(prices, trigger)
    assert crossing > 1

    book, recorder = own_book(gtt_app)
    spec = GttSpec(
        TriggerType.SINGLE,
        "SBIN",
        "NSE",
        Side.BUY,
        Product.CNC,
        3,
        PriceType.LIMIT,
        price=trigger,
        trigger_tg=trigger,
        strategy="cross",
    )
    gtt = book.place(user_id, spec)
    for second in range(crossing):
        clock.set(NOW + timedelta(seconds=second))
        assert book.check() == [], f"fired at second {second}, before the crossing"
    assert recorder.placed == []
    assert [g.trigger_id for g in book.active(user_id)] == [gtt.trigger_id]

    clock.set(NOW + timedelta(seconds=crossing))
    (fired,) = book.check()
    assert fired.trigger_id == gtt.trigger_id and fired.status is GttStatus.TRIGGERED
    ((placed_for, request, order_id),) = recorder.placed
    assert placed_for == user_id and fired.order_id == order_id and order_id.isdigit()
    assert request.price_type is PriceType.LIMIT and request.price == trigger
    assert request.quantity == 3 and request.side is Side.BUY and request.product is Product.CNC
    assert book.active(user_id) == []

    clock.advance(timedelta(seconds=1))
    assert book.check() == []
    assert len(recorder.placed) == 1
    report = desk_of(gtt_app).orders.broker(_trader(gtt_app, user_id)).order(order_id)
    assert report.strategy == "cross" and report.quantity == 3


def _trader(app: Flask, user_id: int) -> Trader:
    user = desk_of(app).accounts.get(user_id)
    assert user is not None
    return Trader(user_id, user.broker, user.order_mode)


def test_oco_fires_only_the_leg_whose_trigger_is_reached(
    gtt_app: Flask, clock: FixedClock, users: dict[str, tuple[int, str]]
) -> None:
    user_id, _ = users["bob"]
    prices = path(gtt_app, NOW, "INFY")
    start = prices[0]
    tick = Decimal("0.05")
    # Tight triggers one tick outside the current price: whichever is reached first fires.
    sl, tg = down(start - tick), up(start + tick)
    first = next(i for i, p in enumerate(prices) if p <= sl or p >= tg)
    expected_target = prices[first] >= tg

    book, recorder = own_book(gtt_app)
    spec = GttSpec(TriggerType.OCO, "INFY", "NSE", Side.BUY, Product.CNC, 1, PriceType.LIMIT,
                   trigger_sl=sl, trigger_tg=tg, stoploss=sl - tick, target=tg + tick)  # fmt: skip
    gtt = book.place(user_id, spec)
    assert [leg.trigger for leg in gtt.legs] == [sl, tg]
    for second in range(first):
        clock.set(NOW + timedelta(seconds=second))
        assert book.check() == []
    clock.set(NOW + timedelta(seconds=first))
    (fired,) = book.check()
    assert fired.status is GttStatus.TRIGGERED, fired.message
    ((_, request, _),) = recorder.placed
    assert request.price == (tg + tick if expected_target else sl - tick)
    clock.advance(timedelta(seconds=SCAN_SECONDS))
    assert book.check() == [] and len(recorder.placed) == 1


def test_the_book_survives_a_restart_and_expires(
    gtt_app: Flask, clock: FixedClock, users: dict[str, tuple[int, str]]
) -> None:
    user_id, _ = users["bob"]
    book, recorder = own_book(gtt_app)
    trigger = up(ltp(gtt_app, NOW) * 2)
    spec = GttSpec(TriggerType.SINGLE, "SBIN", "NSE", Side.BUY, Product.CNC, 1, PriceType.MARKET,
                   trigger_tg=trigger, expires_at=NOW + timedelta(hours=1))  # fmt: skip
    gtt = book.place(user_id, spec)
    again, _ = own_book(gtt_app)  # a new process would build a new book from the database
    assert gtt.trigger_id in [g.trigger_id for g in again.active(user_id)]
    second = again.place(user_id, spec)
    assert int(second.trigger_id) > int(gtt.trigger_id)

    clock.set(NOW + timedelta(hours=1))
    ended = {g.trigger_id: g.status for g in again.check()}
    assert ended[gtt.trigger_id] is GttStatus.EXPIRED
    assert ended[second.trigger_id] is GttStatus.EXPIRED
    assert recorder.placed == []
    with pytest.raises(InvalidRequest):
        book.cancel(user_id, gtt.trigger_id)
    with pytest.raises(InvalidRequest, match="future"):
        book.place(user_id, spec)
    with pytest.raises(NotFound):
        book.get(user_id + 1000, gtt.trigger_id)


def test_requests_and_the_heartbeat_hook_run_the_check(
    gtt_app: Flask, client: FlaskClient, clock: FixedClock, users: dict[str, tuple[int, str]]
) -> None:
    cancel_all(gtt_app)
    _, key = users["alice"]
    prices = path(gtt_app, NOW)
    trigger = up(prices[0] + Decimal("0.05"))
    crossing = first_at_or_above(prices, trigger)
    trigger_id = post(
        client, key, "placegttorder", **single(triggerprice_tg=float(trigger), price=float(trigger))
    )[1]["trigger_id"]
    clock.set(NOW + timedelta(seconds=crossing - 1))
    assert check_gtts(gtt_app) == []
    clock.set(NOW + timedelta(seconds=crossing))
    assert post(client, key, "gttorderbook")[1]["data"] == []  # the request fired it
    fired = book_of(gtt_app).get(users["alice"][0], trigger_id)
    assert fired.status is GttStatus.TRIGGERED and fired.order_id
    orders = post(client, key, "orderbook")[1]["data"]["orders"]
    assert [o for o in orders if o["orderid"] == fired.order_id]
