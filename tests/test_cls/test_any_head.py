"""One mechanism for every single-label mmpretrain head with a linear
classifier: each head of the table, built from mmpretrain's registry (tiny
sizes), becomes its DisAlign stage 2 with ``type='DisAlignHead',
base_type=...``, loads a stage-1 checkpoint with unchanged keys, starts at
the stage-1 predictions, and trains a few steps in which only the
calibration moves; its tau-normalised and logit-adjusted versions compute
the post-hoc formulas on each classifier; bad input is an error naming the
head, the path and the shapes."""
import copy

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

import disalign_mm.cls  # noqa: F401
from disalign_mm.cls.classifiers import (HEAD_CLASSIFIERS, classifier_modules, classifier_patterns,
                                         classifier_spec)
from disalign_mm.cls.heads import Stage2HeadMixin, stage2_head_class, stage2_head_config
from disalign_mm.core import (CalibratedLinear, DisAlignCalibration, LogitAdjustedLinear,
                              TauNormLinear)
from disalign_mm.engine import calibration_param_names, freeze_stage2
from tests.calibration_keys import calibration_keys

K, C, N = 5, 8, 6
COUNTS = [40, 20, 10, 5, 2]

#: name -> (the stage-1 head config, its classifier paths as state-dict
#: prefixes, how the test feeds it: 'one' tensor, 'pair' of tokens, 'list')
HEADS = {
    'LinearClsHead': (dict(in_channels=C), ['fc'], 'one'),
    'VisionTransformerClsHead': (dict(in_channels=C), ['layers.head'], 'one'),
    'VisionTransformerClsHead-hidden': (dict(type='VisionTransformerClsHead', in_channels=C,
                                             hidden_dim=6), ['layers.head'], 'one'),
    'DeiTClsHead': (dict(in_channels=C), ['layers.head', 'layers.head_dist'], 'pair'),
    'VigClsHead': (dict(in_channels=C, hidden_dim=6), ['fc2'], 'one'),
    'StackedLinearClsHead': (dict(in_channels=C, mid_channels=[6, 7],
                                  norm_cfg=dict(type='BN1d')), ['layers.2.fc'], 'one'),
    'ConformerHead': (dict(in_channels=[C, 6]), ['conv_cls_head', 'trans_cls_head'], 'list'),
    'EfficientFormerClsHead': (dict(in_channels=C), ['head', 'dist_head'], 'one'),
    'EfficientFormerClsHead-single': (dict(type='EfficientFormerClsHead', in_channels=C,
                                           distillation=False), ['head'], 'one'),
    'LeViTClsHead': (dict(in_channels=C), ['head.linear', 'head_dist.linear'], 'one'),
    'LeViTClsHead-single': (dict(type='LeViTClsHead', in_channels=C, distillation=False),
                            ['head.linear'], 'one'),
}


def _cfg(name: str, **extra) -> dict:
    cfg, _, _ = HEADS[name]
    cfg = copy.deepcopy(cfg)
    return dict(dict(type=cfg.pop('type', name), num_classes=K, **cfg), **extra)


def _feats(name: str, seed: int = 0, n: int = N):
    g = torch.Generator().manual_seed(seed)
    kind = HEADS[name][2]
    if kind == 'pair':
        return ((torch.randn(n, C, generator=g), torch.randn(n, C, generator=g)), )
    if kind == 'list':
        return ([torch.randn(n, C, generator=g), torch.randn(n, 6, generator=g)], )
    return (torch.randn(n, C, generator=g), )


def _stage1(name: str, tmp_path=None):
    """A stage-1 head with random weights and BatchNorm statistics, and its
    checkpoint file (the keys an ImageClassifier saves: ``head.*``)."""
    torch.manual_seed(0)
    head = MODELS.build(_cfg(name))
    head.init_weights()
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
        for n, b in head.named_buffers():
            if n.endswith('running_var'):
                b.uniform_(0.5, 2.0)
            elif n.endswith('running_mean'):
                b.normal_()
    head.eval()
    path = None
    if tmp_path is not None:
        path = str(tmp_path / 'stage1.pth')
        torch.save(dict(state_dict={f'head.{k}': v for k, v in head.state_dict().items()},
                        meta=dict()), path)
    return head


