"""Pure pieces of the PostgreSQL source: DSN checks and masking, identifiers, cursor encoding."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from countylab.connectors.sources import decode_cursor, encode_cursor, mask_dsn, parse_dsn, split_table
from countylab.errors import ValidationFailed


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://reader:pa55@db.example:5432/minzheng",
        "host=db.example port=5432 dbname=minzheng user=reader password=pa55",
        "postgresql://reader@db.example/minzheng?password=pa55",
    ],
)
def test_mask_hides_the_password_in_every_spelling(dsn):
    masked = mask_dsn(dsn)
    assert "pa55" not in masked and "password=***" in masked and "db.example" in masked
    assert parse_dsn(dsn)["password"] == "pa55"


def test_mask_of_garbage_shows_nothing():
    assert mask_dsn("host=db password='s3cret") == "***"


@pytest.mark.parametrize(
    "dsn",
    [
        "host=db passfile=/etc/shadow",
        "host=db sslkey=/root/key",
        "service=x",
        "host=db options='-c default_transaction_read_only=off'",
        "dbname=x",
        "not a dsn=",
    ],
)
def test_dsn_keywords_that_read_server_files_or_change_settings_are_refused(dsn):
    with pytest.raises(ValidationFailed) as err:
        parse_dsn(dsn)
    assert err.value.details["reason"] == "bad_dsn"


@pytest.mark.parametrize(
    ("table", "parts"),
    [
        ("people", ("public", "people")),
        ("hr.staff_2024", ("hr", "staff_2024")),
        ("民政.户籍", ("民政", "户籍")),
    ],
)
def test_table_names(table, parts):
    assert split_table(table) == parts


@pytest.mark.parametrize("table", ["a.b.c", "people; DROP TABLE x", 'pe"ople', "1abc", "", "a b"])
def test_bad_table_names_are_refused(table):
    with pytest.raises(ValidationFailed):
        split_table(table)


@pytest.mark.parametrize(
    "value",
    [
        42,
        -7,
        Decimal("10.500"),
        0.1,
        datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=UTC),
        datetime(2024, 3, 1, 8, 0),
        date(2024, 2, 29),
        "B-0001:x",
    ],
)
def test_cursor_values_round_trip_with_their_type(value):
    text = encode_cursor(value)
    back = decode_cursor(text)
    assert back == value and type(back) is type(value)
    if isinstance(value, datetime):
        assert (back.tzinfo is None) == (value.tzinfo is None)


def test_boolean_cursor_is_refused():
    with pytest.raises(ValidationFailed):
        encode_cursor(True)
