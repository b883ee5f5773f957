"""ClassCountsHook: sources, the one rule for explicit counts, the stages
(training, val/test-only), the cache, and a real Runner run."""
import json
import os.path as osp
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.registry import HOOKS, Registry
from torch import nn

from disalign_mm.engine import (ClassCounts, ClassCountsHook, GRWCrossEntropyLoss, as_class_counts,
                                count_sources, leaf_datasets, register_count_source,
                                register_label_counter)
from disalign_mm.engine.class_counts import model_consumers
from tests.tiny_runner import COUNTS, NUM_CLASSES, TinyData, TinyModel, make_runner

CALLS = []


@register_label_counter(TinyData)
def _count_tiny(datasets, num_classes=None):
    """The 'labels' source of the tiny data set (a torch Dataset), counting
    how often it is called."""
    CALLS.append(len(datasets))
    labels = torch.cat([d.y for d in datasets])
    return ClassCounts(torch.bincount(labels, minlength=num_classes or 0).tolist(),
                       source=f'TinyData ({len(labels)} samples)')


@register_count_source('fixed_for_tests')
def _fixed(request, counts=(1, 2, 3)):
    return ClassCounts(list(counts), source='the fixed test source')


class CountsMetric(BaseMetric):
    """A metric that consumes class counts and reports their sum."""

    def __init__(self, class_counts=None):
        super().__init__()
        self.class_counts = None if class_counts is None else \
            ClassCounts(list(class_counts), source='metric config')

    def set_class_counts(self, counts, source=''):
        self.class_counts = as_class_counts(counts, source)

    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        return dict(total=sum(self.class_counts.counts), seen=sum(results))


class Head(nn.Module):
    """A head with ``num_classes`` and a GRW loss inside."""

    def __init__(self, num_classes=NUM_CLASSES, counts=None):
        super().__init__()
        self.num_classes = num_classes
        self.loss_module = GRWCrossEntropyLoss(rho=1.0, class_counts=counts)


def fake_runner(tmp_path, model, train_set=None, val=None, test=None, cfg=None):
    """What the hook reads of a Runner."""
    log = tmp_path / f'{uuid.uuid4().hex}.log'
    logger = MMLogger.get_instance(f'cc-{uuid.uuid4().hex}', log_file=str(log))
    return SimpleNamespace(
        model=model, work_dir=str(tmp_path), rank=0, logger=logger, cfg=cfg or {},
        train_dataloader=SimpleNamespace(dataset=train_set),
        val_loop=None if val is None else object(), train_loop=None,
        val_evaluator=SimpleNamespace(metrics=val or []),
        test_evaluator=SimpleNamespace(metrics=test or []),
        log=lambda: log.read_text())


def test_default_source_counts_the_training_labels_and_caches(tmp_path):
    model = nn.ModuleDict(dict(head=Head()))
    metric = CountsMetric()
    runner = fake_runner(tmp_path, model, TinyData(), val=[metric])
    hook = ClassCountsHook()
    hook.before_train(runner)
    loss = model['head'].loss_module
    assert loss.class_counts.tolist() == COUNTS
    assert loss.class_counts_source == 'TinyData (64 samples)'
    assert metric.class_counts.counts == COUNTS
    cache = json.loads((tmp_path / 'class_counts.json').read_text())
    assert cache['counts'] == COUNTS and cache['count_source'] == 'labels'
    log = runner.log()
    assert ('ClassCountsHook: 3 classes, 8 to 40 training images per class, from TinyData '
            f'(64 samples); cached as {tmp_path / "class_counts.json"}') in log
    assert 'GRW rho=1.0 weights' in log
    # validation during training: nothing is read again
    n = len(CALLS)
    hook.before_val(runner)
    assert len(CALLS) == n


