"""Who a job runs as on the host: a dedicated unprivileged uid/gid, never root, never the lab.

A user namespace maps the uids inside it to the uid that *created* it.  When the lab runs as
root, bubblewrap's ``--unshare-user --uid 65534`` therefore gives a job that is "nobody" inside
and **host root** outside: every file the kernel checks against the host uid (``/proc/sys``,
files bound in, core-dump helpers) treats it as root.

So when the lab runs as root the sandbox uses no user namespace at all.  bubblewrap (as root)
builds the mount, pid, network, IPC and UTS namespaces, keeps only ``CAP_SETUID``,
``CAP_SETGID`` and ``CAP_SETPCAP`` for its child, and the child executes ``setpriv`` (util-linux),
which switches to the sandbox user (``countylab-sandbox``, created by
``scripts/system-deps.sh``: no home, no shell, owns nothing), clears the supplementary groups,
the inheritable and ambient capabilities and the whole bounding set, sets no_new_privs and
locks the securebits, then executes the job.  After ``setresuid`` from 0 the kernel clears
the permitted and effective sets, so the job holds no capability anywhere.

When the lab runs as a service user (the county server: ``User=countylab`` under systemd) that
owns a subordinate uid/gid range (``/etc/subuid``, ``/etc/subgid``) and ``newuidmap`` is
installed (package ``uidmap``), the launch is the same with one step in front: ``unshare``
(util-linux) makes a user namespace in which the service user is 0 and inner uid/gid
:data:`INNER_ID` is the **first subordinate id** of the range (through ``newuidmap``).
bubblewrap runs as root of that namespace, ``setpriv`` drops to :data:`INNER_ID`, and the job's
host uid is the subordinate id: a uid no account has, which owns nothing, is not the service
user and is not root.  This is the ``subuid`` mode.

Otherwise (a laptop, ``countylab run`` on dummy data) bubblewrap cannot change the host uid
without privileges, and the job runs in a user namespace as that user: the ``userns`` mode,
never for real data.  :func:`launch_mode` says which (see docs/explanation/sandbox.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from countylab.errors import Conflict

DEFAULT_SANDBOX_USER = "countylab-sandbox"
SETPRIV = "/usr/bin/setpriv"
#: Capabilities bubblewrap keeps for its child so that setpriv can drop to the sandbox uid.
DROP_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")

UNSHARE = "/usr/bin/unshare"
NEWUIDMAP = "/usr/bin/newuidmap"
INNER_ID = 1000  # the job's uid/gid inside the namespace in ``subuid`` mode

LaunchMode = Literal["drop", "subuid", "userns"]


@dataclass(frozen=True)
class SandboxIdentity:
    """The host uid/gid a job runs as, and how the launch gets there.

    ``drop``: ``uid``/``gid`` are the sandbox user's, also inside.  ``subuid``: inside the job is
    :data:`INNER_ID`, which the ``launcher`` (``unshare``) maps to ``uid``/``gid`` on the host.
    """

    user: str
    uid: int  # on the host
    gid: int
    inner_uid: int | None = None  # inside the sandbox (default: the host uid)
    inner_gid: int | None = None
    launcher: tuple[str, ...] = ()  # argv put in front of bwrap

    @property
    def job_uid(self) -> int:
        return self.uid if self.inner_uid is None else self.inner_uid

    @property
    def job_gid(self) -> int:
        return self.gid if self.inner_gid is None else self.inner_gid

    def passwd(self) -> bytes:
        """The sandbox's /etc/passwd: its own user is called ``nobody`` inside."""
        return f"nobody:x:{self.job_uid}:{self.job_gid}:nobody:/tmp:/usr/sbin/nologin\n".encode()

    def group(self) -> bytes:
        return f"nogroup:x:{self.job_gid}:\n".encode()

    def setpriv_argv(self) -> list[str]:
        return [
            SETPRIV,
            f"--reuid={self.job_uid}",
            f"--regid={self.job_gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--securebits=+noroot,+noroot_locked,+no_setuid_fixup_locked,+keep_caps_locked",
            "--no-new-privs",
            "--",
        ]


def launch_mode() -> LaunchMode:
    """``drop`` when the lab is root; ``subuid`` for a service user with a subordinate range."""
    if os.geteuid() == 0:
        return "drop"
    return "subuid" if subordinate_ids() is not None else "userns"


def _first_range(path: Path, names: set[str]) -> tuple[int, int] | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in names and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
    return None


