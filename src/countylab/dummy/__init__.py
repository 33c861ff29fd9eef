"""Dummy data (模拟数据): schema-faithful synthetic rows from steward-approved metadata.

Used by the dataset page's preview (every dataset not graded 一般1级) and by developers who
download dummy data to write code locally before it runs on real data in the sandbox. The
generator reads only a :class:`DatasetProfile`; :func:`profile_from_table` is the single place
that looks at real rows, and it proposes a profile without values of sensitive columns.
"""

from countylab.dummy.generate import DEFAULT_AS_OF, MAX_ROWS, generate, generate_related, generation_order
from countylab.dummy.output import (
    DUMMY_LABEL_EN,
    DUMMY_LABEL_ZH,
    DUMMY_METADATA_KEY,
    is_dummy,
    mark_dummy,
    write_dummy,
)
from countylab.dummy.profile import (
    COLUMN_TYPES,
    DISTRIBUTIONS,
    SEMANTICS,
    ColumnProfile,
    DatasetProfile,
    arrow_type,
)
from countylab.dummy.profiling import MIN_CATEGORY_COUNT, profile_from_table

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_AS_OF",
    "DISTRIBUTIONS",
    "DUMMY_LABEL_EN",
    "DUMMY_LABEL_ZH",
    "DUMMY_METADATA_KEY",
    "MAX_ROWS",
    "MIN_CATEGORY_COUNT",
    "SEMANTICS",
    "ColumnProfile",
    "DatasetProfile",
    "arrow_type",
    "generate",
    "generate_related",
    "generation_order",
    "is_dummy",
    "mark_dummy",
    "profile_from_table",
    "write_dummy",
]
