"""Background processing of uploaded recordings, so the upload page never blocks.

One thread per upload batch runs ``pipeline.storage.runner.process_paths``; its progress
callback updates a ``Job`` that the page polls. Jobs live as long as the server.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import Settings

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    files: list[str]
    started_at: dt.datetime
    done: int = 0
    current: str = ""
    results: list = field(default_factory=list)  # ingest.ProcessResult
    error: str | None = None
    finished: bool = False


class JobBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}

    def start(self, paths: list[Path], settings: Settings, checklist_path: Path | None, operator: str | None) -> Job:
        job = Job(uuid.uuid4().hex[:8], [p.name for p in paths], dt.datetime.now())
        with self._lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, paths, settings, checklist_path, operator),
                         name=f"ingest-{job.id}", daemon=True).start()
        return job

    def _run(self, job: Job, paths, settings, checklist_path, operator) -> None:
        from pipeline.storage.runner import process_paths

        def progress(done: int, total: int, name: str) -> None:
            job.done, job.current = done, name

        try:
            job.results = process_paths(paths, settings, checklist_path=checklist_path, operator=operator or None,
                                        progress=progress)
        except Exception as exc:  # noqa: BLE001 - shown on the page, logged with the traceback
            log.exception("upload batch %s failed", job.id)
            job.error = str(exc)
        finally:
            job.finished = True

    def recent(self, n: int = 10) -> list[Job]:
        with self._lock:
            return sorted(self.jobs.values(), key=lambda j: j.started_at, reverse=True)[:n]
