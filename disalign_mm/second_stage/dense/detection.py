"""NorCal on an mmdet two-stage detector, chosen from cached RoI outputs.

What a NorCal config changes (``cls_predictor_cfg=dict(type='NorCalLinear',
gamma=...)`` in every bbox head) is the class scores of the RoIs: the
backbone, the neck, the RPN, the RoI features, the boxes and the masks of a
given (RoI, class) pair are the stage-1 model's. So the model runs once per
image and what is kept is what the scores of every gamma of the grid need,
all computed by mmdet's own code:

* the RoI class logits (every ``fc_cls`` output, the stages of a cascade
  averaged as ``CascadeRoIHead`` averages them), adjusted with
  :func:`disalign_mm.core.norcal_adjust` for each gamma and scored with the
  bbox head's softmax; the boxes of every (RoI, class) pair before NMS
  (``BBoxHead.predict_by_feat`` without ``rcnn_test_cfg``: decoded, clipped,
  rescaled as the host does);
* kept: the (RoI, class) pairs whose score passes the head's ``score_thr`` at
  some gamma of the grid (the others never reach NMS, whatever the gamma),
  with their box and their score at every gamma;
* the mask head's output (28 x 28 for the pair's class) for every pair that
  is a final detection at some gamma (the host's NMS run per gamma at
  caching time).

Per image that is at most ``R x K`` pairs (``R`` the RPN's proposals, ``K``
the classes; in practice the pairs above ``score_thr``: 4 + 16 + 4 m bytes
each, m gamma values) and at most ``m x max_per_img`` masks of 28 x 28
(4 bytes a value, 2 with ``--cache-dtype float16``).

Scoring a gamma from the cache runs the host's post-processing: mmdet's
``multiclass_nms`` on the kept pairs (laid out as the host lays them out, so
the same pairs in the same order reach the same NMS), then the mask head's
``predict_by_feat`` (pasting, thresholding, rescaling), then the metric:
what ``mim test`` of the NorCal config computes (the test of
``tests/test_second_stage/test_dense.py`` holds it to it).
"""
import copy
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from ...core import norcal_adjust
from .cache import meta_back, plain_meta
from .host import DenseHost

DEFAULT_GAMMAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


