"""Every detection stage-2 config resolves to its row of the recipe table
(docs/recipes.md), and that row is the paper's and the official recipe
(appendix C.2; the official LVIS stage 2): the plain LVIS set (no repeat
factors), batch 16, 9k iterations at lr 0.02 with a 1000-iteration warm-up
and one step at 8k, rho 0.8, only the calibration trains."""
import pytest

from tests.test_configs.recipes import derive, load, stage2_configs, table_rows

CONFIGS = stage2_configs('det')


def test_the_table_lists_every_config_and_no_other():
    assert {c for c in table_rows() if c.startswith('lvis_')} == set(CONFIGS)
    assert len(CONFIGS) == 16  # 2 versions x 4 detectors x linear / cosine


@pytest.mark.parametrize('config', CONFIGS)
def test_config_matches_its_row(config):
    row = table_rows()[config]
    assert dict(derive(load(config)), config=config) == row
    dataset = 'LVISV1Dataset' if config.startswith('lvis_v1/') else 'LVISV05Dataset'
    assert {k: v for k, v in row.items() if k != 'config'} == dict(
        dataset=dataset, sampler='InfiniteSampler', batch='16 (8x2)',
        schedule='9k iters, warm-up 1k, step 8k', lr='0.02', rho='0.8', trains='calibration')
