"""The stage-2 hook: freeze with :func:`~disalign_mm.engine.freeze.freeze_stage2`,
and check that the frozen representation really is the stage-1 model."""
import json
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dist import all_reduce, broadcast, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.utils import ProgressBar
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..core.monitor import HIGH, LOW, CalibrationMonitor
from ..core.stats import stats_calibrations
from .feature_stats import fix_feature_stats, stats_subset
from .freeze import (FrozenStage2, calibration_state_names, freeze_stage2, reinit_module_names,
                     reinitialize, select_trainable)
from .utils import checkpoint_weights, misfit, unwrap_model

#: checkpoint meta key recording that a stage 2 re-initialised these modules
REINIT_META = 'disalign_mm_reinit'


def _resuming(runner) -> bool:
    """Whether this run resumes the checkpoint it loads.

    ``after_load_checkpoint`` is the last point before mmengine restores the
    optimizer and counters of a resumed checkpoint, and there is no public
    way to tell resume from ``load_from`` there: the Runner keeps its
    ``resume`` argument in the private ``_resume`` (and in ``cfg.resume`` only
    when it was built from a config). This is the one place that reads it.
    """
    return bool(getattr(runner, '_resume', None) or runner.cfg.get('resume', False))


def _top_modules(keys: Sequence[str], depth: int = 2) -> List[str]:
    """``a.b.c.weight`` -> ``a.b``: a short summary of many keys."""
    return sorted({'.'.join(k.split('.')[:depth]) for k in keys})


def check_stage1_fit(model: nn.Module, state: Dict[str, torch.Tensor],
                     trainable: Sequence[str]) -> Tuple[int, List[str]]:
    """Check that a checkpoint provides every frozen parameter and buffer of
    ``model`` with its shape.

    The only entries of the model a checkpoint may lack are the DisAlign
    calibrations' and the trainable parameters (a re-initialised classifier).

    Returns:
        tuple[int, list[str]]: the number of frozen entries checked, and the
        checkpoint keys the model does not use (deliberately dropped modules,
        e.g. an auxiliary head), for the log.

    Raises:
        RuntimeError: Naming the first missing keys, or the first keys whose
            shapes differ with both shapes.
    """
    exempt = set(calibration_state_names(model)) | set(trainable)
    own = model.state_dict()
    problem = misfit(own, state, 'frozen entries', exempt)
    if problem:
        raise RuntimeError(
            'DisAlignFreezeHook: the loaded checkpoint does not fit the frozen stage-2 model: '
            + problem + '. Stage 2 would train on a partly random, frozen '
            'representation. Load the stage-1 checkpoint of this model (same backbone, '
            'neck, head and num_classes) as load_from.')
    frozen = [k for k in own if k not in exempt]
    return len(frozen), [k for k in state if k not in own]


