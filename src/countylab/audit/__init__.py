"""The append-only, hash-chained audit log, with signed checkpoints kept in a witness.

``record`` is what services call; ``append`` is the low-level primitive under it.  The
checkpoint writer (``checkpoints``) and the verifier against the witness (``verifier``) are
imported from their modules, so that code which only writes events stays light.
"""

from countylab.audit.log import AuditRecord, VerifyReport, append, record, verify

__all__ = ["AuditRecord", "VerifyReport", "append", "record", "verify"]
