"""A second stage trained from cached features with mmengine's own pieces.

When the stage-2 config freezes everything before the head (in eval mode)
and uses no random augmentation, the head sees, for every image, the same
input in every epoch: the stage-1 features. Stage 2 is then a function of
the head, its loss, the sampler, the optimizer and the schedule, which is
what this module runs on cached features (:mod:`disalign_mm.second_stage.features`),
built from the config exactly as ``mim train`` builds them:

* the head from ``model.head`` (seeded, initialised, then the stage-1 head
  weights loaded, as ``load_from`` does), inside
  :class:`CachedFeatureClassifier`, an mmengine ``BaseModel`` whose
  parameter names are the head's (``head.*``), which runs the part of the
  head after the cached point: its classifier(s) on the cached inputs, their
  outputs combined as the head combines them, and the head's loss;
* freezing with :func:`disalign_mm.engine.freeze_stage2` and the
  re-initialisation (cRT) chosen by the config's ``DisAlignFreezeHook``
  (:func:`~disalign_mm.engine.reinit_module_names`);
* the sampler from ``train_dataloader.sampler`` (seeded with
  ``randomness.seed``), batches of ``train_dataloader.batch_size``;
* the ``OptimWrapper`` from ``optim_wrapper`` (``build_optim_wrapper``), the
  parameter schedulers from ``param_scheduler`` (default ``end`` and
  epoch length as the Runner sets them), ``model.train_step`` per batch,
  iteration-based schedulers stepped after every iteration and epoch-based
  ones after every epoch (mmengine's ``ParamSchedulerHook``), the sampler's
  epoch set before each epoch (``DistSamplerSeedHook``).

The tests compare the result with a real Runner run of the same config on
the images, parameter for parameter (exactly equal on CPU).

Supported: epoch-based training (``train_cfg.by_epoch=True``), one
optimizer, no ``auto_scale_lr``, the heads of
:mod:`disalign_mm.cls.classifiers` (and their second-stage versions).
"""
import copy
import math
from typing import Dict, Iterator, Optional, Sequence

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import nn

from ..cls import LongTailAccuracy  # and registers the plugin's heads and samplers
from ..core import DisAlignCalibration
from ..engine import (DisAlignFreezeHook, FrozenStage2, calibration_param_names, freeze_stage2,
                      reinit_module_names, reinitialize)
from ..engine.feature_stats import fix_feature_stats, stats_subset
from .features import per_classifier


