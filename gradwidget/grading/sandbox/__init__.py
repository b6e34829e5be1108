"""The trust boundary: the student's code runs on the other side, and only numbers come back.

`_job` writes the folder a worker is given, `_isolation` runs the worker
as safely as the machine allows, `_worker` is the one module that runs beside
student code (the standard library and numpy only; it defines every file
name the job folder holds), and `_outcome` reads what came back as untrusted
numbers.
"""

from ._isolation import LEVELS, WORKER, Isolation, Run, job_folder, probe, rlimits, run_worker
from ._job import job_sizes, write_job
from ._outcome import Outcome, ProblemOutcome, read_outcome

__all__ = ["LEVELS", "WORKER", "Isolation", "Outcome", "ProblemOutcome", "Run", "job_folder", "job_sizes", "probe",
           "read_outcome", "rlimits", "run_worker", "write_job"]