def _scores(head, feats):
    out = head(feats)
    return sum(out) if isinstance(out, tuple) else out  # Conformer predicts the sum


def _load(head, path):
    """Load the ``head.*`` entries of a model checkpoint the way mmengine does."""
    holder = nn.Module()
    holder.head = head
    load_checkpoint(holder, path, map_location='cpu', strict=False)


def test_the_table_covers_the_heads_of_the_issue():
    assert set(HEAD_CLASSIFIERS) == {
        'LinearClsHead', 'CosineClsHead', 'VisionTransformerClsHead', 'DeiTClsHead',
        'VigClsHead', 'StackedLinearClsHead', 'ConformerHead', 'EfficientFormerClsHead',
        'LeViTClsHead'}


@pytest.mark.parametrize('name', list(HEADS))
def test_disalign_stage2_of_every_head(name, tmp_path):
    stage1 = _stage1(name)
    path = str(tmp_path / 'stage1.pth')
    torch.save(dict(state_dict={f'head.{k}': v for k, v in stage1.state_dict().items()}), path)
    paths = HEADS[name][1]
    cfg = _cfg(name, type='DisAlignHead', base_type=_cfg(name)['type'],
               loss=dict(type='GRWCrossEntropyLoss', rho=1.0, class_counts=COUNTS))
    head = MODELS.build(cfg)
    # the stage-1 class (a subclass of it), its classifiers calibrated
    assert isinstance(head, type(stage1)) and isinstance(head, Stage2HeadMixin)
    assert type(head).__name__ in ('DisAlign' + type(stage1).__name__, 'DisAlignLinearClsHead')
    assert head.stage2_spec.paths == tuple(paths)
    for layer in classifier_modules(head, head.stage2_spec):
        assert isinstance(layer, CalibratedLinear)
    # the stage-1 keys unchanged, the calibration at <classifier>.calibration.*
    want = set(stage1.state_dict()) | {k for p in paths
                                       for k in calibration_keys(f'{p}.calibration.')}
    assert set(head.state_dict()) == want
    head.init_weights()
    _load(head, path)
    for k, v in stage1.state_dict().items():
        assert torch.equal(head.state_dict()[k], v), k
    # identity start: the stage-1 predictions exactly
    head.eval()
    feats = _feats(name)
    torch.testing.assert_close(_scores(head, feats), _scores(stage1, feats), rtol=0, atol=0)

    # a few stage-2 steps: only the calibration moves
    frozen = freeze_stage2(head)
    assert set(frozen.trainable) == set(calibration_param_names(head)) and frozen.trainable
    before = {k: v.clone() for k, v in head.state_dict().items()}
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=1.0)
    labels = torch.arange(N) % K
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    for step in range(3):
        head.train()
        frozen.set_eval()
        loss = head.loss(_feats(name, seed=step + 1), samples)['loss']
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = head.state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved and all('.calibration.' in k for k in moved), moved
    assert {k for k in moved if k.endswith(('alpha', 'beta'))}  # the calibration trained
    head.eval()
    assert not torch.allclose(_scores(head, feats), _scores(stage1, feats))


@pytest.mark.parametrize('name', ['DeiTClsHead', 'EfficientFormerClsHead', 'LeViTClsHead'])
def test_distilled_heads_train_on_their_test_time_output(name):
    """mmpretrain refuses (or warns) to train the distilled heads; their
    second stage trains on the mean of the two classifiers, the prediction
    the head makes at test time."""
    head = MODELS.build(_cfg(name, type='DisAlignHead', base_type=_cfg(name)['type'],
                             loss=dict(type='CrossEntropyLoss')))
    head.load_state_dict(_stage1(name).state_dict(), strict=False)
    feats = _feats(name)
    head.eval()
    want = head(feats)
    labels = torch.arange(N) % K
    head.train()
    for m in head.modules():  # a frozen stage 2 keeps the BatchNorms in eval mode
        if isinstance(m, nn.BatchNorm1d):
            m.eval()
    loss = head.loss(feats, [DataSample().set_gt_label(int(y)) for y in labels])['loss']
    torch.testing.assert_close(loss, nn.functional.cross_entropy(want, labels))
    assert head.training  # the head's own mode is restored


