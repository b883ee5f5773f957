"""Benchmarks of DisAlign's second stage against its peers, as a library.

Needs mmpretrain (the classification host): the second stages are
mmpretrain heads trained from cached stage-1 features. The modules, in the
order a benchmark uses them:

- :mod:`~disalign_mm.bench.configs`: the shipped configs the benchmarks use
  (one table) and config loading with ``--cfg-options``;
- :mod:`~disalign_mm.bench.stage1`: stage-1 models trained with
  ``mim train`` and reused while their settings are unchanged;
- :mod:`~disalign_mm.bench.features`: the frozen stage-1 features, cached;
- :mod:`~disalign_mm.bench.stage2`: a stage-2 config trained from the cached
  features with mmengine's optimizer wrapper and schedulers (the same
  parameters as ``mim train`` of that config);
- :mod:`~disalign_mm.bench.methods`: a second stage as a config plus
  variations, its hyper-parameters as config keys;
- :mod:`~disalign_mm.bench.selection`: grid search on a validation split,
  the test set seen once;
- :mod:`~disalign_mm.bench.report` and :mod:`~disalign_mm.bench.plots`:
  tables, README section, figures;
- :mod:`~disalign_mm.bench.fmnist_lt`: the Fashion-MNIST-LT benchmark
  (``tools/benchmark/effectiveness.py`` is its command line).
"""
