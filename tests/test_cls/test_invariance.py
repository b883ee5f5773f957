"""mmpretrain: the stage-2 DisAlign head gives the same predictions whatever
the scale of the frozen features (issue: sigma saturated at c = 100)."""
import pytest
import torch
from mmpretrain.registry import MODELS

import disalign_mm.cls  # noqa: F401
from tests.invariance import (SYNTH_C, SYNTH_COUNTS, SYNTH_K, check_invariance, sigmas,
                              stage1_classifier, synthetic_problem, train_stage2)

pytestmark = pytest.mark.slow  # trains three stage-2 heads

COUNTS, K, C = SYNTH_COUNTS, SYNTH_K, SYNTH_C


def _data(seed=0):
    return synthetic_problem(40, seed)


_stage1_classifier = stage1_classifier


def _run(scale, standardize=True):
    (x, y), (xt, yt) = _data()
    weight, bias = _stage1_classifier(x, y)
    head = MODELS.build(dict(
        type='DisAlignLinearClsHead', num_classes=K, in_channels=C,
        calibration=dict(standardize_features=standardize),
        loss=dict(type='GRWCrossEntropyLoss', rho=1.0, class_counts=COUNTS)))
    with torch.no_grad():
        head.fc.weight.copy_(weight / scale)
        head.fc.bias.copy_(bias)
    x, xt = x * scale, xt * scale
    batches = [(x[i::2], y[i::2]) for i in range(2)]

    def loss(batch):  # what head.loss() computes, without building DataSamples
        feats, labels = batch
        return head.loss_module(head((feats, )), labels)

    train_stage2(head, batches, loss)
    with torch.no_grad():
        pred = head((xt, )).argmax(1)
        stage1 = torch.nn.functional.linear(xt, head.fc.weight, head.fc.bias).argmax(1)
    return pred, stage1, sigmas(head, lambda: head((xt, ))), yt


def test_predictions_do_not_depend_on_the_feature_scale():
    check_invariance(_run)
    # and stage 2 helped on the balanced test set
    pred, stage1, _, yt = _run(1.0, True)
    assert (pred == yt).float().mean() > (stage1 == yt).float().mean()
