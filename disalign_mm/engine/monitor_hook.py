"""What the DisAlign calibrations did in a validation or test epoch, reported
by one hook through mmengine's message hub."""
from typing import Dict, Optional

from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..core.monitor import HIGH, LOW, CalibrationMonitor
from .per_class import CALIBRATION_INFO
from .utils import unwrap_model


@HOOKS.register_module()
class DisAlignMonitorHook(Hook):
    """Report, in every validation and test epoch, what the calibrations do
    (:class:`~disalign_mm.core.CalibrationMonitor`): the mean confidence,
    the fractions of inputs with sigma below 0.02 or above 0.98, and the
    fraction of decisions that differ from the stage-1 model's.

    The report is published through the runner's message hub, never by
    rewriting another component's file:

    * after the epoch's last batch, before the metrics compute, as the
      runtime info :data:`~disalign_mm.engine.per_class.CALIBRATION_INFO`
      (cleared when the epoch ends), which the long-tail metrics put into
      their per-class JSON as ``"disalign"`` when they write it;
    * as the scalars ``val/disalign/*`` (``test/disalign/*``) when the
      epoch ends, logged with the epoch's metrics, and in :attr:`reports`;
    * in the log, with a warning naming the likely cause when sigma is
      saturated on more than 95 % of the inputs or no decision changed.

    The counts are summed over the ranks. :class:`DisAlignFreezeHook`
    reports the same through an instance of its own when a run has no
    ``DisAlignMonitorHook`` (``monitor=True``, its default), so stage-2
    configs need not list this hook.
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._monitor: Optional[CalibrationMonitor] = None
        self._summary: Optional[dict] = None
        #: the last report of each mode ('val', 'test')
        self.reports: Dict[str, dict] = {}

    # ---- val / test epochs
    def before_val_epoch(self, runner) -> None:
        self._start(runner)

    def before_test_epoch(self, runner) -> None:
        self._start(runner)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._is_last(runner.val_dataloader, batch_idx):
            self._publish(runner, 'val')

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._is_last(runner.test_dataloader, batch_idx):
            self._publish(runner, 'test')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, 'test')

    # ---- the steps
    def _start(self, runner) -> None:
        self._stop()
        self._summary = None
        runner.message_hub.update_info(CALIBRATION_INFO, None, resumed=False)
        self._monitor = CalibrationMonitor(unwrap_model(runner.model)).start()

    def _stop(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
        self._monitor = None

    @staticmethod
    def _is_last(loader, batch_idx: int) -> bool:
        try:
            return batch_idx == len(loader) - 1
        except TypeError:  # a loader without a length: reported at the epoch's end
            return False

    def _publish(self, runner, mode: str) -> None:
        """Sum the counts over the ranks and publish the summary."""
        if self._monitor is None:
            return
        counts = self._monitor.counts().clone()
        self._stop()
        all_reduce(counts, op='sum')
        summary = CalibrationMonitor.summary(counts)
        if summary is None:
            return
        self._summary = summary
        self.reports[mode] = summary
        runner.message_hub.update_info(CALIBRATION_INFO, dict(summary), resumed=False)

    def _finish(self, runner, mode: str) -> None:
        self._publish(runner, mode)  # a loader without a length
        summary, self._summary = self._summary, None
        runner.message_hub.update_info(CALIBRATION_INFO, None, resumed=False)
        if summary is None:
            return
        for key, value in summary.items():
            runner.message_hub.update_scalar(f'{mode}/disalign/{key}', value)
        _log(runner.logger, mode, summary)


def _log(logger, mode: str, summary: dict) -> None:
    """The report's log line, and a warning for a saturated confidence or an
    unchanged model."""
    msg = (f'DisAlign ({mode}, {int(summary["inputs"]):,} classified inputs): '
           f'{100 * summary["changed"]:.2f}% of the decisions differ from the stage-1 model')
    saturated = None
    if 'sigma_mean' in summary:
        saturated = summary['sigma_low'] + summary['sigma_high']
        msg += (f'; confidence sigma mean {summary["sigma_mean"]:.3f}, '
                f'{100 * summary["sigma_low"]:.1f}% below {LOW}, '
                f'{100 * summary["sigma_high"]:.1f}% above {HIGH}')
    logger.info(msg)
    if saturated is not None and saturated > 0.95:
        where = 'near 0' if summary['sigma_low'] >= summary['sigma_high'] else 'near 1'
        logger.warning(
            f'DisAlign: the confidence sigma is saturated ({where}) on '
            f'{100 * saturated:.1f}% of the {mode} inputs, so the calibration acts '
            'all-or-nothing (near 0 it changes nothing, near 1 Eq. 5 is plain '
            'alpha * z + beta). Likely cause: features on a scale the confidence was not '
            'conditioned for (standardize_features=False, or statistics from other data), '
            'or a learning rate too high for the confidence layer.')
    if summary['changed'] == 0:
        logger.warning(
            f'DisAlign: no {mode} decision differs from the stage-1 model: stage 2 changed '
            'nothing. Likely cause: sigma near 0 on every input (see above), a calibration '
            'still at its identity start (not trained, or lr 0), or a stage-1 checkpoint '
            'evaluated with a stage-2 config.')


__all__ = ['DisAlignMonitorHook']
