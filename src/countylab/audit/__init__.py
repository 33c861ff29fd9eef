"""The append-only, hash-chained audit log."""

from countylab.audit.log import AuditRecord, VerifyReport, append, verify

__all__ = ["AuditRecord", "VerifyReport", "append", "verify"]