def test_test_only_run_reads_the_cache_or_the_configs_training_set(tmp_path):
    # no cache: the training set of the config (here an instance) is counted
    metric = CountsMetric()
    runner = fake_runner(tmp_path, TinyModel(), test=[metric],
                         cfg=dict(train_dataloader=dict(dataset=TinyData())))
    n = len(CALLS)
    ClassCountsHook().before_test(runner)
    assert metric.class_counts.counts == COUNTS and len(CALLS) == n + 1
    assert not osp.exists(tmp_path / 'class_counts.json')  # only training runs write it
    # a cache written by a training run with the same source is read back
    ClassCounts([7, 8, 9], source='earlier run', extra=dict(count_source='labels')).dump(
        str(tmp_path / 'class_counts.json'))
    metric = CountsMetric()
    ClassCountsHook().before_test(fake_runner(tmp_path, TinyModel(), test=[metric], cfg={}))
    assert metric.class_counts.counts == [7, 8, 9] and len(CALLS) == n + 1
    assert metric.class_counts.source.startswith('cache ')
    # ... but not one written by another source
    ClassCounts([7, 8, 9], source='x', extra=dict(count_source='other')).dump(
        str(tmp_path / 'class_counts.json'))
    with pytest.raises(RuntimeError, match='no training data set to count'):
        ClassCountsHook().before_test(
            fake_runner(tmp_path, TinyModel(), test=[CountsMetric()], cfg={}))


def test_test_only_run_serves_metrics_not_losses(tmp_path):
    model = nn.ModuleDict(dict(head=Head()))
    metric = CountsMetric()
    runner = fake_runner(tmp_path, model, test=[metric],
                         cfg=dict(train_dataloader=dict(dataset=TinyData())))
    ClassCountsHook().before_test(runner)
    assert metric.class_counts.counts == COUNTS
    assert model['head'].loss_module.class_counts is None  # not used in a test run
    # nothing to serve: no error and nothing read
    n = len(CALLS)
    hook = ClassCountsHook()
    hook.before_test(fake_runner(tmp_path, model, cfg={}))
    assert hook.counts is None and len(CALLS) == n


def test_explicit_counts_win_and_are_shared(tmp_path):
    model = nn.ModuleDict(dict(head=Head(counts=[4, 5, 6])))
    metric = CountsMetric()
    n = len(CALLS)
    ClassCountsHook().before_train(fake_runner(tmp_path, model, TinyData(), val=[metric]))
    assert metric.class_counts.counts == [4, 5, 6]
    assert metric.class_counts.source == 'the config (class_counts)'
    assert len(CALLS) == n  # the training set was not read
    assert not osp.exists(tmp_path / 'class_counts.json')


def test_every_explicit_count_must_agree_and_the_error_names_both_sides(tmp_path):
    path = str(tmp_path / 'counts.json')
    ClassCounts([4, 5, 6], source='hand-made').dump(path)
    # the same counts in the loss and in the hook's file: fine
    model = nn.ModuleDict(dict(head=Head(counts=[4, 5, 6])))
    ClassCountsHook(class_counts_file=path).before_train(fake_runner(tmp_path, model))
    # different: an error naming both sides and the first difference
    model = nn.ModuleDict(dict(head=Head(counts=[4, 5, 7])))
    with pytest.raises(ValueError) as exc:
        ClassCountsHook(class_counts_file=path).before_train(fake_runner(tmp_path, model))
    msg = str(exc.value)
    assert 'GRWCrossEntropyLoss head.loss_module (from the config (class_counts))' in msg
    assert 'class_counts_file of ClassCountsHook' in msg
    assert 'different class counts (class 2: 7 vs 6; 1 of 3 differ)' in msg
    # a loss and a metric
    model = nn.ModuleDict(dict(head=Head(counts=[4, 5, 6])))
    with pytest.raises(ValueError, match=r'head.loss_module .*and the CountsMetric of the val '
                       r'evaluator \(from metric config\) have different class counts'):
        ClassCountsHook().before_train(
            fake_runner(tmp_path, model, val=[CountsMetric([4, 5, 6, 1])]))
    # the hook's own source, when set, is explicit too
    with pytest.raises(ValueError, match="source 'fixed_for_tests' of ClassCountsHook"):
        ClassCountsHook(source='fixed_for_tests').before_train(fake_runner(tmp_path, model))
    hook = ClassCountsHook(source=dict(type='fixed_for_tests', counts=[4, 5, 6]))
    hook.before_train(fake_runner(tmp_path, model))
    assert hook.counts.counts == [4, 5, 6]
    # a metric of a later test run must agree with the run's counts as well
    with pytest.raises(ValueError, match='counts of this run'):
        hook.before_test(fake_runner(tmp_path, model, test=[CountsMetric([1, 1, 1])]))


