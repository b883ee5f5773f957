"""Shared pieces of the detection tests (conftest.py re-exports the
fixtures): a tiny LVIS-format data set written in the real on-disk layout,
and the overrides that shrink the real LVIS configs to a CPU-sized model
(ResNet-18 with 8 base channels, 16-channel FPN, 5 classes, 128x96 images)."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')

# LVIS-style categories: ids from 1, names, r/c/f frequency and the per-class
# training statistics of the annotation file (as in the real LVIS files they
# describe the full training set, not the few images of the fixture)
CATEGORIES = [
    dict(id=1, name='apple', frequency='f', image_count=150, instance_count=420),
    dict(id=2, name='banana', frequency='f', image_count=120, instance_count=300),
    dict(id=3, name='cherry', frequency='c', image_count=40, instance_count=60),
    dict(id=4, name='durian', frequency='r', image_count=3, instance_count=4),
    dict(id=5, name='elderberry', frequency='c', image_count=15, instance_count=45),
]
CLASSES = tuple(c['name'] for c in CATEGORIES)
NUM_CLASSES = len(CATEGORIES)
IMAGE_COUNT = [c['image_count'] for c in CATEGORIES]
INSTANCE_COUNT = [c['instance_count'] for c in CATEGORIES]
W, H = 128, 96
COLORS = [(220, 40, 40), (240, 220, 40), (120, 0, 40), (60, 160, 60), (60, 40, 160)]

# per image: (category id, x, y, w, h)
OBJECTS = [
    [(1, 8, 8, 40, 30), (2, 60, 40, 50, 40)],
    [(1, 70, 10, 40, 40), (3, 10, 50, 30, 30), (5, 50, 60, 20, 20)],
    [(2, 20, 20, 60, 40), (4, 90, 50, 30, 36)],
    [(3, 40, 10, 36, 30), (5, 10, 50, 44, 36), (1, 80, 56, 40, 30)],
]


@pytest.fixture(autouse=True)
def _mmdet_scope():
    """mmengine's default scope is process-global and every Runner (of any
    test module) leaves its own behind: build in mmdet's."""
    init_default_scope('mmdet')


