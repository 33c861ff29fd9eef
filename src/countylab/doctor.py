"""``countylab doctor``: is this host ready to run a lab, and if not, what to do about it.

A county server is set up once by someone who is not a countylab developer.  Each missing piece
shows up late and far from its cause otherwise: jobs that all fail with ``no_sandbox`` (no
bubblewrap, no user namespaces, no sandbox user), a fork bomb that is not bounded (no cgroups),
tofu boxes in previews (no CJK font), every chart marked "needs human eyes" (no Tesseract with
Chinese), a server that stops at its first write (a full disk), a login page that errors (the
database is unreachable or not migrated).  The doctor asks the same questions the lab asks at run
time, with the lab's own functions where they exist, and answers each with a fix in both
languages.

The checks look but do not touch: nothing is created (no data folder, no database file, no
cgroup).  Each check is one small function returning a :class:`Check`; :func:`run_checks` runs
them all.  ``fail`` means something the lab needs is missing (exit 1); ``warn`` means the lab
works, with less protection or comfort than it could have.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

from countylab.config import Settings
from countylab.errors import CountylabError
from countylab.identity.secrets import INSECURE_TEST_HASHING_ENV, insecure_test_hashing

Status = Literal["ok", "warn", "fail"]

#: Below this much free space in the data folder's file system the lab is refused (fail) …
DISK_FAIL_BYTES = 1 << 30
#: … and below this it is flagged (warn): one county's warehouse versions grow by GiBs a year.
DISK_WARN_BYTES = 10 << 30
#: The cgroup controllers whose limits the sandbox sets on every job (``sandbox/cgroups.py``).
CGROUP_CONTROLLERS = ("memory", "pids", "cpu")
SYSTEM_DEPS = "bash scripts/system-deps.sh runtime"


@dataclass(frozen=True)
class Check:
    """One answer: what was looked at, what was found and, unless ``ok``, how to fix it."""

    name: str
    status: Status
    found_zh: str
    found_en: str
    fix_zh: str = ""
    fix_en: str = ""

    def found(self, lang: str) -> str:
        return self.found_en if lang.startswith("en") else self.found_zh

    def fix(self, lang: str) -> str:
        return self.fix_en if lang.startswith("en") else self.fix_zh

    def as_dict(self, lang: str) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "found": self.found(lang), "fix": self.fix(lang)}


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when no required check failed (warnings do not count)."""
        return all(c.status != "fail" for c in self.checks)

    def as_dict(self, lang: str) -> dict[str, object]:
        return {"ok": self.ok, "checks": [c.as_dict(lang) for c in self.checks]}


def _ok(name: str, zh: str, en: str) -> Check:
    return Check(name, "ok", zh, en)


# -- sandbox ----------------------------------------------------------------------------------
def check_sandbox() -> Check:
    """bubblewrap starts a trivial sandbox in the mode the lab would use (the lab's own probe)."""
    from countylab.sandbox import bwrap, identity, runner

    binary = bwrap.find_bwrap()
    if binary is None:
        return Check(
            "sandbox",
            "fail",
            "未安装 bubblewrap：所有任务都会以 no_sandbox 失败",
            "bubblewrap is not installed: every job would fail with no_sandbox",
            f"安装它：apt-get install bubblewrap（或运行 {SYSTEM_DEPS}）",
            f"install it: apt-get install bubblewrap (or run {SYSTEM_DEPS})",
        )
    mode = identity.launch_mode()
    if runner.sandbox_available():
        return _ok(
            "sandbox",
            f"bubblewrap 能启动沙箱（{binary}，模式 {mode}）",
            f"bubblewrap starts a sandbox ({binary}, mode {mode})",
        )
    if mode == "userns":
        return Check(
            "sandbox",
            "fail",
            "bubblewrap 无法创建用户命名空间",
            "bubblewrap cannot create a user namespace",
            "允许非特权用户命名空间：sysctl -w kernel.unprivileged_userns_clone=1；Ubuntu 24.04 另需 "
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0（写入 /etc/sysctl.d/ 以便重启后保留）",
            "allow unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1; on Ubuntu "
            "24.04 also sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (persist it in "
            "/etc/sysctl.d/)",
        )
    return Check(
        "sandbox",
        "fail",
        f"bubblewrap 无法以 {mode} 模式启动沙箱",
        f"bubblewrap cannot start a sandbox in {mode} mode",
        "检查沙箱用户和 setpriv（util-linux）、uidmap 是否就绪（见下方 sandbox_user 一项），容器中运行时"
        "需要 --privileged 或允许 unshare 的 seccomp 配置",
        "check the sandbox user, setpriv (util-linux) and uidmap (see the sandbox_user check); in a "
        "container the lab needs --privileged or a seccomp profile that allows unshare",
    )