def test_counts_must_fit_the_head(tmp_path):
    model = nn.ModuleDict(dict(head=Head(num_classes=4)))
    with pytest.raises(ValueError, match=r'\(from the fixed test source\) have 3 entries but '
                       'the model head has 4 classes'):
        ClassCountsHook(source='fixed_for_tests').before_train(fake_runner(tmp_path, model))


def test_consumers_and_their_owner():
    model = nn.ModuleDict(dict(head=Head(num_classes=7), other=GRWCrossEntropyLoss()))
    found = {c.name: (c.owner_name, c.num_classes) for c in model_consumers(model)}
    # a GRW loss's own num_classes (the length of its counts) is not an owner
    assert found == {'GRWCrossEntropyLoss head.loss_module': ('head', 7),
                     'GRWCrossEntropyLoss other': ('', None)}


def test_a_training_run_with_nothing_to_serve_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match='nothing in this run takes class counts'):
        ClassCountsHook().before_train(fake_runner(tmp_path, nn.Linear(2, 2), TinyData()))


def test_arguments_and_registration():
    with pytest.raises(ValueError, match='not both'):
        ClassCountsHook(source='labels', class_counts_file='x.json')
    with pytest.raises(KeyError, match=r"unknown source 'nope'; registered: \[.*'labels'"):
        ClassCountsHook(source='nope')
    with pytest.raises(TypeError, match="a name or a dict with 'type'"):
        ClassCountsHook(source=dict(count='image_count'))
    with pytest.raises(KeyError, match='already registered'):
        register_count_source('labels', lambda request: None)
    assert {'labels', 'fixed_for_tests'} <= set(count_sources())
    # registered once in mmengine's root HOOKS; every host scope finds it
    child = Registry('hook', parent=HOOKS, scope='some_host')
    assert child.get('ClassCountsHook') is ClassCountsHook


def test_label_counter_of_an_unknown_data_set_is_a_clear_error(tmp_path):
    model = nn.ModuleDict(dict(head=Head()))
    with pytest.raises(TypeError, match=r"no label counter for a training set of type \['list'\]"):
        ClassCountsHook().before_train(fake_runner(tmp_path, model, [1, 2, 3]))


def test_leaf_datasets():
    a, b, c = TinyData(), TinyData(), TinyData()
    wrapped = SimpleNamespace(datasets=[SimpleNamespace(dataset=a),
                                        SimpleNamespace(dataset=SimpleNamespace(datasets=[b, c]))])
    assert leaf_datasets(SimpleNamespace(dataset=wrapped)) == [a, b, c]
    assert leaf_datasets(a) == [a]


@pytest.mark.slow
def test_runner_train_then_test_only_runs(tmp_path):
    """A real Runner: training counts the labels (before_train) and caches
    them; a test-only run in the same work dir reads the cache; one in
    another work dir counts the training set of its config."""
    model = TinyModel()
    model.loss_module = GRWCrossEntropyLoss(rho=1.0)  # no counts: the hook's

    def test_kw():  # a fresh metric (without counts) for every run
        return dict(test_dataloader=dict(
            dataset=TinyData(), sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'), batch_size=16),
            test_cfg=dict(), test_evaluator=CountsMetric())

    runner = make_runner(tmp_path / 'w', model=model, max_iters=2,
                         hooks=[dict(type='ClassCountsHook')], **test_kw())
    runner.train()
    assert model.loss_module.class_counts.tolist() == COUNTS
    assert json.loads((tmp_path / 'w' / 'class_counts.json').read_text())['counts'] == COUNTS
    n = len(CALLS)
    runner = make_runner(tmp_path / 'w', model=TinyModel(), hooks=[dict(type='ClassCountsHook')],
                         **test_kw())
    assert runner.test() == {'total': sum(COUNTS), 'seen': sum(COUNTS)}
    assert len(CALLS) == n  # from the cache
    runner = make_runner(tmp_path / 'other', model=TinyModel(),
                         hooks=[dict(type='ClassCountsHook')], **test_kw())
    assert runner.test()['total'] == sum(COUNTS)
    assert len(CALLS) == n + 1
