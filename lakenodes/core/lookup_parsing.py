"""Text → lookups: ``K=V`` pairs as typed on a command line become the values
:mod:`lakenodes.core.lookups` and the catalog take.

- :func:`parse_pairs`: ``["k=v", ...]`` → ``[("k", "v"), ...]`` (the value may be empty or hold ``=``);
- :func:`parse_lookups`: Django-style filters, checked up front (operator, field, duplicates);
  ``__in`` takes a JSON list or a comma list, ``__isnull`` and bool fields take true/false;
- :func:`parse_dimension_filters`: an identity scope ``{dimension: [values]}`` checked against a
  table's identity dimensions;
- :func:`parse_label`: a table label (never blank; a new one also without surrounding whitespace or
  control characters).

Every mistake is a ``LakenodesUserError`` naming the option it came from.

Example:
    >>> parse_lookups(["ticker__in=NVDA,AAPL", "identifier__contains=px"])
    {'ticker__in': ['NVDA', 'AAPL'], 'identifier__contains': 'px'}
    >>> parse_dimension_filters(["unique_identifier=AAPL"], ["time_index", "unique_identifier"], "prices")
    {'unique_identifier': ['AAPL']}
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ..errors import LakenodesUserError
from .lookups import OPERATORS, parse_flag, split_lookup

logger = logging.getLogger(__name__)

def parse_pairs(pairs: Sequence[str] | None, option: str) -> list[tuple[str, str]]:
    """``["k=v", ...]`` → ``[("k", "v"), ...]``; the value may be empty or contain ``=``."""
    parsed = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LakenodesUserError(f"{option} {pair!r} is not K=V (e.g. {option} key=value)")
        parsed.append((key.strip(), value))
    return parsed


def parse_lookups(pairs: Sequence[str] | None, model: type[BaseModel] | None = None, *,
                  option: str = "--filter") -> dict[str, Any]:
    """``K=V`` filters → lookups: ``__in`` takes a JSON list (``["NVDA","AAPL"]``) or a comma list
    (``NVDA,AAPL``), ``__isnull`` and bool fields take true/false; with ``model``, unknown fields
    are refused up front."""
    lookups: dict[str, Any] = {}
    for key, value in parse_pairs(pairs, option):
        field, operator = split_lookup(key)
        if operator not in OPERATORS:
            raise LakenodesUserError(f"unknown lookup operator in {key!r}: use one of {', '.join(OPERATORS)}")
        if model is not None and field not in model.model_fields:
            raise LakenodesUserError(f"unknown field {field!r} in {option} {key!r}; fields are {', '.join(model.model_fields)}")
        if key in lookups:
            raise LakenodesUserError(f"{option} {key} is given twice")
        annotation = model.model_fields[field].annotation if model is not None else None
        if operator == "in":
            lookups[key] = parse_in_values(value, key, option=option)
        elif operator == "isnull" or (annotation is bool and operator == "exact"):
            lookups[key] = parse_flag(value, f"{option} {key}")
        else:
            lookups[key] = value
    logger.debug("parsed %s values into %s", option, lookups)
    return lookups


def parse_in_values(value: str, key: str, *, option: str = "--filter") -> list[Any]:
    """The values of an ``__in`` filter: a JSON list of scalars (values exact), or else a comma-separated
    list (each value stripped: in ``NVDA, AAPL`` the space is the list's, and ' AAPL' matched nothing).

    >>> parse_in_values("NVDA, AAPL", "ticker__in"), parse_in_values('[" NVDA"]', "ticker__in")
    (['NVDA', 'AAPL'], [' NVDA'])
    """
    if not value.lstrip().startswith("["):
        return [item.strip() for item in value.split(",")]
    example = f'{key}=\'["NVDA","AAPL"]\' or {key}=NVDA,AAPL'
    try:
        values = json.loads(value)
    except (ValueError, RecursionError):
        raise LakenodesUserError(f"{option} {key}={value!r} is not a JSON list; write {example}") from None
    if not isinstance(values, list) or not all(isinstance(item, (str, int, float, bool)) for item in values):
        raise LakenodesUserError(f"{option} {key}={value!r} must be a list of strings or numbers; write {example}")
    return values


def parse_dimension_filters(pairs: Sequence[str] | None, index_names: Sequence[str], table_name: str, *,
                            option: str = "--dimension-filter") -> dict[str, list[str]]:
    """``["dim=value", ...]`` → ``{dim: [value, ...]}``, refusing names that are not identity
    dimensions of the table (every index level after ``time_index``). A value is a comma list, each
    value stripped (``NVDA, AAPL`` means either), or a JSON list (values exact, for a comma in one);
    a repeated dimension adds its values.

    >>> parse_dimension_filters(["unique_identifier=NVDA, AAPL", 'unique_identifier=["A,B"]'], ["time_index", "unique_identifier"], "t")
    {'unique_identifier': ['NVDA', 'AAPL', 'A,B']}
    """
    scope: dict[str, list[str]] = {}
    for key, value in parse_pairs(pairs, option):
        values = parse_in_values(value, key, option=option)
        if "" in values:  # no identity value is empty (nothing could match: "-d uid=" is a slip)
            raise LakenodesUserError(f"{option} {key}={value!r}: a value is empty; identity values never are")
        scope.setdefault(key, []).extend(item if isinstance(item, str) else json.dumps(item) for item in values)
    check_identity_dimensions(scope, index_names, table_name)
    return scope


def check_identity_dimensions(dimensions: Sequence[str] | dict[str, Any], index_names: Sequence[str],
                              table_name: str) -> None:
    """Raise ``LakenodesUserError`` unless every name in ``dimensions`` is an identity dimension."""
    identity = list(index_names[1:])
    unknown = sorted(set(dimensions) - set(identity))
    if unknown:
        raise LakenodesUserError(f"{', '.join(unknown)} is not an identity dimension of {table_name}; "
                                 f"its dimensions are {identity}")


def parse_label(label: str, *, name: str = "LABEL") -> str:
    """``label`` itself; a blank label is refused (labels never change a table's identity, but
    an empty one could never be matched or removed by name), and so is one that is no string (the
    catalog holds labels as text: another value made every read of it fail)."""
    if not isinstance(label, str):
        raise LakenodesUserError(f"{name} must be a string, got {type(label).__name__} {label!r}")
    if not label.strip():
        raise LakenodesUserError(f"{name} must not be empty")
    return label


def parse_new_label(label: str, *, name: str = "LABEL") -> str:
    """A label to add: :func:`parse_label`'s, and without surrounding whitespace or control
    characters (``"daily "`` from a script would never match ``labels__contains=daily``, nor be
    removed as ``daily``; a line break splits every table that prints it).

    Example:
        >>> parse_new_label("end of day")
        'end of day'
        >>> parse_new_label("daily ")
        Traceback (most recent call last):
        lakenodes.errors.LakenodesUserError: LABEL 'daily ' has surrounding whitespace: give 'daily'
    """
    label = parse_label(label, name=name)
    if label != label.strip():
        raise LakenodesUserError(f"{name} {label!r} has surrounding whitespace: give {label.strip()!r}")
    if any(unicodedata.category(character) == "Cc" for character in label):
        raise LakenodesUserError(f"{name} {label!r} holds a control character (a line break, a tab): labels are one line")
    return label
