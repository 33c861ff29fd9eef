"""The append-only, hash-chained audit log, with signed checkpoints kept in a witness.

``record`` is what services call; ``append`` is the low-level primitive under it.
``verify`` checks the hash chain alone; ``verifier.verify_configured`` checks it against the
signed checkpoints of the witness too (what ``countylab audit verify``, the audit page and
``GET /api/audit/verify`` report).
"""

from countylab.audit import verifier
from countylab.audit.log import AuditRecord, VerifyReport, append, record, verify

__all__ = ["AuditRecord", "VerifyReport", "append", "record", "verifier", "verify"]
