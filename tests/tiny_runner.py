"""A tiny model and data set to drive a real mmengine Runner on CPU."""
import copy
import uuid

import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from disalign_mm.core import CalibratedLinear
from disalign_mm.engine import GRWCrossEntropyLoss

NUM_CLASSES = 3
COUNTS = [40, 16, 8]


class TinyModel(BaseModel):
    """backbone (Linear + BatchNorm + Dropout) -> fc, calibrated (DisAlign at
    ``fc.calibration``) unless ``disalign=False``."""

    def __init__(self, disalign: bool = True) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5))
        self.fc = CalibratedLinear(8, NUM_CLASSES) if disalign else nn.Linear(8, NUM_CLASSES)
        self.loss_module = GRWCrossEntropyLoss(
            rho=1.0 if disalign else 0.0, class_counts=COUNTS)

    def forward(self, inputs, labels=None, mode='tensor'):
        feats = self.backbone(inputs)
        logits = self.fc(feats)
        if mode == 'loss':
            return dict(loss=self.loss_module(logits, labels))
        return logits


class TinyData(Dataset):
    """Long-tailed 4-d Gaussian blobs, deterministic."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        labels = torch.cat([torch.full((n, ), c) for c, n in enumerate(COUNTS)])
        self.x = torch.randn(len(labels), 4, generator=g) + labels[:, None].float()
        self.y = labels

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def make_runner(work_dir, model=None, max_iters=6, hooks=(), **kwargs) -> Runner:
    cfg = dict(
        model=model if model is not None else TinyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=TinyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=8,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[copy.deepcopy(h) for h in hooks],
        randomness=dict(seed=0),
        default_scope='mmengine',
        # Runners made within one second would share the timestamp name, and
        # with it one MMLogger writing to the first run's log file
        experiment_name=f'tiny_{uuid.uuid4().hex[:8]}',
        log_level='WARNING',
    )
    cfg.update(kwargs)
    return Runner(**cfg)


class TinyAccuracy(BaseMetric):
    """Top-1 accuracy of TinyModel's logits."""

    def process(self, data_batch, data_samples) -> None:
        pred = torch.stack(list(data_samples)).argmax(1)
        self.results.append(float((pred == data_batch['labels']).float().sum()))
        self.results.append(len(pred))

    def compute_metrics(self, results) -> dict:
        return dict(top1=100 * sum(results[::2]) / sum(results[1::2]))


def val_options() -> dict:
    """``make_runner`` keyword arguments that add a validation loop (the
    training data, TinyAccuracy) after every 3 iterations."""
    return dict(
        val_dataloader=dict(dataset=TinyData(), sampler=dict(type='DefaultSampler', shuffle=False),
                            collate_fn=dict(type='default_collate'), batch_size=16,
                            num_workers=0),
        val_cfg=dict(), val_evaluator=Evaluator(TinyAccuracy()),
        train_cfg=dict(by_epoch=False, max_iters=3, val_interval=3))
