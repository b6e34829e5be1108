"""Running a worker as safely as this machine allows, and saying how safely it ran.

Three levels, the strongest available chosen by `probe`:

``full`` (the grader runs as root, with ``unshare`` and ``setpriv``)
    The worker gets new network, PID and mount namespaces: no network, and
    every process it starts dies with it. In its mount namespace the course's
    files (spec folder, reference, secret, other submissions, the output
    folder) are covered by empty file systems. It runs as an unused uid of
    its own, with no capabilities and no way to gain privileges, under
    rlimits on memory, CPU, file size, processes and open files.
``user-namespace`` (not root, but unprivileged user namespaces work)
    The same namespaces and hiding, under the grader's own uid; no limit on
    processes (a shared uid would count the grader's own).
``limits``
    rlimits, a process group of its own and a clean environment only. The
    worker can read what the grader can and has the network.

Every level starts the worker with a clean environment (one BLAS thread),
no standard input, and its output thrown away; the grader stops waiting once
the worker wrote its last result or the wall limit passed, then kills what
it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ._spec import Limits

__all__ = ["LEVELS", "Isolation", "Run", "probe", "processes_of", "run_worker"]

LEVELS = ("full", "user-namespace", "limits")
WORKER = Path(__file__).with_name("_worker.py")
FIRST_UID = 1_000_000  # job uids start here, far above any real user's
NAMESPACES = ["--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc"]
SHARED_TEMP = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))  # cleaned of what a job uid left there

# Runs as root inside the new namespaces: hide paths, then become the job's uid (or stay, with "-").
LAUNCHER = r"""
uid=$1 python=$2 worker=$3 workdir=$4; shift 4
for path in "$@"; do
    if [ -d "$path" ]; then mount -t tmpfs -o size=16k,mode=0555 gradwidget-hidden "$path" || exit 97
    elif [ -e "$path" ]; then mount --bind /dev/null "$path" || exit 97
    fi
done
[ -d /dev/shm ] && mount -t tmpfs -o size=64m,mode=1777 gradwidget-shm /dev/shm
if [ "$uid" = - ]; then exec "$python" -I "$worker" "$workdir"; fi
exec setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all \
    -- "$python" -I "$worker" "$workdir"
"""


@dataclass(frozen=True)
class Isolation:
    """How workers run here: one of `LEVELS`."""

    level: str

    @property
    def root(self) -> bool:
        return os.geteuid() == 0

    def describe(self) -> str:
        """One line for grades.csv: what the worker could not do, and what it could."""
        if self.level == "full":
            return "full: no network, own PID and mount namespace, course files hidden, own uid, rlimits"
        if self.level == "user-namespace":
            return "user-namespace: no network, own PID and mount namespace, course files hidden, rlimits; " \
                   "grader's uid"
        uid = "own uid, " if self.root else "grader's uid, course files readable, "
        return f"limits: rlimits, own process group, {uid}network open"


def probe(requested: str = "auto") -> Isolation:
    """The strongest level this machine allows (or ``requested``, if it is allowed)."""
    root = os.geteuid() == 0
    usable = []
    if shutil.which("unshare") and shutil.which("setpriv") and root and _works(["unshare", *NAMESPACES, "true"]):
        usable.append("full")
    if not root and shutil.which("unshare") and _works(["unshare", "--user", "--map-root-user", *NAMESPACES,
                                                         "true"]):
        usable.append("user-namespace")
    usable.append("limits")
    if requested == "auto":
        return Isolation(usable[0])
    if requested not in usable:
        raise ValueError(f"isolation {requested!r} is not available here (available: {', '.join(usable)})")
    return Isolation(requested)


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def job_uid(workdir: Path) -> int:
    """A uid no one else uses while this job runs: from the work folder's inode, unique while it exists."""
    return FIRST_UID + os.stat(workdir).st_ino % (2 ** 31 - FIRST_UID)


def rlimits(limits: Limits, own_uid: bool) -> dict[str, int]:
    """The worker's rlimits by name (the process limit only where the uid is the job's own)."""
    values = {"RLIMIT_AS": limits.memory, "RLIMIT_CPU": limits.cpu_seconds, "RLIMIT_FSIZE": limits.output,
              "RLIMIT_NOFILE": limits.files, "RLIMIT_CORE": 0}
    if own_uid:
        values["RLIMIT_NPROC"] = limits.processes
    return values


@dataclass(frozen=True)
class Run:
    """How a worker's run ended."""

    finished: bool  # it wrote done.npy
    timed_out: bool
    exit_code: int | None
    seconds: float
    launcher_error: str = ""


def run_worker(isolation: Isolation, workdir: Path, limits: Limits, hidden: list[Path]) -> Run:
    """Run the worker on ``workdir`` (prepared and owned by the job's uid); hide ``hidden`` where possible."""
    uid = job_uid(workdir) if isolation.root else None
    if isolation.level == "limits":
        command = [sys.executable, "-I", str(WORKER), str(workdir)]
        if uid is not None:
            command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                       "--inh-caps=-all", "--bounding-set=-all", "--", *command]
    else:
        prefix = ["unshare", *NAMESPACES] if isolation.level == "full" else ["unshare", "--user",
                                                                              "--map-root-user", *NAMESPACES]
        who = str(uid) if isolation.level == "full" else "-"
        command = [*prefix, "--", "sh", "-c", LAUNCHER, "sh", who, sys.executable, str(WORKER), str(workdir),
                   *map(str, hidden)]
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir / "tmp"),
                   "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    errors = workdir.parent / f"{workdir.name}.launcher"
    start = time.monotonic()
    with open(errors, "wb") as stderr:
        process = subprocess.Popen(command, cwd=workdir, env=environment, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    done = workdir / "out" / "done.npy"
    timed_out = False
    try:
        while process.poll() is None and not done.exists():
            if time.monotonic() - start > limits.wall:
                timed_out = True
                break
            time.sleep(0.005 if time.monotonic() - start < 1 else 0.05)
    finally:
        _kill(process, uid)
    message = ""
    if process.returncode == 97:
        message = errors.read_bytes()[:2000].decode(errors="replace").strip()
    errors.unlink(missing_ok=True)
    return Run(done.exists(), timed_out and not done.exists(), process.returncode, time.monotonic() - start, message)


def _kill(process: subprocess.Popen[bytes], uid: int | None) -> None:
    """End the worker and everything it started (its PID namespace, its process group, its uid's processes)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if uid is not None:
        _kill_uid(uid)
        _clean_shared_temp(uid)


def _kill_uid(uid: int) -> None:
    """Kill every process left running as the job's uid (escaped into a session of its own), until none is."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        running = processes_of(uid)
        if not running:
            return
        for pid in running:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        time.sleep(0.01)


def processes_of(uid: int | None = None) -> list[int]:
    """Processes running (zombies aside) as ``uid``, or as any job uid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            owner = entry.stat().st_uid
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and (owner == uid if uid is not None else owner >= FIRST_UID):
            found.append(int(entry.name))
    return found


def _clean_shared_temp(uid: int) -> None:
    """Remove what the job's uid left in the machine's shared temporary folders."""
    for folder in SHARED_TEMP:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue
