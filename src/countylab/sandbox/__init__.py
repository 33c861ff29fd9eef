"""The job sandbox: code goes to the data, rows never leave.

A job runs inside bubblewrap (all namespaces, uid 65534, no capabilities, no user namespaces,
empty environment), under a libseccomp filter, per-job cgroups and rlimits, watched by a
wall-clock watchdog in the parent.  It sees a Python runtime, its granted datasets at
``/data/<name>`` (read-only), its code at ``/work`` (read-only), a fresh ``/outbox`` and a small
``/tmp`` — nothing else.  See :func:`run_sandboxed`.
"""

from countylab.sandbox.bwrap import gpu_bind_args
from countylab.sandbox.cgroups import CgroupHost, CgroupUsage, JobCgroup, detect_cgroups
from countylab.sandbox.codetree import copy_code_tree
from countylab.sandbox.runner import run_sandboxed, run_unsandboxed, sandbox_available
from countylab.sandbox.spec import RunState, SandboxResult, SandboxSpec

__all__ = [
    "CgroupHost",
    "CgroupUsage",
    "JobCgroup",
    "RunState",
    "SandboxResult",
    "SandboxSpec",
    "copy_code_tree",
    "detect_cgroups",
    "gpu_bind_args",
    "run_sandboxed",
    "run_unsandboxed",
    "sandbox_available",
]