def test_conformer_trains_each_branch_with_its_loss():
    name = 'ConformerHead'
    head = MODELS.build(_cfg(name, type='DisAlignHead', base_type=name,
                             loss=dict(type='CrossEntropyLoss')))
    head.load_state_dict(_stage1(name).state_dict(), strict=False)
    feats = _feats(name)
    labels = torch.arange(N) % K
    conv, trans = head(feats)
    loss = head.loss(feats, [DataSample().set_gt_label(int(y)) for y in labels])['loss']
    want = nn.functional.cross_entropy(conv, labels) + nn.functional.cross_entropy(trans, labels)
    torch.testing.assert_close(loss, want)


def _by_hand(stage1, name, weight_fn=None, bias_fn=None):
    """The stage-1 head with each classifier's weight / bias replaced."""
    ref = copy.deepcopy(stage1)
    for layer in classifier_modules(ref, classifier_spec(ref)):
        with torch.no_grad():
            if weight_fn is not None:
                layer.weight.copy_(weight_fn(layer.weight))
            if bias_fn is not None:
                layer.bias.copy_(bias_fn(layer.bias))
    return ref


@pytest.mark.parametrize('name', list(HEADS))
def test_post_hoc_heads_of_every_head(name, tmp_path):
    stage1 = _stage1(name)
    base = _cfg(name)['type']
    feats = _feats(name)
    tau = 0.7
    head = MODELS.build(_cfg(name, type='TauNormHead', base_type=base, tau=tau))
    head.load_state_dict(stage1.state_dict())  # same keys, strict
    head.eval()
    assert all(isinstance(m, TauNormLinear) for m in classifier_modules(head, head.stage2_spec))
    ref = _by_hand(stage1, name, lambda w: w / w.norm(dim=1, keepdim=True) ** tau,
                   lambda b: torch.zeros_like(b))
    torch.testing.assert_close(_scores(head, feats), _scores(ref, feats))

    head = MODELS.build(_cfg(name, type='LogitAdjustedHead', base_type=base, tau=tau,
                             class_counts=COUNTS))
    head.load_state_dict(stage1.state_dict())
    head.eval()
    assert all(isinstance(m, LogitAdjustedLinear)
               for m in classifier_modules(head, head.stage2_spec))
    log_prior = torch.log(torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)).float()
    ref = _by_hand(stage1, name, bias_fn=lambda b: b - tau * log_prior)
    torch.testing.assert_close(_scores(head, feats), _scores(ref, feats))
    with pytest.raises(RuntimeError, match='post-hoc inference head'):
        head.loss(feats, [DataSample().set_gt_label(0) for _ in range(N)])


def test_logit_adjusted_head_takes_counts_from_the_hook_path():
    """The head is the consumer: counts set on it reach both classifiers."""
    head = MODELS.build(_cfg('DeiTClsHead', type='LogitAdjustedHead', base_type='DeiTClsHead'))
    head.eval()
    with pytest.raises(RuntimeError, match='no class counts.*ClassCountsHook'):
        head(_feats('DeiTClsHead'))
    head.set_class_counts(COUNTS, source='test')
    for layer in classifier_modules(head, head.stage2_spec):
        assert layer.class_counts.tolist() == COUNTS
    assert head.class_counts_source == 'test'
    with pytest.raises(ValueError, match='4 class counts but 5 classes'):
        head.set_class_counts(COUNTS[:4])