@functools.lru_cache(maxsize=1)
def subordinate_ids(etc: Path = Path("/etc")) -> tuple[int, int] | None:
    """The first (uid, gid) of this user's subordinate ranges, if the ``subuid`` mode can work."""
    if not (os.access(NEWUIDMAP, os.X_OK) and os.access(UNSHARE, os.X_OK)):
        return None
    uid = os.getuid()
    try:
        names = {pwd.getpwuid(uid).pw_name, str(uid)}
    except KeyError:
        names = {str(uid)}
    uids = _first_range(etc / "subuid", names)
    gids = _first_range(etc / "subgid", names)
    if uids is None or gids is None or uids[0] in (0, uid) or gids[0] == 0:
        return None
    return uids[0], gids[0]


def subuid_identity(ids: tuple[int, int]) -> SandboxIdentity:
    """``subuid`` mode: the job is :data:`INNER_ID` inside, the first subordinate id outside."""
    host_uid, host_gid = ids
    launcher = (
        UNSHARE,
        "--map-user=0",
        "--map-group=0",
        f"--map-users={host_uid},{INNER_ID},1",
        f"--map-groups={host_gid},{INNER_ID},1",
        "--",
    )
    return SandboxIdentity(f"subuid:{host_uid}", host_uid, host_gid, INNER_ID, INNER_ID, launcher)


def job_identity(user: str = DEFAULT_SANDBOX_USER) -> SandboxIdentity | None:
    """The identity for the current launch mode (None in ``userns`` mode)."""
    mode = launch_mode()
    if mode == "drop":
        return sandbox_identity(user)
    ids = subordinate_ids()
    return subuid_identity(ids) if mode == "subuid" and ids is not None else None


@functools.lru_cache(maxsize=8)
def sandbox_identity(user: str = DEFAULT_SANDBOX_USER) -> SandboxIdentity:
    """Look up the sandbox user; refuse one that is root, the lab's own user, or owns a login."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise Conflict(
            f"沙箱专用系统用户 {user} 不存在：请运行 scripts/system-deps.sh 创建",
            f"the sandbox system user {user} does not exist: run scripts/system-deps.sh to create it",
            reason="no_sandbox_user",
            user=user,
        ) from None
    gid = entry.pw_gid
    if entry.pw_uid == 0 or gid == 0 or entry.pw_uid == os.getuid() or entry.pw_uid == os.geteuid():
        raise Conflict(
            f"沙箱用户 {user} 不能是 root 或实验室自身的用户",
            f"the sandbox user {user} must be neither root nor the lab's own user",
            reason="bad_sandbox_user",
            user=user,
        )
    return SandboxIdentity(user=user, uid=entry.pw_uid, gid=gid)


def setpriv_available() -> bool:
    return Path(SETPRIV).is_file() and os.access(SETPRIV, os.X_OK)


def chown_for_sandbox(path: Path, identity: SandboxIdentity) -> None:
    """Give the outbox to the sandbox user (mode 0700): the only host folder it may write."""
    os.chown(path, identity.uid, identity.gid, follow_symlinks=False)
    path.chmod(0o700)


def ensure_readable(path: Path) -> None:
    """Make a granted dataset readable where it is mounted (files 0444+, folders 0555+).

    The sandbox user reaches it only through the bind mount (the lab's data directory above it
    is 0700), so world-readable bits inside grant nothing on the host.  Walked by directory
    descriptors (``os.fwalk``): a previous action's outbox may hold paths longer than PATH_MAX.
    """
    _add_bits(path, None)
    if not path.is_dir() or path.is_symlink():
        return
    for _, dirs, files, dir_fd in os.fwalk(path):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                _add_bits(Path(name), dir_fd)


def _add_bits(path: Path, dir_fd: int | None) -> None:
    st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        return
    want = 0o555 if stat.S_ISDIR(st.st_mode) else 0o444
    if st.st_mode & want != want:
        os.chmod(path, stat.S_IMODE(st.st_mode) | want, dir_fd=dir_fd)


def protect_data_dir(data_dir: Path) -> None:
    """The lab's data directory: owned by the lab user, mode 0700 (nothing below is reachable)."""
    if data_dir.is_dir() and stat.S_IMODE(data_dir.stat().st_mode) != 0o700:
        data_dir.chmod(0o700)


def job_passwd(user: str = DEFAULT_SANDBOX_USER) -> bytes:
    """The /etc/passwd a job sees in the current launch mode (its own user, called ``nobody``)."""
    who = job_identity(user)
    return who.passwd() if who is not None else b"nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
