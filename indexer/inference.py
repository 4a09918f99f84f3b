"""How many model runs (ONNX sessions: the embedder, the reader) a process lets run at once.

Each run already uses several threads. When more questions arrive at once than the cores can
serve, letting every run start makes them all slow down together (threads wait for a CPU and
onnxruntime's spinning threads burn what is left); queueing them behind a gate sized to the cores
keeps each run at full speed (`bench/answer_latency.py` measures 4 questions at once).

    with inference_slot():
        session.run(...)
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

_lock = threading.Lock()
_gate: threading.BoundedSemaphore | None = None


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# The instruction sets onnxruntime's kernels choose between; the int8 reader's scores can differ with them
# (a near tie may fall the other way), so figures record them.
KERNEL_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "i8mm")


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """Which of `KERNEL_FEATURES` this machine's processor has (from /proc/cpuinfo; [] where unknown)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            flags |= set(value.split())
    return [f for f in KERNEL_FEATURES if f in flags]


def configure(threads_per_run: int) -> None:
    """Size the gate: as many runs at once as there are cores for runs of `threads_per_run` threads.
    The first onnxruntime session created in a process decides (all of a process's sessions use the same count)."""
    global _gate
    with _lock:
        if _gate is None:
            _gate = threading.BoundedSemaphore(max(1, usable_cores() // max(1, threads_per_run)))


@contextmanager
def inference_slot():
    """Hold one of the process's run slots for the duration of a model run."""
    if _gate is None:
        configure(usable_cores())
    with _gate:
        yield


def session_options(threads: int | None, *, spinning: bool = True):
    """onnxruntime options for a run of `threads` threads (default: the usable cores, at most 4); sizes the
    gate too. With one model in the process its pool's threads keep spinning between runs (turning that
    off cost 1.2 ms a query here: 2.3 -> 3.5 ms). With two (the embedding model and the reader), each
    pool's spinning threads take the cores from the other's work: reading went from 103 / 113 ms to
    59 / 68 ms median / p95 with spinning off in both (demo questions); so a process that runs both asks
    for `spinning=False`. The gate is what keeps concurrent runs from fighting over the cores."""
    import onnxruntime as ort

    threads = threads or min(4, usable_cores())
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    configure(threads)
    return options
