"""A class on a cluster: a grading process that dies costs only its submissions, and grades.csv stays whole."""

from __future__ import annotations

import csv
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from course import COURSE, LAYERS_COURSE, copy_course, solution_cells, write_notebook

import gradwidget.grading._grade as grading
from gradwidget.grading import grade

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed")

SLOW_CELL = "import time\nfor _ in range(4):\n    time.sleep(0.3)\n"  # within every cell limit, long enough to kill


@pytest.fixture
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


def slow_class(folder: Path, source: Path, count: int) -> Path:
    """A class of right submissions, each slowed by a cell that sleeps."""
    for k in range(count):
        write_notebook(folder / f"s{k:02d}.ipynb", [*solution_cells(source)[:1], SLOW_CELL,
                                                     *solution_cells(source)[1:]])
    return folder


def kill_a_busy_worker(address: str, times: int, killed: list[int]) -> threading.Thread:
    """In the background, ``times`` times: wait for a worker grading something, kill it, its pid into ``killed``."""
    def kill() -> None:
        with distributed.Client(address) as client:
            for _ in range(times):
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    busy = [worker for worker, tasks in client.processing().items() if tasks]
                    if busy:
                        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                        os.kill(pid, 9)
                        killed.append(pid)
                        break
                    time.sleep(0.05)
                time.sleep(1.5)  # the nanny starts a new worker

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("source", [COURSE, LAYERS_COURSE], ids=["classic", "layers"])
def test_a_killed_dask_worker_costs_nothing_its_submissions_are_graded_again(cluster: Any, source: Path,
                                                                           tmp_path: Path) -> None:
    spec = copy_course(tmp_path, source)
    members = slow_class(tmp_path / "class", source, 6)
    killed: list[int] = []
    killer = kill_a_busy_worker(cluster.scheduler_address, 1, killed)
    graded = grade(spec, [members], tmp_path / "out", dask=cluster.scheduler_address, progress=False)
    killer.join(timeout=60)
    assert len(killed) == 1
    found = rows(tmp_path / "out")
    assert sorted(row["submission"] for row in found) == [f"s{k:02d}" for k in range(6)]  # none lost, none twice
    assert {(g.status, g.score == g.max_score) for g in graded} == {("graded", True)}


def test_a_worker_lost_more_often_than_the_scheduler_retries_gives_an_error_with_its_reason(
        tmp_path: Path) -> None:
    import dask

    spec = copy_course(tmp_path)
    members = slow_class(tmp_path / "class", COURSE, 4)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as local:
        killed: list[int] = []
        killer = kill_a_busy_worker(local.scheduler_address, 1, killed)
        graded = grade(spec, [members], tmp_path / "out", dask=local.scheduler_address, progress=False)
        killer.join(timeout=60)
    assert len(killed) == 1
    lost = [g for g in graded if g.status == "error"]
    assert 1 <= len(lost) <= 2 and all("the grader's process died while grading it" in g.reason for g in lost)
    assert all(g.status == "graded" and g.score == g.max_score for g in graded if g not in lost)
    found = rows(tmp_path / "out")
    assert len(found) == 4 and {row["status"] for row in found} == {"graded", "error"}
    assert not any((tmp_path / "out" / g.id / "record.json").exists() for g in lost)
    again = grade(spec, [members], tmp_path / "out", incremental=True, progress=False)  # regrades only those
    assert {g.id for g in again if not g.reused} == {g.id for g in lost}
    assert all(g.status == "graded" for g in again)


def test_a_pool_process_that_dies_costs_its_submissions_not_the_class(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = copy_course(tmp_path)
    members = tmp_path / "class"
    for name in ("a", "b", "c"):
        write_notebook(members / f"{name}.ipynb", solution_cells())
    calls: list[str] = []

    class DyingFuture:
        def result(self) -> None:
            raise RuntimeError("A process in the process pool was terminated abruptly")

    def collect(context: Any, submissions: Any, futures: Any, bar: Any) -> Any:
        calls.append("collect")
        futures = [DyingFuture() if s.id == "b" else f for s, f in zip(submissions, futures)]
        return original(context, submissions, futures, bar)

    original = grading._collect
    monkeypatch.setattr(grading, "_collect", collect)
    monkeypatch.setattr(grading, "_completed", lambda futures: futures)
    graded = grade(spec, [members], tmp_path / "out", workers=2, progress=False)
    assert calls == ["collect"]
    assert [(g.id, g.status) for g in graded] == [("a", "graded"), ("b", "error"), ("c", "graded")]
    assert "terminated abruptly" in graded[1].reason and (tmp_path / "out" / "b" / "results.json").exists()
    assert [row["status"] for row in rows(tmp_path / "out")] == ["graded", "error", "graded"]
