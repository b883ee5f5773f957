"""Choose the post-hoc second stage of *your* detector or segmentor on your
data: the library of ``tools/select_dense_second_stage.py``.

Detection (mmdet, softmax two-stage detectors): NorCal's gamma;
segmentation (mmseg, ``EncoderDecoder``): the tau of logit adjustment per
pixel. The frozen stage-1 model runs once per image; each value is scored
from the cache with the host's own post-processing and the plugin's
long-tail metrics. The modules, in the order
:func:`select_dense_second_stage` uses them:

- :mod:`~disalign_mm.second_stage.dense.splits`: a class-aware split of the
  training set, when asked for;
- :mod:`~disalign_mm.second_stage.dense.cache`: the cached per-image
  outputs (resumable, keyed on checkpoint, config and images);
- :mod:`~disalign_mm.second_stage.dense.detection` and
  :mod:`~disalign_mm.second_stage.dense.segmentation`: what each host
  caches, and how a value is scored from it;
- :mod:`~disalign_mm.second_stage.dense.select`: the run, the self-check
  against ``mim test``, the table and the written config.
"""
from .select import DenseSettings, markdown_table, select_dense_second_stage

__all__ = ['DenseSettings', 'select_dense_second_stage', 'markdown_table']
