"""The post-hoc peer of DisAlign in mmseg's decode heads: logit adjustment
per pixel. The stage-1 head's weights load as they are; every pixel's
logits are the stage-1 ones minus ``tau * log(pi)``; mmseg's prediction is
the arg-max of the adjusted, resized logits; any decode head gets it."""
import numpy as np
import pytest
import torch
from mmseg.models.decode_heads import DepthwiseSeparableASPPHead, FCNHead, PSPHead
from mmseg.registry import MODELS

import disalign_mm.seg  # noqa: F401
from disalign_mm.core import logit_adjust
from disalign_mm.engine.class_counts import model_consumers
from disalign_mm.engine.class_stats import ClassCounts
from disalign_mm.seg import (LogitAdjustedConv2d, LogitAdjustedDepthwiseSeparableASPPHead,
                             LogitAdjustedFCNHead, logit_adjusted_head_class)
from tests.test_seg.test_heads import COUNTS, FCN, K


def _pair(**kw):
    torch.manual_seed(0)
    plain = FCNHead(**FCN).eval()
    head = MODELS.build(dict(type='LogitAdjustedFCNHead', **FCN, **kw)).eval()
    head.load_state_dict(plain.state_dict(), strict=True)
    return plain, head


def test_adjusted_head_is_the_plain_head_minus_tau_log_prior_per_pixel():
    plain, head = _pair(tau=0.7, class_counts=COUNTS)
    assert isinstance(head, LogitAdjustedFCNHead)
    assert isinstance(head.conv_seg, LogitAdjustedConv2d)
    assert set(head.state_dict()) == set(plain.state_dict())
    x = [torch.randn(2, 6, 5, 7)]
    with torch.no_grad():
        z, za = plain(x), head(x)
    pi = np.asarray(COUNTS) / sum(COUNTS)
    want = z.double().numpy() - 0.7 * np.log(pi).reshape(1, K, 1, 1)
    np.testing.assert_allclose(za.double().numpy(), want, rtol=1e-5, atol=1e-5)
    # mmseg's prediction: the arg-max of the adjusted logits, resized
    metas = [dict(img_shape=(10, 14), ori_shape=(10, 14), pad_shape=(10, 14))]
    with torch.no_grad():
        pred = head.predict([x[0][:1]], metas, dict())
        ref = plain.predict([x[0][:1]], metas, dict())
    torch.testing.assert_close(pred, logit_adjust(ref, COUNTS, 0.7), rtol=1e-5, atol=1e-5)
    assert not torch.equal(pred.argmax(1), ref.argmax(1))  # the rare classes gain pixels


def test_counts_through_the_hook_interface_and_test_only():
    plain, head = _pair()
    x = [torch.randn(1, 6, 4, 4)]
    with pytest.raises(RuntimeError, match='has no class counts'):
        head(x)
    (consumer, ) = model_consumers(torch.nn.ModuleDict(dict(decode_head=head)))
    assert consumer.owner_name == 'decode_head' and consumer.num_classes == K
    assert 'tau*log(pi_c) off every pixel' in consumer.describe(ClassCounts(COUNTS))
    head.conv_seg.set_class_counts(ClassCounts(COUNTS, unit='pixels', source='table'))
    assert head.conv_seg.given_class_counts().unit == 'pixels'
    with pytest.raises(ValueError, match='4 class counts but 5 classes'):
        head.conv_seg.set_class_counts([1, 2, 3, 4])
    head.train()
    with pytest.raises(RuntimeError, match='post-hoc second stage'):
        head(x)


def test_any_decode_head_gets_it():
    for base, registered in ((FCNHead, LogitAdjustedFCNHead),
                             (DepthwiseSeparableASPPHead,
                              LogitAdjustedDepthwiseSeparableASPPHead)):
        assert logit_adjusted_head_class(base) is registered
    psp = MODELS.build(dict(type='LogitAdjustedHead', base_type='PSPHead', in_channels=8,
                            channels=4, num_classes=3, tau=0.5, class_counts=[10, 20, 30]))
    assert isinstance(psp, PSPHead) and type(psp).__name__ == 'LogitAdjustedPSPHead'
    assert psp.conv_seg.tau == 0.5
    with pytest.raises(KeyError, match="LogitAdjustedHead: base_type='NoHead' is not"):
        MODELS.build(dict(type='LogitAdjustedHead', base_type='NoHead'))