def check_sandbox_user(settings: Settings) -> Check:
    """Jobs never run as root or as the lab's user: a root lab needs the dedicated system user,
    a service-user lab a subordinate uid range; with neither the lab refuses to run jobs."""
    from countylab.sandbox import identity

    mode = identity.launch_mode()
    if mode == "drop":
        try:
            who = identity.sandbox_identity(settings.sandbox_user)
        except CountylabError as exc:
            return Check(
                "sandbox_user",
                "fail",
                exc.message_zh,
                exc.message_en,
                f"创建它：useradd --system --no-create-home --shell /usr/sbin/nologin {settings.sandbox_user}"
                f"（或运行 {SYSTEM_DEPS}）",
                f"create it: useradd --system --no-create-home --shell /usr/sbin/nologin "
                f"{settings.sandbox_user} (or run {SYSTEM_DEPS})",
            )
        if not identity.setpriv_available():
            return Check(
                "sandbox_user",
                "fail",
                f"缺少 {identity.SETPRIV}：无法把任务降权到沙箱用户",
                f"{identity.SETPRIV} is missing: jobs cannot be dropped to the sandbox user",
                "安装 util-linux：apt-get install util-linux",
                "install util-linux: apt-get install util-linux",
            )
        return _ok(
            "sandbox_user",
            f"以 root 运行：任务降权为 {who.user}（uid {who.uid}）",
            f"running as root: jobs drop to {who.user} (uid {who.uid})",
        )
    ids = identity.subordinate_ids()
    if mode == "subuid" and ids is not None:
        return _ok(
            "sandbox_user",
            f"服务用户：任务以从属 uid {ids[0]} 运行",
            f"service user: jobs run as subordinate uid {ids[0]}",
        )
    return Check(
        "sandbox_user",
        "fail",
        "非 root 且没有从属 uid 范围：实验室拒绝运行任务",
        "not root and no subordinate uid range: the lab refuses to run jobs",
        "安装 uidmap 并给服务用户分配范围：usermod --add-subuids 500000-565535 --add-subgids "
        "500000-565535 <用户>（见 docs/how-to/county-server.md）",
        "install uidmap and give the service user a range: usermod --add-subuids 500000-565535 "
        "--add-subgids 500000-565535 <user> (see docs/how-to/county-server.md)",
    )


# -- cgroups ----------------------------------------------------------------------------------
def _cgroup_mounts(mounts_file: Path) -> list[tuple[Path, str, set[str]]]:
    found: list[tuple[Path, str, set[str]]] = []
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
            found.append((Path(fields[1]), fields[2], set(fields[3].split(","))))
    return found


def _v2_bases(mount: Path, proc_cgroup: Path) -> list[Path]:
    """Where the lab may create its group: the v2 root, or the subtree systemd delegated to it."""
    bases = [mount]
    try:
        own = next((ln[3:] for ln in proc_cgroup.read_text().splitlines() if ln.startswith("0::")), "")
    except OSError:
        own = ""
    if own.strip("/"):
        delegated = mount / own.strip("/")
        bases += [delegated.parent, delegated]
    return bases


def _v1_writable(point: Path) -> bool:
    """The lab can make its ``countylab`` group here, or one it may use already exists."""
    return os.access(point, os.W_OK) or os.access(point / "countylab" / "cgroup.procs", os.W_OK)


