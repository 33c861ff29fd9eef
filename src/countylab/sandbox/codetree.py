"""Copy a job's code folder without following anything out of it.

Inside the sandbox a symlink resolves in the sandbox's own filesystem, so it cannot reach the
host; the danger is on the host side, when the lab copies submitted code (a link to
``/etc/shadow`` or to another project's data would be copied as that file's contents).  This copy
keeps relative links that stay inside the folder, and refuses absolute links, links that climb
out, and special files (FIFOs, devices, sockets).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from countylab.errors import PermissionDenied, ValidationFailed


def _escapes(link: Path, root: Path) -> bool:
    target = os.readlink(link)
    if os.path.isabs(target):
        return True
    lexical = Path(os.path.normpath(link.parent / target))
    if not lexical.is_relative_to(root):
        return True
    resolved = (link.parent / target).resolve()  # follows chains of links, all must stay inside
    return not resolved.is_relative_to(root)


def copy_code_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to the new folder ``dst``; raise :class:`PermissionDenied` on an escaping link."""
    root = src.resolve()
    if not root.is_dir():
        raise ValidationFailed(f"代码目录不存在：{src}", f"code folder not found: {src}", reason="not_a_dir")
    dst.mkdir(parents=True, exist_ok=False)
    try:
        _copy_into(root, dst)
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)  # never leave half a copy behind
        raise


def _copy_into(root: Path, dst: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel = here.relative_to(root)
        for name in [*dirnames, *filenames]:
            path = here / name
            out = dst / rel / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                if _escapes(path, root):
                    target = os.readlink(path)
                    raise PermissionDenied(
                        f"代码目录中的符号链接指向目录之外：{rel / name} → {target}",
                        f"a symlink in the code folder points outside it: {rel / name} -> {target}",
                        path=str(rel / name),
                        reason="symlink_escape",
                    )
                os.symlink(os.readlink(path), out)
            elif stat.S_ISDIR(mode):
                out.mkdir()
            elif stat.S_ISREG(mode):
                shutil.copyfile(path, out, follow_symlinks=False)
                os.chmod(out, 0o755 if mode & 0o111 else 0o644)
            else:
                raise PermissionDenied(
                    f"代码目录中有特殊文件：{rel / name}",
                    f"the code folder holds a special file: {rel / name}",
                    path=str(rel / name),
                    reason="special_file",
                )
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
