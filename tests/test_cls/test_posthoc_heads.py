"""The post-hoc peers of DisAlign: tau-normalised and logit-adjusted heads."""

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.structures import DataSample

import disalign_mm.cls  # noqa: F401
from disalign_mm.cls import LogitAdjustedClsHead, TauNormClsHead
from disalign_mm.engine.class_stats import ClassCounts


def _feats(n=5, c=4, seed=0):
    return (torch.randn(n, c, generator=torch.Generator().manual_seed(seed)), )


def _linear_state(k=3, c=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {'fc.weight': torch.randn(k, c, generator=g) * torch.arange(1., k + 1)[:, None],
            'fc.bias': torch.randn(k, generator=g)}


def test_tau_norm_head_loads_a_linear_head_and_normalises():
    stage1 = LinearClsHead(num_classes=3, in_channels=4)
    stage1.load_state_dict(_linear_state())
    head = TauNormClsHead(num_classes=3, in_channels=4, tau=1.0)
    assert head.load_state_dict(stage1.state_dict()) is not None  # same keys, strict
    feats = _feats()
    w, b = stage1.fc.weight.detach(), stage1.fc.bias.detach()
    unit = w / w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(head(feats), feats[0] @ unit.T, rtol=0, atol=1e-6)
    keep = TauNormClsHead(num_classes=3, in_channels=4, tau=0.5, keep_bias=True)
    keep.load_state_dict(stage1.state_dict())
    want = feats[0] @ (w / w.norm(dim=1, keepdim=True).sqrt()).T + b
    torch.testing.assert_close(keep(feats), want, rtol=0, atol=1e-6)
    # tau 0 with the bias is the stage-1 head
    same = TauNormClsHead(num_classes=3, in_channels=4, tau=0.0, keep_bias=True)
    same.load_state_dict(stage1.state_dict())
    torch.testing.assert_close(same(feats), stage1(feats), rtol=0, atol=0)
    # predict() goes through forward: softmax of the normalised logits
    pred = head.predict(feats, [DataSample() for _ in range(5)])
    torch.testing.assert_close(pred[0].pred_score, F.softmax(feats[0] @ unit.T, 1)[0])


def test_tau_norm_head_errors():
    with pytest.raises(ValueError, match='tau must be a finite number >= 0'):
        TauNormClsHead(num_classes=3, in_channels=4, tau=-1)
    head = TauNormClsHead(num_classes=3, in_channels=4)
    with pytest.raises(ValueError, match=r'\(5, 4\) \(5 classes.*num_classes=3'):
        head.load_state_dict({'fc.weight': torch.ones(5, 4), 'fc.bias': torch.ones(5)})
    with pytest.raises(RuntimeError, match='post-hoc inference head.*mim test'):
        head.loss(_feats(), [DataSample().set_gt_label(0) for _ in range(5)])
    head.fc.weight.data[1] = 0
    with pytest.raises(ValueError, match=r'rows \[1\] have zero norm'):
        head(_feats())


def test_logit_adjusted_head_exact_values(tmp_path):
    state = _linear_state()
    counts = [50, 30, 20]
    feats = _feats()
    z = feats[0] @ state['fc.weight'].T + state['fc.bias']
    for tau in (1.0, 0.5):
        head = LogitAdjustedClsHead(num_classes=3, in_channels=4, tau=tau, class_counts=counts)
        head.load_state_dict(state)
        want = z - tau * torch.log(torch.tensor([0.5, 0.3, 0.2]))
        torch.testing.assert_close(head(feats), want, rtol=0, atol=1e-6)
    # the counts are a non-persistent buffer: not in the state dict, moved with .to()
    assert 'class_counts' not in head.state_dict()
    assert head.class_counts.dtype == torch.float64
    assert head.to(torch.device('cpu')).class_counts.tolist() == counts
    # from a counts file
    path = str(tmp_path / 'counts.json')
    ClassCounts([5, 3, 2], source='hand-made').dump(path)
    head = LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts_file=path)
    head.load_state_dict(state)
    assert head.class_counts_source == 'hand-made'
    torch.testing.assert_close(head(feats), z - torch.log(torch.tensor([0.5, 0.3, 0.2])),
                               rtol=0, atol=1e-6)


def test_logit_adjusted_head_errors(tmp_path):
    head = LogitAdjustedClsHead(num_classes=3, in_channels=4)
    assert head.class_counts is None
    with pytest.raises(RuntimeError, match='no class counts.*ClassCountsHook.*class_counts_file'):
        head(_feats())
    with pytest.raises(ValueError, match='2 class counts but 3 classes'):
        head.set_class_counts([1, 2])
    with pytest.raises(ValueError, match=r'classes \[2\] have a count that is zero'):
        head.set_class_counts([1, 2, 0])
    assert head.class_counts is None  # a failed set leaves nothing half-set
    with pytest.raises(ValueError, match='2 class counts but 3 classes'):
        LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts=[1, 2])
    path = str(tmp_path / 'counts.json')
    ClassCounts([5, 3], source='two').dump(path)
    with pytest.raises(ValueError, match='2 entries but the model has 3 classes'):
        LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts_file=path)
    with pytest.raises(ValueError, match='not both'):
        LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts=[1, 1, 1],
                             class_counts_file=path)
    with pytest.raises(RuntimeError, match='post-hoc inference head'):
        head.loss(_feats(), [DataSample().set_gt_label(0) for _ in range(5)])
