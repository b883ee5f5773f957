"""The project's benchmarks, built on :mod:`disalign_mm.second_stage`.

- :mod:`~disalign_mm.benchmarks.configs`: the shipped configs the benchmarks
  use (one table);
- :mod:`~disalign_mm.benchmarks.stage1`: stage-1 models trained with ``mim
  train``, reused while their settings are unchanged;
- :mod:`~disalign_mm.benchmarks.fmnist_lt`: the Fashion-MNIST-LT benchmark
  (``tools/benchmark/effectiveness.py``, ``make benchmark``);
- :mod:`~disalign_mm.benchmarks.report` and
  :mod:`~disalign_mm.benchmarks.plots`: tables over seeds, the README
  section, figures;
- :mod:`~disalign_mm.benchmarks.speed` (``tools/benchmark/second_stage_speed.py``)
  and :mod:`~disalign_mm.benchmarks.cost` (``tools/benchmark/stage2_cost.py``).
"""
