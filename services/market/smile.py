"""A parametric volatility smile, so the simulated option chain has a realistic skew.

The volatility at strike K is a quadratic in time-scaled log-moneyness
x = ln(K/F) * sqrt(ONE_MONTH / T), as a multiple of the ATM volatility:

    sigma(K, T) = atm(T) * (1 + skew * x + curvature * x^2)
    atm(T)      = atm_volatility + term_slope * (T - ONE_MONTH)

At one month x is plain log-moneyness, so `skew` is the relative change in volatility per unit
of ln(K/F) there; shorter expiries see the same strike further out and have steeper smiles,
as weekly index options do. The result is clamped to [MINIMUM_VOLATILITY, MAXIMUM_VOLATILITY].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

ONE_MONTH = 30.0 / 365.0
# The moneyness scaling stops growing inside the last day; otherwise the wings of an option
# minutes from expiry would all sit at the cap.
MINIMUM_SCALING_YEARS = 1.0 / 365.0
MINIMUM_VOLATILITY = 0.03
MAXIMUM_VOLATILITY = 3.0


@dataclass(frozen=True, slots=True)
class SmileParameters:
    atm_volatility: float  # annualised one-month ATM volatility, e.g. 0.13 (India VIX / 100)
    skew: float  # relative slope per unit of log-moneyness (negative: OTM puts richer)
    curvature: float  # relative convexity: how fast both wings rise
    term_slope: float = 0.0  # change in ATM volatility per year of expiry beyond one month


def _atm_volatility(parameters: SmileParameters, years: float) -> float:
    return parameters.atm_volatility + parameters.term_slope * (years - ONE_MONTH)


def _moneyness_scale(years: float) -> float:
    return math.sqrt(ONE_MONTH / max(years, MINIMUM_SCALING_YEARS))


def smile_volatility(
    parameters: SmileParameters, forward: float, strike: float, years: float
) -> float:
    """The smile's volatility for one strike."""
    if not (forward > 0.0 and strike > 0.0):
        raise ValueError("forward and strike must be positive")
    scaled = math.log(strike / forward) * _moneyness_scale(years)
    shape = 1.0 + parameters.skew * scaled + parameters.curvature * scaled * scaled
    volatility = _atm_volatility(parameters, years) * shape
    return min(max(volatility, MINIMUM_VOLATILITY), MAXIMUM_VOLATILITY)


def smile_volatility_many(
    parameters: SmileParameters, forward: float, strikes: NDArray[np.float64], years: float
) -> NDArray[np.float64]:
    """The smile's volatility for a whole strip of strikes on one expiry (vectorised)."""
    if not forward > 0.0:
        raise ValueError("forward must be positive")
    scaled = np.log(strikes / forward) * _moneyness_scale(years)
    shape = 1.0 + parameters.skew * scaled + parameters.curvature * scaled * scaled
    volatility = _atm_volatility(parameters, years) * shape
    result: NDArray[np.float64] = np.clip(volatility, MINIMUM_VOLATILITY, MAXIMUM_VOLATILITY)
    return result


def default_smile(atm_volatility: float, is_index: bool) -> SmileParameters:
    """A plausible smile for an underlying: a steep put skew for equity indices, else a smile.

    Index numbers give a NIFTY-like one-month picture at 13% ATM: about 19% at the 90% strike,
    a trough near 11% around the 105-110% strikes and 12% again by 120%. Single stocks and
    commodities get a nearly symmetric smile with a slight put tilt.
    """
    if is_index:
        return SmileParameters(atm_volatility=atm_volatility, skew=-3.0, curvature=15.0)
    return SmileParameters(atm_volatility=atm_volatility, skew=-1.0, curvature=10.0)