def write_lvis_fixture(root: str, categories=CATEGORIES) -> dict:
    """Write ``root/train2017/*.jpg`` and ``root/annotations/lvis_tiny.json``.

    The JSON has both ``file_name`` (LVIS v0.5: ``data_prefix='train2017/'``)
    and ``coco_url`` (LVIS v1: ``data_prefix=''``) for every image.
    """
    os.makedirs(osp.join(root, 'train2017'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    rng = np.random.RandomState(0)
    images, anns = [], []
    for i, objs in enumerate(OBJECTS):
        img_id = i + 1
        name = f'{img_id:012d}.jpg'
        arr = (rng.rand(H, W, 3) * 60).astype(np.uint8)
        for cat, x, y, w, h in objs:
            arr[y:y + h, x:x + w] = COLORS[cat - 1]
        Image.fromarray(arr).save(osp.join(root, 'train2017', name), quality=95)
        present = {o[0] for o in objs}
        images.append(dict(
            id=img_id, file_name=name, width=W, height=H,
            coco_url=f'http://images.cocodataset.org/train2017/{name}',
            not_exhaustive_category_ids=[],
            neg_category_ids=[c['id'] for c in categories if c['id'] not in present][:1]))
        for cat, x, y, w, h in objs:
            anns.append(dict(
                id=len(anns) + 1, image_id=img_id, category_id=cat,
                bbox=[x, y, w, h], area=w * h,
                segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
    ann_file = osp.join(root, 'annotations', 'lvis_tiny.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=categories,
                       info={}, licenses=[]), f)
    return dict(root=root, ann_file=ann_file, img_dir=osp.join(root, 'train2017'))


@pytest.fixture(scope='session')
def lvis_data(tmp_path_factory):
    return write_lvis_fixture(str(tmp_path_factory.mktemp('lvis')))


def _head_options(prefix: str, cascade: bool) -> dict:
    opts = {}
    heads = [f'{prefix}.bbox_head.{i}' for i in range(3)] if cascade else [f'{prefix}.bbox_head']
    for h in heads:
        opts.update({f'{h}.in_channels': 16, f'{h}.fc_out_channels': 32,
                     f'{h}.num_classes': NUM_CLASSES})
    opts.update({
        f'{prefix}.bbox_roi_extractor.out_channels': 16,
        f'{prefix}.mask_roi_extractor.out_channels': 16,
        f'{prefix}.mask_head.in_channels': 16,
        f'{prefix}.mask_head.conv_out_channels': 16,
        f'{prefix}.mask_head.num_convs': 1,
        f'{prefix}.mask_head.num_classes': NUM_CLASSES,
    })
    return opts


def tiny_options(data: dict, version: str = 'v1', cascade: bool = False,
                 repeat_factor: bool = True) -> dict:
    """Flat ``--cfg-options`` that shrink a shipped LVIS config to CPU size
    and point it at the fixture. ``repeat_factor``: the config's training set
    is inside mmdet's ``ClassBalancedDataset`` (the stage-1 configs); the
    stage-2 configs train on the plain set (``repeat_factor=False``)."""
    prefix = 'train2017/' if version == 'v0.5' else ''
    opts = {
        'model.backbone.depth': 18,
        'model.backbone.base_channels': 8,
        'model.backbone.init_cfg': None,
        'model.neck.in_channels': [8, 16, 32, 64],
        'model.neck.out_channels': 16,
        'model.rpn_head.in_channels': 16,
        'model.rpn_head.feat_channels': 16,
        'model.train_cfg.rpn_proposal.nms_pre': 200,
        'model.train_cfg.rpn_proposal.max_per_img': 64,
        'model.test_cfg.rpn.nms_pre': 200,
        'model.test_cfg.rpn.max_per_img': 64,
    }
    if cascade:
        for i in range(3):
            opts[f'model.train_cfg.rcnn.{i}.sampler.num'] = 32
    else:
        opts['model.train_cfg.rcnn.sampler.num'] = 32
    opts.update(_head_options('model.roi_head', cascade))
    ds = 'train_dataloader.dataset' + ('.dataset' if repeat_factor else '')
    for key, val in [(ds, True), ('val_dataloader.dataset', False)]:
        opts.update({
            f'{key}.data_root': data['root'],
            f'{key}.ann_file': 'annotations/lvis_tiny.json',
            f'{key}.data_prefix.img': prefix,
            f'{key}.metainfo.classes': CLASSES,
        })
    opts.update({
        f'{ds}.pipeline.2.scales': [(W, H)],
        'val_dataloader.dataset.pipeline.1.scale': (W, H),
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'val_evaluator.ann_file': data['ann_file'],
        'default_hooks.logger.interval': 1,
        'randomness.seed': 0,
    })
    return opts


def to_cli(opts: dict) -> list:
    """The same overrides as ``--cfg-options`` arguments."""
    out = []
    for k, v in opts.items():
        if isinstance(v, (list, tuple)):
            # DictAction keeps quotes: strings go in bare
            v = repr(v).replace(' ', '').replace("'", '')
        out.append(f'{k}={v}')
    return out


def config_path(version: str, name: str) -> str:
    return osp.join(CONFIGS, f'lvis_{version.replace(".", "")}', name)


def load_config(version: str, name: str, opts: dict = None):
    from mmengine.config import Config
    cfg = Config.fromfile(config_path(version, name))
    if opts:
        cfg.merge_from_dict(opts)
    return cfg


# ------------------------------------------------------------ COCO-format long-tail set
# A COCO-format data set whose groups are known. Categories in file order
# (= mmdet's label order); their ids are deliberately *not* in that order
# (COCOeval sorts them). Training images per category, and the LVIS group
# that gives (rare <= 10 < common <= 100 < frequent), boundaries included:
COCO_CATEGORIES = [
    dict(id=7, name='ant'),  # 3 images: rare
    dict(id=2, name='bee'),  # 50: common
    dict(id=5, name='cat'),  # 200 (two instances in each: 400 instances): frequent
    dict(id=1, name='dog'),  # 10: rare (the boundary)
    dict(id=4, name='elk'),  # 100: common (the boundary)
    dict(id=3, name='fox'),  # 101: frequent; no ground truth in the val set
]
COCO_CLASSES = tuple(c['name'] for c in COCO_CATEGORIES)
COCO_TRAIN_IMAGES = [3, 50, 200, 10, 100, 101]
COCO_TRAIN_INSTANCES = [3, 50, 400, 10, 100, 101]
COCO_GROUPS = {'rare': [0, 3], 'common': [1, 4], 'frequent': [2, 5]}
_COCO_ID = {c['name']: c['id'] for c in COCO_CATEGORIES}

# val images: (name, x, y, w, h) of the ground truth
COCO_VAL_OBJECTS = [
    [('ant', 8, 8, 30, 30), ('cat', 60, 30, 40, 40)],
    [('dog', 10, 10, 30, 30), ('bee', 60, 50, 30, 30)],
    [('dog', 20, 20, 40, 30), ('elk', 80, 10, 30, 30)],
    [('cat', 30, 40, 50, 40)],
]
# predictions per val image: (name, x, y, w, h, score). Per category AP
# (every IoU threshold, so AP@[.5:.95] too):
# - ant, cat: every instance found, nothing else: 1
# - dog: one of its two instances found: precision 1 up to recall 0.5, so
#   51 of COCO's 101 recall thresholds: 51 / 101
# - bee: found, below a false positive of a higher score: precision 1/2 at
#   every recall threshold: 0.5
# - elk: not found: 0
# - fox: no ground truth (a false positive only): no AP
COCO_VAL_PREDICTIONS = [
    [('ant', 8, 8, 30, 30, 0.9), ('cat', 60, 30, 40, 40, 0.9), ('fox', 100, 70, 20, 20, 0.5)],
    [('dog', 10, 10, 30, 30, 0.9), ('bee', 60, 50, 30, 30, 0.6), ('bee', 5, 60, 20, 20, 0.8)],
    [],
    [('cat', 30, 40, 50, 40, 0.95)],
]
COCO_VAL_AP = [1.0, 0.5, 1.0, 51 / 101, 0.0, None]
COCO_VAL_INSTANCES = [1, 1, 2, 2, 1, 0]


def _rect(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def write_coco_fixture(root: str) -> dict:
    """``root/annotations/train.json`` (200 annotated images, no image files:
    counting needs only the annotations) and ``root/annotations/val.json``
    (the 4 images of ``COCO_VAL_OBJECTS``, also without files: the metric
    reads annotations and predictions only)."""
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, anns = [], []

    def add(img_id, name, box, **kw):
        x, y, w, h = box
        anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=_COCO_ID[name],
                         bbox=[x, y, w, h], area=w * h, segmentation=_rect(x, y, w, h),
                         iscrowd=0, **kw))

    for j in range(max(COCO_TRAIN_IMAGES)):
        img_id = j + 1
        images.append(dict(id=img_id, file_name=f'{img_id:06d}.jpg', width=W, height=H))
        for c, name in enumerate(COCO_CLASSES):
            if j < COCO_TRAIN_IMAGES[c]:
                add(img_id, name, (4 + 10 * c, 4, 8, 8))
                if COCO_TRAIN_INSTANCES[c] > COCO_TRAIN_IMAGES[c]:
                    add(img_id, name, (4 + 10 * c, 40, 8, 8))
    # a crowd region of 'ant' in an image without ants: not an ant image
    add(150, 'ant', (60, 60, 20, 20))
    anns[-1]['iscrowd'] = 1
    train = osp.join(root, 'annotations', 'train.json')
    with open(train, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=COCO_CATEGORIES), f)

    images, anns = [], []
    for i, objs in enumerate(COCO_VAL_OBJECTS):
        images.append(dict(id=i + 1, file_name=f'val_{i + 1:06d}.jpg', width=W, height=H))
        for name, *box in objs:
            add(i + 1, name, box)
    val = osp.join(root, 'annotations', 'val.json')
    with open(val, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=COCO_CATEGORIES), f)
    return dict(root=root, train_ann=train, val_ann=val)


def coco_predictions(predictions=None) -> list:
    """``COCO_VAL_PREDICTIONS`` as the data samples mmdet's metrics process
    (labels in label order, boxes xyxy, masks of the boxes)."""
    import torch
    predictions = COCO_VAL_PREDICTIONS if predictions is None else predictions
    samples = []
    for i, preds in enumerate(predictions):
        boxes = torch.tensor([[x, y, x + w, y + h] for _, x, y, w, h, _ in preds],
                             dtype=torch.float32).reshape(-1, 4)
        masks = torch.zeros(len(preds), H, W, dtype=torch.bool)
        for j, (_, x, y, w, h, _) in enumerate(preds):
            masks[j, y:y + h, x:x + w] = True
        samples.append(dict(
            img_id=i + 1, ori_shape=(H, W),
            pred_instances=dict(
                bboxes=boxes, scores=torch.tensor([p[-1] for p in preds], dtype=torch.float32),
                labels=torch.tensor([COCO_CLASSES.index(p[0]) for p in preds],
                                    dtype=torch.long),
                masks=masks)))
    return samples


@pytest.fixture(scope='session')
def coco_lt_data(tmp_path_factory):
    return write_coco_fixture(str(tmp_path_factory.mktemp('coco_lt')))
