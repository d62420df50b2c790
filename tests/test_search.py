"""Instrument search: multi-term prefixes, exchange filter, ranking, no hits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.market.calendar import MarketCalendar
from services.market.instrument_store import InstrumentMaster
from services.market.master import build_master
from services.market.model import Exchange, Instrument, InstrumentType
from services.market.search import SearchIndex

TODAY = date(2026, 11, 22)
CATEGORY = {"EQ": 0, "INDEX": 0, "FUT": 1, "CE": 2, "PE": 2}


@pytest.fixture(scope="module")
def master() -> InstrumentMaster:
    return InstrumentMaster(build_master(TODAY, MarketCalendar()), TODAY)


def _symbols(found: list[Instrument]) -> list[tuple[str, str]]:
    return [(item.symbol, item.exchange.value) for item in found]


def test_multi_term_query_narrows_to_every_term(master: InstrumentMaster) -> None:
    found = master.search("NIFTY 26000 DEC CE")
    # NIFTY's December expiries: four weeklies (1, 8, 15, 22) and the monthly (29).
    assert [item.expiry for item in found] == [date(2026, 12, day) for day in (1, 8, 15, 22, 29)]
    for item in found:
        assert item.underlying == "NIFTY" and item.strike == Decimal(26000)
        assert item.instrument_type is InstrumentType.CE


def test_terms_are_case_insensitive_prefixes_in_any_order(master: InstrumentMaster) -> None:
    assert master.search("nifty 26000 dec ce") == master.search("NIFTY 26000 DEC CE")
    assert master.search("ce dec 2600 nif") == master.search("NIFTY 26000 DEC CE")
    found = master.search("REL")
    assert _symbols(found[:2]) == [("RELIANCE", "NSE"), ("RELIANCE", "BSE")]
    assert all(item.symbol.startswith("RELIANCE") for item in found)


def test_expiry_day_year_and_code(master: InstrumentMaster) -> None:
    # Every term is a prefix, so NIFTY also matches NIFTYNXT50 (ranked after it).
    assert _symbols(master.search("NIFTY 29DEC26 FUT")) == [
        ("NIFTY29DEC26FUT", "NFO"),
        ("NIFTYNXT5029DEC26FUT", "NFO"),
    ]
    in_2027 = master.search("NIFTY FUT 2027", exchange="NFO")
    assert in_2027 and all(item.expiry and item.expiry.year == 2027 for item in in_2027)
    assert {item.underlying for item in in_2027} == {"NIFTY", "NIFTYNXT50"}
    sensex = master.search("SENSEX 26 NOV 86500 PE")
    assert _symbols(sensex) == [("SENSEX26NOV2686500PE", "BFO")]


def test_partial_symbols_and_decimal_strikes(master: InstrumentMaster) -> None:
    found = master.search("NIFTY29DEC26", limit=1000)
    assert len(found) > 200
    assert all(item.symbol.startswith("NIFTY29DEC26") for item in found)
    itc = master.search("ITC 402.5")
    assert itc and all(item.strike == Decimal("402.5") for item in itc)
    assert len(itc) == 6  # CE and PE on three monthly expiries


def test_company_name_words(master: InstrumentMaster) -> None:
    assert _symbols(master.search("consultancy")[:2]) == [("TCS", "NSE"), ("TCS", "BSE")]
    assert master.search("state bank", exchange="NSE")[0].symbol == "SBIN"
    mahindra = master.search("M&M")
    assert _symbols(mahindra[:2]) == [("M&M", "NSE"), ("M&M", "BSE")]
    mahindra_futures = master.search("mahindra fut", limit=100)
    assert {item.underlying for item in mahindra_futures} == {"M&M", "KOTAKBANK", "TECHM"}
    assert all(item.instrument_type is InstrumentType.FUT for item in mahindra_futures)


def test_exchange_filter(master: InstrumentMaster) -> None:
    on_bse = master.search("RELIANCE", exchange="BSE")
    assert _symbols(on_bse) == [("RELIANCE", "BSE")]
    indices = master.search("NIFTY", exchange="NSE_INDEX")
    assert indices[0].symbol == "NIFTY"
    assert all(item.exchange is Exchange.NSE_INDEX for item in indices)
    assert master.search("CRUDEOIL", exchange="nfo") == []
    crude = master.search("crude ce", exchange="MCX", limit=500)
    assert len(crude) > 100
    assert all(item.underlying == "CRUDEOIL" and item.is_option for item in crude)


def test_ranking(master: InstrumentMaster) -> None:
    found = master.search("BANKNIFTY", limit=500)
    assert _symbols(found[:1]) == [("BANKNIFTY", "NSE_INDEX")]
    categories = [CATEGORY[item.instrument_type.value] for item in found]
    assert categories == sorted(categories)
    futures = [item for item in found if item.instrument_type is InstrumentType.FUT]
    assert [item.expiry for item in futures] == sorted(
        item.expiry for item in futures if item.expiry
    )
    options = [(item.expiry, item.strike) for item in found if item.is_option]
    assert options == sorted(options)  # nearest expiry first, then strike


def test_exact_symbol_first(master: InstrumentMaster) -> None:
    # "BSE" is BSE Ltd's symbol and a word of "BSE Sensex" and "BSE Bankex" (which sort first).
    assert _symbols(master.search("BSE")[:2]) == [("BSE", "NSE"), ("BSE", "BSE")]
    assert _symbols(master.search("nifty")[:1]) == [("NIFTY", "NSE_INDEX")]
    assert master.search("SBIN", limit=1)[0].symbol == "SBIN"


def test_no_hits_and_limits(master: InstrumentMaster) -> None:
    assert master.search("ZZZNOTHING") == []
    assert master.search("NIFTY 99999") == []
    assert master.search("") == []
    assert master.search("   ") == []
    assert master.search("NIFTY", limit=0) == []
    assert len(master.search("N")) == 50
    assert len(master.search("NIFTY", limit=7)) == 7


def test_broad_queries_answer_from_the_whole_master(master: InstrumentMaster) -> None:
    # One-letter terms match tens of thousands of contracts; the walk still fills the limit.
    found = master.search("C P", limit=20)
    assert len(found) == 20
    # Nothing has parts starting with both 9 and 8: one strike each, days 01-31, years 2x.
    assert master.search("9 8") == []
    cement_puts = master.search("CE PE")  # CE also prefixes "Cements"
    assert cement_puts and all(item.instrument_type is InstrumentType.PE for item in cement_puts)
    twos = master.search("2", limit=200)
    assert len(twos) == 200


def test_a_search_index_over_a_small_list() -> None:
    master = build_master(TODAY, MarketCalendar())
    small = SearchIndex([item for item in master if item.exchange is Exchange.MCX])
    assert {item.underlying for item in small.search("gold")} == {"GOLD", "GOLDM"}
    assert small.search("RELIANCE") == []
