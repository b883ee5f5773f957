import pytest
import torch

from disalign_mm.core import CosineLinear


def test_cosine_by_hand():
    fc = CosineLinear(2, 2, scale=10.0)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, -2.0]]))
    out = fc(torch.tensor([[1.0, 0.0], [6.0, 8.0]]))
    expected = torch.tensor([[10 * 0.6, 0.0], [10 * 1.0, 10 * -0.8]])
    torch.testing.assert_close(out, expected)
    # invariant to the input norm
    torch.testing.assert_close(fc(torch.tensor([[5.0, 0.0]])), out[:1])


@pytest.mark.parametrize('learn', [True, False])
def test_scale_learnable_or_fixed(learn):
    fc = CosineLinear(4, 3, scale=16.0, learn_scale=learn)
    names = [n for n, _ in fc.named_parameters()]
    assert names == (['weight', 'scale'] if learn else ['weight'])
    fc(torch.randn(5, 4)).sum().backward()
    if learn:
        assert fc.scale.grad is not None
    assert 'scale' in fc.state_dict()
