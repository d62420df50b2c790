"""Instrument search over the full master: multi-term, prefix, ranked, in a few milliseconds.

Every contract is indexed under the parts a trader types: base name, full symbol, strike, expiry
day, month and year, CE/PE/FUT and the company's name words. A query matches a contract when each
of its terms is a prefix of one of those parts ("NIFTY 26000 DEC CE").

Contracts get ids in rank order (cash and indices, then futures, then options by nearest expiry
and strike), so every posting list is sorted by rank. A query walks its most selective term's
postings in that order and checks the other terms against a per-contract string of its parts,
stopping once it has `limit` hits: the work is bounded by how far it must walk, never by the
size of the master. Walks are capped at `MAX_SCANNED` ids, so a very broad query that rarely
matches (two unrelated one-letter terms) may return fewer hits rather than take long.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal

from services.market.master import MONTHS, expiry_code, strike_text
from services.market.model import Exchange, Instrument, InstrumentType

MAX_SCANNED = 20_000
# Word boundaries in names and symbols; "&" stays inside words so that M&M stays whole.
_SPLIT = re.compile(r"[^A-Z0-9&]+")
_STOP_WORDS = frozenset({"LTD", "LIMITED", "THE", "OF", "AND", "&"})
# Separates a contract's parts in its match string: never typed, never inside a part.
_SEPARATOR = "\x1f"
# Sorts after every upper-case term: the end of a prefix range.
_AFTER_ALL = "\U0010ffff"
_EXCHANGE_ORDER = {exchange.value: position for position, exchange in enumerate(Exchange)}
_CATEGORY = {
    InstrumentType.EQ: 0,
    InstrumentType.INDEX: 0,
    InstrumentType.FUT: 1,
    InstrumentType.CE: 2,
    InstrumentType.PE: 2,
}


def _rank(instrument: Instrument) -> tuple[int, date, str, Decimal, str, int, str]:
    """Cash and indices first, then futures, then options; nearest expiry, then strike."""
    return (
        _CATEGORY[instrument.instrument_type],
        instrument.expiry or date.min,
        instrument.underlying or instrument.symbol,
        instrument.strike or Decimal(0),
        instrument.instrument_type.value,
        _EXCHANGE_ORDER[instrument.exchange.value],
        instrument.symbol,
    )


def _words(text: str) -> set[str]:
    return {word for word in _SPLIT.split(text.upper()) if word and word not in _STOP_WORDS}


def _parts(instrument: Instrument, company_names: dict[str, str]) -> set[str]:
    """What a query term may be a prefix of, upper-case, except a derivative's full symbol."""
    if not instrument.is_derivative:
        return {instrument.symbol.upper(), *_words(instrument.symbol), *_words(instrument.name)}
    underlying = (instrument.underlying or instrument.name).upper()
    parts = {underlying, *_words(underlying), instrument.instrument_type.value}
    parts |= _words(company_names.get(underlying, ""))
    if instrument.expiry is not None:
        expiry = instrument.expiry
        parts |= {
            expiry_code(expiry),
            MONTHS[expiry.month - 1],
            f"{expiry.day:02d}",
            f"{expiry.year % 100:02d}",
            str(expiry.year),
        }
    if instrument.strike is not None:
        parts.add(strike_text(instrument.strike))
    return parts