def check_cgroups(
    mounts_file: Path = Path("/proc/self/mounts"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> Check:
    """cgroup v2 with memory, pids and cpu writable here (ok); v1 hierarchies (warn); none (fail).

    Read-only: it looks for the controllers and write access where ``detect_cgroups`` would
    create the lab's group, and creates nothing."""
    mounts = _cgroup_mounts(mounts_file)
    for point, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        for base in _v2_bases(point, proc_cgroup):
            try:
                have = set((base / "cgroup.controllers").read_text().split())
            except OSError:
                continue
            if set(CGROUP_CONTROLLERS) <= have and os.access(base / "cgroup.subtree_control", os.W_OK):
                return _ok(
                    "cgroups",
                    f"cgroup v2（{base}）：{' '.join(sorted(have))}",
                    f"cgroup v2 ({base}): {' '.join(sorted(have))}",
                )
    v1 = sorted(
        c
        for c in CGROUP_CONTROLLERS
        if any(t == "cgroup" and c in opts and _v1_writable(p) for p, t, opts in mounts)
    )
    v2_fix_zh = (
        "改用 cgroup v2：内核参数 systemd.unified_cgroup_hierarchy=1；以服务运行时在 systemd 单元中设 "
        "Delegate=yes 和 DelegateSubgroup=main（见 docs/how-to/county-server.md）"
    )
    v2_fix_en = (
        "use cgroup v2: kernel parameter systemd.unified_cgroup_hierarchy=1; as a service set "
        "Delegate=yes and DelegateSubgroup=main in the systemd unit (see docs/how-to/county-server.md)"
    )
    if v1:
        missing = [c for c in CGROUP_CONTROLLERS if c not in v1]
        gap_zh = f"；缺少 {', '.join(missing)}，这些限额不生效" if missing else ""
        gap_en = f"; {', '.join(missing)} missing, those limits are off" if missing else ""
        return Check(
            "cgroups",
            "warn",
            f"只有 cgroup v1（{', '.join(v1)}）可写：任务限额可用{gap_zh}",
            f"only cgroup v1 ({', '.join(v1)}) is writable: job limits work{gap_en}",
            v2_fix_zh,
            v2_fix_en,
        )
    return Check(
        "cgroups",
        "fail",
        "没有可写的 cgroup：任务没有内存、进程数和 CPU 限额（fork 炸弹不受限）",
        "no writable cgroup: jobs run without memory, pids and CPU limits (a fork bomb is unbounded)",
        v2_fix_zh,
        v2_fix_en,
    )


# -- fonts and OCR ----------------------------------------------------------------------------
def check_fonts() -> Check:
    """A CJK font, so that previews and rendered charts show Chinese, not boxes."""
    fc_list = shutil.which("fc-list")
    fix_zh = f"安装中文字体：apt-get install fontconfig fonts-noto-cjk（或运行 {SYSTEM_DEPS}）"
    fix_en = f"install CJK fonts: apt-get install fontconfig fonts-noto-cjk (or run {SYSTEM_DEPS})"
    if fc_list is None:
        return Check(
            "fonts",
            "fail",
            "未安装 fontconfig（fc-list）",
            "fontconfig (fc-list) is not installed",
            fix_zh,
            fix_en,
        )
    done = subprocess.run(
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=60, check=False
    )
    families = sorted({line.split(",")[0].strip() for line in done.stdout.splitlines() if line.strip()})
    if not families:
        return Check(
            "fonts",
            "fail",
            "没有中文字体（fc-list :lang=zh 为空）",
            "no CJK font (fc-list :lang=zh is empty)",
            fix_zh,
            fix_en,
        )
    shown = ", ".join(families[:3]) + ("…" if len(families) > 3 else "")
    return _ok("fonts", f"中文字体：{shown}", f"CJK fonts: {shown}")


def check_tesseract() -> Check:
    """Tesseract with Simplified Chinese, which the airlock uses to read text drawn into images."""
    from countylab.airlock.checks.ocr import find_tesseract

    fix_zh = f"安装：apt-get install tesseract-ocr tesseract-ocr-chi-sim（或运行 {SYSTEM_DEPS}）"
    fix_en = f"install it: apt-get install tesseract-ocr tesseract-ocr-chi-sim (or run {SYSTEM_DEPS})"
    binary = shutil.which("tesseract")
    if binary is None:
        return Check(
            "tesseract",
            "fail",
            "未安装 Tesseract：出域申请中的图片无法自动识别文字",
            "Tesseract is not installed: images in release requests cannot be read automatically",
            fix_zh,
            fix_en,
        )
    if find_tesseract("chi_sim+eng") is None:
        return Check(
            "tesseract",
            "fail",
            f"Tesseract（{binary}）缺少简体中文或英文语言包（chi_sim、eng）",
            f"Tesseract ({binary}) lacks the Simplified Chinese or English data (chi_sim, eng)",
            fix_zh,
            fix_en,
        )
    return _ok("tesseract", f"Tesseract（{binary}）：chi_sim+eng", f"Tesseract ({binary}): chi_sim+eng")


# -- data folder and database -----------------------------------------------------------------
def _existing_ancestor(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(settings: Settings) -> Check:
    """Free space where the data folder is (or would be created)."""
    where = _existing_ancestor(settings.data_dir)
    free = shutil.disk_usage(where).free
    gib = free / (1 << 30)
    fix_zh = "腾出空间或把 data_dir 放到更大的磁盘上"
    fix_en = "free some space or put data_dir on a larger disk"
    if free < DISK_FAIL_BYTES:
        return Check(
            "disk",
            "fail",
            f"{where} 仅剩 {gib:.1f} GiB",
            f"only {gib:.1f} GiB free at {where}",
            fix_zh,
            fix_en,
        )
    if free < DISK_WARN_BYTES:
        return Check(
            "disk",
            "warn",
            f"{where} 仅剩 {gib:.1f} GiB",
            f"only {gib:.1f} GiB free at {where}",
            fix_zh,
            fix_en,
        )
    return _ok("disk", f"{where} 可用 {gib:.1f} GiB", f"{gib:.1f} GiB free at {where}")


def check_database(settings: Settings) -> Check:
    """The metadata store answers and its schema is at the newest migration."""
    from sqlalchemy.engine import make_url

    from countylab.storage import migrate
    from countylab.storage.db import make_engine

    url = settings.resolved_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    init_zh = "运行 countylab init（新实验室）或 countylab init 以迁移到最新版本（已有实验室，先备份）"
    init_en = (
        "run countylab init (a new lab), or countylab init to migrate an existing one (back it up first)"
    )
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return Check(
            "database", "fail", f"数据库不存在：{shown}", f"no database at {shown}", init_zh, init_en
        )
    engine = make_engine(url)
    try:
        current = migrate.current_revision(engine)
        head = migrate.head_revision(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error means "unreachable"; named below
        problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        return Check(
            "database",
            "fail",
            f"无法连接数据库 {shown}：{problem}",
            f"cannot reach the database {shown}: {problem}",
            "检查 database_url、数据库服务是否运行以及账号权限（见 docs/how-to/county-server.md）",
            "check database_url, that the database server runs, and the role's rights "
            "(see docs/how-to/county-server.md)",
        )
    finally:
        engine.dispose()
    if current != head:
        return Check(
            "database",
            "fail",
            f"数据库 {shown} 的结构版本为 {current or '（空）'}，最新为 {head}",
            f"the database {shown} is at schema {current or '(empty)'}, newest is {head}",
            init_zh,
            init_en,
        )
    return _ok(
        "database", f"数据库 {shown}：结构为最新（{head}）", f"database {shown}: schema up to date ({head})"
    )


# -- settings ---------------------------------------------------------------------------------
def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_settings(settings: Settings) -> list[Check]:
    """Settings that load but are risky together; each is a warning, except a missing Ray."""
    found: list[Check] = []
    if not _loopback(settings.host) and not settings.cookie_secure:
        found.append(
            Check(
                "settings.cookie_secure",
                "warn",
                f"监听 {settings.host} 且 cookie_secure = false：登录 Cookie 可能经明文 HTTP 发送",
                f"listening on {settings.host} with cookie_secure = false: login cookies may travel over "
                "plain HTTP",
                "在 HTTPS 反向代理之后运行并设置 cookie_secure = true",
                "serve behind an HTTPS reverse proxy and set cookie_secure = true",
            )
        )
    if settings.data_dir.exists() and settings.data_dir.stat().st_mode & 0o077:
        found.append(
            Check(
                "settings.data_dir",
                "warn",
                f"{settings.data_dir} 对其他用户可读",
                f"{settings.data_dir} is readable by other users",
                f"chmod 700 {settings.data_dir}",
                f"chmod 700 {settings.data_dir}",
            )
        )
    if settings.executor == "ray" and find_spec("ray") is None:
        found.append(
            Check(
                "settings.executor",
                "fail",
                "executor = ray，但未安装 Ray",
                "executor = ray but Ray is not installed",
                "安装 countylab[cluster]（pip install 'countylab[cluster]'）或设置 executor = local",
                "install countylab[cluster] (pip install 'countylab[cluster]') or set executor = local",
            )
        )
    if insecure_test_hashing():
        found.append(
            Check(
                "settings.password_hashing",
                "fail",
                f"设置了 {INSECURE_TEST_HASHING_ENV}=1：新密码以仅供测试的最低强度哈希保存",
                f"{INSECURE_TEST_HASHING_ENV}=1 is set: new passwords are stored with the test-only, "
                "weakest hash",
                f"取消该环境变量（unset {INSECURE_TEST_HASHING_ENV}），并让期间设置密码的用户重设密码",
                f"unset {INSECURE_TEST_HASHING_ENV} and have users who set a password meanwhile reset it",
            )
        )
    if not found:
        found.append(_ok("settings", "设置有效", "settings are valid"))
    return found


def settings_failed(problem: str) -> Check:
    """The settings did not load (the command could not build :class:`Settings`)."""
    return Check(
        "settings",
        "fail",
        f"设置有误：{problem}",
        f"invalid settings: {problem}",
        "改正所列设置（见 docs/reference/settings.md）",
        "correct the named settings (see docs/reference/settings.md)",
    )


def run_checks(settings: Settings | None, settings_problem: str = "") -> Report:
    """Every check; without settings (they did not load) only the host checks and that failure."""
    host: list[Callable[[], Check]] = [check_sandbox, check_cgroups, check_fonts, check_tesseract]
    checks = [check() for check in host]
    if settings is None:
        return Report((*checks, settings_failed(settings_problem)))
    checks.insert(1, check_sandbox_user(settings))
    checks += [check_disk(settings), check_database(settings), *check_settings(settings)]
    return Report(tuple(checks))
