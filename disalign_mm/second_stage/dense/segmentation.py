"""Logit adjustment per pixel on an mmseg segmentor, chosen from cached
decode-head logits.

What a logit-adjustment config changes (``conv_seg`` becomes
``LogitAdjustedConv2d``) is the decode head's output: ``z - tau * log(pi)``
at every pixel of the head's resolution. So the model runs once per image
and what is kept is the decode head's logits at its own resolution (the
output of ``decode_head.forward``, what ``EncoderDecoder.encode_decode``
hands ``decode_head.predict_by_feat``), ``K x h x w`` per image (1/8 of the
input for the D8 models; 4 bytes a value, 2 with ``--cache-dtype float16``),
plus the ground-truth map the metric reads (1 byte a pixel).

Scoring a tau from the cache runs the host's post-processing on the
adjusted logits: ``decode_head.predict_by_feat`` (resizing to the input),
``postprocess_result`` (padding removed, flip undone, resized to the
original image, arg-max), then the metric: what ``mim test`` of the
logit-adjustment config computes. Inference mode ``'whole'`` only (the mode
of mmseg's ADE20K configs); ``'slide'`` stitches overlapping crops, which the
cache does not hold.
"""
from typing import List, Sequence

import torch

from ...core import logit_adjust
from .cache import meta_back, plain_meta
from .host import DenseHost

DEFAULT_TAUS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


class SegmentationHost(DenseHost):
    """Logit adjustment per pixel on an ``EncoderDecoder`` segmentor.

    Args:
        num_classes (int): Classes of the decode head.
        counts (Sequence[float]): Training pixels per class (the prior).
        grid (Sequence[float]): The tau values to score.
        dtype (str): Storage of the cached logits.
    """

    name = 'segmentation'
    scope = 'mmseg'
    param = 'tau'
    method = 'Logit adjustment'
    key = 'logitadj'
    plugin = 'disalign_mm.seg'
    count_unit = 'pixels'

    def cache_extra(self) -> dict:
        return {}  # the logits do not depend on tau or on the counts

    def describe_extra_change(self, old) -> str:
        return 'another key'

    def check_model(self, model) -> None:
        from mmseg.models.decode_heads.decode_head import BaseDecodeHead
        from mmseg.models.segmentors import EncoderDecoder
        if type(model) is not EncoderDecoder:
            raise NotImplementedError(
                f'the segmentor is a {type(model).__name__}: the tool reads the decode head of '
                'an EncoderDecoder (one decode head); a logit-adjustment config '
                "(decode_head=dict(type='LogitAdjustedHead', base_type=...)) still runs with "
                'mim test')
        if not isinstance(model.decode_head, BaseDecodeHead):
            raise NotImplementedError(f'model.decode_head is a {type(model.decode_head).__name__}, '
                                      'not an mmseg BaseDecodeHead')
        mode = model.test_cfg.get('mode', 'whole') if model.test_cfg else 'whole'
        if mode != 'whole':
            raise NotImplementedError(
                f"model.test_cfg.mode={mode!r}: the tool caches the decode head's logits of "
                "whole-image inference (mode='whole', mmseg's ADE20K configs); sliding windows "
                'are not supported (--cfg-options model.test_cfg.mode=whole changes it)')
        if model.decode_head.out_channels != self.num_classes:
            raise ValueError(f'the decode head predicts {model.decode_head.out_channels} classes, '
                             f'the data sets have {self.num_classes}')

    def meta(self, model) -> dict:
        return dict(host=self.name, num_classes=self.num_classes)

    def describe_record(self) -> str:
        return (f"the decode head's logits ({self.num_classes} x h x w, "
                f'{4 if self.dtype == "float32" else 2} bytes a value) and the ground truth')

    @torch.no_grad()
    def extract(self, model, batch) -> List[dict]:
        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        logits = model.decode_head.forward(model.extract_feat(inputs))
        dtype = torch.float16 if self.dtype == 'float16' else torch.float32
        out = []
        for i, s in enumerate(samples):
            gt = s.gt_sem_seg.data
            small = gt.min() >= 0 and gt.max() <= 255
            out.append(dict(meta=plain_meta(s.metainfo), logits=logits[i].to(dtype).cpu(),
                            gt=gt.to(torch.uint8 if small else torch.int32).cpu()))
        return out

    def data_samples(self, model, records: Sequence[dict], value: float) -> List[dict]:
        """The data samples ``mim test`` of the logit-adjustment config with
        ``tau=value`` hands its metric, from the cached records."""
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        out = []
        device = next(model.parameters()).device
        for rec in records:
            meta = meta_back(rec['meta'])
            z = rec['logits'].float().to(device)[None]
            z = logit_adjust(z, self.counts, value)
            z = model.decode_head.predict_by_feat(z, [meta])
            sample = SegDataSample(metainfo=meta)
            sample.gt_sem_seg = PixelData(data=rec['gt'].long().to(device))
            sample = model.postprocess_result(z, [sample])[0]
            out.append(dict(pred_sem_seg=dict(data=sample.pred_sem_seg.data),
                            gt_sem_seg=dict(data=sample.gt_sem_seg.data),
                            img_path=meta.get('img_path'), seg_map_path=meta.get('seg_map_path')))
        return out

    def changes(self, cfg, value: float, counts_file: str) -> dict:
        """The model part of the logit-adjustment config with ``tau=value``."""
        head = cfg.model.decode_head
        if isinstance(head, (list, tuple)):
            raise NotImplementedError('model.decode_head is a list (a cascade of decode heads): '
                                      'the tool adjusts one decode head')
        return dict(model=dict(decode_head=dict(type='LogitAdjustedHead', base_type=head.type,
                                                tau=float(value),
                                                class_counts_file=counts_file)))
