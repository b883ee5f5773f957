"""Stage-1 models for a benchmark: ``mim train`` runs, reused when their
settings have not changed.

A run is a config plus ``--cfg-options``; its work directory keeps a stamp
(the options and a hash of the config file) next to the checkpoint, and a
later call with the same stamp reuses the checkpoint instead of training
again.
"""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

STAMP_FILE = 'benchmark_stamp.json'
#: how long the run took (wall time, with the threads and parallel runs it had)
WALL_TIME_FILE = 'wall_time.json'


class Stage1Error(RuntimeError):
    """A stage-1 run could not be started or failed (the message says why
    and shows the end of its log)."""


@dataclass
class Stage1Run:
    """One ``mim train`` run.

    Attributes:
        name (str): How the log calls it (e.g. ``'seed 0'``).
        work_dir (str): Its ``--work-dir``; the log goes to
            ``<work_dir>.log``.
        options (dict): Its ``--cfg-options`` (``key: value``).
    """
    name: str
    work_dir: str
    options: Dict[str, object]

    @property
    def log_file(self) -> str:
        return self.work_dir + '.log'


def file_hash(*paths: str) -> str:
    """A short hash of the files' contents."""
    h = hashlib.sha1()
    for p in paths:
        with open(p, 'rb') as f:
            h.update(f.read())
    return h.hexdigest()[:12]


def stamp(config: str, options: Dict[str, object]) -> dict:
    """What a stage-1 checkpoint is reused for: the same options and the
    same config file contents."""
    return dict(options={k: str(v) for k, v in options.items()}, config=file_hash(config))


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint the run's ``last_checkpoint`` file names, if it exists."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        ckpt = f.read().strip()
    return ckpt if osp.isfile(ckpt) else None


def reusable_checkpoint(config: str, run: Stage1Run) -> Optional[str]:
    """The run's checkpoint when it was trained with the same settings."""
    ckpt = last_checkpoint(run.work_dir)
    stamp_file = osp.join(run.work_dir, STAMP_FILE)
    if ckpt is None or not osp.isfile(stamp_file):
        return None
    with open(stamp_file) as f:
        return ckpt if json.load(f) == stamp(config, run.options) else None


def train_stage1(config: str,
                 runs: Sequence[Stage1Run],
                 jobs: int = 2,
                 threads: int = 1,
                 retrain: bool = False,
                 cwd: Optional[str] = None,
                 log: Callable[[str], None] = print) -> Dict[str, str]:
    """Checkpoints of ``runs`` (by name): reused when their stamp matches
    (unless ``retrain``), otherwise trained with ``mim train mmpretrain``,
    ``jobs`` at a time, each with ``threads`` OpenMP/MKL threads.

    Raises:
        Stage1Error: ``mim`` is missing or a run failed (the other runs are
            stopped).
    """
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    if not osp.isfile(mim):
        raise Stage1Error(f'`mim` (openmim) is not installed in {sys.executable}\'s '
                          'environment (make install)')
    ckpts: Dict[str, str] = {}
    todo: List[Stage1Run] = []
    for run in runs:
        ckpt = None if retrain else reusable_checkpoint(config, run)
        if ckpt:
            log(f'{run.name}: reusing stage 1 {ckpt}')
            ckpts[run.name] = ckpt
        else:
            todo.append(run)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    running: list = []  # (run, process, start time, log file)

    def start(run: Stage1Run) -> None:
        os.makedirs(run.work_dir, exist_ok=True)
        stamp_file = osp.join(run.work_dir, STAMP_FILE)
        if osp.exists(stamp_file):
            os.remove(stamp_file)
        opts = [f'{k}={v}' for k, v in run.options.items()]
        cmd = [mim, 'train', 'mmpretrain', config, '--work-dir', run.work_dir]
        cmd += ['--cfg-options'] + opts if opts else []
        logf = open(run.log_file, 'w')
        log(f'{run.name}: stage 1 started, log {run.log_file}\n    $ {" ".join(cmd)}')
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=logf, stderr=subprocess.STDOUT)
        running.append((run, proc, time.time(), logf))

    while todo or running:
        while todo and len(running) < jobs:
            start(todo.pop(0))
        time.sleep(1.0)
        for item in list(running):
            run, proc, t0, logf = item
            if proc.poll() is None:
                continue
            running.remove(item)
            logf.close()
            ckpt = last_checkpoint(run.work_dir)
            if proc.returncode != 0 or ckpt is None:
                with open(run.log_file) as f:
                    tail = ''.join(f.readlines()[-30:])
                for _, p, _, lf in running:
                    p.kill()
                    lf.close()
                raise Stage1Error(f'stage 1 of {run.name} failed (exit {proc.returncode}); '
                                  f'end of {run.log_file}:\n{tail}')
            with open(osp.join(run.work_dir, STAMP_FILE), 'w') as f:
                json.dump(stamp(config, run.options), f, indent=1)
            seconds = time.time() - t0
            with open(osp.join(run.work_dir, WALL_TIME_FILE), 'w') as f:
                json.dump(dict(seconds=round(seconds, 1), threads=threads, jobs=jobs,
                               load_average=[round(x, 2) for x in os.getloadavg()]), f)
            log(f'{run.name}: stage 1 done in {seconds:.0f} s: {ckpt}')
            ckpts[run.name] = ckpt
    return ckpts
