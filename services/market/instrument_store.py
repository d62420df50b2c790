"""The instrument master in memory (lookups, chains, search) and in the main database.

The whole master is rebuilt once a trading day (its expiries roll), so the table is replaced in
one transaction with bulk Core inserts and read back with one Core select: ORM objects for 100k
rows would cost seconds on every start.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, delete, func, select

from database.base import utc_now
from database.engine import DatabaseName, Databases
from database.models.instruments import InstrumentRow
from database.models.main import DeskSetting
from services.market.calendar import MarketCalendar
from services.market.master import build_master, future_symbol, strike_text
from services.market.model import Exchange, ExpiryKind, Instrument, InstrumentType
from services.market.search import SearchIndex

BUILT_ON_KEY = "instrument_master_built_on"
INSERT_BATCH = 10_000
_OPTION_TYPES = frozenset({InstrumentType.CE, InstrumentType.PE})
_EXPIRY_TYPES = {"futures": frozenset({InstrumentType.FUT}), "options": _OPTION_TYPES}

type ChainRow = tuple[Decimal, Instrument | None, Instrument | None]


class InstrumentMaster:
    """Every listed contract, indexed for the API's, the sandbox's and the simulator's lookups."""

    def __init__(self, instruments: Sequence[Instrument], built_on: date) -> None:
        self.built_on = built_on
        self._instruments = tuple(instruments)
        self._by_key: dict[tuple[str, str], Instrument] = {}
        by_exchange: dict[str, list[Instrument]] = {}
        derivatives: dict[tuple[str, str], list[Instrument]] = {}
        for instrument in self._instruments:
            exchange = instrument.exchange.value
            self._by_key[(instrument.symbol, exchange)] = instrument
            by_exchange.setdefault(exchange, []).append(instrument)
            if instrument.underlying is not None and instrument.is_derivative:
                derivatives.setdefault((instrument.underlying, exchange), []).append(instrument)
        self._by_exchange = {key: tuple(items) for key, items in by_exchange.items()}
        self._derivatives = {key: tuple(items) for key, items in derivatives.items()}
        # Chains are asked for again and again (option chain, Greeks, ATM lookups): built once.
        self._chains: dict[tuple[str, str, date], tuple[ChainRow, ...]] = {}
        self._search_index: SearchIndex | None = None
        self._search_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._instruments)

    def get(self, symbol: str, exchange: str) -> Instrument | None:
        return self._by_key.get((symbol, exchange))

    def all(self) -> Sequence[Instrument]:
        return self._instruments

    def by_exchange(self, exchange: str) -> Sequence[Instrument]:
        return self._by_exchange.get(exchange, ())

    def underlying_of(self, instrument: Instrument) -> Instrument | None:
        """The spot or index a derivative is priced from; for MCX options, their future."""
        if not instrument.is_derivative or instrument.underlying is None:
            return None
        if instrument.exchange is Exchange.MCX:
            # MCX has no spot: an option is priced off the future of the same expiry.
            if instrument.instrument_type is InstrumentType.FUT or instrument.expiry is None:
                return None
            return self.get(future_symbol(instrument.underlying, instrument.expiry), "MCX")
        if instrument.underlying_exchange is None:
            return None
        return self.get(instrument.underlying, instrument.underlying_exchange.value)

    def derivatives_of(self, underlying: str, exchange: Exchange) -> Sequence[Instrument]:
        return self._derivatives.get((underlying, str(exchange)), ())

    def expiries(self, underlying: str, exchange: str, instrument_type: str) -> list[date]:
        """Ascending expiry dates of `underlying`'s futures or options on `exchange`."""
        kinds = _EXPIRY_TYPES.get(instrument_type.lower())
        if kinds is None:
            raise ValueError(f"instrument_type must be futures or options, not {instrument_type!r}")
        found = {
            contract.expiry
            for contract in self._derivatives.get((underlying, exchange), ())
            if contract.instrument_type in kinds and contract.expiry is not None
        }
        return sorted(found)

    def option_chain(self, underlying: str, exchange: str, expiry: date) -> list[ChainRow]:
        """(strike, CE, PE) for every listed strike of one expiry, ascending by strike."""
        key = (underlying, exchange, expiry)
        chain = self._chains.get(key)
        if chain is None:
            legs: dict[Decimal, dict[InstrumentType, Instrument]] = {}
            for contract in self._derivatives.get((underlying, exchange), ()):
                if contract.expiry == expiry and contract.strike is not None and contract.is_option:
                    legs.setdefault(contract.strike, {})[contract.instrument_type] = contract
            chain = tuple(
                (strike, pair.get(InstrumentType.CE), pair.get(InstrumentType.PE))
                for strike, pair in sorted(legs.items())
            )
            self._chains[key] = chain
        return list(chain)

    def prepare_search(self) -> None:
        """Build the search index now (about a second) rather than on the first search."""
        self._index()

    def search(self, query: str, exchange: str | None = None, limit: int = 50) -> list[Instrument]:
        """Ranked multi-term prefix search (see `services.market.search`)."""
        return self._index().search(query, exchange, limit)

    def _index(self) -> SearchIndex:
        # Built on first search, not on load: the simulator and the sandbox never search.
        index = self._search_index
        if index is None:
            with self._search_lock:
                if self._search_index is None:
                    self._search_index = SearchIndex(self._instruments)
                index = self._search_index
        return index


