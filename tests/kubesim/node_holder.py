"""The pod holder: one per pod, like Kubernetes' pause container (run by kubelet.py).

    python3 -I -S node_holder.py SPEC_JSON SOCKET_FD

The process started by the kubelet ("outer") unshares mount, network, pid, uts and ipc
namespaces, makes every mount private and forks the holder proper: pid 1 of the pod's pid
namespace. The outer process only waits for it and exits with its status. The holder:

* opens every volume source (before covering /tmp and /run, where the state dir may live),
  mounts a fresh /proc, private tmpfs on /run, /tmp and /dev/shm, a staging tmpfs on
  /run/.kubesim where each volume source is bind-mounted once, brings lo up, sets the hostname;
* says {"ev": "ready"} on the socket (a SOCK_SEQPACKET socketpair: the kubelet reads the
  sender's host pid from SCM_CREDENTIALS, so every message carries the sender's host pid);
* starts containers on request. Each container gets its own pid namespace (a child of the pod's)
  and its own mount namespace (a copy of the pod's). Its pid 1 ("container init", a fork of the
  holder) makes the container's volume mounts, remounts /proc, forks the program (pid 2: normal
  signal semantics), forwards SIGTERM & co to it, reaps, and exits with the program's status, which
  kills whatever the program left behind in the container;
* reaps every orphan (it is pid 1) and reports container exits;
* exits when the socket reaches EOF (the kubelet closed it or died): the kernel then kills every
  process of the pod. The kubelet normally SIGKILLs it first.

Requests (JSON, one per message):
  {"op": "start", "id", "mounts": [{"src": index, "dst", "ro"}], "cwd", "argv" (null: no command),
   "env": {...}, "log": [container, filename], "missing": "idle" | "exit0"}
  {"op": "kill", "id", "sig"}
Events: {"ev": "ready"}, {"ev": "started", "id", "idle", "note", "error"} (sent by the container
init, so its credentials give the container's host pid), {"ev": "exit", "id", "code"},
{"ev": "fatal", "msg"}.
"""

import errno
import json
import os
import selectors
import signal
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import podns

STAGING = "/run/.kubesim"
PRIVATE_ROOTS = ("/run", "/tmp", "/dev/shm")
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def send(sock, msg):
    sock.send(json.dumps(msg).encode())


def exit_code(status):
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


# ---------------------------------------------------------------- pod setup (holder)


def setup_pod(spec):
    """Returns (staged source paths, log dir fds). Runs as pid 1 of the pod, in its mount ns."""
    sources = []
    for path in spec["sources"]:
        try:
            sources.append(os.open(path, os.O_PATH | os.O_CLOEXEC))
        except OSError as e:
            raise OSError(e.errno, f"volume source {path}: {e.strerror}") from None
    logdirs = {
        name: os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        for name, path in spec["logdirs"].items()
    }
    podns.mount("proc", "/proc", "proc", podns.MS_NOSUID | podns.MS_NODEV | podns.MS_NOEXEC)
    podns.mount("tmpfs", "/run", "tmpfs", podns.MS_NOSUID | podns.MS_NODEV, "mode=755")
    os.mkdir("/run/lock", 0o1777)
    os.chmod("/run/lock", 0o1777)
    podns.mount("tmpfs", "/tmp", "tmpfs", podns.MS_NOSUID | podns.MS_NODEV, "mode=1777")
    if os.path.isdir("/dev/shm"):
        podns.mount("tmpfs", "/dev/shm", "tmpfs", podns.MS_NOSUID | podns.MS_NODEV, "mode=1777")
    os.mkdir(STAGING, 0o700)
    podns.mount("tmpfs", STAGING, "tmpfs", podns.MS_NOSUID | podns.MS_NODEV, "mode=700")
    staged = []
    for index, fd in enumerate(sources):
        target = f"{STAGING}/v{index}"
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.mkdir(target)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
        podns.mount(f"/proc/self/fd/{fd}", target, None, podns.MS_BIND | podns.MS_REC)
        os.close(fd)
        staged.append(target)
    os.mkdir(f"{STAGING}/ovl")
    if not spec.get("hostNetwork"):
        podns.loopback_up()
        podns.sethostname(spec["hostname"])
    os.chdir("/")
    return staged, logdirs


# ---------------------------------------------------------------- container init (pid 1 of a container)


def _deepest_existing(path):
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _strictly_under(path, roots):
    return any(path != r and _under(path, [r]) for r in roots)


