"""DisAlignMonitorHook on a real Runner: the calibration report goes through
the message hub into the metric's own per-class JSON (one writer), and
DisAlignFreezeHook alone still reports it."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator

from disalign_mm.engine import DisAlignFreezeHook, DisAlignMonitorHook, LongTailMetricMixin
from disalign_mm.engine.per_class import CALIBRATION_INFO, per_class_record
from tests.tiny_runner import NUM_CLASSES, TinyData, TinyModel, make_runner

pytestmark = pytest.mark.slow  # Runner runs


class TinyLongTail(LongTailMetricMixin, BaseMetric):
    """Per-class accuracy of TinyModel's logits, kept and written as the
    long-tail metrics do."""

    def process(self, data_batch, data_samples) -> None:
        pred = torch.stack(list(data_samples)).argmax(1)
        self.results += list(zip(pred.tolist(), data_batch['labels'].tolist()))

    def compute_metrics(self, results) -> dict:
        hit = [[p == y for p, y in results if y == c] for c in range(NUM_CLASSES)]
        acc = [100 * sum(h) / len(h) for h in hit]
        record = per_class_record('classification', dict(accuracy=acc), dict(all=[0, 1, 2]),
                                  dict(top1=sum(acc) / len(acc)))
        path = self._keep_per_class(record)
        with open(path) as f:  # the file as the metric wrote it
            self.written = json.load(f)
        return dict(top1=record['metrics']['top1'])


def _val(out_dir):
    metric = TinyLongTail(out_file='per_class.json', out_dir=str(out_dir))
    return metric, dict(
        val_dataloader=dict(dataset=TinyData(), sampler=dict(type='DefaultSampler', shuffle=False),
                            collate_fn=dict(type='default_collate'), batch_size=16,
                            num_workers=0),
        val_cfg=dict(), val_evaluator=Evaluator(metric),
        train_cfg=dict(by_epoch=False, max_iters=6, val_interval=6))


@pytest.fixture(scope='module')
def stage1_ckpt(tmp_path_factory):
    work = tmp_path_factory.mktemp('stage1')
    make_runner(work, model=TinyModel(disalign=False), max_iters=3).train()
    return str(work / 'iter_3.pth')


@pytest.mark.parametrize('hooks', [
    [dict(type='DisAlignFreezeHook')],
    [dict(type='DisAlignFreezeHook', monitor=False), dict(type='DisAlignMonitorHook')],
    [dict(type='DisAlignFreezeHook'), dict(type='DisAlignMonitorHook')],
], ids=['freeze-hook-alone', 'monitor-hook', 'both'])
def test_the_report_is_in_the_file_the_metric_writes(stage1_ckpt, tmp_path, hooks):
    metric, opts = _val(tmp_path / 'out')
    runner = make_runner(tmp_path, hooks=hooks, load_from=stage1_ckpt, log_level='INFO', **opts)
    runner.train()
    monitors = [h for h in runner.hooks if isinstance(h, DisAlignMonitorHook)]
    freeze = next(h for h in runner.hooks if isinstance(h, DisAlignFreezeHook))
    reporter = monitors[0] if monitors else freeze
    report = reporter.reports['val']
    assert report['inputs'] == len(TinyData())
    if monitors:  # the run's own monitor reports; the freeze hook does not twice
        assert freeze.reports == {}
    # the metric put the report into its record before it wrote it, and the
    # file is that record: nothing rewrote it afterwards
    path = str(tmp_path / 'out' / 'per_class.json')
    assert metric.per_class_file == path
    assert metric.written['disalign'] == report
    assert metric.written == json.loads(json.dumps(metric.per_class))
    with open(path) as f:
        assert json.load(f) == metric.written
    # the scalars, and the runtime info cleared when the epoch ended
    scalars = runner.message_hub.log_scalars
    assert scalars['val/disalign/changed'].current() == report['changed']
    assert runner.message_hub.get_info(CALIBRATION_INFO) is None
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    assert log.count('DisAlign (val, 64 classified inputs)') == 1
