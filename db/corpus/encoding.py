"""Article rows as the import's worker processes hand them over: one flat tuple of column values.

Needs neither SQLAlchemy nor the models: the workers start before those load (they are most of an
import command's start-up, docs/performance.md), so the columns are spelled out here. A test checks
them against the Article model.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson

from db.corpus.prefill import prefill_columns

# An article's column values in ENCODED_COLUMNS order, JSON columns already serialized and dates as
# ISO text. A flat tuple of strings and numbers costs a fraction of the nested dicts to pickle across
# processes and goes to either driver as it is, with no per-row type processing in the storing process
# (SQLite stores dates as that text, PostgreSQL's COPY reads it).
EncodedArticle = tuple[Any, ...]

_JSON, _DATE, _PLAIN = range(3)
_REQUIRED = object()
# (column, how it is encoded, its default) for every column of `article` but BATCH_COLUMNS, in table order.
_COLUMNS: tuple[tuple[str, int, Any], ...] = (
    ("pmid", _PLAIN, _REQUIRED),
    ("title", _PLAIN, _REQUIRED),
    ("abstract", _PLAIN, ""),
    ("abstract_sections", _JSON, ()),
    ("journal", _PLAIN, ""),
    ("journal_iso", _PLAIN, None),
    ("pub_date", _PLAIN, None),
    ("pub_year", _PLAIN, None),
    ("authors", _JSON, ()),
    ("doi", _PLAIN, None),
    ("pmcid", _PLAIN, None),
    ("languages", _JSON, ()),
    ("publication_types", _JSON, ()),
    ("mesh_headings", _JSON, ()),
    ("keywords", _JSON, ()),
    ("retraction_status", _PLAIN, None),
    ("notices", _JSON, ()),
    ("date_revised", _DATE, None),
    ("design", _PLAIN, "other"),
    ("design_confidence", _PLAIN, 0.0),
    ("design_version", _PLAIN, 0),
    ("is_notice", _PLAIN, False),
    ("notice_of", _PLAIN, None),
    ("content_hash", _PLAIN, _REQUIRED),
)
BATCH_COLUMNS = ("first_seen_at", "updated_at", "deleted_in_pubmed")  # the same for a whole batch
ENCODED_COLUMNS = tuple(name for name, _kind, _default in _COLUMNS)
JSON_COLUMNS = frozenset(name for name, kind, _default in _COLUMNS if kind == _JSON)
DATE_COLUMNS = frozenset(name for name, kind, _default in _COLUMNS if kind == _DATE)
PMID, HASH = ENCODED_COLUMNS.index("pmid"), ENCODED_COLUMNS.index("content_hash")
REVISED = ENCODED_COLUMNS.index("date_revised")
_ENCODED_SET = frozenset(ENCODED_COLUMNS)
_JSON_AT = tuple(i for i, (_name, kind, _default) in enumerate(_COLUMNS) if kind == _JSON)
_DATE_AT = tuple(i for i, (_name, kind, _default) in enumerate(_COLUMNS) if kind == _DATE)


_DEFAULTS = tuple((name, default) for name, _kind, default in _COLUMNS)


def encode_article(fields: dict[str, Any]) -> EncodedArticle:
    """Column values (see PubmedRecord.article_fields) as an EncodedArticle.

    A column missing from `fields` gets the model's default: the row is the whole record. The design
    prefill is made here (db.corpus.prefill.prefill_columns) unless `fields` carry one.
    """
    if "design_version" not in fields:
        fields = {**fields, **prefill_columns(fields)}
    if len(fields) < len(ENCODED_COLUMNS) or not fields.keys() >= _ENCODED_SET:
        values = [
            fields[name] if name in fields else _default(name, value) for name, _kind, value in _COLUMNS
        ]
    else:
        values = [fields[name] for name in ENCODED_COLUMNS]
    dumps = orjson.dumps
    for at in _JSON_AT:
        values[at] = dumps(values[at]).decode()
    for at in _DATE_AT:
        if isinstance(values[at], date):
            values[at] = values[at].isoformat()
    return tuple(values)


def _default(name: str, value: Any) -> Any:
    if value is _REQUIRED:
        raise ValueError(f"An article row needs a value for {name!r}.")
    return value


def decode_article(values: EncodedArticle) -> dict[str, Any]:
    """The column values of an EncodedArticle, as the Article model holds them."""
    return {
        name: value
        if value is None or kind == _PLAIN
        else orjson.loads(value)
        if kind == _JSON
        else as_date(value)
        for (name, kind, _default), value in zip(_COLUMNS, values, strict=True)
    }


def as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value
