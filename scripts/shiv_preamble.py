"""shiv preamble of the kubectl-preevy zipapp: runs on every start, after shiv has extracted
the bundle to <root>/<name>_<build id>/site-packages, before the CLI.

1. A python3 older than the code needs gets one clear line instead of a traceback.
2. This build's directory is marked in use: a shared flock on <dir>/.in-use, held until the
   process exits.
3. Directories of OTHER builds of this zipapp are deleted, so that upgrades do not fill the
   disk: only <name>_<64 hex> directories holding kubectl_preevy, only when no process holds
   their in-use lock and no process is extracting them (shiv's own lock). This build's
   directory is never touched, so concurrent runs of one build cannot race.
Every error is ignored: pruning is housekeeping and must never stop the command.

shiv runs this file with the globals `site_packages` (Path), `archive` and `env`.
Keep it importable by old Pythons (no new syntax): it is what tells their users to upgrade.
"""

import contextlib
import os
import re
import shutil
import sys

MIN_PYTHON = (3, 10)
IN_USE = ".in-use"
EXIT_MISSING_TOOL = 3

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so no pruning
    fcntl = None


def require_python():
    if sys.version_info < MIN_PYTHON:
        sys.stderr.write(
            "error: kubectl-preevy needs Python %d.%d or newer, but %s is %s; "
            "put a newer python3 first on PATH\n" % (MIN_PYTHON + (sys.executable, sys.version.split()[0]))
        )
        sys.exit(EXIT_MISSING_TOOL)


def mark_in_use(build_dir):
    """Holds a shared lock on build_dir/.in-use until exit (the descriptor is never closed;
    it is not inherited by child processes)."""
    try:
        fd = os.open(os.path.join(build_dir, IN_USE), os.O_RDONLY | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # never wait on a pruner
    except OSError:
        pass


def try_lock(path):
    """An exclusive lock on path (created if missing) without waiting, or None if someone else
    holds it or it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def prune_other_builds(build_dir):
    root, current = os.path.split(build_dir)
    name = current.rsplit("_", 1)[0]
    other_build = re.compile(re.escape(name) + r"_[0-9a-f]{64}")
    trash = re.compile(r"\." + re.escape(name) + r"_[0-9a-f]{64}\.trash-\d+")
    for entry in os.listdir(root):
        path = os.path.join(root, entry)
        if trash.fullmatch(entry):  # left over by a prune that was interrupted
            shutil.rmtree(path, ignore_errors=True)
        elif entry != current and other_build.fullmatch(entry) and is_ours(path):
            remove_build(root, entry)


def is_ours(path):
    return os.path.isdir(os.path.join(path, "site-packages", "kubectl_preevy"))


def remove_build(root, entry):
    """Deletes root/entry unless a process uses it or is extracting it."""
    extract_lock = os.path.join(root, "." + entry + "_lock")  # shiv's extraction lock
    extracting = try_lock(extract_lock)
    if extracting is None:
        return
    try:
        in_use = try_lock(os.path.join(root, entry, IN_USE))
        if in_use is None:
            return
        # Renamed while locked, so no new process of that build can start using it.
        trash = os.path.join(root, ".%s.trash-%d" % (entry, os.getpid()))
        try:
            os.rename(os.path.join(root, entry), trash)
        finally:
            os.close(in_use)
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(os.path.join(root, entry + ".tmp"), ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(extract_lock)
    finally:
        os.close(extracting)


def main(site_packages):
    require_python()
    if fcntl is None:
        return
    build_dir = os.path.dirname(str(site_packages))
    try:
        mark_in_use(build_dir)
        prune_other_builds(build_dir)
    except Exception:
        pass


if __name__ == "__main__":
    main(globals().get("site_packages", ""))