class DetectionHost(DenseHost):
    """NorCal on a softmax two-stage detector (Mask R-CNN, Cascade R-CNN,
    Faster R-CNN, ... with ``StandardRoIHead`` or ``CascadeRoIHead``).

    Args:
        num_classes (int): Foreground classes.
        counts (Sequence[float]): Training images per class (NorCal's
            ``N_c``).
        grid (Sequence[float]): The gamma values to score.
        dtype (str): Storage of the mask predictions.
    """

    name = 'detection'
    scope = 'mmdet'
    param = 'gamma'
    method = 'NorCal'
    key = 'norcal'
    plugin = 'disalign_mm.det'
    count_unit = 'images'

    def __init__(self, num_classes: int, counts: Sequence[float], grid: Sequence[float],
                 dtype: str = 'float32') -> None:
        super().__init__(num_classes, counts, grid, dtype)
        self.with_mask = False

    # ------------------------------------------------------------- the model
    def cache_extra(self) -> dict:
        return dict(gamma=self.grid, counts=self.counts)

    def describe_extra_change(self, old: Optional[dict]) -> str:
        old = old or {}
        parts = []
        if old.get('gamma') != self.grid:
            parts.append(f'another gamma grid ({old.get("gamma")})')
        if old.get('counts') != self.counts:
            parts.append('other class counts')
        return ', '.join(parts) or 'another key'

    def check_model(self, model) -> None:
        """The detector must be one whose NorCal scores the tool computes
        exactly; a clear error otherwise."""
        from mmdet.models.roi_heads import CascadeRoIHead, StandardRoIHead

        from ...det.supported import softmax_bbox_heads
        softmax_bbox_heads(model)  # sigmoid heads: the error names the head
        roi_head = model.roi_head
        if type(roi_head) not in (StandardRoIHead, CascadeRoIHead):
            raise NotImplementedError(
                f'model.roi_head is a {type(roi_head).__name__}: the tool reads the RoI outputs '
                'of StandardRoIHead (Faster / Mask R-CNN) and CascadeRoIHead; a NorCal config '
                '(cls_predictor_cfg=dict(type=\'NorCalLinear\')) still runs with mim test')
        heads = list(roi_head.bbox_head) if isinstance(roi_head, CascadeRoIHead) \
            else [roi_head.bbox_head]
        for i, h in enumerate(heads[:-1]):
            if not h.reg_class_agnostic:
                raise NotImplementedError(
                    f'model.roi_head.bbox_head[{i}] regresses per class: the RoIs of the next '
                    'cascade stage then depend on the labels, hence on gamma; the tool needs '
                    'class-agnostic regression before the last stage (mmdet\'s cascades have it)')
        if heads[-1].num_classes != self.num_classes:
            raise ValueError(f'the detector has {heads[-1].num_classes} classes, the data sets '
                             f'{self.num_classes}')
        self.with_mask = bool(getattr(roi_head, 'with_mask', False))

    def meta(self, model) -> dict:
        return dict(host=self.name, num_classes=self.num_classes, with_mask=self.with_mask,
                    gamma=self.grid)

    def describe_record(self) -> str:
        return ('the (RoI, class) pairs above score_thr at some gamma (box + one score per '
                f'gamma: {20 + 4 * len(self.grid)} bytes each) and the 28x28 masks of the '
                f'detections of every gamma ({4 if self.dtype == "float32" else 2} bytes a '
                'value)')

    # ------------------------------------------------------------- caching
    def _classifiers(self, roi_head) -> list:
        heads = roi_head.bbox_head
        return [h.fc_cls for h in heads] if isinstance(heads, torch.nn.ModuleList) \
            else [heads.fc_cls]

    @torch.no_grad()
    def extract(self, model, batch) -> List[dict]:
        """One batch through the host's modules; a record per image."""
        from mmdet.models.layers import multiclass_nms
        from mmdet.structures.bbox import get_box_tensor

        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        metas = [s.metainfo for s in samples]
        roi_head = model.roi_head
        x = model.extract_feat(inputs)
        if samples[0].get('proposals', None) is None:
            rpn = model.rpn_head.predict(x, samples, rescale=False)
        else:
            rpn = [s.proposals for s in samples]
        n_props = [len(p) for p in rpn]
        # the classifiers' outputs, in call order (one per cascade stage)
        logits: List[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda mod, i, o: logits.append(o))
                   for m in self._classifiers(roi_head)]
        final = roi_head.bbox_head[-1] if isinstance(roi_head.bbox_head, torch.nn.ModuleList) \
            else roi_head.bbox_head
        captured = {}
        original = final.predict_by_feat

        def capture(**kwargs):
            captured.update(kwargs)
            return original(**dict(kwargs, rcnn_test_cfg=None))

        final.predict_by_feat = capture
        rescale = not self.with_mask  # as StandardRoIHead.predict / CascadeRoIHead.predict
        try:
            raw = roi_head.predict_bbox(x, metas, rpn, rcnn_test_cfg=roi_head.test_cfg,
                                        rescale=rescale)
        finally:
            del final.predict_by_feat
            for h in handles:
                h.remove()
        cfg = roi_head.test_cfg
        K = self.num_classes
        records = []
        per_image_scores: List[List[torch.Tensor]] = [[] for _ in samples]
        for g in self.grid if logits else ():  # no logits: no proposal in the batch
            # the logits of a NorCal config: every classifier adjusted, the
            # cascade's average of the adjusted stages, the head's softmax
            adj = [norcal_adjust(z, self.counts, g).split(n_props, 0) for z in logits]
            if len(adj) == 1:
                cls = adj[0]
            else:
                cls = [sum([a[i] for a in adj]) / float(len(adj)) for i in range(len(samples))]
            for i, c in enumerate(cls):
                per_image_scores[i].append(F.softmax(c, dim=-1))
        for i, meta in enumerate(metas):
            res = raw[i]
            R = len(res.scores) if 'scores' in res else 0
            boxes = get_box_tensor(res.bboxes).reshape(R, -1, 4) if R else \
                torch.zeros(0, K, 4)
            if boxes.shape[1] == 1:
                boxes = boxes.expand(R, K, 4)
            scores = torch.stack(per_image_scores[i]) if R else \
                torch.zeros(len(self.grid), 0, K + 1)
            fg = scores[:, :, :-1]
            keep = (fg > cfg.score_thr).any(0).reshape(-1).nonzero().flatten()
            finals = []
            for gi in range(len(self.grid)):
                if R == 0:
                    break
                _, _, inds = multiclass_nms(boxes.reshape(R, -1), scores[gi], cfg.score_thr,
                                            cfg.nms, cfg.max_per_img, box_dim=4,
                                            return_inds=True)
                finals.append(inds)
            final_pairs = torch.unique(torch.cat(finals)) if finals else \
                torch.zeros(0, dtype=torch.long)
            rec = dict(meta=plain_meta(meta), R=R, K=K,
                       pairs=keep.cpu(), boxes=boxes.reshape(-1, 4)[keep].float().cpu(),
                       scores=fg.reshape(len(self.grid), -1)[:, keep].float().cpu(),
                       mask_pairs=final_pairs.cpu())
            records.append(rec)
        if self.with_mask:
            self._masks(model, x, metas, records)
        return records

    def _masks(self, model, x, metas, records) -> None:
        """The mask head's output for the pairs of ``mask_pairs``, one per
        image, as the host's mask branch computes them."""
        from mmengine.structures import InstanceData
        roi_head = model.roi_head
        head = roi_head.mask_head[-1] if isinstance(roi_head.mask_head, torch.nn.ModuleList) \
            else roi_head.mask_head
        results = []
        for rec in records:
            pairs = rec['mask_pairs']
            K = rec['K']
            idx = torch.searchsorted(rec['pairs'], pairs)
            r = InstanceData()
            r.bboxes = rec['boxes'][idx].to(x[0].device)
            r.labels = (pairs % K).to(x[0].device)
            r.scores = torch.ones(len(pairs), device=x[0].device)
            results.append(r)
        captured = {}

        def capture(mask_preds, results_list, batch_img_metas, rcnn_test_cfg, rescale=False,
                    activate_map=False):
            captured.update(mask_preds=mask_preds, activate_map=activate_map)
            return results_list

        head.predict_by_feat = capture
        try:
            roi_head.predict_mask(x, metas, results, rescale=True)
        finally:
            del head.predict_by_feat
        dtype = torch.float16 if self.dtype == 'float16' else torch.float32
        for i, rec in enumerate(records):
            n = len(rec['mask_pairs'])
            if n == 0:
                rec['masks'] = torch.zeros(0, 1, 1, dtype=dtype)
            else:
                pred = captured['mask_preds'][i]
                labels = (rec['mask_pairs'] % rec['K']).to(pred.device)
                pred = pred[:, 0] if pred.shape[1] == 1 else pred[torch.arange(n), labels]
                rec['masks'] = pred.to(dtype).cpu()
            rec['activate_map'] = bool(captured.get('activate_map', False))

    # ------------------------------------------------------------- scoring
    def data_samples(self, model, records: Sequence[dict], value: float) -> List[dict]:
        """The data samples ``mim test`` of the NorCal config with
        ``gamma=value`` hands its metric, from the cached records."""
        from mmdet.models.layers import multiclass_nms
        from mmengine.structures import InstanceData

        if value not in self.grid:
            raise ValueError(f'gamma={value:g} is not in the cached grid {self.grid}')
        gi = self.grid.index(value)
        roi_head = model.roi_head
        cfg = roi_head.test_cfg
        head = None
        if self.with_mask:
            head = copy.copy(roi_head.mask_head[-1] if isinstance(
                roi_head.mask_head, torch.nn.ModuleList) else roi_head.mask_head)
            head.class_agnostic = True  # the cached masks are the label's channel
        out = []
        for rec in records:
            meta = meta_back(rec['meta'])
            K, pairs = rec['K'], rec['pairs']
            rows, row_of = torch.unique(pairs // K, return_inverse=True)
            n = len(rows)
            dense_boxes = torch.zeros(n, K, 4)
            dense_scores = torch.zeros(n, K + 1)
            cols = pairs % K
            dense_boxes[row_of, cols] = rec['boxes'].float()
            dense_scores[row_of, cols] = rec['scores'][gi].float()
            dets, labels, inds = multiclass_nms(dense_boxes.reshape(n, -1), dense_scores,
                                                cfg.score_thr, cfg.nms, cfg.max_per_img,
                                                box_dim=4, return_inds=True)
            res = InstanceData()
            res.bboxes = dets[:, :-1]
            res.scores = dets[:, -1]
            res.labels = labels
            if head is not None:
                flat = rows[inds // K] * K + inds % K
                where = torch.searchsorted(rec['mask_pairs'], flat)
                masks = rec['masks'][where].float()[:, None] if len(flat) else \
                    torch.zeros(0, 1, 28, 28)
                res = head.predict_by_feat((masks, ), [res], [meta], cfg, rescale=True,
                                           activate_map=rec['activate_map'])[0]
            out.append(dict(img_id=meta['img_id'], ori_shape=meta['ori_shape'],
                            pred_instances=dict(bboxes=res.bboxes, scores=res.scores,
                                                labels=res.labels,
                                                **({'masks': res.masks} if head is not None
                                                   else {}))))
        return out

    # ------------------------------------------------------------- the config
    def changes(self, cfg, value: float, counts_file: str) -> dict:
        """The model part of the NorCal config with ``gamma=value``: every
        bbox head's classifier becomes NorCal's of the same kind."""
        heads = cfg.model.roi_head.bbox_head
        many = isinstance(heads, (list, tuple))
        out = []
        for i, h in enumerate(heads if many else [heads]):
            pred = dict(h.get('cls_predictor_cfg') or dict(type='Linear'))
            kind = str(pred.get('type')).split('.')[-1]
            if kind == 'Linear':
                pred['type'] = 'NorCalLinear'
            elif kind in ('CosineLinear', 'CRTCosineLinear'):
                pred['type'] = 'NorCalCosineLinear'
            else:
                raise NotImplementedError(
                    f'model.roi_head.bbox_head{f"[{i}]" if many else ""}.cls_predictor_cfg is a '
                    f'{kind}: the NorCal config replaces a Linear or CosineLinear classifier')
            pred.update(gamma=float(value), class_counts_file=counts_file)
            out.append(dict(h.to_dict() if hasattr(h, 'to_dict') else h,
                            cls_predictor_cfg=pred) if many else dict(cls_predictor_cfg=pred))
        return dict(model=dict(roi_head=dict(bbox_head=out if many else out[0])))
