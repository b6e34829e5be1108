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
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._spec import Limits
from ._worker import DONE, OUT

__all__ = ["LEVELS", "Isolation", "Run", "covers", "job_folder", "probe", "processes_of", "python_paths", "reopen_plan",
           "run_worker"]

LEVELS = ("full", "user-namespace", "limits")
WORKER = Path(__file__).with_name("_worker.py")
FIRST_UID = 1_000_000  # job uids start here, far above any real user's
NAMESPACES = ["--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc"]
SHARED_TEMP = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))  # covered, in full isolation; cleaned after
WORK_BASE = Path("/run/gradwidget")  # full isolation's job folders: each a size-limited tmpfs, outside SHARED_TEMP
COVER_SIZE = {"reopened": "64k", "shared": "16m"}  # the empty file systems that cover folders

# Runs as root inside the new namespaces (argv[1]: the plan, JSON): make Python reachable for the job's uid,
# hide the course's files, then become the job's uid (or stay, uid None) and run the worker.
LAUNCHER = r"""
import json, os, subprocess, sys
plan = json.loads(sys.argv[1])
def mount(*args):
    if subprocess.run(["mount", *args], stdin=subprocess.DEVNULL).returncode:
        sys.exit(97)
# Cover folders (deepest first) with an empty file system holding only the entries the worker needs:
# build it aside, bind those entries into it, then move it over the folder.
for k, (folder, options, children) in enumerate(plan["covers"]):
    new = os.path.join(plan["scratch"], f"cover{k}")
    os.makedirs(new)
    mount("-t", "tmpfs", "-o", options, "gradwidget-cover", new)
    for child in children:
        place = os.path.join(new, os.path.relpath(child, folder))
        os.makedirs(place if os.path.isdir(child) else os.path.dirname(place), exist_ok=True)
        if not os.path.isdir(child):
            open(place, "w").close()
        mount("--rbind", child, place)
    mount("--move", new, folder)
for path in plan["hidden"]:
    if os.path.isdir(path):
        mount("-t", "tmpfs", "-o", "size=16k,mode=0555", "gradwidget-hidden", path)
    elif os.path.exists(path):
        mount("--bind", "/dev/null", path)
if os.path.isdir("/dev/shm"):
    mount("-t", "tmpfs", "-o", "size=64m,mode=1777", "gradwidget-shm", "/dev/shm")
command = plan["command"]
if plan["uid"] is not None:
    uid = str(plan["uid"])
    command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
               "--inh-caps=-all", "--bounding-set=-all", "--", *command]
os.execvp(command[0], command)
"""
PYTHON_CHECK = "import numpy, sys; sys.exit(0 if sys.version == {version!r} else 3)"


def python_paths() -> list[Path]:
    """What the worker's Python needs to reach: the interpreter, its prefixes and search path, the worker."""
    paths = [Path(sys.executable), Path(sys.executable).resolve(), Path(sys.prefix), Path(sys.base_prefix),
             WORKER, *(Path(p) for p in sys.path if p and Path(p).is_dir())]
    return list(dict.fromkeys(p.resolve() for p in paths))


def covers(own_uid: bool) -> list[tuple[Path, str, list[Path]]]:
    """Folders the launcher covers, deepest first: (folder, tmpfs options, entries kept in it).

    With a uid of its own, the worker gets folders others cannot pass
    reopened on the way to Python (`reopen_plan`), and the shared temporary
    folders replaced by small empty ones (keeping Python where it lives
    there), so that it can neither fill the machine's disk nor leave files
    for other jobs.
    """
    if not own_uid:
        return []
    needed = python_paths()
    found: dict[Path, tuple[str, list[Path]]] = {}
    for folder, child in reopen_plan(needed):
        found.setdefault(folder, (f"size={COVER_SIZE['reopened']},mode=0755", []))[1].append(child)
    for folder in SHARED_TEMP[:2]:
        if folder.is_dir():
            inside = [p for p in needed if folder in p.parents]
            kept = [p for p in inside if not any(q in p.parents for q in inside)]
            found[folder] = (f"size={COVER_SIZE['shared']},mode=1777", kept)
    return [(folder, options, children) for folder, (options, children) in
            sorted(found.items(), key=lambda item: -len(item[0].parts))]


@contextlib.contextmanager
def job_folder(isolation: Isolation, size: int, results: int) -> Iterator[tuple[Path, int | None]]:
    """A job's work folder (``job``, holding ``out`` for the worker's results, in a private 0711 folder) and uid.

    In full isolation both folders are tmpfs mounts outside the shared
    temporary folders: ``size`` bytes for the job, ``results`` bytes for its
    results apart, so that a submission that fills its folder cannot also
    take the room its results need. The uid comes from the folder's inode on
    the machine's file system: no other job has it while this one runs.
    """
    if isolation.level != "full":
        with tempfile.TemporaryDirectory(prefix="gradwidget-") as temporary:
            os.chmod(temporary, 0o711)
            (Path(temporary) / "job" / OUT).mkdir(parents=True)
            yield Path(temporary) / "job", _uid(Path(temporary)) if isolation.own_uid else None
        return
    WORK_BASE.mkdir(mode=0o711, parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="job-", dir=WORK_BASE))
    uid = _uid(root)
    try:
        _mount_tmpfs(root, size, 0o711)
        (root / "job" / OUT).mkdir(parents=True)
        _mount_tmpfs(root / "job" / OUT, results, 0o700)
        yield root / "job", uid
    finally:
        subprocess.run(["umount", "--recursive", "--lazy", str(root)], stdin=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        root.rmdir()


def _uid(folder: Path) -> int:
    return FIRST_UID + os.stat(folder).st_ino % (2 ** 31 - FIRST_UID)


def _mount_tmpfs(folder: Path, size: int, mode: int) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode={mode:o}", "gradwidget-job", str(folder)],
                   check=True, stdin=subprocess.DEVNULL)