class FeatureDataset:
    """What the samplers need of a data set: its length and its labels."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.numel())

    def get_gt_labels(self) -> np.ndarray:
        return self.labels.numpy()

    def get_data_info(self, idx: int) -> dict:
        return dict(gt_label=int(self.labels[idx]))


class FeatureLoader:
    """Batches of cached features in the order of a sampler, as a
    ``DataLoader`` over the images would give them: ``dict(inputs=(B, C)
    features, data_samples=(B,) labels)``; with ``logits`` (the cached
    stage-1 logits), ``inputs`` is ``dict(feats=..., logits=...)``. Features
    and logits may be tuples (one tensor per classifier)."""

    def __init__(self, feats: torch.Tensor, labels: torch.Tensor, sampler,
                 batch_size: int, drop_last: bool = False,
                 logits: Optional[torch.Tensor] = None) -> None:
        self.feats, self.labels, self.logits = feats, labels, logits
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        order = torch.as_tensor(list(iter(self.sampler)), dtype=torch.long)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            # index_select: half the time of advanced indexing on large caches
            feats = per_classifier(lambda t: torch.index_select(t, 0, idx), self.feats)
            inputs = feats if self.logits is None else dict(feats=feats, logits=per_classifier(
                lambda t: torch.index_select(t, 0, idx), self.logits))
            yield dict(inputs=inputs, data_samples=torch.index_select(self.labels, 0, idx))


class CachedFeatureClassifier(BaseModel):
    """An mmpretrain classification head over cached features: the part of
    an ``ImageClassifier`` that a stage 2 on a frozen representation trains.

    The cached features are the inputs of the head's classifier(s)
    (:func:`~disalign_mm.cls.classifiers.classifier_spec`), so this model
    runs exactly the part of the head after them: each classifier on its
    cached input, their outputs combined as the head combines them
    (:func:`~disalign_mm.cls.classifiers.combine_outputs`: one classifier's
    output, DeiT's mean of two, Conformer's sum), and, for training, the
    head's loss as mmpretrain's ``ClsHead`` computes it (its loss module on
    the combined logits, averaged over the batch; Conformer: one loss per
    classifier, summed). Whatever the head computes before its classifiers
    (ViT's hidden layer, StackedLinear's blocks, LeViT's BatchNorm) is in
    the cached features already.

    Parameter names are those of the head (``head.*``), so the config's
    ``trainable`` / ``reinit`` patterns and ``paramwise_cfg`` apply
    unchanged.

    **Cached logits.** When a classifier is a calibrated layer
    (:mod:`disalign_mm.core.layers`: DisAlign, LWS and their ablations)
    whose own weights are frozen, it computes ``calibration(z, x)`` with
    ``z = classifier(x)`` fixed: :meth:`use_cached_logits` then takes ``z``
    from the cache instead of multiplying every batch by the classifier (for
    1000 classes and 2048-d features that product is nearly all the cost of
    a training step). The stage-1 logits were computed in other batch shapes
    than the training batches, which can change their last bits: the
    trained parameters then equal a Runner's to float rounding, not bit for
    bit (without cached logits they are equal).

    Args:
        head (nn.Module): An mmpretrain head of
            :mod:`disalign_mm.cls.classifiers` (stage 1 or second stage).
    """

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        from ..cls.classifiers import classifier_spec
        self.head = head
        self.spec = getattr(head, 'stage2_spec', None) or classifier_spec(head)
        self._fast: tuple = (False, ) * len(self.spec.paths)  # set by use_cached_logits()

    def classifiers(self) -> tuple:
        """The head's classifier modules, in the order of the cached features."""
        from ..cls.classifiers import classifier_modules
        return classifier_modules(self.head, self.spec)

    @staticmethod
    def _frozen_calibrated(layer: nn.Module) -> bool:
        from ..core.layers import _Calibrated
        return isinstance(layer, _Calibrated) and not any(
            p.requires_grad for p in layer.parameters(recurse=False))

    @torch.no_grad()
    def use_cached_logits(self, feats, logits) -> bool:
        """Compute the calibrations from cached logits from now on, for the
        classifiers that allow it (see the class docstring) and whose cached
        logits are their outputs: checked on ``feats``/``logits`` (a few
        cached samples; tuples for several classifiers), so a stale cache is
        an error, not a silent difference. Returns whether the cached logits
        are used (for any classifier)."""
        from ..core.layers import _Calibrated
        xs, zs = _as_tuple(feats), _as_tuple(logits)
        fast = []
        for layer, x, z_cached in zip(self.classifiers(), xs, zs):
            if not self._frozen_calibrated(layer):
                fast.append(False)
                continue
            z = super(_Calibrated, layer).forward(x)  # the classifier alone
            if not torch.allclose(z.float(), z_cached.float(), rtol=1e-3,
                                  atol=1e-3 * float(z.abs().max()) + 1e-6):
                raise RuntimeError('the cached stage-1 logits are not the outputs of the stage-1 '
                                   'classifier on the cached features (max difference '
                                   f'{float((z - z_cached).abs().max()):.3g}): a stale cache? '
                                   'Recompute it.')
            fast.append(True)
        self._fast = tuple(fast)
        return any(fast)

    def outputs(self, inputs) -> tuple:
        """Each classifier's output on ``inputs`` (see :meth:`forward`)."""
        cached = None
        if isinstance(inputs, dict):
            inputs, cached = inputs['feats'], inputs.get('logits')
        xs = _as_tuple(inputs)
        zs = _as_tuple(cached) if cached is not None else (None, ) * len(xs)
        if len(xs) != len(self.spec.paths):
            raise ValueError(f'{len(xs)} cached features for a head with '
                             f'{len(self.spec.paths)} classifiers {list(self.spec.paths)}')
        return tuple(layer.calibration(z, x) if fast and z is not None else layer(x)
                     for layer, x, z, fast in zip(self.classifiers(), xs, zs, self._fast))

    def forward(self, inputs, data_samples: Optional[torch.Tensor] = None,
                mode: str = 'tensor'):
        """``inputs``: ``(B, C)`` features (a tuple of them, one per
        classifier), or ``dict(feats, logits)`` (logits used after
        :meth:`use_cached_logits`). ``mode='tensor'``: the head's logits ``(B,
        K)``; ``'loss'``: ``dict(loss=...)`` with ``data_samples`` the labels
        ``(B,)``."""
        from ..cls.classifiers import combine_outputs
        outs = self.outputs(inputs)
        if mode == 'tensor':
            return combine_outputs(self.spec, outs)
        if mode == 'loss':
            # ClsHead._get_loss: the loss module on the scores, averaged over
            # the batch; ConformerHead's: one such loss per classifier, summed
            scores = outs if self.spec.loss_per_classifier else (
                combine_outputs(self.spec, outs), )
            return dict(loss=sum(self.head.loss_module(z, data_samples, avg_factor=z.size(0))
                                 for z in scores))
        raise ValueError(f'mode must be "tensor" or "loss", got {mode!r}')


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x, )


