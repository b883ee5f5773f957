"""Resuming a stage 2: what ``--resume`` means for it, and the guard
against resuming a stage-1 checkpoint.

A stage 2 starts from the stage-1 model (``load_from``) with fresh
optimizer and counters; an interrupted one resumes its own latest
checkpoint. The hosts' ``tools/train.py`` spell ``--resume`` differently
(mmpretrain and mmdet clear ``load_from``; mmpretrain applies
``--cfg-options`` afterwards, so a ``load_from`` given there survives; mmseg
keeps ``load_from``), and mmengine resumes ``load_from`` when it is set,
else the latest checkpoint of the work directory. So that "the same command
with ``--resume``" continues a stage 2 in every host:

- when a stage 2 starts, :func:`record_stage1` writes the stage-1
  checkpoint it started from into the work directory
  (:data:`RECORD_FILE`);
- before a resumed run loads anything, :func:`prepare_resume` reads it: a
  ``load_from`` that is that stage-1 checkpoint (or none) resumes the
  latest stage-2 checkpoint of the work directory, and when there is none
  yet, stage 2 starts again from the stage-1 checkpoint, as a fresh stage 2
  would. Without the record (or ``stage1_checkpoint`` of the hook) the error
  says what to run.

Resuming a checkpoint that has no trained stage-2 parameters (a stage-1
checkpoint given explicitly) stays an error (:func:`check_resumed`): it
would restore the stage-1 optimizer and counters.
"""
import json
import os
import os.path as osp
from typing import Optional

#: the record of the stage-1 checkpoint a stage 2 started from, in its work dir
RECORD_FILE = 'disalign_stage2.json'
RECORD_FORMAT = 'disalign_mm/stage2-start@1'
#: checkpoint meta key recording that a stage 2 re-initialised these modules
REINIT_META = 'disalign_mm_reinit'


def resuming(runner) -> bool:
    """Whether this run resumes the checkpoint it loads.

    There is no public way to tell resume from ``load_from``: the Runner
    keeps its ``resume`` argument in the private ``_resume`` (and in
    ``cfg.resume`` only when it was built from a config, and not updated
    when :func:`prepare_resume` turns a resume into a fresh start). This and
    :func:`_set_start` are the places that touch it.
    """
    if hasattr(runner, '_resume'):
        return bool(runner._resume)
    return bool(runner.cfg.get('resume', False))


def load_from(runner) -> Optional[str]:
    """The checkpoint the run loads or resumes (``load_from``), or None."""
    if hasattr(runner, '_load_from'):
        return runner._load_from
    return runner.cfg.get('load_from')


def _set_start(runner, checkpoint: str, resume: bool) -> None:
    runner._load_from = checkpoint
    runner._resume = resume


def _same(a: str, b: str) -> bool:
    if '://' in a or '://' in b:
        return a == b
    return osp.realpath(osp.expanduser(a)) == osp.realpath(osp.expanduser(b))


def _absolute(path: str) -> str:
    return path if '://' in path else osp.abspath(osp.expanduser(path))


def read_stage1_record(work_dir: str) -> Optional[str]:
    """The stage-1 checkpoint recorded in ``work_dir`` (None when none)."""
    path = osp.join(work_dir, RECORD_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError:
            return None
    if not isinstance(data, dict) or data.get('format') != RECORD_FORMAT:
        return None
    return data.get('stage1_checkpoint') or None


def record_stage1(work_dir: str, checkpoint: str) -> str:
    """Write (atomically) the stage-1 checkpoint a stage 2 starts from into
    its work directory; returns the file."""
    path = osp.join(work_dir, RECORD_FILE)
    os.makedirs(work_dir, exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(dict(format=RECORD_FORMAT, stage1_checkpoint=_absolute(checkpoint)), f,
                  indent=1)
    os.replace(path + '.tmp', path)
    return path


def prepare_resume(runner, stage1_checkpoint: Optional[str] = None) -> Optional[str]:
    """Before a resumed stage 2 loads anything (``before_run``): decide what
    it resumes or loads (see the module docstring). Returns a line for the
    log when it changed what the Runner would do, else None.

    Raises:
        RuntimeError: Resume asked, no stage-2 checkpoint in the work
            directory and no known stage-1 checkpoint: what to run instead.
    """
    if not resuming(runner):
        return None
    from mmengine.runner import find_latest_checkpoint
    work_dir = runner.work_dir
    stage1 = stage1_checkpoint or read_stage1_record(work_dir)
    given = load_from(runner)
    if given is not None and (stage1 is None or not _same(given, stage1)):
        return None  # resume what was given (a stage-1 one is refused when loaded)
    latest = find_latest_checkpoint(work_dir)
    if latest is not None:
        if given is None:
            return None  # mmengine resumes the latest checkpoint itself
        _set_start(runner, latest, resume=True)
        return (f'DisAlignFreezeHook: resume with load_from = the stage-1 checkpoint of this '
                f'stage 2 ({given}): resuming the latest stage-2 checkpoint, {latest}')
    if stage1 is None:
        raise RuntimeError(
            f'DisAlign stage 2: resume was asked, but {work_dir} has no stage-2 checkpoint to '
            'resume yet, and the stage-1 checkpoint is not known (--resume clears load_from, '
            'and this work dir has no record of it): start stage 2 again without --resume, '
            'giving the stage-1 checkpoint: --cfg-options load_from=STAGE1.pth')
    _set_start(runner, stage1, resume=False)
    return (f'DisAlignFreezeHook: resume was asked, but {work_dir} has no stage-2 checkpoint '
            f'yet: stage 2 starts again from the stage-1 checkpoint {stage1} (recorded in '
            f'{RECORD_FILE} when it first started)')


def check_resumed(meta: dict, has_stage2: bool, reinit: bool) -> None:
    """Refuse to resume a checkpoint that is not one of a stage 2.

    Args:
        meta (dict): The checkpoint's ``meta``.
        has_stage2 (bool): It holds the trainable stage-2 parameters.
        reinit (bool): The stage 2 re-initialises its classifier (cRT): the
            checkpoint must then record that it did (:data:`REINIT_META`).
    """
    how = ('to continue an interrupted stage 2, run the same command with --resume and '
           'without load_from (or load_from = the stage-1 checkpoint it started from): the '
           'latest stage-2 checkpoint of the work dir is resumed, or stage 2 starts again '
           'before the first one exists')
    if not has_stage2:
        raise RuntimeError(
            'resume=True with a checkpoint that has no trained stage-2 parameters: '
            'it is a stage-1 checkpoint, and resuming it would restore the stage-1 '
            'optimizer and iteration counter. To start stage 2 from it set '
            f'resume=False (keep load_from); {how}.')
    if reinit and REINIT_META not in meta:
        raise RuntimeError(
            'resume=True with reinit: the resumed checkpoint was not saved by a '
            'stage 2 that re-initialised its classifier (it is a stage-1 '
            'checkpoint?); resuming it would restore the stage-1 optimizer and '
            f'counters. To start stage 2 from it set resume=False (keep load_from); {how}.')


__all__ = ['RECORD_FILE', 'REINIT_META', 'resuming', 'load_from', 'read_stage1_record',
           'record_stage1', 'prepare_resume', 'check_resumed']
