"""mmseg: the stage-2 DisAlign decode head gives the same per-pixel
predictions whatever the scale of the frozen feature map (its last
conv + BN + ReLU scaled by c, ``conv_seg`` by 1/c)."""
import pytest
import torch
from mmseg.registry import MODELS

import disalign_mm.seg  # noqa: F401
from tests.invariance import check_invariance, sigmas, train_stage2

pytestmark = pytest.mark.slow  # trains three stage-2 heads

K, C_IN = 5, 6
COUNTS = [500, 200, 60, 20, 8]


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(K, C_IN, generator=g)
    prior = torch.tensor(COUNTS, dtype=torch.float).log()

    def sample(n):
        x = torch.randn(n, C_IN, 8, 8, generator=g)
        score = torch.einsum('kc,nchw->nkhw', proj, x) + prior[None, :, None, None]
        return x, score.argmax(1)

    return sample(6), sample(4)


def _run(scale, standardize=True):
    (x, y), (xt, yt) = _data()
    torch.manual_seed(0)
    head = MODELS.build(dict(
        type='DisAlignFCNHead', in_channels=C_IN, channels=8, num_convs=1, concat_input=False,
        num_classes=K, dropout_ratio=0.0, norm_cfg=dict(type='BN'),
        calibration=dict(standardize_features=standardize),
        loss_decode=dict(type='GRWCrossEntropyLoss', rho=1.0, class_counts=COUNTS,
                         avg_mode='count', ignore_index=255)))
    head.init_weights()
    with torch.no_grad():
        head.convs[0].bn.running_mean.uniform_(-0.5, 0.5)
        head.convs[0].bn.weight.mul_(scale)
        head.convs[0].bn.bias.add_(0.2).mul_(scale)
        head.conv_seg.weight.div_(scale)
    batches = [(x[i::2], y[i::2]) for i in range(2)]

    def loss(batch):
        return head.loss_decode(head([batch[0]]), batch[1])

    train_stage2(head, batches, loss)
    with torch.no_grad():
        pred = head([xt]).argmax(1)
        stage1 = torch.nn.functional.conv2d(head.convs(xt), head.conv_seg.weight,
                                            head.conv_seg.bias).argmax(1)
    return pred, stage1, sigmas(head, lambda: head([xt])), yt


def test_pixel_predictions_do_not_depend_on_the_feature_scale():
    check_invariance(_run)
