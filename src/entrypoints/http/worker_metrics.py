"""Metrics shared by several worker processes: prometheus_client's multiprocess mode.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every metric value a worker records lives in a
memory-mapped file of that folder (one file per kind and process id), and a scrape of any
worker renders :func:`aggregate` of all the files: counters and histograms are summed
over the workers, the dead ones included (a counter never goes back); each gauge is
combined as its ``multiprocess_mode`` says (see :class:`~entrypoints.http.metrics.Metrics`).
Without the variable nothing here is used and each process exposes its own registry.

What the supervisor must do:

1. Create the folder, **empty** (a previous run's files would add its counts to this
   run's, and its workers' gauges would stay), and set ``PROMETHEUS_MULTIPROC_DIR`` to it
   in the environment the workers inherit, **before** any worker imports
   ``prometheus_client``: the library chooses the mode once, at import. With the
   ``spawn`` start method each worker is a fresh interpreter that imports it after it
   started, so setting ``os.environ`` in the supervisor before starting them is enough.
   A worker that finds the variable set too late refuses to build its metrics
   (:func:`shared_directory` raises) rather than expose only itself.
2. Call :func:`worker_exited` with the pid of every worker that exits (however it
   exits), so that its ``live*`` gauges (circuit states, outbox entries pending, streams
   in flight, process metrics) leave the scrape. Its counters stay in the totals.
3. Keep one folder per service run; never share it between containers or replicas.

Without the variable (one process), :func:`worker_exited` does nothing.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def shared_directory() -> str | None:
    """The folder this process shares its metrics in, or None when it keeps them alone.

    Raises RuntimeError when the variable and the library's mode disagree (the variable
    was set, or removed, after ``prometheus_client`` was imported), or when the folder
    does not exist: either would render a scrape that silently misses workers."""
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    shared = values.ValueClass is not values.MutexValue
    if not directory and not shared:
        return None
    if not shared:
        raise RuntimeError(
            f"{ENVIRONMENT_VARIABLE} was set after prometheus_client was imported: "
            "set it before the worker process starts"
        )
    if not directory or not os.path.isdir(directory):
        raise RuntimeError(f"{ENVIRONMENT_VARIABLE} must name an existing folder")
    return directory


def aggregate(directory: str) -> CollectorRegistry:
    """A registry that renders the metrics of all the workers sharing ``directory``
    (read at each scrape)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def worker_exited(pid: int) -> None:
    """Tell the shared metrics that the worker ``pid`` is gone: its ``live*`` gauges
    leave the scrape (its counters stay counted). The supervisor calls this, with
    ``PROMETHEUS_MULTIPROC_DIR`` set as for the workers; without it, nothing to do."""
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if directory:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class ProcessGauges:
    """This worker's process metrics in multiprocess mode, where the library's
    ``ProcessCollector`` cannot be registered (it would describe whichever worker was
    scraped). Its readings are published at each :meth:`publish`: the gauges (resident
    and virtual memory, open and maximum file descriptors, start time) per worker, with a
    ``pid`` label (``liveall``: gone when the worker has exited); the CPU time as a
    counter summed over the workers, the exited ones included."""

    def __init__(self, namespace: str, registry: CollectorRegistry) -> None:
        self._reader = ProcessCollector(namespace=namespace, registry=None)
        self._registry = registry
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._counted: dict[str, float] = {}

    def publish(self) -> None:
        for family in self._reader.collect():
            for sample in family.samples:
                if family.type == "gauge":
                    self._gauge(family.name, family.documentation).set(sample.value)
                elif family.type == "counter" and sample.name.endswith("_total"):
                    # The reading is this process's total: add what grew since the last.
                    counted = self._counted.get(family.name, 0.0)
                    if sample.value > counted:
                        self._counter(family.name, family.documentation).inc(sample.value - counted)
                        self._counted[family.name] = sample.value

    def _gauge(self, name: str, documentation: str) -> Gauge:
        if name not in self._gauges:
            self._gauges[name] = Gauge(
                name, documentation, registry=self._registry, multiprocess_mode="liveall"
            )
        return self._gauges[name]

    def _counter(self, name: str, documentation: str) -> Counter:
        if name not in self._counters:
            self._counters[name] = Counter(name, documentation, registry=self._registry)
        return self._counters[name]
