"""Choosing and benchmarking DisAlign's second stage against its peers, as a
library.

Needs mmpretrain (the classification host): the second stages are
mmpretrain heads trained from cached stage-1 outputs. The modules, in the
order :func:`~disalign_mm.bench.second_stage.select_second_stage` (the
library of ``tools/select_second_stage.py``) uses them:

- :mod:`~disalign_mm.bench.configs`: the shipped configs the benchmarks use
  (one table) and config loading with ``--cfg-options``;
- :mod:`~disalign_mm.bench.features`: the frozen stage-1 outputs (features
  and logits), cached, resumable, keyed on the checkpoint and the config;
- :mod:`~disalign_mm.bench.splits`: a class-balanced validation split held
  out of the training set;
- :mod:`~disalign_mm.bench.methods`: the second stages as configs written
  from any stage-1 config, their hyper-parameters as config keys;
- :mod:`~disalign_mm.bench.stage2`: a stage-2 config trained from the cache
  with mmengine's optimizer wrapper and schedulers (the same parameters as
  ``mim train`` of that config);
- :mod:`~disalign_mm.bench.selection`: grid search on the validation split,
  the test set seen once;
- :mod:`~disalign_mm.bench.export`: the chosen second stage as a checkpoint;
- :mod:`~disalign_mm.bench.report` and :mod:`~disalign_mm.bench.plots`:
  tables, README section, figures.

Benchmarks built on them: :mod:`~disalign_mm.bench.stage1` (stage-1 models
trained with ``mim train``, reused while their settings are unchanged) and
:mod:`~disalign_mm.bench.fmnist_lt` (the Fashion-MNIST-LT benchmark,
``tools/benchmark/effectiveness.py``); :mod:`~disalign_mm.bench.speed`
(``tools/benchmark/second_stage_speed.py``) and :mod:`~disalign_mm.bench.cost`
(``tools/benchmark/stage2_cost.py``).
"""