def reopen_plan(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(blocking folder, entry within it) for each folder others cannot pass on the way to ``paths``.

    In the worker's mount namespace each blocking folder is covered by an
    empty, passable one holding only the entries named, bound back in place:
    Python stays at its own paths for an unprivileged uid, and nothing else
    of those folders shows.
    """
    plan: dict[tuple[Path, Path], None] = {}
    for path in paths:
        for folder, child in zip(path.parents[::-1], [*path.parents[::-1][1:], path]):
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                plan[(folder, child)] = None
    return list(plan)


@dataclass(frozen=True)
class Isolation:
    """How workers run here: one of `LEVELS`."""

    level: str

    @property
    def own_uid(self) -> bool:
        """Whether the worker runs as a uid of its own (the grader is root, and Python is reachable for it)."""
        if os.geteuid() != 0 or self.level == "user-namespace":
            return False
        return self.level == "full" or not reopen_plan(python_paths())

    def describe(self) -> str:
        """One line for grades.csv: what the worker could not do, and what it could."""
        if self.level == "full":
            return "full: no network, own PID and mount namespace, course files hidden, own uid, rlimits"
        if self.level == "user-namespace":
            return "user-namespace: no network, own PID and mount namespace, course files hidden, rlimits; " \
                   "grader's uid"
        uid = "own uid, " if self.own_uid else "grader's uid, course files readable, "
        return f"limits: rlimits, own process group, {uid}network open"


def probe(requested: str = "auto") -> Isolation:
    """The strongest level this machine allows (or ``requested``, if it is allowed).

    A level counts as allowed only once a worker's Python, started the way
    that level starts it, has imported numpy.
    """
    root = os.geteuid() == 0
    usable = []
    if root and shutil.which("unshare") and shutil.which("setpriv") and _python_runs(Isolation("full")):
        usable.append("full")
    if not root and shutil.which("unshare") and _python_runs(Isolation("user-namespace")):
        usable.append("user-namespace")
    usable.append("limits")
    if requested == "auto":
        return Isolation(usable[0])
    if requested not in usable:
        raise ValueError(f"isolation {requested!r} is not available here (available: {', '.join(usable)})")
    return Isolation(requested)


def _python_runs(isolation: Isolation) -> bool:
    """Whether the worker's Python, started as ``isolation`` starts it, runs and imports numpy."""
    check = [sys.executable, "-I", "-c", PYTHON_CHECK.format(version=sys.version)]
    uid = FIRST_UID - 1 if isolation.level == "full" else None
    try:
        with job_folder(isolation, 2 ** 20, 2 ** 16) as (workdir, _):
            return subprocess.run(_command(isolation, check, uid, workdir.parent, []), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _command(isolation: Isolation, command: list[str], uid: int | None, scratch: Path,
             hidden: list[Path]) -> list[str]:
    """``command`` started at ``isolation``'s level, as ``uid`` where there is one."""
    if isolation.level == "limits":
        if uid is None:
            return command
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--", *command]
    plan = {"command": command, "uid": uid, "scratch": str(scratch), "hidden": [str(p) for p in hidden],
            "covers": [[str(f), o, [str(c) for c in children]] for f, o, children in covers(uid is not None)]}
    prefix = ["unshare"] if isolation.level == "full" else ["unshare", "--user", "--map-root-user"]
    return [*prefix, *NAMESPACES, "--", sys.executable, "-I", "-c", LAUNCHER, json.dumps(plan)]


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

    finished: bool  # it wrote its last file (DONE)
    timed_out: bool
    exit_code: int | None
    seconds: float
    launcher_error: str = ""


def run_worker(isolation: Isolation, workdir: Path, uid: int | None, limits: Limits, hidden: list[Path]) -> Run:
    """Run the worker on ``workdir`` (prepared, and owned by ``uid`` if not None); hide ``hidden`` where possible."""
    command = _command(isolation, [sys.executable, "-I", str(WORKER), str(workdir)], uid, workdir.parent, hidden)
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir / "tmp"),
                   "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    errors = workdir.parent / f"{workdir.name}.launcher"
    start = time.monotonic()
    with open(errors, "wb") as stderr:
        process = subprocess.Popen(command, cwd=workdir, env=environment, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    done = workdir / OUT / DONE
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
