"""A class-balanced validation split held out from the training set.

Hyper-parameters of a second stage (learning rate, GRW rho, tau) must be
chosen without the test set. When a data set has no validation split of its
own, :func:`held_out_split` takes ``per_class`` training images of every
class, the same number per class, deterministically (a seeded permutation
of each class's images).

A class with fewer than ``2 * per_class`` training images cannot give
``per_class`` and keep as many for training: it gives half of its images
(rounded down), so the second stages still see it in training; a class with
one image gives none and is not scored on validation. Such classes are
named (:attr:`HeldOutSplit.reduced`). The selection score is the mean of the
per-class accuracies on the split (:func:`~disalign_mm.second_stage.stage2.evaluate`'s
``mean_class``), so a class with fewer validation images weighs as much as
any other, and on a balanced split it equals top-1 accuracy.
"""
import json
from dataclasses import asdict, dataclass, field
from typing import Dict, List

import torch

FORMAT = 'disalign_mm/held-out-split@1'


@dataclass
class HeldOutSplit:
    """Indices into the training set.

    Attributes:
        train (list[int]): What the trials train on.
        val (list[int]): The held-out validation images.
        per_class (int): Validation images asked per class.
        seed (int): Seed of the per-class permutations.
        val_counts (list[int]): Validation images of each class.
        reduced (dict[int, int]): Classes that gave fewer than ``per_class``
            (class -> validation images given).
    """
    train: List[int]
    val: List[int]
    per_class: int
    seed: int
    val_counts: List[int]
    reduced: Dict[int, int] = field(default_factory=dict)

    def describe(self, classes=None) -> str:
        """One line for the log: sizes and the classes that gave fewer."""
        line = (f'held-out validation split: {len(self.val)} training images ({self.per_class} '
                f'per class, seed {self.seed}); the trials train on the other {len(self.train)}')
        if self.reduced:
            names = [f'{classes[c] if classes else c} ({n})'
                     for c, n in sorted(self.reduced.items())]
            shown = ', '.join(names[:10]) + (f' and {len(names) - 10} more' if len(names) > 10
                                             else '')
            line += (f'. {len(self.reduced)} classes have fewer than {2 * self.per_class} '
                     f'training images and give half of them (one image: none, not scored): '
                     f'{shown}')
        return line

    def to_dict(self) -> dict:
        d = asdict(self)
        d['reduced'] = {str(k): v for k, v in self.reduced.items()}
        return dict(format=FORMAT, **d)

    def dump(self, path: str) -> None:
        with open(path, 'w') as f:
            json.dump(self.to_dict(), f)


def held_out_split(labels: torch.Tensor, per_class: int, seed: int = 0,
                   num_classes: int = 0) -> HeldOutSplit:
    """Hold out ``per_class`` images of every class (see the module docstring
    for small classes).

    Args:
        labels (Tensor): ``(N,)`` training labels.
        per_class (int): Validation images per class, >= 1.
        seed (int): Seed of the per-class permutations. Defaults to 0.
        num_classes (int): At least this many classes (a class without
            training images is then reported as reduced to 0). Defaults to 0.

    Raises:
        ValueError: ``per_class`` < 1, or no class can give a validation image.
    """
    if per_class < 1:
        raise ValueError(f'the held-out split needs at least one image per class, got '
                         f'per_class={per_class}')
    labels = torch.as_tensor(labels).long()
    K = max(int(labels.max()) + 1 if labels.numel() else 0, num_classes)
    g = torch.Generator().manual_seed(int(seed))
    val, counts, reduced = [], [], {}
    for c in range(K):
        idx = torch.nonzero(labels == c).flatten()
        n = idx.numel()
        k = per_class if n >= 2 * per_class else n // 2
        if k < per_class:
            reduced[c] = k
        order = torch.randperm(n, generator=g)
        val.append(idx[order[:k]])
        counts.append(k)
    val_idx = torch.cat(val).sort().values if val else torch.zeros(0, dtype=torch.long)
    if val_idx.numel() == 0:
        raise ValueError(f'no class has two training images: no validation split can be held '
                         f'out of {labels.numel()} images; give a validation set instead')
    mask = torch.ones(labels.numel(), dtype=torch.bool)
    mask[val_idx] = False
    train_idx = torch.nonzero(mask).flatten()
    return HeldOutSplit(train=train_idx.tolist(), val=val_idx.tolist(), per_class=int(per_class),
                        seed=int(seed), val_counts=counts, reduced=reduced)