def ensure_paths(wanted, private, ovl_prefix):
    """Makes each (path, want_dir) exist as a directory or file without writing to the host's
    filesystem: inside a pod-private filesystem (`private`: /run, /tmp, volumes) a path is just
    created; otherwise the topmost deepest-existing ancestors get a private overlay first (their
    content stays visible). Only paths right below `/` are created on the host itself (an overlay
    on / is not possible): directories (empty), never files."""
    missing = []
    for path, want_dir in wanted:
        if os.path.lexists(path):
            if want_dir and not os.path.isdir(path):
                raise OSError(errno.ENOTDIR, f"{path} exists and is not a directory")
            if not want_dir and os.path.isdir(path):
                raise OSError(errno.EISDIR, f"{path} is a directory, the volume (subPath) is a file")
        else:
            missing.append((path, want_dir))
    ancestors = set()
    for path, want_dir in missing:
        ancestor = _deepest_existing(path)
        if not os.path.isdir(ancestor):
            raise OSError(errno.ENOTDIR, f"{ancestor} is not a directory")
        if ancestor == "/":
            if not want_dir and os.path.dirname(path) == "/":
                raise OSError(
                    errno.EPERM, f"kubesim refuses to create the file {path} on the host's root filesystem"
                )
        elif not _under(ancestor, private):
            ancestors.add(ancestor)
    for n, ancestor in enumerate(sorted(a for a in ancestors if not _strictly_under(a, ancestors))):
        base = f"{STAGING}/ovl/{ovl_prefix}-{n}"
        os.makedirs(f"{base}/u")
        os.makedirs(f"{base}/w")
        podns.mount(
            "overlay", ancestor, "overlay", 0, f"lowerdir={ancestor},upperdir={base}/u,workdir={base}/w"
        )
        private.append(ancestor)
    for path, want_dir in missing:
        if want_dir:
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def resolve_program(name, env):
    if "/" in name:
        return name if os.path.exists(name) else None
    for d in (env.get("PATH") or DEFAULT_PATH).split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def container_init(sock, req, staged, logdirs, wakeup_fds):
    """Runs in a fresh pid namespace (we are its pid 1). Never returns."""
    log_fd = _init_process(sock, req, logdirs, wakeup_fds)

    def note(text):
        try:
            os.write(log_fd, f"kubesim: {text}\n".encode())
        except OSError:
            pass

    env, argv = req["env"], req["argv"]
    try:
        cwd = _make_mounts(req, staged)
        program = resolve_program(argv[0], env) if argv else None
    except BaseException as e:
        note(f"cannot create the container: {e}")
        try:
            send(sock, {"ev": "started", "id": req["id"], "error": str(e)})
        finally:
            os._exit(128)
    idle = program is None
    why = None
    if idle:
        why = (
            "no command given (the image's entrypoint is unknown)"
            if not argv
            else f"{argv[0]}: not found on the host"
        )
        note(
            f"{why}: counts as completed"
            if req.get("missing") == "exit0"
            else f"{why}: the container runs idle"
        )
    send(sock, {"ev": "started", "id": req["id"], "idle": idle, "note": why})
    sock.close()
    if idle and req.get("missing") == "exit0":
        os._exit(0)
    _forward_signals_and_wait(None if idle else _start_program(program, argv, env, log_fd, cwd))


def _init_process(sock, req, logdirs, wakeup_fds):
    """The container init's own setup; returns the container's log file descriptor."""
    try:
        signal.set_wakeup_fd(-1)
        for fd in wakeup_fds:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        podns.set_process_name("kubesim-init")
        name, filename = req["log"]
        return os.open(
            filename, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644, dir_fd=logdirs[name]
        )
    except BaseException as e:
        try:
            send(sock, {"ev": "started", "id": req["id"], "error": f"container setup: {e}"})
        finally:
            os._exit(128)


def _make_mounts(req, staged):
    """The container's own mount namespace: its volumes, missing mount points and working dir
    created, /proc remounted. Returns the working dir (we are in it)."""
    podns.unshare(podns.CLONE_NEWNS)
    podns.mount(None, "/", None, podns.MS_REC | podns.MS_PRIVATE)
    private = list(PRIVATE_ROOTS)
    # Each container instance gets a fresh /run (on a real node it is part of the container's own
    # writable layer: a restart starts clean, no stale pid files). The staged volume sources
    # under /run/.kubesim are held by descriptors first, since the new tmpfs covers them.
    held = {}
    for m in req["mounts"]:
        if m["src"] not in held:
            held[m["src"]] = os.open(staged[m["src"]], os.O_PATH | os.O_CLOEXEC)
    is_dir = {i: stat.S_ISDIR(os.fstat(fd).st_mode) for i, fd in held.items()}
    podns.mount("tmpfs", "/run", "tmpfs", podns.MS_NOSUID | podns.MS_NODEV, "mode=755")
    os.mkdir("/run/lock", 0o1777)
    os.chmod("/run/lock", 0o1777)
    os.mkdir(STAGING, 0o700)
    podns.mount("tmpfs", STAGING, "tmpfs", podns.MS_NOSUID | podns.MS_NODEV, "mode=700")
    os.mkdir(f"{STAGING}/ovl")
    mounts = sorted(
        (
            (
                os.path.realpath(m["dst"]),
                f"/proc/self/fd/{held[m['src']]}",
                bool(m.get("ro")),
                is_dir[m["src"]],
            )
            for m in req["mounts"]
        ),
        key=lambda m: m[0].rstrip("/").count("/"),
    )
    targets = [m[0] for m in mounts]
    cwd = os.path.realpath(req.get("cwd") or "/")
    # First every mount point (and the working dir) outside the volumes, overlays included, so
    # that no overlay covers a volume; then the volumes, and what lies inside them.
    outside = [(t, d) for t, _, _, d in mounts if not _strictly_under(t, targets)]
    if not _under(cwd, targets):
        outside.append((cwd, True))
    ensure_paths(outside, private, req["id"].replace("/", "_"))
    for target, source, ro, d in mounts:
        ensure_paths([(target, d)], private + targets, "x")
        podns.mount(source, target, None, podns.MS_BIND | podns.MS_REC)
        if ro:
            podns.mount(None, target, None, podns.MS_BIND | podns.MS_REMOUNT | podns.MS_RDONLY)
    ensure_paths([(cwd, True)], private + targets, "x")
    for fd in held.values():
        os.close(fd)
    podns.umount(STAGING, podns.MNT_DETACH)
    os.rmdir(STAGING)
    podns.mount("proc", "/proc", "proc", podns.MS_NOSUID | podns.MS_NODEV | podns.MS_NOEXEC)
    os.chdir(cwd)  # `nsenter --wd` (kubectl exec) takes the working dir of this process
    return cwd