def _row(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "exchange": instrument.exchange.value,
        "name": instrument.name,
        "instrument_type": instrument.instrument_type.value,
        "token": instrument.token,
        "lot_size": instrument.lot_size,
        "tick_size": instrument.tick_size,
        "freeze_qty": instrument.freeze_qty,
        "expiry": instrument.expiry,
        "expiry_kind": instrument.expiry_kind.value if instrument.expiry_kind else None,
        "strike": instrument.strike,
        "underlying": instrument.underlying,
        "underlying_exchange": (
            instrument.underlying_exchange.value if instrument.underlying_exchange else None
        ),
        "isin": instrument.isin,
        "brsymbol": instrument.brsymbol,
        "brexchange": instrument.brexchange,
    }


_EXCHANGES = {exchange.value: exchange for exchange in Exchange}
_TYPES = {kind.value: kind for kind in InstrumentType}
_EXPIRY_KINDS = {kind.value: kind for kind in ExpiryKind}
_COLUMNS = (
    InstrumentRow.symbol, InstrumentRow.exchange, InstrumentRow.name,
    InstrumentRow.instrument_type, InstrumentRow.token, InstrumentRow.lot_size,
    InstrumentRow.tick_size, InstrumentRow.freeze_qty, InstrumentRow.expiry,
    InstrumentRow.expiry_kind, InstrumentRow.strike, InstrumentRow.underlying,
    InstrumentRow.underlying_exchange, InstrumentRow.isin, InstrumentRow.brsymbol,
    InstrumentRow.brexchange,
)  # fmt: skip


class _RowReader:
    """Turns selected rows into Instruments, reusing the (few) distinct numbers and enums."""

    def __init__(self) -> None:
        self._decimals: dict[Any, Decimal] = {}

    def decimal(self, value: Any) -> Decimal:
        """A stored number back as the Decimal we wrote: via text, so SQLite's floats stay exact."""
        found = self._decimals.get(value)
        if found is None:
            found = Decimal(strike_text(Decimal(str(value))))
            self._decimals[value] = found
        return found

    def instrument(self, row: Sequence[Any]) -> Instrument:
        (symbol, exchange, name, kind, token, lot_size, tick_size, freeze_qty, expiry,
         expiry_kind, strike, underlying, underlying_exchange, isin, brsymbol,
         brexchange) = row  # fmt: skip
        return Instrument(
            symbol=symbol,
            exchange=_EXCHANGES[exchange],
            name=name,
            instrument_type=_TYPES[kind],
            token=token,
            lot_size=lot_size,
            tick_size=self.decimal(tick_size),
            freeze_qty=freeze_qty,
            expiry=expiry,
            expiry_kind=_EXPIRY_KINDS[expiry_kind] if expiry_kind else None,
            strike=self.decimal(strike) if strike is not None else None,
            underlying=underlying,
            underlying_exchange=_EXCHANGES[underlying_exchange] if underlying_exchange else None,
            isin=isin,
            brsymbol=brsymbol,
            brexchange=brexchange,
        )


class InstrumentStore:
    """The `instruments` table of the main database, written and read whole."""

    def __init__(self, databases: Databases) -> None:
        self._databases = databases

    def replace_all(self, instruments: Sequence[Instrument], built_on: date) -> int:
        """Swap the stored master for `instruments` in one transaction; returns the row count."""
        table = cast(Table, InstrumentRow.__table__)
        rows = [_row(instrument) for instrument in instruments]
        with self._databases.session(DatabaseName.MAIN) as session:
            session.execute(delete(InstrumentRow))
            for start in range(0, len(rows), INSERT_BATCH):
                session.execute(table.insert(), rows[start : start + INSERT_BATCH])
            setting = session.get(DeskSetting, BUILT_ON_KEY)
            if setting is None:
                session.add(DeskSetting(key=BUILT_ON_KEY, value=built_on.isoformat()))
            else:
                setting.value = built_on.isoformat()
                setting.updated_at = utc_now()
        return len(rows)

    def built_on(self) -> date | None:
        """The day the stored master was built for, or None if it was never recorded."""
        with self._databases.session(DatabaseName.MAIN) as session:
            value = session.scalar(select(DeskSetting.value).where(DeskSetting.key == BUILT_ON_KEY))
        return date.fromisoformat(value) if value else None

    def count(self) -> int:
        with self._databases.session(DatabaseName.MAIN) as session:
            return session.scalar(select(func.count()).select_from(InstrumentRow)) or 0

    def load(self) -> InstrumentMaster | None:
        """The stored master, or None when the table is empty."""
        with self._databases.session(DatabaseName.MAIN) as session:
            value = session.scalar(select(DeskSetting.value).where(DeskSetting.key == BUILT_ON_KEY))
            # Core, not ORM: rows come back as plain tuples, several times faster.
            query = select(*_COLUMNS).order_by(InstrumentRow.id)
            rows = session.connection().execute(query).all()
        if not rows:
            return None
        # Rows without a recorded build day are treated as stale, so they get rebuilt.
        built_on = date.fromisoformat(value) if value else date.min
        reader = _RowReader()
        return InstrumentMaster([reader.instrument(row) for row in rows], built_on)


def ensure_master(
    store: InstrumentStore, calendar: MarketCalendar, today: date
) -> InstrumentMaster:
    """The stored master, rebuilt and stored first when it is missing or older than `today`."""
    master = store.load()
    if master is not None and master.built_on >= today:
        return master
    instruments = build_master(today, calendar)
    store.replace_all(instruments, today)
    return InstrumentMaster(instruments, today)
