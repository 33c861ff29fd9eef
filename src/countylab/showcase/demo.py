"""The demo county's two finished projects (``seed_stories``, one demo step).

养老服务需求预测: the developer's model evaluation (a small regression of home-care visits on age,
living alone and gender, computed here on the demo's synthetic registers) is released through the
airlock with its real automatic checks and two independent checkers' votes; the number of older
people living alone by town is a DP statistic from the gateway, charged to the project's budget.
农作物产量模型: mean yield per crop, released the same way.  The operator writes both stories from
those records and publishes them; the two released tables go into the gallery.

The jobs are recorded as the compute center records a finished job, with the demo builder's
tables in their outbox (the demo may run on a host without a sandbox); everything after that
goes through the same services and checks a user's request would.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb

from countylab.airlock.service import FileChoice
from countylab.identity import service as ids
from countylab.privacy.gateway import QueryRequest
from countylab.showcase import gallery, stories
from countylab.storage.jobs_models import Job, JobAttempt
from countylab.storage.models import Dataset

if TYPE_CHECKING:
    from countylab.demo_steps import DemoContext
    from countylab.lab import Lab


ALONE_BY_TOWN = (
    "SELECT town_code, COUNT(*) AS n FROM residents WHERE lives_alone AND age >= 60 GROUP BY town_code"
)


def _principal(lab: Lab, user_id: int) -> Any:
    with lab.tx() as s:
        return ids.principal_for(s, ids.get_user(s, user_id), "demo")  # checked like a user


def _paths(lab: Lab, name: str) -> str:
    with lab.read() as s:
        ds = s.query(Dataset).filter_by(name=name).one()
        paths = lab.ingestion.read_paths(ds)
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


def _elderly_metrics(lab: Lab) -> bytes:
    """Model evaluation on a held-out quarter: MAE, R² and sizes rounded to hundreds."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.model_selection import train_test_split

    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT r.age, CAST(r.lives_alone AS INTEGER), CASE WHEN r.gender = '女' THEN 1 ELSE 0 END, "
            f"COUNT(c.resident_id) FROM read_parquet({_paths(lab, 'residents')}) r "
            f"LEFT JOIN read_parquet({_paths(lab, 'elderly_care_records')}) c "
            f"ON c.resident_id = r.resident_id "
            f"WHERE r.age >= 60 GROUP BY r.resident_id, r.age, r.lives_alone, r.gender"
        ).fetchall()
    finally:
        con.close()
    x = [[float(a or 0), float(b or 0), float(g)] for a, b, g, _n in rows]
    y = [float(n) for *_x, n in rows]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=2026)
    model = RandomForestRegressor(n_estimators=40, max_depth=5, random_state=2026).fit(x_tr, y_tr)
    pred = model.predict(x_te)
    return _csv(
        ["指标", "数值"],
        [
            ["测试集平均绝对误差（次）", round(float(mean_absolute_error(y_te, pred)), 2)],
            ["决定系数 R²", round(float(r2_score(y_te, pred)), 3)],
            ["训练样本（人，取整到百）", int(round(len(y_tr), -2))],
            ["测试样本（人，取整到百）", int(round(len(y_te), -2))],
        ],
    )


def _crop_table(lab: Lab) -> bytes:
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT crop, COUNT(*) AS plots, ROUND(AVG(yield_kg_per_mu), 0) AS yield "
            f"FROM read_parquet({_paths(lab, 'farmland_plots')}) WHERE yield_kg_per_mu IS NOT NULL "
            f"GROUP BY crop HAVING COUNT(*) >= 10 ORDER BY crop"
        ).fetchall()
    finally:
        con.close()
    return _csv(["作物", "地块数", "平均亩产（公斤）"], [[c, int(p), int(v)] for c, p, v in rows])


def _job(
    lab: Lab,
    project_id: int,
    user_id: int,
    datasets: list[str],
    action: str,
    files: dict[str, bytes],
    title: str,
) -> int:
    """A finished job as the compute center records one, its outbox holding ``files``."""
    with lab.tx() as s:
        job = Job(
            project_id=project_id,
            submitted_by=user_id,
            name=f"{title}（演示预置结果）",
            state="succeeded",
            priority=0,
            spec={
                "version": 1,
                "actions": {
                    action: {
                        "run": "python demo.py",
                        "needs": [],
                        "datasets": datasets,
                        "outputs": [{"path": n, "kind": "table"} for n in files],
                        "resources": {"cpu": 1, "memory_mb": 512, "time_s": 60, "gpu": 0},
                    }
                },
            },
            spec_yaml="",
            code_path="/nonexistent",
            code_sha256="0" * 64,
            code_bytes=0,
            cpu_seconds_reserved=0,
            gpu_seconds_reserved=0,
            attempts=1,
            lost_count=0,
            cancel_requested=False,
            error="",
        )
        s.add(job)
        s.flush()
        outbox = lab.settings.data_dir / "jobs" / "outbox" / str(project_id) / str(job.id) / "attempt-1"
        s.add(
            JobAttempt(
                job_id=job.id,
                number=1,
                worker_id="demo",
                state="succeeded",
                outbox_path=str(outbox),
                actions=[],
                error="",
            )
        )
        for name, data in files.items():
            path = outbox / action / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return job.id


