"""Throughput of the stored pipeline (decode, transcribe, store): audio hours
processed per wall-clock hour, with 1 and N local processes and with a Dask
cluster of N local workers.

    .venv/bin/python benchmarks/throughput.py data/demo --workers 2 --runs 1

Each configuration starts from an empty database (SQLite in a temp dir unless
--database-url names a PostgreSQL server; a fresh database is made on it per run)
and includes everything a user waits for: pool start-up and model loading in
every worker. The Dask cluster (LocalCluster, one thread per worker) is started
before the clock, as a standing cluster would be. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _fresh_db(base_url: str | None, tmp: Path, tag: str) -> str:
    if not base_url:
        return f"sqlite:///{tmp / f'{tag}.db'}"
    from sqlalchemy import create_engine, text

    name = f"bench_{tag}_{os.getpid()}"
    admin = create_engine(f"{base_url.rstrip('/')}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{base_url.rstrip('/')}/{name}"


def _audio_seconds(files: list[Path]) -> float:
    from pipeline.speech.audio import probe

    return sum(probe(f).duration for f in files)


def _cpu_seconds() -> float:
    """CPU seconds used by this process and all its workers so far (pool workers
    that ended are counted through RUSAGE_CHILDREN, live Dask workers through psutil)."""
    import resource

    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + ru.ru_utime + ru.ru_stime


def run_config(label: str, files: list[Path], tmp: Path, base_url: str | None, workers: int = 1,
               scheduler: str | None = None, cpu_threads: int = 0) -> tuple[float, float]:
    from pipeline.config import Settings
    from pipeline.storage.runner import process_paths

    tag = f"{label.replace(' ', '_')}_{time.monotonic_ns()}"
    settings = Settings(data_dir=tmp / tag, database_url=_fresh_db(base_url, tmp, tag), cpu_threads=cpu_threads)
    started, cpu0 = time.perf_counter(), _cpu_seconds()
    results = process_paths(files, settings, workers=workers, scheduler=scheduler)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu0
    bad = [r for r in results if r.status != "done"]
    if bad:
        raise SystemExit(f"{label}: not every file was processed: {bad}")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="audio files or folders (e.g. data/demo)")
    parser.add_argument("--workers", type=int, default=2, help="processes / Dask workers for the parallel rows")
    parser.add_argument("--runs", type=int, default=1, help="runs per configuration (median reported)")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server URL without database name")
    parser.add_argument("--only", nargs="*", default=["one", "pool", "dask"], help="configurations: one pool dask")
    args = parser.parse_args(argv)

    from pipeline.storage.sources import expand_paths

    files = [Path(p) for p in expand_paths(args.inputs)]
    audio_s = _audio_seconds(files)
    n = args.workers
    rows = []
    with tempfile.TemporaryDirectory(prefix="callreview-bench-") as tmpdir:
        tmp = Path(tmpdir)
        configs = []
        if "one" in args.only:
            configs.append(("1 process (threads: all cores)", dict(workers=1)))
            configs.append(("1 process, 1 thread", dict(workers=1, cpu_threads=1)))
        if "pool" in args.only:
            configs.append((f"{n} local processes, 1 thread each", dict(workers=n)))
        cluster = None
        if "dask" in args.only:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            configs.append((f"Dask, {n} local workers x 1 thread", dict(scheduler=cluster.scheduler_address)))
        try:
            for label, kwargs in configs:
                runs = [run_config(label, files, tmp, args.database_url, **kwargs) for _ in range(args.runs)]
                wall = statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                rows.append((label, wall, cpu))
                print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        finally:
            if cluster is not None:
                cluster.close()
    load = os.getloadavg()
    print(f"\n{len(files)} calls, {audio_s / 60:.1f} min of audio; {platform.machine()}, {os.cpu_count()} cores; "
          f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| configuration | wall s | audio h per wall h | CPU s | audio h per CPU-core h |")
    print("|---|---|---|---|---|")
    for label, wall, cpu in rows:
        print(f"| {label} | {wall:.1f} | {audio_s / wall:.1f} | {cpu:.1f} | {audio_s / cpu:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
