"""Every detection stage-2 config resolves to its row of the recipe table
(docs/recipes.md), and that row is the paper's and the official recipe
(appendix C.2; the official LVIS stage 2): the plain LVIS set (no repeat
factors), batch 16, 9k iterations at lr 0.02 with a 1000-iteration warm-up
and one step at 8k, rho 0.8, only the calibration trains. cRT, beside every
DisAlign config: the same schedule, class-aware sampling (EQLv2's cRT), only
the re-initialised ``fc_cls`` trains. Every NorCal config resolves to its row
of the post-hoc table: NorCal in every bbox head over the stage 1 it names,
LVIS image counts."""
import os.path as osp

import pytest

from tests.test_configs.recipes import CONFIGS as CFG_ROOT
from tests.test_configs.recipes import (derive, derive_posthoc, load, posthoc_configs, posthoc_rows,
                                        stage2_configs, table_rows)

CONFIGS = stage2_configs('det')
POSTHOC = posthoc_configs('det')


def test_the_table_lists_every_config_and_no_other():
    assert {c for c in table_rows() if c.startswith('lvis_')} == set(CONFIGS)
    # 2 versions x 4 detectors x linear / cosine, DisAlign and cRT
    assert len(CONFIGS) == 32
    assert {c for c in posthoc_rows() if c.startswith('lvis_')} == set(POSTHOC)
    assert len(POSTHOC) == 16


def test_every_disalign_config_has_its_peers():
    for c in CONFIGS:
        folder, name = c.split('/')
        if not name.startswith('disalign_'):
            continue
        rest = name[len('disalign_'):]
        assert f'{folder}/crt_' + rest.replace('_ms-9k_', '_cas_ms-9k_') in CONFIGS, c
        assert f'{folder}/norcal_' + rest.replace('ms-9k_', '') in POSTHOC, c


@pytest.mark.parametrize('config', CONFIGS)
def test_config_matches_its_row(config):
    row = table_rows()[config]
    assert dict(derive(load(config)), config=config) == row
    dataset = 'LVISV1Dataset' if config.startswith('lvis_v1/') else 'LVISV05Dataset'
    expected = dict(dataset=dataset, batch='16 (8x2)', schedule='9k iters, warm-up 1k, step 8k',
                    lr='0.02')
    if osp.basename(config).startswith('disalign_'):
        expected.update(sampler='InfiniteSampler', rho='0.8', trains='calibration')
    else:  # cRT: EQLv2's class-aware sampling, the re-initialised classifier
        stages = r'\d+\.' if 'cascade' in config else ''
        expected.update(sampler='ClassAwareSampler', rho='-',
                        trains=rf'^roi_head\.bbox_head\.{stages}fc_cls\. (re-initialised)')
    assert {k: v for k, v in row.items() if k != 'config'} == expected


@pytest.mark.parametrize('config', [c for c in CONFIGS if '/crt_' in c])
def test_crt_trains_the_classifier_of_the_stage1_model(config):
    cfg = load(config)
    # the stage 1 of its name: the R101 / X101 / cosine cRTs inherit the R50 /
    # linear one and set the stage-1 backbone / classifier again
    sched = '1x' if config.startswith('lvis_v1/') else '2x'
    name = osp.basename(config)[len('crt_'):].replace('_cas_ms-9k_', f'_sample1e-3_ms-{sched}_')
    stage1 = load(osp.join(osp.dirname(config), name))
    s1, s2 = stage1.model.to_dict(), cfg.model.to_dict()
    heads1, heads2 = s1['roi_head'].pop('bbox_head'), s2['roi_head'].pop('bbox_head')
    assert s1 == s2  # everything but the classifier layer is stage 1's
    heads1 = heads1 if isinstance(heads1, list) else [heads1]
    heads2 = heads2 if isinstance(heads2, list) else [heads2]
    for h1, h2 in zip(heads1, heads2):
        p1, p2 = h1.pop('cls_predictor_cfg', None), h2.pop('cls_predictor_cfg', None)
        assert h1 == h2
        if '_cosine_' in config:
            assert p1 == dict(type='CosineLinear', scale=20.0)
            assert p2 == dict(type='CRTCosineLinear', scale=20.0)
        else:
            assert p1 == p2 is None
    assert cfg.load_from is None
    assert cfg.train_dataloader.dataset.type == stage1.train_dataloader.dataset.dataset.type
    assert cfg.test_evaluator.type == 'LongTailLVISMetric'


@pytest.mark.parametrize('config', POSTHOC)
def test_norcal_config_matches_its_row(config):
    cfg = load(config)
    row = posthoc_rows()[config]
    assert dict(derive_posthoc(config, cfg), config=config) == row
    cosine = '_cosine_' in config
    layer = 'NorCalCosineLinear' if cosine else 'NorCalLinear'
    assert {k: v for k, v in row.items() if k != 'config'} == {
        'stage 1': osp.basename(config)[len('norcal_'):].replace(
            '_lvis-', '_sample1e-3_ms-{}_lvis-'.format('1x' if 'v1' in config else '2x')),
        'classifier': layer + (' (x3)' if 'cascade' in config else ''),
        'strength': 'gamma 1', 'counts': 'lvis, count=image_count'}
    assert osp.isfile(osp.join(CFG_ROOT, osp.dirname(config), row['stage 1']))
    # everything but the classifier layer is the stage-1 model, and the cosine
    # classifier keeps the stage-1 scale
    stage1 = load(osp.join(osp.dirname(config), row['stage 1']))
    s1, s2 = stage1.model.to_dict(), cfg.model.to_dict()
    heads1, heads2 = s1['roi_head'].pop('bbox_head'), s2['roi_head'].pop('bbox_head')
    assert s1 == s2
    for h1, h2 in zip(heads1 if isinstance(heads1, list) else [heads1],
                      heads2 if isinstance(heads2, list) else [heads2]):
        p1, p2 = h1.pop('cls_predictor_cfg', None), h2.pop('cls_predictor_cfg')
        assert h1 == h2
        assert p2 == (dict(type=layer, scale=20.0, gamma=1.0) if cosine
                      else dict(type=layer, gamma=1.0))
        assert p1 == (dict(type='CosineLinear', scale=20.0) if cosine else None)
    assert cfg.test_evaluator.type == 'LongTailLVISMetric'
    assert 'train_cfg' not in cfg or cfg.train_cfg == stage1.train_cfg  # nothing to train