def _start_program(program, argv, env, log_fd, cwd):
    """Forks the container's program (pid 2), output to the log file. Returns its pid."""
    main = os.fork()
    if main == 0:
        try:
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.closerange(3, 1 << 16)
            os.chdir(cwd)
            os.execve(program, argv, env)
        except OSError as e:
            os.write(2, f"kubesim: exec {argv[0]}: {e.strerror}\n".encode())
            os._exit(126 if e.errno in (errno.EACCES, errno.ENOEXEC) else 127)
        finally:
            os._exit(127)
    return main


def _forward_signals_and_wait(main):
    """Forwards SIGTERM & co to the program, reaps, exits with its status (main None: idle,
    exit at the first such signal)."""

    def on_signal(sig, _frame):
        if main is None:
            os._exit(128 + sig)
        try:
            os.kill(main, sig)
        except OSError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, on_signal)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(1)
            continue
        if pid == main:
            os._exit(exit_code(status))


# ---------------------------------------------------------------- holder main loop


class PodHolder:
    """pid 1 of the pod's pid namespace: starts and signals container instances on request,
    reaps every orphan, reports container exits."""

    def __init__(self, spec, sock):
        self.sock = sock
        self.staged, self.logdirs = setup_pod(spec)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.running = {}  # pid (in the pod's pid ns) -> container instance id

    def serve(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(self.wake_r, selectors.EVENT_READ)
        send(self.sock, {"ev": "ready"})
        while True:
            for key, _ in sel.select():
                if key.fileobj is self.sock:
                    self.request()
                else:
                    self.drain_wakeups()
                    self.reap()

    def request(self):
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            os._exit(0)
        req = json.loads(data)
        if req["op"] == "start":
            self.start(req)
        elif req["op"] == "kill":
            for pid, cid in self.running.items():
                if cid == req["id"]:
                    try:
                        os.kill(pid, req["sig"])
                    except OSError:
                        pass

    def start(self, req):
        podns.unshare(podns.CLONE_NEWPID)
        try:
            pid = os.fork()
        except OSError as e:
            send(self.sock, {"ev": "started", "id": req["id"], "error": f"fork: {e}"})
            send(self.sock, {"ev": "exit", "id": req["id"], "code": 128})
            pid = None
        if pid == 0:
            try:
                container_init(self.sock, req, self.staged, self.logdirs, (self.wake_r, self.wake_w))
            finally:
                os._exit(128)
        podns.setns(self.own_pidns, podns.CLONE_NEWPID)
        if pid:
            self.running[pid] = req["id"]

    def drain_wakeups(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            cid = self.running.pop(pid, None)
            if cid is not None:
                send(self.sock, {"ev": "exit", "id": cid, "code": exit_code(status)})


def holder_main(spec, sock):
    podns.set_process_name("kubesim-pod")
    try:
        holder = PodHolder(spec, sock)
    except BaseException as e:
        send(sock, {"ev": "fatal", "msg": str(e)})
        os._exit(1)
    holder.serve()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    sock = socket.socket(fileno=int(sys.argv[2]))
    os.set_inheritable(sock.fileno(), False)
    flags = podns.CLONE_NEWNS | podns.CLONE_NEWPID | podns.CLONE_NEWIPC
    if not spec.get("hostNetwork"):
        flags |= podns.CLONE_NEWNET | podns.CLONE_NEWUTS
    podns.unshare(flags)
    podns.mount(None, "/", None, podns.MS_REC | podns.MS_PRIVATE)
    pid = os.fork()
    if pid == 0:
        try:
            holder_main(spec, sock)
        finally:
            os._exit(1)
    sock.close()
    podns.set_process_name("kubesim-sandbox")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            os._exit(exit_code(status))
        except ChildProcessError:
            os._exit(1)


if __name__ == "__main__":
    main()
