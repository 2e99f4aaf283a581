"""`kubectl port-forward` in the background, on 127.0.0.1 only (never every interface)."""

import collections
import re
import socket
import subprocess
import threading
import time

from kubectl_preevy import messages, process
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

ADDRESS = "127.0.0.1"
START_TIMEOUT_SECONDS = 30
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


class PortForward:
    """One kubectl forwarding pod ports to local ones; a local port 0 lets kubectl pick a free one."""

    def __init__(self, kubectl: Kubectl, pod: str, ports: list[tuple[int, int]]):
        self.kubectl = kubectl
        self.pod = pod
        self.ports = ports  # (local, remote) pairs
        self.local_ports: dict[int, int] = {}  # remote -> local, once started
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=5)
        self._started = threading.Event()

    def __enter__(self) -> "PortForward":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> dict[int, int]:
        """Start kubectl (again) and wait until it listens on every port; PreevyError if it does not."""
        self.begin()
        return self.wait_started(timeout)

    def begin(self) -> None:
        """Start kubectl (again), without waiting (wait_started). In the thread the forward must outlive: a
        child dies with the thread that started it (process.py)."""
        self.stop()
        pairs = [f"{local or ''}:{remote}" for local, remote in self.ports]
        self.local_ports = {}
        self._started.clear()
        self._stderr_tail.clear()
        self._proc = self.kubectl.popen(
            "port-forward",
            "--address",
            ADDRESS,
            f"pod/{self.pod}",
            *pairs,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self._proc,), daemon=True).start()

    def wait_started(self, timeout: float = START_TIMEOUT_SECONDS) -> dict[int, int]:
        """Until the kubectl begun listens on every port; PreevyError if it does not."""
        assert self._proc is not None, "begun"
        deadline = time.monotonic() + timeout
        while not self._started.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                process.stop(self._proc)
                time.sleep(0.1)  # let the reader collect kubectl's last words
                raise self._failure()
        return dict(self.local_ports)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def last_error(self) -> str:
        """kubectl's last words: the error, then `lost connection to pod` when it dropped."""
        return "; ".join(list(self._stderr_tail)[-2:])

    def stop(self) -> None:
        if self._proc is not None:
            process.stop(self._proc)

    def _failure(self) -> PreevyError:
        assert self._proc is not None  # started
        error = self.kubectl.error(
            process.Result(
                process.argv_of(self._proc), self._proc.returncode or 1, "", "\n".join(self._stderr_tail)
            )
        )
        if error.exit_code != ExitCode.FAILURE:  # unreachable cluster, kubeconfig...: already clear
            return error
        return PreevyError(
            messages.PORT_FORWARD_FAILED.format(pod=self.pod, error=self.last_error or "no output"),
            ExitCode.FAILURE,
        )

    def _read_stdout(self, proc: subprocess.Popen[bytes]) -> None:
        for raw in proc.stdout or ():
            match = _FORWARDING.search(raw.decode(errors="replace"))
            if match and proc is self._proc:
                self.local_ports[int(match.group(2))] = int(match.group(1))
                if len(self.local_ports) == len(self.ports):
                    self._started.set()

    def _read_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        for raw in proc.stderr or ():
            process.journal.output(proc, raw.decode(errors="replace"))
            line = raw.decode(errors="replace").strip()
            if line and proc is self._proc:
                self._stderr_tail.append(line)


def local_ports_for(published: list[int]) -> dict[int, int]:
    """For each published port, the same local port where it is free, else the next free one."""
    chosen = {port: port for port in published if is_free(port)}
    for port in published:
        candidate = port
        while port not in chosen:
            candidate += 1
            if candidate > 65535:
                raise PreevyError(messages.NO_FREE_PORT.format(port=port), ExitCode.FAILURE)
            if candidate not in published and candidate not in chosen.values() and is_free(candidate):
                chosen[port] = candidate
    return chosen


def is_free(port: int) -> bool:
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as kubectl's listener does
        try:
            probe.bind((ADDRESS, port))
        except OSError:
            return False
    return True
