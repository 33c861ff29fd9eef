"""Pin the SDK's public surface: adding or removing a public name must be a deliberate change."""

import countylab_client
import countylab_client.testing

EXPECTED = {
    "Job",
    "Model",
    "ModelField",  # one named input of a model's schema (model.schema)
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
}


def test_all_is_exactly_the_pinned_names():
    assert set(countylab_client.__all__) == EXPECTED
    assert len(countylab_client.__all__) == len(EXPECTED)


def test_public_members_present_and_reported_as_top_level():
    for name in countylab_client.__all__:
        member = getattr(countylab_client, name)
        if not name.startswith("__"):
            assert member.__module__ == "countylab_client", name


def test_no_other_public_names_leak():
    public = {n for n in dir(countylab_client) if not n.startswith("_")}
    # the testing and labels submodules become attributes once imported; public by design
    assert public - {"testing", "labels"} == EXPECTED - {"__version__"}


def test_testing_module_surface():
    assert set(countylab_client.testing.__all__) == {
        "DEFAULT_TOKEN",
        "DEFAULT_URL",
        "FakeServer",
        "RecordedPush",
    }