@pytest.mark.parametrize('name, trainable', [
    ('LinearClsHead', {'head.fc.weight', 'head.fc.bias'}),
    ('StackedLinearClsHead', {'head.layers.2.fc.weight', 'head.layers.2.fc.bias'}),
    ('DeiTClsHead', {'head.layers.head.weight', 'head.layers.head.bias',
                     'head.layers.head_dist.weight', 'head.layers.head_dist.bias'}),
])
def test_crt_patterns_match_the_classifiers_only(name, trainable):
    import re
    model = nn.Module()
    model.head = _stage1(name)
    train_pats, reinit_pats = classifier_patterns(classifier_spec(model.head))
    names = {n for n, _ in model.named_parameters()
             if any(re.search(p, n) for p in train_pats)}
    assert names == trainable
    from disalign_mm.engine import reinit_module_names
    assert reinit_module_names(model, reinit_pats) == [
        'head.' + p for p in classifier_spec(model.head).paths]


def test_stage2_head_config_keeps_the_registered_classes():
    assert stage2_head_config('DisAlignHead', 'LinearClsHead') == dict(
        type='DisAlignLinearClsHead')
    assert stage2_head_config('TauNormHead', 'LinearClsHead') == dict(type='TauNormClsHead')
    assert stage2_head_config('DisAlignHead', 'CosineClsHead') == dict(
        type='DisAlignCosineClsHead')
    assert stage2_head_config('DisAlignHead', 'VisionTransformerClsHead') == dict(
        type='DisAlignHead', base_type='VisionTransformerClsHead')
    from mmpretrain.models.heads import LinearClsHead, VisionTransformerClsHead
    cls = stage2_head_class('DisAlignHead', VisionTransformerClsHead)
    assert cls is stage2_head_class('DisAlignHead', VisionTransformerClsHead)  # made once
    assert stage2_head_class('DisAlignHead', LinearClsHead).__name__ == 'DisAlignLinearClsHead'
    assert stage2_head_class('DisAlignHead', cls) is cls


def test_the_three_line_config_of_the_docs(tmp_path):
    """docs/hosts/classification.md: a ViT stage-1 config turned into its
    DisAlign stage 2 by inheritance."""
    from mmengine.config import Config
    (tmp_path / 'vit.py').write_text(
        "model = dict(type='ImageClassifier', backbone=dict(type='VisionTransformer', "
        "arch=dict(embed_dims=16, num_layers=1, num_heads=2, feedforward_channels=16), "
        "img_size=16, patch_size=8), head=dict(type='VisionTransformerClsHead', num_classes=5, "
        "in_channels=16, loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))\n")
    (tmp_path / 'stage2.py').write_text(
        "_base_ = ['./vit.py']\n"
        "model = dict(head=dict(type='DisAlignHead', base_type='VisionTransformerClsHead', "
        "loss=dict(_delete_=True, type='GRWCrossEntropyLoss', rho=1.2)))\n"
        "custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]\n")
    cfg = Config.fromfile(str(tmp_path / 'stage2.py'))
    model = MODELS.build(cfg.model)
    assert type(model.head).__name__ == 'DisAlignVisionTransformerClsHead'
    assert isinstance(model.head.layers.head.calibration, DisAlignCalibration)
    assert model.head.in_channels == 16 and type(model.head.loss_module).__name__ == \
        'GRWCrossEntropyLoss'


# ---- bad input -------------------------------------------------------------

@pytest.mark.parametrize('cfg, match', [
    (dict(type='MultiLabelLinearClsHead', num_classes=K, in_channels=C),
     'MultiLabelLinearClsHead is a multi-label head.*supported: LinearClsHead.*'
     'VisionTransformerClsHead'),
    (dict(type='ArcFaceClsHead', num_classes=K, in_channels=C),
     "ArcFaceClsHead is ArcFace's margin head.*supported"),
    (dict(type='ClsHead'), 'ClsHead is not one of the heads whose classifier is known.*'
     "classifier='<module path>'"),
    (dict(type='MoCoV3Head',
          predictor=dict(type='LinearNeck', in_channels=2, hid_channels=2, out_channels=2)),
     'MoCoV3Head is not a single-label classification head.*DeiTClsHead'),
])
def test_heads_that_cannot_be_calibrated(cfg, match):
    base = cfg.pop('type')
    for kind in ('DisAlignHead', 'TauNormHead', 'LogitAdjustedHead'):
        with pytest.raises(NotImplementedError, match=match):
            MODELS.build(dict(type=kind, base_type=base, **cfg))


