"""mmpretrain: the shipped stage-2 recipe trains the DisAlign head on a
stage-1 model whose logits are 0.1x to 100x the usual, without a loss
blow-up or a stall (issue: the magnitude's SGD step moves the logits by about
``lr * |z|^2``; 100x the usual logits made stage 2 diverge)."""
import os.path as osp

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import disalign_mm.cls  # noqa: F401
from tests.invariance import (SYNTH_C, SYNTH_COUNTS, SYNTH_K, check_lr_robustness,
                              stage1_classifier, synthetic_problem, train_with_recipe)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py')
COUNTS, K, C = SYNTH_COUNTS, SYNTH_K, SYNTH_C
# the real recipe: 6 epochs of ~100 iterations; here 150 epochs of 4 batches
EPOCHS, BATCHES = 150, 4


def _data(seed=0):
    return synthetic_problem(500, seed)


_stage1_classifier = stage1_classifier


def _run(scale, condition=True):
    cfg = Config.fromfile(CONFIG)
    (x, y), (xt, yt) = _data()
    weight, bias = _stage1_classifier(x, y)
    head_cfg = cfg.model.head.to_dict()
    head_cfg.update(num_classes=K, in_channels=C,
                    calibration=dict(head_cfg.get('calibration') or {},
                                     condition_magnitude=condition))
    head_cfg['loss'] = dict(head_cfg['loss'], class_counts=COUNTS)
    head = MODELS.build(head_cfg)
    with torch.no_grad():  # logits times `scale`, the same stage-1 decisions
        head.fc.weight.copy_(weight * scale)
        head.fc.bias.copy_(bias * scale)
    batches = [(x[i::BATCHES], y[i::BATCHES]) for i in range(BATCHES)]

    def loss(batch):  # what head.loss() computes, without building DataSamples
        feats, labels = batch
        return head.loss_module(head((feats, )), labels)

    losses = train_with_recipe(head, batches, loss, cfg.optim_wrapper.optimizer, EPOCHS)
    with torch.no_grad():
        acc = (head((xt, )).argmax(1) == yt).float().mean().item() * 100
        stage1 = (torch.nn.functional.linear(xt, head.fc.weight, head.fc.bias).argmax(1)
                  == yt).float().mean().item() * 100
    return acc, stage1, losses


def test_the_shipped_recipe_trains_at_any_logit_scale(one_thread):
    check_lr_robustness(_run, max_spread=8.0, min_gain=2.5, max_loss_ratio=0.7)
