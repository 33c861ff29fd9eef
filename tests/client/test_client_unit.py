"""Unit tests of the SDK against ``countylab_client.testing.FakeServer`` (httpx.MockTransport)."""

import datetime as dt
import json
import socket
import subprocess
import sys
import uuid

import httpx
import pytest

import countylab_client as cl
from countylab_client.testing import DEFAULT_URL, FakeServer

ME = 1


def _project(pid=7, members=(ME,)):
    return cl.Project(
        id=pid,
        slug=f"p{pid}",
        title="县域就业分析",
        description="",
        org_id=3,
        status="active",
        members=tuple(cl.ProjectMember(user_id=u, username=f"u{u}", role="developer") for u in members),
        datasets=(cl.ProjectDataset(dataset_id=11, name="population"),),
    )


POP = cl.Dataset(
    id=11,
    name="population",
    title="户籍人口",
    department="公安局",
    grade="general_3",
    tags=("person",),
    row_count=1000,
    current_version=2,
    description="按乡镇统计",
    columns=(cl.DatasetColumn("town", "VARCHAR"), cl.DatasetColumn("age", "INTEGER", ("pii",))),
    versions=(cl.DatasetVersion(2, 1000, dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)),),
)
FIRMS = cl.Dataset(id=12, name="firms", title="企业名录", department="市场监管局", grade="general_1")

ANSWER = cl.QueryResult(
    columns=("town", "n"),
    rows=(("东镇", 120), ("西镇", 80)),
    epsilon_spent=0.0,
    cached=False,
    budget_remaining=0.0,
    intervals={"n": ((110.0, 130.0), (70.5, 89.5))},
    notes=("counts are noisy",),
)
SQL = "SELECT town, COUNT(*) AS n FROM population GROUP BY town"


@pytest.fixture
def fake():
    server = FakeServer()
    server.add_project(_project(7), budget=1.0)
    server.add_project(_project(8, members=(99,)))
    server.add_dataset(POP, org_id=3)  # the department filter is the owning department's id
    server.add_dataset(FIRMS, org_id=4)
    server.add_query_answer(SQL, ANSWER)
    return server


@pytest.fixture
def client(fake):
    with fake.client() as c:
        yield c


def _body(request):
    return json.loads(request.content)


# -- headers, lifecycle ------------------------------------------------------------------------


def test_bearer_language_and_user_agent_headers_sent(fake):
    with fake.client(lang="en") as c:
        c.whoami()
    request = fake.requests[-1]
    assert request.headers["Authorization"] == "Bearer clk_test_token"
    assert request.headers["Accept-Language"] == "en"
    assert request.headers["User-Agent"] == f"countylab-client/{cl.__version__}"


def test_wrong_token_is_authentication_error(fake):
    with fake.client(token="clk_wrong") as c, pytest.raises(cl.AuthenticationError) as info:
        c.whoami()
    assert info.value.status_code == 401
    assert info.value.code == "not_authenticated"
    assert info.value.message == "缺少或无效的 API 令牌"


def test_error_message_follows_language(fake):
    with fake.client(token="clk_wrong", lang="en") as c, pytest.raises(cl.AuthenticationError) as info:
        c.whoami()
    assert info.value.message == "Missing or invalid API token"


def test_empty_token_refused():
    with pytest.raises(ValueError):
        cl.Client(DEFAULT_URL, "")


def test_repr_hides_token(client):
    assert "clk_test_token" not in repr(client)
    assert DEFAULT_URL in repr(client)


def test_context_manager_closes(fake):
    with fake.client() as c:
        c.whoami()
    with pytest.raises(RuntimeError):
        c.whoami()


def test_base_url_path_prefix_kept():
    seen = []

    def handler(request):
        seen.append(request.url.path)
        return httpx.Response(200, json={"items": []})

    with cl.Client("http://gw.test/countylab", "clk_x", transport=httpx.MockTransport(handler)) as c:
        assert c.projects() == []
    assert seen == ["/countylab/api/projects"]


# -- read endpoints ----------------------------------------------------------------------------


def test_whoami(client, fake):
    user = client.whoami()
    assert user == fake.user
    assert isinstance(user.org, cl.Org) and user.org.kind == "research"
    assert user.roles == ("developer",)


