"""``countylab query -o`` and the SDK's ``QueryResult`` (names, headers, to_excel/to_csv) against a
live server."""

from __future__ import annotations

import io

import openpyxl
import pytest

from countylab.cli import main
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab_client import Client, CountylabClientError, QueryResult
from tests.browser import live_server
from tests.privacy_gateway.conftest import ELDERLY_SQL, project_id, user_id


def test_cli_prints_names_and_words_and_saves_xlsx(demo_lab, capsys, tmp_path):
    with demo_lab.tx() as s:
        dev = ids.create_token(s, SYSTEM, user_id=user_id(demo_lab, "developer"), name="cli", days=1).token
    pid = str(project_id(demo_lab))
    target = tmp_path / "结果.xlsx"
    with live_server(demo_lab) as url:
        args = ["query", ELDERLY_SQL, "-p", pid, "-e", "0.5", "--url", url, "--token", dev]
        assert main([*args, "-o", str(tmp_path / "x.pdf")]) != 0  # refused before anything is spent
        assert main([*args, "-o", str(target)]) == 0
        out = capsys.readouterr().out
        assert "人数" in out and "(330729001)" in out and "ε spent" in out and "结果.xlsx" in out
        assert "1.5" in out  # exactly one charge: the refused file name cost nothing
        wb = openpyxl.load_workbook(io.BytesIO(target.read_bytes()))
        cells = [str(c.value) for row in wb.active.iter_rows() for c in row if c.value is not None]
        assert "人数" in cells and any("ε = 0.5" in c for c in cells)

        with Client(url, dev) as c:
            r = c.query_result(ELDERLY_SQL, epsilon=0.5, project_id=int(pid))
            assert r.cached and r.query_id is not None
            assert r.headers == ("乡镇", "人数")
            towns = r.names["town_code"]
            assert len(towns) == 12 and all(towns)
            df = r.to_pandas(names=True)
            assert (
                list(df.columns[:2]) == ["town_code", "town_code_name"]
                and df["town_code_name"].iloc[0] == towns[0]
            )
            assert list(r.to_pandas().columns) == [
                "town_code",
                "count(*)",
                "count(*)_ci_low",
                "count(*)_ci_high",
            ]
            saved = r.to_excel(tmp_path / "sdk.xlsx")
            assert openpyxl.load_workbook(saved).active.max_row > 12
            assert r.to_csv(tmp_path / "sdk.csv").read_bytes().startswith(b"\xef\xbb\xbf")
            assert c.download_answer(r.query_id, format="csv").startswith(b"\xef\xbb\xbf")
            assert c.budget(int(pid))  # still reachable; budget unchanged by downloads
    bare = QueryResult.from_json(
        {"columns": ["n"], "rows": [[1]], "epsilon_spent": 0.1, "cached": False, "budget_remaining": 1.0}
    )
    with pytest.raises(CountylabClientError):
        bare.to_excel(tmp_path / "no.xlsx")