def _release(lab: Lab, ctx: DemoContext, dev: Any, job_id: int, choice: FileChoice, title: str) -> int:
    with lab.tx() as s:
        req = lab.airlock.create(s, dev, job_id, [choice], title=title)
        lab.airlock.submit(s, dev, req.id)
        request_id = req.id
    lab.airlock.check_pending(lab.tx, request_id)
    for name in ("checker", "checker2"):
        checker = _principal(lab, ctx.users[name])
        with lab.tx() as s:
            req = lab.airlock.load(s, request_id)
            if req.state != "under_review":
                break
            lab.airlock.vote(s, checker, request_id, "approve", "演示：已核对，无小单元格")
    with lab.read() as s:
        state = lab.airlock.load(s, request_id).state
    if state != "released":
        raise RuntimeError(f"demo release {request_id} ended {state}")
    return request_id


def _file_id(lab: Lab, request_id: int) -> int:
    from countylab.storage.airlock_models import ReleaseFile

    with lab.read() as s:
        return int(s.query(ReleaseFile).filter_by(request_id=request_id).one().id)


def seed_stories(lab: Lab, ctx: DemoContext, progress: Callable[[str], None]) -> None:
    progress("finishing the two demo projects: releases, a DP statistic, stories / 项目成果与成果展示")
    elderly, crop = ctx.project_ids["elderly-care-demand"], ctx.project_ids["crop-yield"]
    dev, researcher = _principal(lab, ctx.users["developer"]), _principal(lab, ctx.users["researcher"])
    operator = _principal(lab, ctx.users["operator"])

    job = _job(
        lab,
        elderly,
        ctx.users["developer"],
        ["residents", "elderly_care_records"],
        "train",
        {"metrics.csv": _elderly_metrics(lab)},
        "养老服务需求模型训练",
    )
    metrics_release = _release(
        lab,
        ctx,
        dev,
        job,
        FileChoice(
            "train/metrics.csv",
            description="养老服务需求模型的测试集评估指标",
            controls="只含汇总指标，样本量取整到百",
        ),
        "养老服务需求模型评估指标",
    )
    answer = lab.gateway.run(
        dev,
        QueryRequest(
            sql=ALONE_BY_TOWN,
            project_id=elderly,
            epsilon=0.5,
        ),
    )
    job = _job(
        lab,
        crop,
        ctx.users["researcher"],
        ["farmland_plots"],
        "model",
        {"yield_by_crop.csv": _crop_table(lab)},
        "作物产量模型",
    )
    crop_release = _release(
        lab,
        ctx,
        researcher,
        job,
        FileChoice(
            "model/yield_by_crop.csv",
            description="各作物平均亩产",
            controls="每格至少 10 个地块",
            count_columns=("地块数",),
        ),
        "各作物平均亩产",
    )
    metrics_file, crop_file = _file_id(lab, metrics_release), _file_id(lab, crop_release)
    with lab.tx() as s:
        story = stories.save_story(
            s,
            operator,
            elderly,
            title="养老服务需求预测",
            scenario_text="民政局希望知道各乡镇未来居家养老服务需求，合理布局助餐点和上门服务。",
            summary="康养科技公司在实验室内用户籍、养老服务记录训练需求模型，数据不出域；模型评估指标经两名审核员独立审核后出域。"
            "独居老人分布以差分隐私统计发布，附 95% 区间，为助餐点选址提供依据。",
        )
        stories.add_release_chart(s, operator, elderly, metrics_file, kind="table", title="模型评估指标")
        stories.add_dp_chart(
            s,
            operator,
            elderly,
            answer.query_id,
            title="各乡镇独居老人（60 岁以上）",
            category_column="town_code",
            value_column="n",
            unit="人",
        )
        stories.set_published(s, operator, elderly, True)
        crop_story = stories.save_story(
            s,
            operator,
            crop,
            title="农作物产量模型",
            scenario_text="农业农村局希望了解不同作物的单产水平，指导种植结构调整。",
            summary="省农科院在实验室内分析地块、作物和灌溉数据；各作物平均亩产表经审核后出域。",
        )
        stories.add_release_chart(
            s,
            operator,
            crop,
            crop_file,
            kind="bar",
            title="各作物平均亩产",
            category_column="作物",
            value_columns=["平均亩产（公斤）"],
            unit="公斤/亩",
        )
        stories.set_published(s, operator, crop, True)
        gallery.add_item(
            s, operator, metrics_file, title="养老服务需求模型评估指标", caption="测试集上的误差和拟合优度。"
        )
        gallery.add_item(
            s,
            operator,
            crop_file,
            kind="bar",
            title="各作物平均亩产",
            category_column="作物",
            value_columns=["平均亩产（公斤）"],
            unit="公斤/亩",
            caption="按作物汇总，每格至少 10 个地块。",
        )
        ctx.facts["story:elderly"], ctx.facts["story:crop"] = story.id, crop_story.id
    ctx.facts["release:elderly_metrics"] = metrics_release
    ctx.facts["release:crop_yield"] = crop_release
    ctx.facts["query:elderly_alone_by_town"] = answer.query_id