def test_whoami_without_org():
    def handler(request):
        return httpx.Response(
            200,
            json={
                "id": 5,
                "username": "a",
                "display_name": "A",
                "org": None,
                "roles": [],
                "lang": "en",
                "x": 1,
            },
        )

    with cl.Client(DEFAULT_URL, "clk_x", transport=httpx.MockTransport(handler)) as c:
        assert c.whoami() == cl.User(5, "a", "A", None, (), "en")


def test_projects_lists_only_member_projects(client):
    projects = client.projects()
    assert [p.id for p in projects] == [7]
    assert projects[0].members[0] == cl.ProjectMember(ME, "u1", "developer")
    assert projects[0].datasets == (cl.ProjectDataset(11, "population"),)


def test_project_by_id(client):
    assert client.project(7) == _project(7)


def test_project_not_member_and_missing(client):
    with pytest.raises(cl.PermissionDeniedError) as denied:
        client.project(8)
    assert denied.value.details == {"permission": "project.read", "reason": "project_member"}
    with pytest.raises(cl.NotFoundError):
        client.project(404)


def test_ids_must_be_ints(client, fake):
    for bad in ("7", "7/../../whoami", True, 7.0):
        with pytest.raises(TypeError):
            client.project(bad)
        with pytest.raises(TypeError):
            client.dataset(bad)
    assert fake.requests == []


def test_datasets_sends_only_given_filters(client, fake):
    assert [d.name for d in client.datasets()] == ["population", "firms"]
    assert fake.requests[-1].url.params.multi_items() == []
    found = client.datasets("人口", department=3, grade="general_3", tag="person")
    assert [d.id for d in found] == [11]
    assert dict(fake.requests[-1].url.params) == {
        "q": "人口",
        "department": "3",
        "grade": "general_3",
        "tag": "person",
    }
    assert client.datasets(department=4) == [FIRMS]
    with pytest.raises(TypeError, match="department must be an int"):  # a name, not an id
        client.datasets(department="市场监管局")  # type: ignore[arg-type]
    assert client.datasets(tag="nothing") == []


def test_dataset_list_is_summary_and_detail_is_full(client):
    summary = client.datasets(tag="person")[0]
    assert summary.columns == () and summary.description == ""
    detail = client.dataset(11)
    assert detail == POP
    assert detail.versions[0].created_at == dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    assert detail.columns[1].tags == ("pii",)


def test_from_json_ignores_extra_fields_and_rejects_missing():
    data = FIRMS.to_json() | {"owner": "someone", "new_field": [1, 2]}
    assert cl.Dataset.from_json(data) == FIRMS
    del data["grade"]
    with pytest.raises(cl.CountylabClientError) as info:
        cl.Dataset.from_json(data)
    assert info.value.code == "invalid_response" and info.value.details == {"field": "grade"}
    with pytest.raises(cl.CountylabClientError):
        cl.Org.from_json({"id": "1", "name": "x", "kind": "research"})


def test_missing_items_is_invalid_response():
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"projects": []}))
    client = cl.Client(DEFAULT_URL, "clk_x", transport=transport)
    with client as c, pytest.raises(cl.CountylabClientError) as e:
        c.projects()
    assert e.value.code == "invalid_response"


# -- push_rows ---------------------------------------------------------------------------------


def test_push_rows_generates_uuid4_key(client, fake):
    result = client.push_rows(11, [{"town": "东镇", "age": 30}, {"town": "西镇", "age": 41}])
    assert result.accepted == 2 and result.duplicate is False
    assert uuid.UUID(result.idempotency_key).version == 4
    assert _body(fake.requests[-1])["idempotency_key"] == result.idempotency_key
    assert fake.pushes[0].rows == [{"town": "东镇", "age": 30}, {"town": "西镇", "age": 41}]
    other = client.push_rows(11, [{"town": "南镇"}])
    assert other.idempotency_key != result.idempotency_key


def test_push_rows_same_explicit_key_is_applied_once(client, fake):
    first = client.push_rows(11, [{"town": "东镇"}], idempotency_key="batch-1")
    again = client.push_rows(11, [{"town": "东镇"}], idempotency_key="batch-1")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.accepted == 0 and again.idempotency_key == "batch-1"  # the server's answer to a repeat
    assert len(fake.pushes) == 1


def test_push_rows_retries_connect_errors_with_same_key(client, fake):
    fake.fail_next(2)
    result = client.push_rows(11, [{"town": "东镇"}])
    keys = [_body(r)["idempotency_key"] for r in fake.requests]
    assert len(keys) == 3 and len(set(keys)) == 1 == len(fake.pushes)
    assert result.duplicate is False


