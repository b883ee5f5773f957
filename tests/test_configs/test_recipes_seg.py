"""Every segmentation stage-2 config resolves to its row of the recipe table
(docs/recipes.md), that row is the paper's recipe (appendix B.2), and the
official code's variant given in configs/ade20k/README.md is a complete set
of options that reaches the official recipe. cRT, beside every DisAlign
config: the same schedule, class-balanced pixel weighting (GRW at rho 1),
only the re-initialised ``conv_seg`` trains. Every logit-adjustment config
resolves to its row of the post-hoc table."""
import argparse
import os.path as osp
import shlex

import pytest
from mmengine.config import DictAction

from tests.test_configs.recipes import CONFIGS as CFG_ROOT
from tests.test_configs.recipes import (derive, derive_posthoc, load, posthoc_configs, posthoc_rows,
                                        stage2_configs, table_rows)

CONFIGS = stage2_configs('seg')
DISALIGN = [c for c in CONFIGS if '/disalign_' in c]
POSTHOC = posthoc_configs('seg')
README = osp.join(CFG_ROOT, 'ade20k', 'README.md')


def test_the_table_lists_every_config_and_no_other():
    assert {c for c in table_rows() if c.startswith('ade20k/')} == set(CONFIGS)
    # FCN and DeepLabV3+ x R50, R101, S101 (Table 15), DisAlign and cRT
    assert len(DISALIGN) == 6 and len(CONFIGS) == 12
    assert {c for c in posthoc_rows() if c.startswith('ade20k/')} == set(POSTHOC)
    for c in DISALIGN:
        rest = c.split('/disalign_')[1]
        assert f'ade20k/crt_{rest}' in CONFIGS
        assert 'ade20k/logit-adjust_' + rest.replace('_8xb4-8k_', '_') in POSTHOC


@pytest.mark.parametrize('config', CONFIGS)
def test_config_matches_its_row(config):
    row = table_rows()[config]
    assert dict(derive(load(config)), config=config) == row
    if '/disalign_' in config:
        # "a similar protocol as stage 1", batch 32 (8 GPUs x 4), 8k
        # iterations, rho 0.3; only the calibration trains
        expected = dict(rho='0.3', trains='calibration')
    else:  # cRT: class-balanced pixel weights, the re-initialised conv_seg
        expected = dict(rho='1', trains=r'^decode_head\.conv_seg\. (re-initialised)')
    assert {k: v for k, v in row.items() if k != 'config'} == dict(
        dataset='ADE20KDataset', sampler='InfiniteSampler', batch='32 (8x4)',
        schedule='8k iters, poly', lr='0.01', **expected)


@pytest.mark.parametrize('config', [c for c in CONFIGS if '/crt_' in c])
def test_crt_is_the_stage1_model_with_class_balanced_pixel_weights(config):
    """The stage 1 of its name (the R101 / ResNeSt cRTs inherit the R50 one
    and set the stage-1 backbone again), its loss class-balanced (GRW at
    rho 1) and no auxiliary head."""
    cfg = load(config)
    name = config.split('/crt_')[1].replace('_8xb4-8k_', '_4xb4-160k_')
    stage1 = load('ade20k/' + name)
    s1, s2 = stage1.model.to_dict(), cfg.model.to_dict()
    loss = s2['decode_head'].pop('loss_decode')
    s1['decode_head'].pop('loss_decode')
    assert s2.pop('auxiliary_head') is None and s1.pop('auxiliary_head') is not None
    assert s1 == s2
    assert loss == dict(type='SegGRWCrossEntropyLoss', rho=1.0)
    assert cfg.load_from is None


@pytest.mark.parametrize('config', POSTHOC)
def test_logit_adjust_config_matches_its_row(config):
    cfg = load(config)
    row = posthoc_rows()[config]
    assert dict(derive_posthoc(config, cfg), config=config) == row
    head = ('LogitAdjustedDepthwiseSeparableASPPHead' if 'deeplabv3plus' in config
            else 'LogitAdjustedFCNHead')
    assert {k: row[k] for k in ('classifier', 'strength', 'counts')} == dict(
        classifier=head, strength='tau 1', counts='ade20k')
    # the stage-1 model with the adjusted decode head, nothing else changed
    stage1 = load('ade20k/' + row['stage 1'])
    s1, s2 = stage1.model.to_dict(), cfg.model.to_dict()
    d1, d2 = s1.pop('decode_head'), s2.pop('decode_head')
    assert s1 == s2
    assert d2.pop('type') == head and d2.pop('tau') == 1.0
    assert d1.pop('type') == head[len('LogitAdjusted'):]
    assert d1 == d2
    assert cfg.test_evaluator.type == 'HeadBodyTailIoUMetric'


def _reference_options():
    with open(README) as f:
        text = f.read()
    begin, end = '<!-- reference-variant:begin -->', '<!-- reference-variant:end -->'
    block = text[text.index(begin) + len(begin):text.index(end)]
    args = shlex.split(block.replace('\\\n', ' '))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(args).cfg_options


@pytest.mark.parametrize('config', DISALIGN)
def test_reference_variant_options_reach_the_official_recipe(config):
    """seg-cfg / seg-sh of docs/recipes.md: 4k iterations of the poly
    schedule, rho 0.2, batch 32 (8 GPUs x 4), evaluation and checkpoints
    every 800 iterations."""
    cfg = load(config)
    cfg.merge_from_dict(_reference_options())
    assert derive(cfg) == dict(
        dataset='ADE20KDataset', sampler='InfiniteSampler', batch='32 (8x4)',
        schedule='4k iters, poly', lr='0.01', rho='0.2', trains='calibration')
    assert cfg.param_scheduler[0].eta_min == 1e-4 and cfg.param_scheduler[0].power == 0.9
    assert cfg.train_cfg.val_interval == 800 == cfg.default_hooks.checkpoint.interval
