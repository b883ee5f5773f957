"""Choose and train the second stage of *your* stage-1 classifier: the
library of ``tools/select_second_stage.py``.

Needs mmpretrain (the classification host): the second stages are mmpretrain
heads trained from cached stage-1 outputs. The modules, in the order
:func:`select_second_stage` uses them:

- :mod:`~disalign_mm.second_stage.config`: the stage-1 config with
  ``--cfg-options``;
- :mod:`~disalign_mm.second_stage.features`: the frozen stage-1 outputs
  (features and logits), computed by the model the host's Runner builds,
  cached, resumable, keyed on the checkpoint, the config and the data;
- :mod:`~disalign_mm.second_stage.splits`: a class-balanced validation split
  held out of the training set;
- :mod:`~disalign_mm.second_stage.methods`: the second stages as configs
  written from any stage-1 config, their hyper-parameters as config keys;
- :mod:`~disalign_mm.second_stage.stage2`: a stage-2 config trained from the
  cache with mmengine's optimizer wrapper and schedulers (the same
  parameters as ``mim train`` of that config);
- :mod:`~disalign_mm.second_stage.selection`: grid search on the validation
  split, the test set seen once;
- :mod:`~disalign_mm.second_stage.export`: the chosen second stage as a
  config and a checkpoint;
- :mod:`~disalign_mm.second_stage.report`: the table;
- :mod:`~disalign_mm.second_stage.select`: :func:`select_second_stage`.

The benchmarks built on it are in :mod:`disalign_mm.benchmarks`.
"""
__all__ = ['Settings', 'select_second_stage']


def __getattr__(name: str):
    # imported on first use (PEP 562): the classification tool needs
    # mmpretrain, its detection and segmentation sibling (.dense) does not
    if name in __all__:
        from . import select
        return getattr(select, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    # the names __getattr__ provides are listed too (PEP 562), so dir(),
    # completion and autodoc see them
    return sorted(set(globals()) | set(__all__))