def test_a_head_of_ones_own_names_its_classifier():
    from mmpretrain.models.heads import ClsHead

    class MyHead(ClsHead):
        def __init__(self, num_classes, in_channels, **kw):
            super().__init__(**kw)
            self.num_classes = num_classes
            self.proj = nn.Linear(in_channels, in_channels)
            self.out = nn.Linear(in_channels, num_classes)

        def forward(self, feats):
            return self.out(torch.relu(self.proj(feats[-1])))

    head = MODELS.build(dict(type='DisAlignHead', base_type=MyHead, num_classes=K,
                             in_channels=C, classifier='out'))
    assert isinstance(head.out, CalibratedLinear) and type(head.proj) is nn.Linear
    with pytest.raises(ValueError, match="MyHead has no classifier 'fc'.*its linear layers: "
                       'proj, out'):
        MODELS.build(dict(type='DisAlignHead', base_type=MyHead, num_classes=K,
                          in_channels=C, classifier='fc'))


def test_classifier_paths_are_checked():
    base = dict(type='DisAlignHead', num_classes=K, in_channels=C)
    with pytest.raises(ValueError, match=r"VisionTransformerClsHead has no classifier "
                       r"'layers\.hed'.*its classifier: layers\.head"):
        MODELS.build(dict(base, base_type='VisionTransformerClsHead', classifier='layers.hed'))
    with pytest.raises(ValueError, match=r"'layers\.pre_logits' is not a classifier of "
                       r'DisAlignVisionTransformerClsHead; its classifier is layers\.head'):
        MODELS.build(dict(base, base_type='VisionTransformerClsHead', hidden_dim=6,
                          classifier='layers.pre_logits'))
    # a two-classifier head given one path: the error names the other
    with pytest.raises(ValueError, match=r'DisAlignDeiTClsHead has 2 classifiers, layers\.head, '
                       r'layers\.head_dist \(the prediction is their mean\); classifier='
                       r"\['layers\.head'\] leaves layers\.head_dist out"):
        MODELS.build(dict(base, base_type='DeiTClsHead', classifier='layers.head'))
    # the right ones (any order, negative indices) are accepted
    head = MODELS.build(dict(base, base_type='DeiTClsHead',
                             classifier=['layers.head_dist', 'layers.head']))
    assert head.stage2_spec.paths == ('layers.head', 'layers.head_dist')
    head = MODELS.build(dict(base, base_type='StackedLinearClsHead', mid_channels=[6],
                             classifier='layers.-1.fc'))
    assert head.stage2_spec.paths == ('layers.1.fc', )
    with pytest.raises(KeyError, match="base_type='NoSuchHead' is not a registered"):
        MODELS.build(dict(base, base_type='NoSuchHead'))
    with pytest.raises(TypeError, match='DisAlignLinearClsHead is already a second-stage head'):
        MODELS.build(dict(type='TauNormHead', base_type='DisAlignLinearClsHead',
                          num_classes=K, in_channels=C))
    with pytest.raises(TypeError, match=r'TauNormLinear replaces a linear classifier.*the '
                       r'classifier fc of this head is a CosineLinear'):
        MODELS.build(dict(type='TauNormHead', base_type='CosineClsHead', num_classes=K,
                          in_channels=C))


@pytest.mark.parametrize('kind', ['DisAlignHead', 'TauNormHead', 'LogitAdjustedHead'])
def test_checkpoint_classifier_of_another_shape_names_head_path_and_shapes(kind, tmp_path):
    other = MODELS.build(dict(type='DeiTClsHead', num_classes=K + 2, in_channels=C))
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={f'head.{k}': v for k, v in other.state_dict().items()}), path)
    head = MODELS.build(dict(type=kind, base_type='DeiTClsHead', num_classes=K, in_channels=C))
    with pytest.raises(ValueError, match=r'the checkpoint classifier head\.layers\.head\.weight '
                       r'has shape \(7, 8\) but the classifier layers\.head of '
                       rf'{kind.replace("Head", "")}DeiTClsHead has \(5, 8\)'):
        _load(head, path)