@HOOKS.register_module()
class DisAlignFreezeHook(Hook):
    """Freeze everything but the DisAlign calibration for stage 2.

    Before the run it calls :func:`~disalign_mm.engine.freeze_stage2`: every
    parameter not chosen to train gets ``requires_grad=False``, and every
    module with nothing trainable is kept in eval mode before each training
    epoch and iteration (the loops call ``model.train()``), so BatchNorm
    statistics and dropout stay fixed.

    It also checks that the frozen representation is a trained stage-1 model:

    * when a checkpoint is loaded (``after_load_checkpoint``), every frozen
      parameter and buffer must be in it with its shape
      (:func:`check_stage1_fit`); a missing key or a size mismatch stops the
      run, naming the keys and shapes. Only the calibration parameters (new)
      and trainable parameters may be missing; checkpoint entries the model
      does not use (e.g. a dropped auxiliary head) are listed in the log;
    * training fails when no checkpoint was loaded (``load_from``);
    * a resumed run must resume a stage-2 checkpoint, one that holds the
      trainable parameters: resuming a stage-1 checkpoint would restore the
      stage-1 optimizer and counters.

    In every validation and test epoch it reports what the calibrations do
    (:class:`~disalign_mm.core.CalibrationMonitor`): the mean confidence,
    the fractions of inputs with sigma below 0.02 or above 0.98, and the
    fraction of decisions that differ from the stage-1 model's, logged as
    ``val/disalign/*`` (``test/disalign/*``) scalars, with a warning naming
    the likely cause when sigma is saturated on more than 95 % of the inputs
    or no decision changed.

    With DDP, parameters frozen after the wrapper was built need
    ``model_wrapper_cfg=dict(type='MMDistributedDataParallel',
    find_unused_parameters=True)``.

    ``reinit`` serves second stages that learn a classifier afresh on the
    frozen representation (Decouple's cRT): when training starts, after the
    stage-1 checkpoint was loaded, the matched modules get their
    ``reset_parameters()`` (:func:`~disalign_mm.engine.freeze.reinitialize`;
    rank 0's values are then broadcast). The checkpoints of such a stage 2
    record it (``meta['disalign_mm_reinit']``), so a resumed stage 2 is not
    re-initialised again, and resuming a checkpoint without that record is an
    error.

    Args:
        trainable (Sequence[str], optional): Regular expressions
            (``re.search`` on the full parameter name); the parameters that
            match stay trainable. Defaults to None: the parameters of every
            :class:`~disalign_mm.core.DisAlignCalibration` module.
        require_checkpoint (bool): Fail when training starts without a
            loaded checkpoint. Defaults to True.
        log_names (int): At most this many trainable names are logged.
            Defaults to 20.
        reinit (Sequence[str], optional): Regular expressions matched with
            ``re.fullmatch`` against module names (e.g. ``['head\\.fc']``),
            see :func:`~disalign_mm.engine.freeze.reinit_module_names`.
            Defaults to None: nothing is re-initialised.
        feature_stats_iters (int): When stage 2 starts, the per-channel
            statistics that standardise the confidence's input and the
            per-class RMS of the logits that conditions the magnitude (see
            :class:`~disalign_mm.core.DisAlignCalibration`) are computed from
            the frozen model on at most this many training batches (a random
            subset of the training set, seeded with the run's seed, through
            the training pipeline). Defaults to 50. Not repeated when a
            stage-2 checkpoint is resumed (the statistics are in it).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 trainable: Optional[Sequence[str]] = None,
                 require_checkpoint: bool = True,
                 log_names: int = 20,
                 reinit: Optional[Sequence[str]] = None,
                 feature_stats_iters: int = 50) -> None:
        if isinstance(trainable, str):
            trainable = [trainable]
        self.trainable = None if trainable is None else list(trainable)
        self.require_checkpoint = require_checkpoint
        self.log_names = log_names
        if isinstance(reinit, str):
            reinit = [reinit]
        self.reinit = list(reinit or [])
        if feature_stats_iters < 1:
            raise ValueError(f'feature_stats_iters must be >= 1, got {feature_stats_iters}')
        self.feature_stats_iters = int(feature_stats_iters)
        self._frozen: Optional[FrozenStage2] = None
        self._monitor: Optional[CalibrationMonitor] = None
        #: the last report of each mode ('val', 'test'), see _report()
        self.reports: Dict[str, dict] = {}
        self._loaded = False  # after_load_checkpoint was called

    def select_trainable(self, model: nn.Module) -> List[str]:
        """Names of the parameters this hook leaves trainable in ``model``."""
        return select_trainable(model, self.trainable)

    def before_run(self, runner) -> None:
        model = unwrap_model(runner.model)
        self._frozen = freeze_stage2(model, self.trainable)
        runner.logger.info(f'DisAlignFreezeHook: {self._frozen.summary(self.log_names)}')
        if self.reinit:
            reinit_module_names(model, self.reinit)  # bad patterns fail before loading

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        frozen = self._frozen or freeze_stage2(model, self.trainable)
        state = checkpoint_weights(checkpoint)
        checked, unused = check_stage1_fit(model, state, frozen.trainable)
        if _resuming(runner):
            meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
            self._check_resumed(meta if isinstance(meta, dict) else {},
                                any(k in state for k in frozen.trainable))
        self._loaded = True
        msg = f'DisAlignFreezeHook: the checkpoint provides all {checked} frozen entries'
        if unused:
            msg += (f'; {len(unused)} of its entries are not in this model (dropped on '
                    f'purpose?): {_top_modules(unused)}')
        runner.logger.info(msg)

    def before_train(self, runner) -> None:
        if not self._loaded and self.require_checkpoint:
            raise RuntimeError(
                'DisAlign stage 2 needs the stage-1 model: set load_from to the '
                'stage-1 checkpoint (e.g. --cfg-options load_from=work_dirs/'
                'stage1/epoch_90.pth). No checkpoint was loaded, so the frozen '
                'representation would be random.')
        if self.reinit:
            self._reinit(runner)
        self._set_eval()
        if not (runner.iter > 0 or runner.epoch > 0):
            self._feature_stats(runner)

    def _feature_stats(self, runner) -> None:
        """Fix the statistics of the stage-1 model that the calibrations use
        (see ``feature_stats_iters``)."""
        model = unwrap_model(runner.model)
        if not any(c.needs_stats for c in stats_calibrations(model).values()):
            return
        loader = runner.train_dataloader
        rank, world = get_dist_info()
        batch = loader.batch_size or 1
        subset = Subset(loader.dataset, stats_subset(len(loader.dataset), runner.seed or 0,
                                                     self.feature_stats_iters, batch, rank,
                                                     world))
        sub_loader = DataLoader(subset, batch_size=batch, shuffle=False,
                                num_workers=loader.num_workers, collate_fn=loader.collate_fn)
        bar = ProgressBar(len(sub_loader)) if rank == 0 else None

        def forward(data):
            model(**model.data_preprocessor(data, True), mode='loss')
            if bar is not None:
                bar.update()

        # the pass must not shift the random streams training then draws from
        py_state, np_state = random.getstate(), np.random.get_state()
        cuda = sorted({p.device.index for p in model.parameters() if p.is_cuda})
        with torch.random.fork_rng(devices=cuda):
            lines = fix_feature_stats(model, sub_loader, forward)
        random.setstate(py_state)
        np.random.set_state(np_state)
        for line in lines:
            runner.logger.info(f'DisAlignFreezeHook: {line} ({len(sub_loader)} batches per '
                               'rank)')

    def _check_resumed(self, meta: dict, stage2: bool) -> None:
        if not stage2:
            raise RuntimeError(
                'resume=True with a checkpoint that has no trained stage-2 parameters: '
                'it is a stage-1 checkpoint, and resuming it would restore the stage-1 '
                'optimizer and iteration counter. To start stage 2 from it set '
                'resume=False (keep load_from); to continue an interrupted stage 2, '
                'resume from a stage-2 checkpoint (or --resume with no path).')
        if self.reinit and REINIT_META not in meta:
            raise RuntimeError(
                'resume=True with reinit: the resumed checkpoint was not saved by a '
                'stage 2 that re-initialised its classifier (it is a stage-1 '
                'checkpoint?); resuming it would restore the stage-1 optimizer and '
                'counters. To start stage 2 from it set resume=False (keep '
                'load_from); to continue an interrupted stage 2, resume from one of '
                'its checkpoints.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.reinit:
            checkpoint.setdefault('meta', {})[REINIT_META] = list(self.reinit)

    def _reinit(self, runner) -> None:
        model = unwrap_model(runner.model)
        chosen = reinit_module_names(model, self.reinit)
        if runner.iter > 0 or runner.epoch > 0:
            runner.logger.info(
                f'DisAlignFreezeHook: resumed a stage-2 checkpoint, {chosen} keep their '
                'trained values (re-initialised when this stage 2 started)')
            return
        reinitialize(model, chosen)
        mods = dict(model.named_modules())
        for name in chosen:
            for t in list(mods[name].parameters()) + list(mods[name].buffers()):
                broadcast(t.data, src=0)
        runner.logger.info(
            f'DisAlignFreezeHook: re-initialised {chosen} with reset_parameters() '
            f'(reinit={self.reinit}), after loading the checkpoint')

    def _set_eval(self) -> None:
        if self._frozen is not None:
            self._frozen.set_eval()

    def before_train_epoch(self, runner) -> None:
        self._set_eval()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._set_eval()

    # ---- what the calibrations did, per validation / test epoch
    def _start_monitor(self, runner) -> None:
        self._monitor = CalibrationMonitor(unwrap_model(runner.model)).start()

    def before_val_epoch(self, runner) -> None:
        self._start_monitor(runner)

    def before_test_epoch(self, runner) -> None:
        self._start_monitor(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'test')

    def _report(self, runner, mode: str) -> None:
        if self._monitor is None:
            return
        counts = self._monitor.counts().clone()
        self._monitor.stop()
        self._monitor = None
        all_reduce(counts, op='sum')
        summary = CalibrationMonitor.summary(counts)
        if summary is None:
            return
        self.reports[mode] = summary
        for key, value in summary.items():
            runner.message_hub.update_scalar(f'{mode}/disalign/{key}', value)
        self._add_to_per_class_files(runner, mode, summary)
        msg = (f'DisAlign ({mode}, {int(summary["inputs"]):,} classified inputs): '
               f'{100 * summary["changed"]:.2f}% of the decisions differ from the stage-1 model')
        saturated = None
        if 'sigma_mean' in summary:
            saturated = summary['sigma_low'] + summary['sigma_high']
            msg += (f'; confidence sigma mean {summary["sigma_mean"]:.3f}, '
                    f'{100 * summary["sigma_low"]:.1f}% below {LOW}, '
                    f'{100 * summary["sigma_high"]:.1f}% above {HIGH}')
        runner.logger.info(msg)
        if saturated is not None and saturated > 0.95:
            where = 'near 0' if summary['sigma_low'] >= summary['sigma_high'] else 'near 1'
            runner.logger.warning(
                f'DisAlign: the confidence sigma is saturated ({where}) on '
                f'{100 * saturated:.1f}% of the {mode} inputs, so the calibration acts '
                'all-or-nothing (near 0 it changes nothing, near 1 Eq. 5 is plain '
                'alpha * z + beta). Likely cause: features on a scale the confidence was not '
                'conditioned for (standardize_features=False, or statistics from other data), '
                'or a learning rate too high for the confidence layer.')
        if summary['changed'] == 0:
            runner.logger.warning(
                f'DisAlign: no {mode} decision differs from the stage-1 model: stage 2 changed '
                'nothing. Likely cause: sigma near 0 on every input (see above), a calibration '
                'still at its identity start (not trained, or lr 0), or a stage-1 checkpoint '
                'evaluated with a stage-2 config.')

    @staticmethod
    def _add_to_per_class_files(runner, mode: str, summary: dict) -> None:
        """Put the report into the per-class JSON the epoch's metrics wrote
        (metrics that write one record its path as ``per_class_file``)."""
        loop = runner.val_loop if mode == 'val' else runner.test_loop
        for metric in getattr(getattr(loop, 'evaluator', None), 'metrics', []):
            path = getattr(metric, 'per_class_file', None)
            if not path or not osp.isfile(path) or runner.rank != 0:
                continue
            with open(path) as f:
                data = json.load(f)
            data['disalign'] = summary
            with open(path, 'w') as f:
                json.dump(data, f, indent=1)