def load_stage1_head(head: nn.Module, state: Dict[str, torch.Tensor]) -> None:
    """Load the stage-1 head weights into ``head`` as ``load_from`` does
    (by name, shapes checked); a parameter left without a stage-1 value is an
    error unless it belongs to a DisAlign calibration (new in stage 2)."""
    missing, _ = head.load_state_dict(state, strict=False)
    new = set(calibration_param_names(head))
    params = dict(head.named_parameters())
    bad = [k for k in missing if k in params and k not in new]
    if bad:
        raise RuntimeError(f'the stage-1 head has no value for {bad[:5]} of '
                           f'{type(head).__name__}: it does not fit this second stage')


def set_class_counts(model: nn.Module, counts: Sequence[float], source: str) -> None:
    """Give the training counts to every module that takes them (GRW losses,
    the logit-adjusted head) and has none, as ``ClassCountsHook`` does."""
    counts = counts.tolist() if torch.is_tensor(counts) else list(counts)
    for m in model.modules():
        if callable(getattr(m, 'set_class_counts', None)) and \
                getattr(m, 'class_counts', None) is None:
            m.set_class_counts(counts, source=source)


def build_stage2_model(cfg, head_state: Dict[str, torch.Tensor], counts: Sequence[float],
                       seed: int) -> CachedFeatureClassifier:
    """The head of ``cfg.model.head`` built under ``torch.manual_seed(seed)``,
    initialised, loaded with the stage-1 head weights and given the class
    counts, inside a :class:`CachedFeatureClassifier`."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = MODELS.build(copy.deepcopy(cfg.model.head))
    head.init_weights()
    load_stage1_head(head, head_state)
    set_class_counts(head, counts, source='the cached training features')
    return CachedFeatureClassifier(head)


def freeze_hook_args(cfg) -> Optional[dict]:
    """Arguments of the config's ``DisAlignFreezeHook``; None when it has
    none (a post-hoc method: nothing trains)."""
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') == 'DisAlignFreezeHook']
    if len(hooks) > 1:
        raise ValueError('the config has more than one DisAlignFreezeHook')
    return {k: v for k, v in hooks[0].items() if k != 'type'} if hooks else None


def build_param_schedulers(cfg, optim_wrapper, max_epochs: int, epoch_length: int) -> list:
    """``cfg.param_scheduler`` built as the Runner builds it (the train loop's
    length is the default ``end``; ``epoch_length`` for
    ``convert_to_iter_based``)."""
    from mmengine.registry import PARAM_SCHEDULERS
    scheds = cfg.get('param_scheduler') or []
    scheds = scheds if isinstance(scheds, (list, tuple)) else [scheds]
    out = []
    for s in scheds:
        s = copy.deepcopy(dict(s))
        s.setdefault('end', max_epochs if s.get('by_epoch', True) else max_epochs * epoch_length)
        out.append(PARAM_SCHEDULERS.build(
            s, default_args=dict(optimizer=optim_wrapper, epoch_length=epoch_length)))
    return out


def _check_supported(cfg) -> int:
    """The number of epochs; an error for what the cached path does not do."""
    train_cfg = cfg.train_cfg
    loop = train_cfg.get('type', 'EpochBasedTrainLoop' if train_cfg.get('by_epoch', True)
                         else 'IterBasedTrainLoop')
    if loop != 'EpochBasedTrainLoop':
        raise NotImplementedError(f'the cached second stage runs epoch-based training only; '
                                  f'the config has {loop}')
    if (cfg.get('auto_scale_lr') or {}).get('enable', False):
        raise NotImplementedError('the cached second stage does not scale the learning rate: '
                                  'set auto_scale_lr.enable=False')
    extra = {'batch_sampler', 'num_batch_per_epoch'} & set(cfg.train_dataloader)
    if extra:
        raise NotImplementedError(f'the cached second stage does not support '
                                  f'train_dataloader.{sorted(extra)}')
    return int(train_cfg.max_epochs)


def train_on_features(cfg, model: CachedFeatureClassifier, feats: torch.Tensor,
                      labels: torch.Tensor, seed: Optional[int] = None,
                      logits: Optional[torch.Tensor] = None) -> Optional[FrozenStage2]:
    """Run the config's stage 2 on cached features (see the module
    docstring); returns what was frozen, or None when the config has no
    ``DisAlignFreezeHook`` (nothing trains). ``seed`` defaults to
    ``randomness.seed`` (the sampler's seed in a Runner). ``logits``: the
    cached stage-1 logits of ``feats``, used where the head allows it
    (:meth:`CachedFeatureClassifier.use_cached_logits`).

    Raises:
        FloatingPointError: The loss is not finite.
    """
    from mmengine.registry import DefaultScope

    hook_args = freeze_hook_args(cfg)
    if hook_args is None:
        return None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return _train(cfg, model, feats, labels, seed, hook_args, logits)


def _train(cfg, model: CachedFeatureClassifier, feats: torch.Tensor, labels: torch.Tensor,
           seed: Optional[int], hook_args: dict,
           logits: Optional[torch.Tensor]) -> FrozenStage2:
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import DATA_SAMPLERS

    max_epochs = _check_supported(cfg)
    if seed is None:
        seed = cfg.get('randomness', {}).get('seed')
    hook = DisAlignFreezeHook(**hook_args)
    # the frozen representation is not part of this model: cRT trains all of it
    frozen = freeze_stage2(model, hook.trainable, allow_all=True)
    reinitialize(model, reinit_module_names(model, hook.reinit))
    frozen.set_eval()
    feats = per_classifier(lambda t: t.float(), feats)
    if logits is not None:
        logits = per_classifier(lambda t: t.float(), logits)
        if not model.use_cached_logits(per_classifier(lambda t: t[:64], feats),
                                       per_classifier(lambda t: t[:64], logits)):
            logits = None

    def inputs(idx):
        def take(t):
            return t[idx]

        x = per_classifier(take, feats)
        return x if logits is None else dict(feats=x, logits=per_classifier(take, logits))

    # the confidence statistics, from the samples and in the batches the hook uses
    indices = stats_subset(len(labels), seed or 0, hook.feature_stats_iters,
                           cfg.train_dataloader.batch_size)
    bs = cfg.train_dataloader.batch_size
    fix_feature_stats(model, (inputs(indices[i:i + bs]) for i in range(0, len(indices), bs)),
                      lambda x: model(x, mode='tensor'))

    loader_cfg = cfg.train_dataloader
    sampler = DATA_SAMPLERS.build(copy.deepcopy(dict(loader_cfg.sampler)),
                                  default_args=dict(dataset=FeatureDataset(labels), seed=seed))
    loader = FeatureLoader(feats, labels, sampler, loader_cfg.batch_size,
                           loader_cfg.get('drop_last', False), logits)
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    schedulers = build_param_schedulers(cfg, optim_wrapper, max_epochs, len(loader))
    optim_wrapper.initialize_count_status(model, 0, max_epochs * len(loader))
    for epoch in range(max_epochs):
        sampler.set_epoch(epoch)
        model.train()
        frozen.set_eval()
        for batch in loader:
            loss = model.train_step(batch, optim_wrapper)['loss']
            if not torch.isfinite(loss):
                raise FloatingPointError(f'stage 2 on features: loss is {loss.item()} at '
                                         f'epoch {epoch}')
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    model.eval()
    return frozen


def find_calibrations(model: nn.Module) -> Dict[str, DisAlignCalibration]:
    """The model's DisAlign calibrations by module name (one per classifier)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, DisAlignCalibration)}


def find_calibration(model: nn.Module) -> Optional[DisAlignCalibration]:
    """The model's one DisAlign calibration (None when it has none)."""
    found = list(find_calibrations(model).values())
    if len(found) > 1:
        raise ValueError(f'{len(found)} DisAlign calibrations in the model; expected one')
    return found[0] if found else None


@torch.no_grad()
def calibration_summary(model: nn.Module, feats, bins: int = 50) -> Optional[dict]:
    """The learned magnitude and margin, and the histogram of the
    confidence over ``feats`` (None without a calibration). For a head with
    several calibrated classifiers (``feats`` a tuple, one per classifier):
    ``dict(classifiers={name: summary})``, one summary per calibration."""
    if isinstance(model, CachedFeatureClassifier):
        layers = dict(zip(model.spec.paths, model.classifiers()))
        feats = dict(zip(model.spec.paths, _as_tuple(feats)))
        calibs = {p: getattr(m, 'calibration', None) for p, m in layers.items()}
        calibs = {p: c for p, c in calibs.items() if isinstance(c, DisAlignCalibration)}
    else:
        calib = find_calibration(model)
        calibs = {} if calib is None else {'': calib}
        feats = {'': feats}
    if not calibs:
        return None

    def one(calib: DisAlignCalibration, x: torch.Tensor) -> dict:
        sigma = calib.sigma(x)
        out = dict(alpha=calib.alpha.detach().tolist(), beta=calib.beta.detach().tolist())
        if sigma is not None:
            sigma = sigma.expand(x.shape[0], 1) if sigma.dim() == 0 else sigma
            out.update(sigma_hist=np.histogram(sigma.reshape(-1).numpy(), bins=bins,
                                               range=(0, 1))[0].tolist(),
                       sigma_mean=float(sigma.mean()))
        return out

    summaries = {p: one(c, feats[p].float()) for p, c in calibs.items()}
    if len(summaries) == 1:
        return next(iter(summaries.values()))
    return dict(classifiers=summaries)


@torch.no_grad()
def evaluate(model: nn.Module, feats: torch.Tensor, labels: torch.Tensor,
             counts: Sequence[float], many_thr: float, few_thr: float,
             logits: Optional[torch.Tensor] = None, classes: Optional[Sequence[str]] = None,
             batch_size: int = 8192) -> dict:
    """Top-1 and Many / Medium / Few accuracy with the plugin's
    ``LongTailAccuracy``, and ``mean_class``, the mean of the per-class
    accuracies (classes without samples left out; the selection score,
    top-1 on a balanced split).

    Returns:
        dict: ``metrics`` (with ``mean_class``), ``per_class`` (accuracy per
        class), ``groups``, and ``record`` (the per-class results record,
        :mod:`disalign_mm.engine.per_class`).
    """
    model.eval()
    feats = per_classifier(lambda t: t.float(), feats)
    scores = []
    for i in range(0, len(labels), batch_size):
        def take(t):
            return t[i:i + batch_size].float()

        x = per_classifier(take, feats)
        inputs = x if logits is None else dict(feats=x, logits=per_classifier(take, logits))
        scores.append(torch.softmax(model(inputs), dim=1))
    return score_predictions(torch.cat(scores), labels, counts, many_thr, few_thr, classes)


def score_predictions(scores: torch.Tensor, labels: torch.Tensor, counts: Sequence[float],
                      many_thr: float, few_thr: float,
                      classes: Optional[Sequence[str]] = None) -> dict:
    """:func:`evaluate` of given class scores ``(N, K)``."""
    metric = LongTailAccuracy(class_counts=list(counts), many_thr=many_thr, few_thr=few_thr,
                              out_file=None)
    if classes is not None:
        metric.dataset_meta = dict(classes=list(classes))
    out = metric.compute_metrics(
        [dict(pred_score=s, gt_label=t.view(1)) for s, t in zip(scores, labels)])
    acc = [a for a in metric.per_class['per_class']['accuracy'] if a is not None]
    out['mean_class'] = float(np.mean(acc)) if acc else float('nan')
    return dict(metrics=out, per_class=metric.per_class['per_class']['accuracy'],
                groups=metric.per_class['groups'], record=metric.per_class)
