"""Three related profiles (households ← residents ← elderly-care records) used across the tests."""

from __future__ import annotations

from countylab.dummy import ColumnProfile, DatasetProfile


def households_profile() -> DatasetProfile:
    return DatasetProfile(
        "households",
        [
            ColumnProfile("household_id", "string", "key", id_prefix="H"),
            ColumnProfile(
                "township",
                "string",
                "category",
                categories=["城关镇", "青石镇", "南湖街道"],
                category_weights=[0.5, 0.3, 0.2],
            ),
            ColumnProfile("village", "string", "category", categories=["和平村", "建设村", "东风社区"]),
            ColumnProfile("address", "string", "address", null_rate=0.05),
            ColumnProfile("size", "int64", "measure", minimum=1, maximum=8, mean=3.1),
        ],
        row_count_hint=2000,
        primary_key=["household_id"],
    )


def residents_profile() -> DatasetProfile:
    return DatasetProfile(
        "residents",
        [
            ColumnProfile("resident_id", "string", "privacy_unit_id", unique=True, id_prefix="R"),
            ColumnProfile("household_id", "string", "foreign_key", foreign_key="households.household_id"),
            ColumnProfile("id_number", "string", "id_number", unique=True),
            ColumnProfile("name", "string", "person_name"),
            ColumnProfile("sex", "string", "category", categories=["男", "女"]),
            ColumnProfile(
                "birth_date", "date", "date", minimum="1930-01-01", maximum="2020-12-31", null_rate=0.1
            ),
            ColumnProfile("mobile", "string", "mobile", null_rate=0.3),
            ColumnProfile("bank_card", "string", "bank_card", null_rate=0.5),
            ColumnProfile("plate", "string", "licence_plate", null_rate=0.8),
            ColumnProfile("employer_uscc", "string", "uscc", null_rate=0.4),
            ColumnProfile("income", "float64", "measure", minimum=0, maximum=500000, mean=40000),
            ColumnProfile(
                "updated_at", "timestamp", None, minimum="2024-01-01T00:00:00", maximum="2024-12-31T23:59:59"
            ),
            ColumnProfile("is_poor", "bool", None, mean=0.1),
        ],
        row_count_hint=5000,
        primary_key=["resident_id"],
    )


def care_profile() -> DatasetProfile:
    return DatasetProfile(
        "elderly_care_records",
        [
            ColumnProfile("record_id", "int64", "key"),
            ColumnProfile("resident_id", "string", "foreign_key", foreign_key="residents.resident_id"),
            ColumnProfile("visit_date", "date", "date", minimum="2024-01-01", maximum="2024-12-31"),
            ColumnProfile(
                "service", "string", "category", categories=["助餐", "助浴", "助医"], null_rate=0.02
            ),
            ColumnProfile(
                "minutes", "int64", "measure", minimum=10, maximum=240, mean=45, distribution="lognormal"
            ),
            ColumnProfile("note", "string", "text", null_rate=0.6),
        ],
        row_count_hint=3000,
        primary_key=["record_id"],
    )
