"""Every classification stage-2 config resolves to its row of the recipe
table (docs/recipes.md), and that row is the paper's recipe (appendix A.2)."""
import pytest

from tests.test_configs.recipes import derive, load, stage2_configs, table_rows

CONFIGS = stage2_configs('cls')
DATASET = {'imagenet_lt': 'ImageNet', 'inaturalist2018': 'INaturalist2018',
           'places_lt': 'CustomDataset', 'fashion_mnist_lt': 'FashionMNISTLT'}


def test_the_table_lists_every_config_and_no_other():
    rows = {c for c in table_rows() if c.split('/')[0] in DATASET}
    assert rows == set(CONFIGS)


@pytest.mark.parametrize('config', CONFIGS)
def test_config_matches_its_row(config):
    cfg = load(config)
    row = table_rows()[config]
    assert dict(derive(cfg), config=config) == row

    folder, name = config.split('/')
    method = name.split('_')[0]
    expected = dict(dataset=DATASET[folder])
    if folder == 'fashion_mnist_lt':  # ours: 1 process on 2 CPU cores
        expected.update(batch='128 (1x128)', schedule='6 epochs, cosine', lr='0.1')
    else:  # paper A.2: batch 256, 10 (iNaturalist: 30) epochs, cosine from 0.1
        epochs = 30 if folder == 'inaturalist2018' else 10
        expected.update(batch='256 (8x32)', schedule=f'{epochs} epochs, cosine', lr='0.1')
    if method == 'disalign':
        # instance sampling with GRW, rho 1.2 (cosine classifier: 1.5); only
        # the calibration trains
        expected.update(sampler='DefaultSampler', rho='1.5' if '_cosine_' in name else '1.2',
                        trains='calibration')
    elif method == 'crt':  # Decouple: the re-initialised classifier, class-balanced
        classifier = r'layers\.head' if '_vit-' in name else 'fc'
        expected.update(sampler='ClassBalancedSampler', rho='-',
                        trains=rf'^head\.{classifier}\. (re-initialised)')
    else:  # LWS: the per-class scales, class-balanced
        expected.update(sampler='ClassBalancedSampler', rho='-', trains='calibration')
    assert {k: row[k] for k in expected} == expected
