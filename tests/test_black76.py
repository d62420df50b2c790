"""Black-76 prices, greeks, implied volatility and the volatility smile."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from services.clock import IST
from services.market.black76 import (
    MAXIMUM_VOLATILITY,
    MINIMUM_VOLATILITY,
    MINIMUM_YEARS,
    OptionKind,
    forward_from_parity,
    greeks,
    implied_volatility,
    normal_cdf,
    normal_cdf_many,
    price,
    price_many,
    years_to_expiry,
)
from services.market.smile import (
    MAXIMUM_VOLATILITY as SMILE_CAP,
)
from services.market.smile import (
    MINIMUM_VOLATILITY as SMILE_FLOOR,
)
from services.market.smile import (
    ONE_MONTH,
    SmileParameters,
    default_smile,
    smile_volatility,
    smile_volatility_many,
)

CALL, PUT = OptionKind.CALL, OptionKind.PUT
DAY = 1.0 / 365.0


def erf_cdf(value: float) -> float:
    return 0.5 * (1.0 + math.erf(value / math.sqrt(2.0)))


def d1_of(forward: float, strike: float, years: float, volatility: float) -> float:
    deviation = volatility * math.sqrt(years)
    return math.log(forward / strike) / deviation + 0.5 * deviation


# --- prices -------------------------------------------------------------------------------


def test_textbook_at_the_money_call() -> None:
    # F = K, r = 0: C = F (2 N(sigma sqrt(T) / 2) - 1) = 100 (2 N(0.1) - 1).
    assert price(CALL, 100.0, 100.0, 1.0, 0.0, 0.2) == pytest.approx(7.9655674554058, abs=1e-9)
    assert price(PUT, 100.0, 100.0, 1.0, 0.0, 0.2) == pytest.approx(7.9655674554058, abs=1e-9)


def test_textbook_futures_put() -> None:
    # Hull's futures-option example: F = K = 20, r = 9%, T = 4 months, sigma = 25% -> about 1.12.
    assert price(PUT, 20.0, 20.0, 4.0 / 12.0, 0.09, 0.25) == pytest.approx(1.1166, abs=1e-3)


@pytest.mark.parametrize("rate", [0.0, 0.065, -0.01])
@pytest.mark.parametrize("volatility", [0.05, 0.2, 0.8])
@pytest.mark.parametrize("years", [DAY, 7 * DAY, 0.25, 2.0])
def test_put_call_parity(rate: float, volatility: float, years: float) -> None:
    forward = 25_000.0
    for strike in np.linspace(0.7 * forward, 1.3 * forward, 13):
        call = price(CALL, forward, float(strike), years, rate, volatility)
        put = price(PUT, forward, float(strike), years, rate, volatility)
        expected = math.exp(-rate * years) * (forward - strike)
        assert call - put == pytest.approx(expected, abs=1e-8 * forward)
        assert call >= 0.0 and put >= 0.0


def test_forward_from_parity_recovers_the_forward() -> None:
    forward, strike, years, rate = 24_987.5, 25_000.0, 9 * DAY, 0.065
    call = price(CALL, forward, strike, years, rate, 0.14)
    put = price(PUT, forward, strike, years, rate, 0.14)
    assert forward_from_parity(call, put, strike, years, rate) == pytest.approx(forward, abs=1e-8)


def test_expired_option_is_discounted_intrinsic() -> None:
    assert price(CALL, 110.0, 100.0, 0.0, 0.05, 0.2) == pytest.approx(10.0)
    assert price(PUT, 110.0, 100.0, 0.0, 0.05, 0.2) == 0.0
    assert price(PUT, 90.0, 100.0, 0.5, 0.05, 0.0) == pytest.approx(10.0 * math.exp(-0.025))
    # Time value vanishes continuously as expiry approaches.
    assert price(CALL, 110.0, 100.0, 1e-12, 0.05, 0.2) == pytest.approx(10.0, abs=1e-9)
    assert price(CALL, 100.0, 100.0, 1e-12, 0.0, 0.2) == pytest.approx(0.0, abs=1e-4)


def test_non_positive_forward_or_strike_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        price(CALL, 0.0, 100.0, 1.0, 0.0, 0.2)
    with pytest.raises(ValueError, match="positive"):
        greeks(PUT, 100.0, -5.0, 1.0, 0.0, 0.2)


# --- vectorised prices --------------------------------------------------------------------


def test_normal_cdf_many_matches_math_erf() -> None:
    grid = np.linspace(-40.0, 40.0, 80_001)
    expected = np.array([erf_cdf(value) for value in grid])
    assert np.max(np.abs(normal_cdf_many(grid) - expected)) < 1e-9


def test_normal_cdf_many_keeps_relative_precision_in_the_tail() -> None:
    grid = np.linspace(-16.0, 0.0, 16_001)
    expected = np.array([normal_cdf(value) for value in grid])
    assert np.max(np.abs(normal_cdf_many(grid) / expected - 1.0)) < 1e-9
    assert normal_cdf(-3.0) == pytest.approx(erf_cdf(-3.0), abs=1e-15)


def test_price_many_equals_price_elementwise() -> None:
    generator = np.random.default_rng(7)
    count = 20_000  # more than one internal block
    is_call = generator.random(count) < 0.5
    forward = generator.uniform(50.0, 60_000.0, count)
    strike = forward * generator.uniform(0.6, 1.4, count)
    years = generator.uniform(0.0, 1.0, count)
    volatility = generator.uniform(0.02, 1.5, count)
    years[:50] = 0.0  # expired
    volatility[50:100] = 0.0  # no volatility left
    result = price_many(is_call, forward, strike, years, 0.065, volatility)
    expected = np.array(
        [
            price(CALL if call else PUT, f, k, t, 0.065, v)
            for call, f, k, t, v in zip(is_call, forward, strike, years, volatility, strict=True)
        ]
    )
    assert result.shape == (count,)
    np.testing.assert_allclose(result, expected, rtol=1e-8, atol=1e-9 * float(np.max(forward)))


def test_price_many_broadcasts_and_keeps_shape() -> None:
    strikes = np.array([[24_000.0, 25_000.0, 26_000.0], [24_500.0, 25_500.0, 26_500.0]])
    is_call = np.array([True, False, True])
    result = price_many(
        is_call, np.array(25_000.0), strikes, np.array(7 * DAY), 0.0, np.array([0.12, 0.13, 0.14])
    )
    assert result.shape == (2, 3)
    expected = price(PUT, 25_000.0, 25_500.0, 7 * DAY, 0.0, 0.13)
    assert result[1, 1] == pytest.approx(expected, abs=1e-9 * 25_000.0)


# --- greeks -------------------------------------------------------------------------------

GREEK_CASES = [
    (CALL, 100.0, 100.0, 0.5, 0.05, 0.2),
    (PUT, 100.0, 100.0, 0.5, 0.05, 0.2),
    (CALL, 25_000.0, 26_000.0, 7 * DAY, 0.065, 0.15),
    (PUT, 25_000.0, 23_500.0, 7 * DAY, 0.065, 0.22),
    (CALL, 25_000.0, 22_000.0, 30 * DAY, 0.065, 0.18),  # deep ITM
    (PUT, 83.2, 84.0, 60 * DAY, 0.06, 0.05),  # USDINR-like
    (CALL, 6_800.0, 6_500.0, 2.0, -0.01, 0.45),  # negative rate, long dated
]


def central(function: Callable[[float], float], at: float, step: float) -> float:
    return (function(at + step) - function(at - step)) / (2.0 * step)


def price_step(underlying: float, years: float, volatility: float) -> float:
    """A bump of 0.1% of one standard deviation: small truncation error, no cancellation."""
    return underlying * volatility * math.sqrt(years) * 1e-3


@pytest.mark.parametrize(("kind", "forward", "strike", "years", "rate", "volatility"), GREEK_CASES)
def test_forward_greeks_match_finite_differences(
    kind: OptionKind, forward: float, strike: float, years: float, rate: float, volatility: float
) -> None:
    result = greeks(kind, forward, strike, years, rate, volatility)
    step = price_step(forward, years, volatility)

    def premium(f: float = forward, t: float = years, v: float = volatility) -> float:
        return price(kind, f, strike, t, rate, v)

    by_forward = central(lambda f: premium(f=f), forward, step)
    by_delta = central(
        lambda f: greeks(kind, f, strike, years, rate, volatility).delta, forward, step
    )
    by_years = central(lambda t: premium(t=t), years, years * 1e-4)
    by_volatility = central(lambda v: premium(v=v), volatility, 1e-5)
    by_rate = central(lambda r: price(kind, forward, strike, years, r, volatility), rate, 1e-5)
    assert result.delta == pytest.approx(by_forward, rel=1e-6, abs=1e-9)
    assert result.gamma == pytest.approx(by_delta, rel=1e-6, abs=1e-12)
    assert result.theta == pytest.approx(-by_years / 365.0, rel=1e-6, abs=1e-9)
    assert result.vega == pytest.approx(by_volatility * 0.01, rel=1e-6, abs=1e-9)
    assert result.rho == pytest.approx(by_rate * 0.01, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(("kind", "forward", "strike", "years", "rate", "volatility"), GREEK_CASES)
@pytest.mark.parametrize("dividend_yield", [0.0, 0.015])
def test_spot_greeks_match_finite_differences(
    kind: OptionKind,
    forward: float,
    strike: float,
    years: float,
    rate: float,
    volatility: float,
    dividend_yield: float,
) -> None:
    spot = forward * math.exp(-(rate - dividend_yield) * years)

    def premium(s: float = spot, t: float = years, r: float = rate) -> float:
        # The spot model: the forward rolls with spot, time and rate; the dividend yield stays.
        return price(kind, s * math.exp((r - dividend_yield) * t), strike, t, r, volatility)

    result = greeks(kind, forward, strike, years, rate, volatility, spot=spot)
    step = price_step(spot, years, volatility)
    by_spot = central(lambda s: premium(s=s), spot, step)
    by_spot_twice = (premium(s=spot + step) - 2 * premium() + premium(s=spot - step)) / step**2
    by_years = central(lambda t: premium(t=t), years, years * 1e-4)
    by_rate = central(lambda r: premium(r=r), rate, 1e-5)
    assert result.delta == pytest.approx(by_spot, rel=1e-6, abs=1e-9)
    assert result.gamma == pytest.approx(by_spot_twice, rel=1e-4, abs=1e-9)
    assert result.theta == pytest.approx(-by_years / 365.0, rel=1e-6, abs=1e-9)
    assert result.rho == pytest.approx(by_rate * 0.01, rel=1e-6, abs=1e-9)
    assert result.vega == pytest.approx(greeks(kind, forward, strike, years, rate, volatility).vega)


def test_spot_delta_is_n_d1_and_forward_delta_is_discounted() -> None:
    forward, strike, years, rate, volatility = 25_100.0, 25_000.0, 14 * DAY, 0.065, 0.13
    spot = forward * math.exp(-rate * years)
    cdf = normal_cdf(d1_of(forward, strike, years, volatility))
    discount = math.exp(-rate * years)
    call_spot = greeks(CALL, forward, strike, years, rate, volatility, spot=spot)
    put_spot = greeks(PUT, forward, strike, years, rate, volatility, spot=spot)
    assert call_spot.delta == pytest.approx(cdf, rel=1e-12)
    assert put_spot.delta == pytest.approx(cdf - 1.0, rel=1e-12)
    assert greeks(CALL, forward, strike, years, rate, volatility).delta == pytest.approx(
        discount * cdf, rel=1e-12
    )
    assert call_spot.gamma == pytest.approx(put_spot.gamma)
    assert call_spot.theta < 0.0 and call_spot.vega > 0.0 and call_spot.rho > 0.0


def test_greeks_stay_finite_at_and_near_expiry() -> None:
    for years in (0.0, MINIMUM_YEARS, 1e-9):
        for strike in (24_900.0, 25_000.0, 25_100.0):
            for kind in OptionKind:
                result = greeks(kind, 25_000.0, strike, years, 0.065, 0.13, spot=24_990.0)
                values = (result.delta, result.gamma, result.theta, result.vega, result.rho)
                assert all(math.isfinite(value) for value in values)
                assert -1.01 <= result.delta <= 1.01
    expired = greeks(CALL, 25_100.0, 25_000.0, 0.0, 0.065, 0.13)
    assert (expired.delta, expired.gamma, expired.vega) == (1.0, 0.0, 0.0)


# --- implied volatility -------------------------------------------------------------------


@pytest.mark.parametrize("years", [2 * DAY, 7 * DAY, 30 * DAY, 0.5, 1.5])
@pytest.mark.parametrize("kind", list(OptionKind))
def test_implied_volatility_round_trips_the_smile(kind: OptionKind, years: float) -> None:
    forward, rate = 25_000.0, 0.065
    smile = default_smile(0.13, is_index=True)
    for ratio in (0.8, 0.9, 0.97, 1.0, 1.03, 1.1, 1.2):
        strike = forward * ratio
        volatility = smile_volatility(smile, forward, strike, years)
        premium = price(kind, forward, strike, years, rate, volatility)
        solved = implied_volatility(kind, premium, forward, strike, years, rate)
        assert solved == pytest.approx(volatility, abs=1e-6), (ratio, volatility)


@pytest.mark.parametrize(
    ("kind", "strike", "volatility"),
    [
        (CALL, 50.0, 0.3),
        (PUT, 200.0, 0.3),
        (CALL, 200.0, 0.3),
        (PUT, 50.0, 0.3),
        (CALL, 100.0, 4.0),
    ],
)
def test_implied_volatility_deep_in_and_out_of_the_money(
    kind: OptionKind, strike: float, volatility: float
) -> None:
    premium = price(kind, 100.0, strike, 1.0, 0.05, volatility)
    solved = implied_volatility(kind, premium, 100.0, strike, 1.0, 0.05)
    assert solved == pytest.approx(volatility, abs=1e-6)


def test_implied_volatility_outside_no_arbitrage_bounds_is_none() -> None:
    forward, strike, years, rate = 100.0, 90.0, 0.25, 0.05
    discount = math.exp(-rate * years)
    intrinsic = discount * (forward - strike)
    assert implied_volatility(CALL, intrinsic - 0.01, forward, strike, years, rate) is None
    assert implied_volatility(CALL, discount * forward + 0.01, forward, strike, years, rate) is None
    assert implied_volatility(PUT, discount * strike, forward, strike, years, rate) is None
    assert implied_volatility(PUT, -0.5, forward, strike, years, rate) is None
    assert implied_volatility(CALL, 12.0, forward, strike, 0.0, rate) is None
    assert implied_volatility(CALL, math.nan, forward, strike, years, rate) is None


def test_implied_volatility_clamps_inside_the_bounds() -> None:
    forward, strike, years, rate = 100.0, 50.0, 0.1, 0.05
    intrinsic = math.exp(-rate * years) * (forward - strike)
    # A deep ITM premium at intrinsic carries no time value: the search range's floor.
    assert implied_volatility(CALL, intrinsic, forward, strike, years, rate) == MINIMUM_VOLATILITY
    near_upper = math.exp(-rate * years) * strike * 0.999
    assert implied_volatility(PUT, near_upper, forward, strike, years, rate) == MAXIMUM_VOLATILITY


# --- time to expiry -----------------------------------------------------------------------


def test_years_to_expiry_at_the_nfo_cutoff() -> None:
    now = datetime(2026, 11, 22, 9, 15, tzinfo=IST)
    expiry = datetime(2026, 11, 24, 15, 30, tzinfo=IST)
    expected = (2 * 86_400 + 6 * 3600 + 15 * 60) / (365 * 86_400)
    assert years_to_expiry(now, expiry) == pytest.approx(expected, rel=1e-12)
    # The same instant written in UTC counts the same.
    assert years_to_expiry(now.astimezone(UTC), expiry) == pytest.approx(expected, rel=1e-12)


def test_years_to_expiry_is_floored_and_needs_aware_times() -> None:
    expiry = datetime(2026, 11, 24, 15, 30, tzinfo=IST)
    assert years_to_expiry(expiry + timedelta(hours=1), expiry) == MINIMUM_YEARS
    assert years_to_expiry(expiry - timedelta(seconds=10), expiry) == MINIMUM_YEARS
    with pytest.raises(ValueError, match="aware"):
        years_to_expiry(datetime(2026, 11, 22, 9, 15), expiry)  # noqa: DTZ001


# --- the smile ----------------------------------------------------------------------------


def test_smile_at_the_money_is_the_atm_volatility() -> None:
    for is_index in (True, False):
        smile = default_smile(0.13, is_index)
        for years in (DAY, 7 * DAY, ONE_MONTH, 1.0):
            assert smile_volatility(smile, 25_000.0, 25_000.0, years) == pytest.approx(0.13)


def test_term_slope_moves_the_atm_volatility() -> None:
    smile = SmileParameters(atm_volatility=0.13, skew=-3.0, curvature=15.0, term_slope=0.02)
    assert smile_volatility(smile, 100.0, 100.0, 1.0) == pytest.approx(
        0.13 + 0.02 * (1 - ONE_MONTH)
    )


def test_index_skew_prices_otm_puts_richer_than_otm_calls() -> None:
    smile = default_smile(0.13, is_index=True)
    for years in (7 * DAY, ONE_MONTH, 0.25):
        put_wing = smile_volatility(smile, 25_000.0, 22_500.0, years)
        call_wing = smile_volatility(smile, 25_000.0, 27_500.0, years)
        assert put_wing > call_wing
        assert put_wing > 0.13
    stock = default_smile(0.30, is_index=False)
    stock_tilt = smile_volatility(stock, 100.0, 90.0, ONE_MONTH) - smile_volatility(
        stock, 100.0, 110.0, ONE_MONTH
    )
    index_tilt = smile_volatility(smile, 100.0, 90.0, ONE_MONTH) - smile_volatility(
        smile, 100.0, 110.0, ONE_MONTH
    )
    assert 0.0 < stock_tilt / 0.30 < index_tilt / 0.13


def test_shorter_expiries_have_steeper_smiles() -> None:
    smile = default_smile(0.13, is_index=True)
    weekly = smile_volatility(smile, 25_000.0, 24_000.0, 7 * DAY)
    monthly = smile_volatility(smile, 25_000.0, 24_000.0, ONE_MONTH)
    assert weekly > monthly > 0.13


def test_smile_stays_within_floor_and_cap() -> None:
    smile = default_smile(0.13, is_index=True)
    strikes = np.array([1e-3, 1.0, 5_000.0, 20_000.0, 25_000.0, 40_000.0, 1e6, 1e9])
    for years in (MINIMUM_YEARS, DAY, 1.0, 5.0):
        many = smile_volatility_many(smile, 25_000.0, strikes, years)
        assert np.all((many >= SMILE_FLOOR) & (many <= SMILE_CAP))
        single = [smile_volatility(smile, 25_000.0, float(strike), years) for strike in strikes]
        np.testing.assert_allclose(many, single, rtol=1e-14)
    assert smile_volatility(smile, 25_000.0, 1e-3, DAY) == SMILE_CAP
    falling = SmileParameters(atm_volatility=0.13, skew=0.0, curvature=0.0, term_slope=-0.1)
    assert smile_volatility(falling, 100.0, 100.0, 5.0) == SMILE_FLOOR
