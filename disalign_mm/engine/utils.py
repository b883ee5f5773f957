"""Small helpers shared by the hooks and tools of every host."""
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP/FSDP wrapper (the model itself otherwise)."""
    return model.module if is_model_wrapper(model) else model


def unwrap_dataset(dataset):
    """The innermost data set under wrappers that keep it as ``.dataset``
    (``ClassBalancedDataset``, ``RepeatDataset``, ...)."""
    seen = set()
    while hasattr(dataset, 'dataset') and id(dataset) not in seen:
        seen.add(id(dataset))
        dataset = dataset.dataset
    return dataset
