"""fix_feature_stats: the one pass that sets the statistics every
calibration uses (feature moments of the confidence's input, the RMS of the
logits that conditions the magnitude) when stage 2 starts."""
import pytest
import torch

from disalign_mm.core import CalibratedLinear
from disalign_mm.engine.feature_stats import fix_feature_stats


def _model():
    return torch.nn.ModuleDict(dict(
        disalign=CalibratedLinear(3, 4),
        lws=CalibratedLinear(3, 4, calibration=dict(use_margin=False, confidence='none')),
        margin=CalibratedLinear(3, 4, calibration=dict(use_magnitude=False,
                                                       confidence='constant'))))


def _forward(model):
    def forward(x):
        for m in model.values():
            m(x)
    return forward


def test_sets_every_statistic_once():
    model = _model()
    x = torch.randn(10, 3)
    lines = fix_feature_stats(model, [x[:6], x[6:]], _forward(model))
    assert len(lines) == 3
    assert lines[0].startswith('confidence of disalign.calibration standardises its 3 input')
    assert lines[1].startswith('magnitude of disalign.calibration is conditioned with the RMS '
                               'of its 4 stage-1 logits over 10 training logit vectors')
    assert lines[2].startswith('magnitude of lws.calibration is conditioned')
    for name in ('disalign', 'lws'):
        cal, layer = model[name].calibration, model[name]
        torch.testing.assert_close(cal.logit_rms,
                                   torch.nn.functional.linear(x, layer.weight, layer.bias)
                                   .pow(2).mean(0).sqrt())
        assert float(cal.logit_count) == 10
    assert model['disalign'].calibration.has_feature_stats
    assert not model['margin'].calibration.condition_magnitude  # nothing to condition
    # set once: a second pass (a resumed run) changes nothing
    assert fix_feature_stats(model, [torch.randn(5, 3) * 100], _forward(model)) == []
    assert float(model['lws'].calibration.logit_count) == 10


@pytest.mark.parametrize('name,match', [('disalign', 'no feature reached disalign.calibration'),
                                        ('lws', 'no logit reached lws.calibration')])
def test_an_empty_training_set_is_a_clear_error(name, match):
    model = _model()
    with pytest.raises(RuntimeError, match=match + '.*is the training set empty'):
        fix_feature_stats(torch.nn.ModuleDict({name: model[name]}), [], lambda x: None)
