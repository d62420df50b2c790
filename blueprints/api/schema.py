"""Declared request fields: one declaration validates the body and documents it in Swagger.

Numbers arrive as JSON numbers or numeric strings (the openalgo SDK sends strings). Every
problem is collected per field, so a client learns everything wrong with a request at once
(API.md D3); unknown fields are ignored and reported as warnings (D4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_restx import Namespace
from flask_restx import fields as restx_fields

from services.errors import InvalidRequest

_MISSING = object()


@dataclass(frozen=True)
class Field:
    """One request field. `kind`: str, int, decimal, bool, date, list, object."""

    kind: str
    required: bool = False
    default: Any = None
    description: str = ""
    example: Any = None
    choices: tuple[str, ...] = ()
    case_insensitive: bool = False
    minimum: Decimal | int | None = None
    maximum: Decimal | int | None = None
    max_length: int = 256
    pattern: str | None = None
    date_format: str = "%Y-%m-%d"
    date_label: str = "YYYY-MM-DD"
    items: Mapping[str, Field] | None = None  # for a list of objects
    min_items: int = 0
    max_items: int = 1000

    def expected(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return {
            "str": "a string",
            "int": "a whole number",
            "decimal": "a number",
            "bool": "true or false",
            "date": f"a date as {self.date_label}",
            "list": f"a list of {self.min_items} to {self.max_items} items",
            "object": "an object",
        }[self.kind]


@dataclass
class Parsed:
    values: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def parse(body: Mapping[str, Any], schema: Mapping[str, Field]) -> Parsed:
    """Validate `body` against `schema`; raise InvalidRequest naming every bad field."""
    errors: dict[str, list[str]] = {}
    values = _parse_object(body, schema, "", errors)
    if errors:
        first, problems = next(iter(errors.items()))
        summary = f"Invalid value for '{first}': {problems[0]}"
        if len(errors) > 1:
            summary += f" (and {len(errors) - 1} more field(s); see errors)"
        raise InvalidRequest(summary, errors=errors)
    warnings = [
        f"Unknown field '{name}' was ignored."
        for name in sorted(body)
        if name not in schema and name != "apikey"
    ]
    return Parsed(values=values, warnings=warnings)


def _parse_object(
    body: Mapping[str, Any], schema: Mapping[str, Field], prefix: str, errors: dict[str, list[str]]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in schema.items():
        path = f"{prefix}{name}"
        raw = body.get(name, _MISSING)
        if raw is _MISSING or raw is None or (isinstance(raw, str) and not raw.strip()):
            if spec.required:
                errors.setdefault(path, []).append(f"required: {spec.expected()}")
            values[name] = spec.default
            continue
        try:
            values[name] = _convert(raw, spec, path, errors)
        except ValueError as e:
            errors.setdefault(path, []).append(str(e))
    return values


def _convert(raw: Any, spec: Field, path: str, errors: dict[str, list[str]]) -> Any:
    converter = {
        "str": _to_str,
        "int": _to_int,
        "decimal": _to_decimal,
        "bool": _to_bool,
        "date": _to_date,
    }.get(spec.kind)
    if converter is not None:
        return converter(raw, spec)
    if spec.kind == "list":
        return _to_list(raw, spec, path, errors)
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected {spec.expected()}")
    return _parse_object(raw, spec.items or {}, f"{path}.", errors)


def _to_str(raw: Any, spec: Field) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(f"expected {spec.expected()}")
    value = str(raw).strip()
    if len(value) > spec.max_length:
        raise ValueError(f"at most {spec.max_length} characters")
    if spec.choices:
        candidate = value.upper() if spec.case_insensitive else value
        if candidate not in spec.choices:
            raise ValueError(f"expected {spec.expected()}, got {value!r}")
        value = candidate
    if spec.pattern and not re.fullmatch(spec.pattern, value):
        raise ValueError(f"{value!r} does not match the expected format ({spec.description})")
    return value


def _to_decimal(raw: Any, spec: Field) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected {spec.expected()}")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"expected {spec.expected()}, got {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a finite number, got {raw!r}")
    _check_range(value, spec)
    return value


def _to_int(raw: Any, spec: Field) -> int:
    value = _to_decimal(raw, spec)
    if value != value.to_integral_value():
        raise ValueError(f"expected a whole number, got {raw!r}")
    return int(value)


def _check_range(value: Decimal, spec: Field) -> None:
    if spec.minimum is not None and value < Decimal(spec.minimum):
        raise ValueError(f"must be at least {spec.minimum}, got {value}")
    if spec.maximum is not None and value > Decimal(spec.maximum):
        raise ValueError(f"must be at most {spec.maximum}, got {value}")


def _to_bool(raw: Any, spec: Field) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0"):
        return raw.strip().lower() in ("true", "1")
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    raise ValueError(f"expected {spec.expected()}, got {raw!r}")


def _to_date(raw: Any, spec: Field) -> date:
    if not isinstance(raw, str):
        raise ValueError(f"expected {spec.expected()}")
    try:
        return datetime.strptime(raw.strip(), spec.date_format).date()  # noqa: DTZ007  (a calendar date, no time)
    except ValueError:
        raise ValueError(f"expected {spec.expected()}, got {raw!r}") from None


def _to_list(raw: Any, spec: Field, path: str, errors: dict[str, list[str]]) -> list[Any]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ValueError(f"expected {spec.expected()}")
    if not spec.min_items <= len(raw) <= spec.max_items:
        raise ValueError(f"expected {spec.expected()}, got {len(raw)}")
    items: list[Any] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors.setdefault(f"{path}[{index}]", []).append("expected an object")
            continue
        items.append(_parse_object(item, spec.items or {}, f"{path}[{index}].", errors))
    return items


_RESTX_KINDS = {
    "str": restx_fields.String,
    "int": restx_fields.Integer,
    "decimal": restx_fields.Float,
    "bool": restx_fields.Boolean,
    "date": restx_fields.String,
}


def _default_example(spec: Field) -> Any:
    """An example for Swagger when the declaration gives none: the first choice or a zero."""
    if spec.choices:
        return spec.choices[0]
    return {"str": "", "int": 0, "decimal": 0, "bool": False, "date": "2026-11-23"}.get(spec.kind)


def request_model(namespace: Namespace, name: str, schema: Mapping[str, Field]) -> Any:
    """The Swagger model of a request body, from the same declaration that validates it."""
    model: dict[str, Any] = {
        "apikey": restx_fields.String(
            description="Your API key (or send the X-API-KEY header)", example="<64 hex chars>"
        )
    }
    for field_name, spec in schema.items():
        options: dict[str, Any] = {
            "required": spec.required,
            "description": spec.description or spec.expected(),
        }
        example = spec.example if spec.example is not None else _default_example(spec)
        if example is not None:
            options["example"] = example
        if spec.choices:
            options["enum"] = list(spec.choices)
        if spec.kind == "list":
            nested = request_model(namespace, f"{name}Item", spec.items or {})
            model[field_name] = restx_fields.List(restx_fields.Nested(nested), **options)
        elif spec.kind == "object":
            nested = request_model(namespace, f"{name}{field_name.title()}", spec.items or {})
            model[field_name] = restx_fields.Nested(nested, **options)
        else:
            model[field_name] = _RESTX_KINDS[spec.kind](**options)
    return namespace.model(name, model)
