"""Ingestion engine: uploaded files and pushes in, immutable warehouse versions out.

Pure domain code (no web framework, no metadata DB): the catalog service calls it with a
:class:`countylab.storage.warehouse.Warehouse` and records the returned version itself.
"""

from countylab.ingest.encoding import detect_encoding, transcode_to_utf8
from countylab.ingest.modes import MODES, build_version
from countylab.ingest.names import FORMATS, format_from_filename, safe_filename
from countylab.ingest.push import Compaction, InMemorySeenKeys, PushBuffer, PushResult, SeenKeys
from countylab.ingest.readers import check_size, infer_schema, open_batches
from countylab.ingest.schema import COLUMN_TYPES, ColumnSpec, InferredSchema, TableSchema, validate_batch

__all__ = [
    "COLUMN_TYPES",
    "FORMATS",
    "MODES",
    "ColumnSpec",
    "Compaction",
    "InMemorySeenKeys",
    "InferredSchema",
    "PushBuffer",
    "PushResult",
    "SeenKeys",
    "TableSchema",
    "build_version",
    "check_size",
    "detect_encoding",
    "format_from_filename",
    "infer_schema",
    "open_batches",
    "safe_filename",
    "transcode_to_utf8",
    "validate_batch",
]
