"""countylab-client: a small, typed Python SDK for a countylab data lab (数字县域场景应用实验室).

Only the names in ``__all__`` are public; the ``_private`` modules may change at any time.
``countylab_client.testing`` (imported on its own) offers a fake server for users' unit tests.
pandas is optional and imported only by methods that return DataFrames.
"""

from ._airlock import Model, ModelField, ReleasedFile, ReleaseRequest, file_entry
from ._client import Client
from ._errors import (
    AuthenticationError,
    ConflictError,
    CountylabClientError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    ServerError,
    TransportError,
    ValidationError,
)
from ._jobs import Job, pack_folder
from ._models import (
    Dataset,
    DatasetColumn,
    DatasetVersion,
    Org,
    Project,
    ProjectDataset,
    ProjectMember,
    PushResult,
    QueryResult,
    User,
)
from ._version import __version__

__all__ = [
    "Job",
    "Model",
    "ModelField",
    "ReleaseRequest",
    "ReleasedFile",
    "file_entry",
    "pack_folder",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "CountylabClientError",
    "Dataset",
    "DatasetColumn",
    "DatasetVersion",
    "NotFoundError",
    "Org",
    "PermissionDeniedError",
    "Project",
    "ProjectDataset",
    "ProjectMember",
    "PushResult",
    "QueryResult",
    "QuotaExceededError",
    "ServerError",
    "TransportError",
    "User",
    "ValidationError",
    "__version__",
]

# Show public classes as ``countylab_client.X`` in reprs, tracebacks and docs, not as the
# private module they happen to live in.
for _name in __all__:
    if not _name.startswith("__"):
        globals()[_name].__module__ = "countylab_client"
del _name
