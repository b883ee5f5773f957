"""disalign_mm.second_stage.splits: the held-out validation split is balanced,
deterministic and says which classes could not give it."""
import json

import pytest
import torch

from disalign_mm.second_stage.splits import FORMAT, held_out_split


def _labels(counts):
    labels = torch.cat([torch.full((n, ), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(1))]


def test_balanced_disjoint_and_deterministic(tmp_path):
    labels = _labels([50, 30, 10, 3, 1, 0])
    split = held_out_split(labels, per_class=5, seed=0, num_classes=6)
    val, train = set(split.val), set(split.train)
    assert not val & train and val | train == set(range(labels.numel()))
    per_class = torch.bincount(labels[split.val], minlength=6).tolist()
    # 10 images give 5; 3 give half (1); 1 image gives none; an empty class none
    assert per_class == split.val_counts == [5, 5, 5, 1, 0, 0]
    assert split.reduced == {3: 1, 4: 0, 5: 0}
    again = held_out_split(labels, per_class=5, seed=0, num_classes=6)
    assert again.val == split.val
    assert held_out_split(labels, per_class=5, seed=1, num_classes=6).val != split.val
    line = split.describe(['a', 'b', 'c', 'd', 'e', 'f'])
    assert '3 classes have fewer than 10 training images' in line
    assert 'd (1), e (0), f (0)' in line
    split.dump(str(tmp_path / 'split.json'))
    saved = json.load(open(tmp_path / 'split.json'))
    assert saved['format'] == FORMAT and saved['val'] == split.val
    assert saved['reduced'] == {'3': 1, '4': 0, '5': 0}


def test_errors():
    with pytest.raises(ValueError, match='at least one image per class'):
        held_out_split(torch.tensor([0, 1]), per_class=0)
    with pytest.raises(ValueError, match='no class has two training images'):
        held_out_split(torch.tensor([0, 1, 2]), per_class=2)