def test_push_rows_lost_response_is_not_applied_twice(client, fake):
    fake.fail_next(1, exc_type=httpx.ReadTimeout, after_apply=True)
    result = client.push_rows(11, [{"town": "东镇"}, {"town": "西镇"}])
    assert len(fake.requests) == 2
    assert result.duplicate is True and result.accepted == 0  # the retry itself added nothing
    assert len(fake.pushes) == 1


def test_push_rows_gives_up_after_max_retries(client, fake):
    fake.fail_next(10)
    with pytest.raises(cl.TransportError) as info:
        client.push_rows(11, [{"town": "东镇"}])
    assert len(fake.requests) == 1 + client.max_retries == 4
    assert info.value.url == f"{DEFAULT_URL}/api/datasets/11/rows"
    assert fake.pushes == []


def test_push_rows_does_not_retry_http_errors(client, fake):
    with pytest.raises(cl.ValidationError) as info:
        client.push_rows(11, [{"town": "东镇"}, {"nope": 1}])
    assert info.value.details == {"row": 1, "column": "nope", "reason": "unknown column"}
    assert len(fake.requests) == 1
    fake.respond("POST", "/api/datasets/11/rows", httpx.Response(503, text="busy"))
    with pytest.raises(cl.ServerError):
        client.push_rows(11, [{"town": "东镇"}])
    assert len(fake.requests) == 2


def test_push_rows_encodes_nan_dates_and_decimals(client, fake):
    from decimal import Decimal

    client.push_rows(
        11, [{"town": "东镇", "age": float("nan")}, {"town": dt.date(2024, 1, 2), "age": Decimal("1.5")}]
    )
    assert fake.pushes[0].rows == [{"town": "东镇", "age": None}, {"town": "2024-01-02", "age": "1.5"}]


def test_push_rows_rejects_non_mapping_rows(client, fake):
    with pytest.raises(TypeError, match=r"rows\[1\]"):
        client.push_rows(11, [{"town": "a"}, ["a"]])
    assert fake.requests == []


def test_push_to_unknown_dataset(client):
    with pytest.raises(cl.NotFoundError):
        client.push_rows(999, [{"a": 1}])


# -- query -------------------------------------------------------------------------------------


def test_query_returns_frame_with_intervals_and_attrs(client, fake):
    df = client.query(SQL, epsilon=0.25, project_id=7)
    assert list(df.columns) == ["town", "n", "n_ci_low", "n_ci_high"]
    assert df["town"].tolist() == ["东镇", "西镇"]
    assert df["n"].tolist() == [120, 80]
    assert df["n_ci_low"].tolist() == [110.0, 70.5]
    assert df["n_ci_high"].tolist() == [130.0, 89.5]
    assert df.attrs == {
        "epsilon_spent": 0.25,
        "cached": False,
        "budget_remaining": 0.75,
        "notes": ["counts are noisy"],
    }
    assert _body(fake.requests[-1]) == {"sql": SQL, "epsilon": 0.25, "project_id": 7}


def test_repeated_query_is_cached_and_free(client, fake):
    client.query(SQL, epsilon=0.5, project_id=7)
    again = client.query(SQL, epsilon=0.5, project_id=7)
    assert again.attrs["cached"] is True and again.attrs["epsilon_spent"] == 0.0
    assert fake.budgets[7] == pytest.approx(0.5)


def test_query_over_budget_is_quota_error(client, fake):
    client.query(SQL, epsilon=0.75, project_id=7)
    with pytest.raises(cl.QuotaExceededError) as info:
        client.query_result(SQL, epsilon=0.5, project_id=7)
    assert info.value.status_code == 429 and info.value.details["epsilon_needed"] == 0.5


def test_query_result_without_pandas_and_extra_interval_columns():
    payload = {
        "columns": ["n"],
        "rows": [[3], [4]],
        "intervals": {"n": [[1, 5], None], "mean_age": [[30.0, 31.0], [None, None]]},
        "epsilon_spent": 0.1,
        "cached": False,
        "budget_remaining": 0.9,
        "notes": [],
        "unexpected": True,
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=payload))
    with cl.Client(DEFAULT_URL, "clk_x", transport=transport) as c:
        result = c.query_result("SELECT 1", epsilon=0.1, project_id=1)
        assert result.intervals == {"n": ((1.0, 5.0), None), "mean_age": ((30.0, 31.0), None)}
        df = c.query("SELECT 1", epsilon=0.1, project_id=1)
    assert list(df.columns) == ["n", "n_ci_low", "n_ci_high", "mean_age_ci_low", "mean_age_ci_high"]
    assert df["n_ci_high"].isna().tolist() == [False, True]


