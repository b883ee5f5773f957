"""The stage-2 hook: freeze with :func:`~disalign_mm.engine.freeze.freeze_stage2`
and check that the frozen representation really is the stage-1 model. What
it does is in functions of their own modules (one concern each): freezing
and the checkpoint's fit (:mod:`~disalign_mm.engine.freeze`), resuming
(:mod:`~disalign_mm.engine.resume`), the statistics the calibrations are
conditioned with (:mod:`~disalign_mm.engine.feature_stats`), and the report
of what the calibration does in validation
(:class:`~disalign_mm.engine.DisAlignMonitorHook`)."""
from typing import List, Optional, Sequence

from mmengine.dist import broadcast, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

from .feature_stats import fix_runner_feature_stats
from .freeze import (FrozenStage2, check_stage1_fit, freeze_stage2, reinit_module_names,
                     reinitialize, select_trainable)
from .monitor_hook import DisAlignMonitorHook
from .registry import check_stage2_model
from .resume import REINIT_META, check_resumed, load_from, prepare_resume, record_stage1, resuming
from .utils import checkpoint_weights, unwrap_model


def _top_modules(keys: Sequence[str], depth: int = 2) -> List[str]:
    """``a.b.c.weight`` -> ``a.b``: a short summary of many keys."""
    return sorted({'.'.join(k.split('.')[:depth]) for k in keys})


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
      stage-1 optimizer and counters;
    * ``--resume`` continues a stage 2 in every host: the latest stage-2
      checkpoint of the work dir is resumed, and before the first one exists
      stage 2 starts again from its stage-1 checkpoint, which the hook
      records in the work dir when stage 2 starts
      (:func:`~disalign_mm.engine.resume.prepare_resume`).

    With ``monitor=True`` (the default) and no
    :class:`~disalign_mm.engine.DisAlignMonitorHook` in the run, it reports
    in every validation and test epoch what the calibrations do, as that
    hook does (the scalars ``val/disalign/*``, the ``"disalign"`` entry of
    the metrics' per-class JSON, the log).

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
        stage1_checkpoint (str, optional): The stage-1 checkpoint, for a
            resumed run that finds no stage-2 checkpoint to resume (then
            stage 2 starts from it). Defaults to None: the one recorded in
            the work dir when this stage 2 started.
        monitor (bool): Report what the calibrations do in validation and
            test when the run has no ``DisAlignMonitorHook``. Defaults to
            True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 trainable: Optional[Sequence[str]] = None,
                 require_checkpoint: bool = True,
                 log_names: int = 20,
                 reinit: Optional[Sequence[str]] = None,
                 feature_stats_iters: int = 50,
                 stage1_checkpoint: Optional[str] = None,
                 monitor: bool = True) -> None:
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
        self.stage1_checkpoint = stage1_checkpoint
        self.monitor = monitor
        #: the report of the calibration, when this hook makes it (see ``monitor``)
        self._monitor: Optional[DisAlignMonitorHook] = None
        self._frozen: Optional[FrozenStage2] = None
        self._loaded = False  # after_load_checkpoint was called

    def select_trainable(self, model: nn.Module) -> List[str]:
        """Names of the parameters this hook leaves trainable in ``model``."""
        return select_trainable(model, self.trainable)

    def before_run(self, runner) -> None:
        model = unwrap_model(runner.model)
        check_stage2_model(model)  # e.g. a sigmoid detector: named before anything else
        self._frozen = freeze_stage2(model, self.trainable)
        runner.logger.info(f'DisAlignFreezeHook: {self._frozen.summary(self.log_names)}')
        if self.reinit:
            reinit_module_names(model, self.reinit)  # bad patterns fail before loading
        note = prepare_resume(runner, self.stage1_checkpoint)
        if note:
            runner.logger.info(note)
        if self.monitor and not any(isinstance(h, DisAlignMonitorHook) for h in runner.hooks):
            self._monitor = DisAlignMonitorHook()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        frozen = self._frozen or freeze_stage2(model, self.trainable)
        state = checkpoint_weights(checkpoint)
        checked, unused = check_stage1_fit(model, state, frozen.trainable)
        if resuming(runner):
            meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
            check_resumed(meta if isinstance(meta, dict) else {},
                          any(k in state for k in frozen.trainable), bool(self.reinit))
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
        fresh = not (runner.iter > 0 or runner.epoch > 0)
        stage1 = self.stage1_checkpoint or load_from(runner)
        if fresh and stage1 and get_dist_info()[0] == 0:
            record_stage1(runner.work_dir, stage1)
        if self.reinit:
            self._reinit(runner)
        self._set_eval()
        if fresh:
            for line in fix_runner_feature_stats(runner, self.feature_stats_iters):
                runner.logger.info(f'DisAlignFreezeHook: {line}')

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

    # ---- the calibration report, when the run has no DisAlignMonitorHook
    def before_val_epoch(self, runner) -> None:
        if self._monitor is not None:
            self._monitor.before_val_epoch(runner)

    def before_test_epoch(self, runner) -> None:
        if self._monitor is not None:
            self._monitor.before_test_epoch(runner)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._monitor is not None:
            self._monitor.after_val_iter(runner, batch_idx, data_batch, outputs)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._monitor is not None:
            self._monitor.after_test_iter(runner, batch_idx, data_batch, outputs)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._monitor is not None:
            self._monitor.after_val_epoch(runner, metrics)

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self._monitor is not None:
            self._monitor.after_test_epoch(runner, metrics)

    @property
    def reports(self) -> dict:
        """The calibration reports of the monitor this hook runs (empty when
        the run has its own ``DisAlignMonitorHook``)."""
        return {} if self._monitor is None else self._monitor.reports


__all__ = ['DisAlignFreezeHook', 'check_stage1_fit']
