"""mmpretrain: the stage-2 DisAlign head gives the same predictions whatever
the scale of the frozen features (issue: sigma saturated at c = 100)."""
import pytest
import torch
from mmpretrain.registry import MODELS

import disalign_mm.cls  # noqa: F401
from tests.invariance import check_invariance, sigmas, train_stage2

pytestmark = pytest.mark.slow  # trains three stage-2 heads

COUNTS = [200, 100, 50, 20, 10, 5]
K, C = len(COUNTS), 16


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(K, C, generator=g) * 0.7

    def sample(counts):
        y = torch.cat([torch.full((n, ), k) for k, n in enumerate(counts)])
        x = (centres[y] + torch.randn(len(y), C, generator=g)).relu() + 0.5  # pooled, >= 0
        return x, y

    return sample(COUNTS), sample([40] * K)


def _stage1_classifier(x, y):
    """Logistic regression on the long-tailed data: biased to the head."""
    torch.manual_seed(0)
    fc = torch.nn.Linear(C, K)
    opt = torch.optim.SGD(fc.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(fc(x), y).backward()
        opt.step()
    return fc.weight.detach(), fc.bias.detach()


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