class SearchIndex:
    """An in-memory inverted index over one master; built once, read-only afterwards.

    A derivative's full symbol starts with its underlying, so it is kept out of the main term
    list (100k one-contract terms would make every short prefix a 100k-way merge) and looked up
    only for queries that go past an underlying's name ("NIFTY29DEC").
    """

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        self._instruments = sorted(instruments, key=_rank)
        company_names = {
            item.symbol.upper(): item.name
            for item in self._instruments
            if item.instrument_type is InstrumentType.EQ
        }
        postings: dict[str, list[int]] = {}
        symbols: list[tuple[str, int, int]] = []
        self._match_text: list[str] = []
        self._by_symbol: dict[str, list[int]] = {}
        self._by_exchange: dict[str, list[int]] = {}
        for position, instrument in enumerate(self._instruments):
            parts = _parts(instrument, company_names)
            for part in parts:
                postings.setdefault(part, []).append(position)
            symbol = instrument.symbol.upper()
            if instrument.is_derivative:
                covered = len(instrument.underlying or "")
                symbols.append((symbol, covered, position))
                parts.add(symbol)
            self._match_text.append(_SEPARATOR + _SEPARATOR.join(parts))
            self._by_symbol.setdefault(symbol, []).append(position)
            self._by_exchange.setdefault(instrument.exchange.value, []).append(position)
        self._terms = sorted(postings)
        self._postings = [postings[term] for term in self._terms]
        symbols.sort()
        self._symbols = [symbol for symbol, _, _ in symbols]
        self._symbol_covered = [covered for _, covered, _ in symbols]
        self._symbol_positions = [position for _, _, position in symbols]
        # Cash and indices rank first, so they hold the positions below this count.
        self._spot_count = sum(1 for item in self._instruments if not item.is_derivative)
        self._underlyings = {
            (item.underlying or "").upper() for item in self._instruments if item.is_derivative
        }

    def search(self, query: str, exchange: str | None = None, limit: int = 50) -> list[Instrument]:
        """Contracts matching every term of `query` (prefixes, any case), best first."""
        terms = list(dict.fromkeys(query.upper().replace(",", " ").split()))
        if not terms or limit <= 0:
            return []
        exchange = exchange.upper() if exchange else None
        exact = [
            position
            for position in self._by_symbol.get("".join(terms), [])
            if exchange is None or self._instruments[position].exchange.value == exchange
        ]
        sources = [self._sources(term) for term in terms]
        found = self._walk(terms, sources, exchange, limit) if all(sources) else []
        # Among cash and indices, a symbol starting with a term beats a name-word match
        # ("NIF": NIFTY before BANKNIFTY, whose name is "Nifty Bank").
        spots = sorted(
            (position for position in found if position < self._spot_count),
            key=lambda position: not self._symbol_starts_with(position, terms),
        )
        rest = [position for position in found if position >= self._spot_count]
        ordered = list(dict.fromkeys([*exact, *spots, *rest]))[:limit]
        return [self._instruments[position] for position in ordered]

    def _symbol_starts_with(self, position: int, terms: list[str]) -> bool:
        symbol = self._instruments[position].symbol.upper()
        return any(symbol.startswith(term) for term in terms)

    def _sources(self, term: str) -> list[list[int]]:
        """The posting lists whose union is every contract with a part starting with `term`."""
        low = bisect_left(self._terms, term)
        high = bisect_left(self._terms, term + _AFTER_ALL, low)
        sources = self._postings[low:high]
        # Full symbols matter only when the term runs past an underlying's name.
        if any(term[:length] in self._underlyings for length in range(1, len(term))):
            first = bisect_left(self._symbols, term)
            last = bisect_left(self._symbols, term + _AFTER_ALL, first)
            extra = sorted(
                self._symbol_positions[index]
                for index in range(first, last)
                if self._symbol_covered[index] < len(term)
            )
            if extra:
                sources.append(extra)
        return sources

    def _walk(
        self, terms: list[str], sources: list[list[list[int]]], exchange: str | None, limit: int
    ) -> list[int]:
        """Walk the most selective term's contracts in rank order, keeping those matching all."""
        sizes = [sum(len(ids) for ids in lists) for lists in sources]
        driver = min(range(len(terms)), key=sizes.__getitem__)
        exchange_ids = self._by_exchange.get(exchange, []) if exchange is not None else None
        candidates: Iterable[int]
        if exchange_ids is not None and len(exchange_ids) < sizes[driver]:
            candidates = exchange_ids
            checks = [_SEPARATOR + term for term in terms]
        else:
            candidates = _union(sources[driver])
            checks = [_SEPARATOR + term for index, term in enumerate(terms) if index != driver]
        found: list[int] = []
        for scanned, position in enumerate(candidates):
            if scanned >= MAX_SCANNED:
                break
            if exchange is not None and self._instruments[position].exchange.value != exchange:
                continue
            text = self._match_text[position]
            if all(check in text for check in checks):
                found.append(position)
                # Every matching cash or index row is seen, so they can be reordered.
                if len(found) >= limit and position >= self._spot_count:
                    break
        return found


def _union(postings: list[list[int]]) -> Iterator[int]:
    """The ascending union of sorted posting lists, each id once."""
    if len(postings) == 1:
        yield from postings[0]
        return
    previous = -1
    for position in heapq.merge(*postings):
        if position != previous:
            previous = position
            yield position
