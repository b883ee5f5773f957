"""A deterministic, class-aware split of the training set, for choosing the
post-hoc strength when the config has no validation set of its own that is
not its test set.

A detection or segmentation image holds several classes. The split takes,
rarest class first (fewest training images holding it), up to ``per_class``
images holding the class that are not taken yet, in a seeded order; images
taken for a rarer class count for every class they hold. So every class is
in the split when it has an image, and the rare ones are not crowded out by
the frequent ones that share their images. Stage 1 was trained on these
images: its scores there are optimistic, and the table says so.
"""
import json
from dataclasses import asdict, dataclass
from typing import List, Sequence

import numpy as np

FORMAT = 'disalign_mm/class-aware-split@1'


@dataclass
class ClassAwareSplit:
    """Indices into the training set (its plain data set, no resampling).

    Attributes:
        indices (list[int]): The held-out images, ascending.
        per_class (int): Images asked per class.
        seed (int): Seed of the order.
        images_per_class (list[int]): Held-out images holding each class.
        paths (list[str]): The images' files (for the record).
    """
    indices: List[int]
    per_class: int
    seed: int
    images_per_class: List[int]
    paths: List[str]

    def dump(self, path: str) -> None:
        with open(path, 'w') as f:
            json.dump(dict(format=FORMAT, seen_by_stage1=True, **asdict(self)), f, indent=1)

    def describe(self) -> str:
        n = self.images_per_class
        have = [c for c in n if c]
        return (f'{len(self.indices)} training images held out, class-aware (up to '
                f'{self.per_class} per class, seed {self.seed}): {len(have)} of {len(n)} classes '
                f'in it, {min(have) if have else 0} to {max(have) if have else 0} images each')


def class_aware_split(labels: Sequence[Sequence[int]], num_classes: int, per_class: int,
                      seed: int = 0, paths: Sequence[str] = ()) -> ClassAwareSplit:
    """The split of images whose classes are ``labels[i]`` (see the module
    docstring).

    Args:
        labels: Per image, the classes it holds.
        num_classes (int): Number of classes.
        per_class (int): Images wanted per class (>= 1).
        seed (int): Seed of the order of each class's images.
        paths: Per image, its file (recorded).
    """
    if per_class < 1:
        raise ValueError(f'per_class must be >= 1, got {per_class}')
    holding: List[List[int]] = [[] for _ in range(num_classes)]
    for i, cls in enumerate(labels):
        for c in set(int(c) for c in cls):
            if not 0 <= c < num_classes:
                raise ValueError(f'image {i}: class {c} is out of range for {num_classes} classes')
            holding[c].append(i)
    rng = np.random.RandomState(seed)
    order = sorted(range(num_classes), key=lambda c: (len(holding[c]), c))
    taken = set()
    have = np.zeros(num_classes, dtype=np.int64)
    for c in order:
        if not holding[c] or have[c] >= per_class:
            continue
        for i in rng.permutation(holding[c]):
            if have[c] >= per_class:
                break
            if int(i) in taken:
                continue
            taken.add(int(i))
            for k in set(int(k) for k in labels[int(i)]):
                have[k] += 1
    indices = sorted(taken)
    return ClassAwareSplit(indices=indices, per_class=per_class, seed=seed,
                           images_per_class=have.tolist(),
                           paths=[str(paths[i]) for i in indices] if len(paths) else [])