def test_malformed_query_answer_is_invalid_response():
    payload = {
        "columns": ["a", "b"],
        "rows": [[1]],
        "epsilon_spent": 0,
        "cached": False,
        "budget_remaining": 1,
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=payload))
    client = cl.Client(DEFAULT_URL, "clk_x", transport=transport)
    with client as c, pytest.raises(cl.CountylabClientError) as e:
        c.query_result("SELECT 1", epsilon=0.1, project_id=1)
    assert e.value.code == "invalid_response"


# -- lazy pandas -------------------------------------------------------------------------------


def test_importing_the_sdk_does_not_import_pandas():
    code = (
        "import sys, countylab_client, countylab_client.testing; "
        "assert 'pandas' not in sys.modules, 'pandas imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_query_without_pandas_says_how_to_install_and_spends_nothing(client, fake, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'countylab-client\[pandas\]'"):
        client.query(SQL, epsilon=0.5, project_id=7)
    assert fake.requests == []
    assert fake.budgets[7] == 1.0
    result = client.query_result(SQL, epsilon=0.5, project_id=7)
    assert result.rows == ANSWER.rows


# -- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "user_error", cl.ValidationError),
        (401, "not_authenticated", cl.AuthenticationError),
        (403, "permission_denied", cl.PermissionDeniedError),
        (404, "not_found", cl.NotFoundError),
        (409, "conflict", cl.ConflictError),
        (422, "validation_failed", cl.ValidationError),
        (429, "quota_exceeded", cl.QuotaExceededError),
        (403, "quota_exceeded", cl.QuotaExceededError),
        (500, "internal", cl.ServerError),
        (503, "internal", cl.ServerError),
        (413, "too_large", cl.CountylabClientError),
        (418, "conflict", cl.ConflictError),
    ],
)
def test_error_mapping(fake, client, status, code, expected):
    details = {"row": 3, "column": "age"}
    body = {"error": {"code": code, "message": "出错了", "details": details}}
    fake.respond("GET", "/api/whoami", httpx.Response(status, json=body))
    with pytest.raises(cl.CountylabClientError) as info:
        client.whoami()
    assert type(info.value) is expected
    assert (info.value.status_code, info.value.code, info.value.message) == (status, code, "出错了")
    assert info.value.details == details
    assert str(info.value) == f"[{status} {code}] 出错了"


def test_non_json_error_body(fake, client):
    fake.respond("GET", "/api/whoami", httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(cl.ServerError) as info:
        client.whoami()
    assert info.value.code == "internal"
    assert "<html>Bad Gateway</html>" in info.value.message


def test_non_json_success_body(fake, client):
    fake.respond("GET", "/api/whoami", httpx.Response(200, text="hello"))
    with pytest.raises(cl.CountylabClientError) as info:
        client.whoami()
    assert info.value.code == "invalid_response" and info.value.status_code == 200


def test_all_http_errors_share_the_base_class():
    for cls in (cl.AuthenticationError, cl.ServerError, cl.TransportError, cl.ValidationError):
        assert issubclass(cls, cl.CountylabClientError)


# -- transport errors --------------------------------------------------------------------------


def test_transport_error_wraps_httpx_with_url(fake):
    fake.fail_next(1, exc_type=httpx.ConnectTimeout)
    with fake.client(lang="en") as c, pytest.raises(cl.TransportError) as info:
        c.whoami()
    err = info.value
    assert err.url == f"{DEFAULT_URL}/api/whoami" and err.details == {"url": err.url}
    assert err.code == "timeout" and err.status_code is None
    assert err.message.startswith(f"Could not reach the countylab server at {err.url}")
    assert isinstance(err.__cause__, httpx.ConnectTimeout)


def test_get_requests_are_not_retried(client, fake):
    fake.fail_next(1)
    with pytest.raises(cl.TransportError):
        client.datasets()
    assert len(fake.requests) == 1


def test_real_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    client = cl.Client(url, "clk_x", timeout=5, max_retries=1, retry_backoff=0)
    with client as c, pytest.raises(cl.TransportError) as info:
        c.push_rows(1, [{"a": 1}])
    assert info.value.url == f"{url}/api/datasets/1/rows"
    assert info.value.code == "transport_error"
    assert "无法连接 countylab 服务器" in info.value.message
