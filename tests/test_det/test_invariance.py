"""mmdet: the DisAlign RoI classifier gives the same predictions whatever the
scale of the RoI features (the last shared fc scaled by c, ``fc_cls`` and
``fc_reg`` by 1/c)."""
import pytest
import torch
from mmdet.registry import MODELS

import disalign_mm.det  # noqa: F401
from tests.invariance import check_invariance, sigmas, train_stage2

pytestmark = pytest.mark.slow  # trains three stage-2 heads

K, C = 5, 4
COUNTS = [300, 120, 40, 12, 5]


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(K + 1, C * 4, generator=g)
    prior = torch.tensor(COUNTS + [600], dtype=torch.float).log()

    def sample(n):
        x = torch.randn(n, C, 2, 2, generator=g)
        return x, (x.flatten(1) @ proj.t() + prior).argmax(1)  # K is the background

    return sample(400), sample(200)


def _run(scale, standardize=True):
    (x, y), (xt, yt) = _data()
    torch.manual_seed(0)
    head = MODELS.build(dict(
        type='Shared2FCBBoxHead', in_channels=C, fc_out_channels=16, roi_feat_size=2,
        num_classes=K, cls_predictor_cfg=dict(
            type='DisAlignLinear', calibration=dict(standardize_features=standardize)),
        loss_cls=dict(type='GRWCrossEntropyLoss', rho=1.0, class_counts=COUNTS,
                      background_weight=1.0)))
    head.init_weights()
    with torch.no_grad():
        head.shared_fcs[1].weight.mul_(scale)
        head.shared_fcs[1].bias.add_(0.1).mul_(scale)
        head.fc_cls.weight.div_(scale)
        head.fc_reg.weight.div_(scale)
    batches = [(x[i::2], y[i::2]) for i in range(2)]

    def loss(batch):
        return head.loss_cls(head(batch[0])[0], batch[1])

    train_stage2(head, batches, loss)
    with torch.no_grad():
        pred = head(xt)[0].argmax(1)
        feats = {}
        handle = head.fc_cls.register_forward_hook(lambda m, i, o: feats.update(x=i[0]))
        head(xt)
        handle.remove()
        stage1 = torch.nn.functional.linear(feats['x'], head.fc_cls.weight,
                                            head.fc_cls.bias).argmax(1)
    return pred, stage1, sigmas(head, lambda: head(xt)), yt


def test_roi_predictions_do_not_depend_on_the_feature_scale():
    check_invariance(_run)
