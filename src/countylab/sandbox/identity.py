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

When the lab runs as an ordinary user (a laptop, ``countylab run`` on dummy data) bubblewrap
cannot change the host uid without privileges, and the job runs in a user namespace as that
user (the old behaviour).  :func:`launch_mode` says which; the lab's job center refuses real
data in ``userns`` mode unless the operator accepts it (see docs/explanation/sandbox.md).
"""

from __future__ import annotations

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

LaunchMode = Literal["drop", "userns"]


@dataclass(frozen=True)
class SandboxIdentity:
    """The host uid/gid a job runs as (``drop`` mode)."""

    user: str
    uid: int
    gid: int

    def passwd(self) -> bytes:
        """The sandbox's /etc/passwd: its own user is called ``nobody`` inside."""
        return f"nobody:x:{self.uid}:{self.gid}:nobody:/tmp:/usr/sbin/nologin\n".encode()

    def group(self) -> bytes:
        return f"nogroup:x:{self.gid}:\n".encode()

    def setpriv_argv(self) -> list[str]:
        return [
            SETPRIV,
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--securebits=+noroot,+noroot_locked,+no_setuid_fixup_locked,+keep_caps_locked",
            "--no-new-privs",
            "--",
        ]


def launch_mode() -> LaunchMode:
    """``drop`` when the lab is root (it can and must switch to the sandbox uid), else ``userns``."""
    return "drop" if os.geteuid() == 0 else "userns"


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
    is 0700), so world-readable bits inside grant nothing on the host.
    """
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            continue
        want = 0o555 if stat.S_ISDIR(st.st_mode) else 0o444
        if st.st_mode & want != want:
            os.chmod(p, stat.S_IMODE(st.st_mode) | want)


def protect_data_dir(data_dir: Path) -> None:
    """The lab's data directory: owned by the lab user, mode 0700 (nothing below is reachable)."""
    if data_dir.is_dir() and stat.S_IMODE(data_dir.stat().st_mode) != 0o700:
        data_dir.chmod(0o700)


def job_passwd(user: str = DEFAULT_SANDBOX_USER) -> bytes:
    """The /etc/passwd a job sees in the current launch mode (its own user, called ``nobody``)."""
    if launch_mode() == "drop":
        return sandbox_identity(user).passwd()
    return b"nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
