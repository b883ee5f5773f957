"""disalign_mm's restricted unpickler: the allow-list, pinned, and payloads
that only this allow-list stands in front of (torch's own unpickler is not
in the way: the load is ``weights_only=False`` with our ``pickle_module`` on
every torch). Each payload is first shown to be live: the same file loaded
with plain ``torch.load(weights_only=False)`` creates its marker file."""
import os
import os.path as osp
import subprocess
import time
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

from disalign_mm.engine import checkpoint as ckpt

PINNED = {
    'collections.OrderedDict': 'call',
    'collections.Counter': 'call',
    'builtins.set': 'call',
    'builtins.frozenset': 'call',
    'builtins.complex': 'call',
    'builtins.bytearray': 'call',
    '_codecs.encode': 'call',
    'builtins.getattr': 'call',
    'torch._utils._rebuild_tensor': 'call',
    'torch._utils._rebuild_tensor_v2': 'call',
    'torch._utils._rebuild_tensor_v3': 'call',
    'torch._utils._rebuild_parameter': 'call',
    'torch._utils._rebuild_parameter_with_state': 'call',
    'torch._utils._rebuild_meta_tensor_no_storage': 'call',
    'torch._tensor._rebuild_from_type_v2': 'call',
    'torch.Size': 'call',
    'torch.device': 'call',
    'torch.Tensor': 'value',
    'torch.nn.parameter.Parameter': 'value',
    'torch.bool': 'value',
    'torch.uint8': 'value',
    'torch.int8': 'value',
    'torch.int16': 'value',
    'torch.int32': 'value',
    'torch.int64': 'value',
    'torch.float16': 'value',
    'torch.bfloat16': 'value',
    'torch.float32': 'value',
    'torch.float64': 'value',
    'torch.complex64': 'value',
    'torch.complex128': 'value',
    'numpy.ndarray': 'value',
    'numpy.dtype': 'call',
    'numpy.core.multiarray._reconstruct': 'call',
    'numpy.core.multiarray.scalar': 'call',
    'numpy._core.multiarray._reconstruct': 'call',
    'numpy._core.multiarray.scalar': 'call',
    'mmengine.logging.history_buffer.HistoryBuffer': 'new',
}


def test_allow_list_is_pinned():
    """Widening the allow-list must be a visible change of this test."""
    assert ckpt.ALLOWED_GLOBALS == PINNED
    assert ckpt.HISTORY_BUFFER_STATISTICS == ('min', 'max', 'current', 'mean')
    # torch 2.1 has no _rebuild_tensor_v3 (it rebuilds new dtypes); every
    # other name resolves on every supported torch / numpy
    missing = set(PINNED) - set(ckpt.allowed_globals())
    assert missing <= {'torch._utils._rebuild_tensor_v3'}
    assert ckpt.allowed_globals()['builtins.getattr'] is not getattr
    assert ckpt.allowed_globals()['_codecs.encode'].__module__ == 'disalign_mm.engine.checkpoint'


class Call:
    """Pickles as ``func(*args)``; can itself stand as ``func`` of another
    Call (pickle requires a callable there), which builds call chains."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):
        raise AssertionError('only pickled, never called')


def _write_file(marker):
    return f"open({str(marker)!r}, 'w').close()"


def _history_buffer_chain(attr, marker):
    """getattr(HistoryBuffer, attr).__globals__['__builtins__']['eval'](...)"""
    fn = Call(getattr, HistoryBuffer, attr)
    globals_get = Call(getattr, Call(getattr, fn, '__globals__'), 'get')
    builtins_get = Call(getattr, Call(globals_get, '__builtins__'), 'get')
    return Call(Call(builtins_get, 'eval'), _write_file(marker))


PAYLOADS = {
    'builtins.eval': lambda m: Call(eval, _write_file(m)),
    'builtins.exec': lambda m: Call(exec, _write_file(m)),
    'os.system': lambda m: Call(os.system, f'touch {m}'),
    'subprocess.Popen': lambda m: Call(subprocess.Popen, ['touch', str(m)]),
    # non-statistics attributes of HistoryBuffer, then on to eval
    'HistoryBuffer.__init__': lambda m: _history_buffer_chain('__init__', m),
    'HistoryBuffer.update': lambda m: _history_buffer_chain('update', m),
    'HistoryBuffer.statistics': lambda m: _history_buffer_chain('statistics', m),
    'HistoryBuffer.register_statistics': lambda m: _history_buffer_chain(
        'register_statistics', m),
    # an allowed statistic: the chain is stopped at its __globals__
    'HistoryBuffer.mean.__globals__': lambda m: _history_buffer_chain('mean', m),
    # methods of numpy objects that write files
    'numpy.ndarray.tofile': lambda m: Call(Call(getattr, np.ndarray, 'tofile'), np.arange(3),
                                           str(m)),
    'numpy.ndarray.dump': lambda m: Call(Call(getattr, np.ndarray, 'dump'), np.arange(3), str(m)),
}


def _wait_for(path, seconds):
    end = time.time() + seconds
    while time.time() < end and not osp.exists(path):
        time.sleep(0.05)
    return osp.exists(path)


@pytest.mark.parametrize('name', sorted(PAYLOADS))
def test_payload_is_refused_and_nothing_runs(name, tmp_path):
    live, marker = tmp_path / 'live_marker', tmp_path / 'marker'
    # the payload works against an unrestricted load...
    torch.save({'state_dict': {}, 'meta': PAYLOADS[name](live)}, tmp_path / 'live.pth')
    torch.load(tmp_path / 'live.pth', weights_only=False)
    assert _wait_for(live, 10), f'payload {name} is not live: the test would prove nothing'
    # ...and is refused by ours, with nothing run
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': PAYLOADS[name](marker)}, path)
    with pytest.raises(RuntimeError, match='refused to load checkpoint') as info:
        _load_checkpoint(str(path), map_location='cpu')
    assert 'weights.pth' in str(info.value)  # says how to convert a trusted file
    assert not _wait_for(marker, 1 if 'Popen' in name else 0), name


def test_refusal_names_the_global(tmp_path):
    torch.save({'meta': Call(eval, '1')}, tmp_path / 'e.pth')
    with pytest.raises(RuntimeError, match=r"global 'builtins\.eval' is not in the allow-list"):
        _load_checkpoint(str(tmp_path / 'e.pth'))
    torch.save({'meta': Call(getattr, np.ndarray, 'tofile')}, tmp_path / 'g.pth')
    with pytest.raises(RuntimeError, match=r"refusing getattr\(numpy\.ndarray, 'tofile'\)"):
        _load_checkpoint(str(tmp_path / 'g.pth'))


def test_history_buffer_statistics_cannot_be_rebound(tmp_path, monkeypatch):
    """HistoryBuffer.__setstate__ writes the pickled statistics into the
    class-wide table: a file could rebind 'mean' for the whole process."""
    buf = HistoryBuffer([1.0, 2.0, 4.0], [1, 1, 1])
    table = dict(HistoryBuffer._statistics_methods)
    monkeypatch.setitem(HistoryBuffer._statistics_methods, 'mean', HistoryBuffer.max)
    torch.save({'message_hub': buf}, tmp_path / 'rebind.pth')
    monkeypatch.setitem(HistoryBuffer._statistics_methods, 'mean', table['mean'])
    # live: a plain load rebinds mean to max for every HistoryBuffer
    torch.load(tmp_path / 'rebind.pth', weights_only=False)
    assert buf.statistics('mean') == 4.0
    monkeypatch.setitem(HistoryBuffer._statistics_methods, 'mean', table['mean'])
    with pytest.raises(RuntimeError, match='statistics other than its own'):
        _load_checkpoint(str(tmp_path / 'rebind.pth'))
    assert HistoryBuffer._statistics_methods == table
    assert buf.statistics('mean') == pytest.approx(7 / 3)


def _raw_checkpoint(path, pickle_bytes):
    """A torch zip checkpoint whose data.pkl is ``pickle_bytes``."""
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', pickle_bytes)
        z.writestr('archive/version', '3\n')
    return str(path)


@pytest.mark.parametrize('raw, match', [
    # REDUCE on a class that may only be named (numpy.ndarray(...))
    (b'\x80\x02cnumpy\nndarray\nK\x03\x85R.', 'refusing to call numpy.ndarray'),
    # NEWOBJ of a class that may only be called
    (b'\x80\x02ccollections\nOrderedDict\n)\x81.', 'refusing to create collections.OrderedDict'),
    # _codecs.encode with another codec than latin1
    (b'\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.',
     r"refusing _codecs.encode\(str, 'rot13'\)"),
    # protocol-0 object creation
    (b'(i__builtin__\nset\n.', 'refusing pickle operation INST'),
])
def test_operations_outside_the_roles_are_refused(tmp_path, raw, match):
    with pytest.raises(RuntimeError, match=match):
        _load_checkpoint(_raw_checkpoint(tmp_path / 'x.pth', raw))


def test_rebuild_from_type_calls_only_allowed_functions(tmp_path):
    torch.save({'meta': Call(torch._tensor._rebuild_from_type_v2, HistoryBuffer, torch.Tensor,
                             (), {})}, tmp_path / 'r.pth')
    with pytest.raises(RuntimeError, match='_rebuild_from_type_v2'):
        _load_checkpoint(str(tmp_path / 'r.pth'))


def test_what_a_checkpoint_holds_round_trips(tmp_path):
    """Values mmengine and torch write: tensors with attributes, Parameters,
    bytes, sets, numpy scalars/arrays of several dtypes, a HistoryBuffer."""
    t = torch.arange(6, dtype=torch.float32).view(2, 3)
    t_attr = torch.ones(2)
    t_attr.note = 'kept'
    data = {
        'state_dict': torch.nn.Linear(3, 2).state_dict(),
        'meta': {
            'np': [np.float64(1.5), np.int64(3), np.bool_(True), np.float32(2.5)],
            'arr': np.arange(4, dtype=np.int32).reshape(2, 2), 'bytes': b'\x00\xff',
            'set': {1, 2}, 'frozen': frozenset({3}), 'complex': 1 + 2j,
            'milestones': Counter({8: 1, 11: 1}),  # MultiStepLR's
            'size': torch.Size([2, 3]), 'dtype': torch.float16, 'bf16': t.bfloat16(),
            'attr': t_attr, 'param': torch.nn.Parameter(t.clone()),
            'hist': HistoryBuffer([1.0, 2.0], [1, 1]),
        },
    }
    torch.save(data, tmp_path / 'ok.pth')
    out = ckpt.safe_load(str(tmp_path / 'ok.pth'))
    meta = out['meta']
    assert meta['np'] == [1.5, 3, True, 2.5] and type(meta['np'][0]) is np.float64
    assert meta['arr'].dtype == np.int32 and meta['arr'].tolist() == [[0, 1], [2, 3]]
    assert meta['bytes'] == b'\x00\xff' and meta['set'] == {1, 2}
    assert meta['frozen'] == frozenset({3}) and meta['complex'] == 1 + 2j
    assert type(meta['milestones']) is Counter and meta['milestones'] == {8: 1, 11: 1}
    assert meta['size'] == torch.Size([2, 3]) and meta['dtype'] is torch.float16
    assert torch.equal(meta['bf16'].float(), t) and meta['attr'].note == 'kept'
    assert isinstance(meta['param'], torch.nn.Parameter) and torch.equal(meta['param'], t)
    assert meta['hist'].mean() == 1.5
    for k, v in data['state_dict'].items():
        assert torch.equal(out['state_dict'][k], v)


@pytest.mark.skipif(
    not hasattr(mm_checkpoint, '_safe_torch_load'),
    reason='this mmengine (upstream 0.10.7) has no _safe_torch_load and its weights_only=False '
    'fallback: it calls torch.load directly (test_payload_is_refused_and_nothing_runs); the '
    'fork, onedl-mmengine 0.10.12, has both')
@pytest.mark.parametrize('name', ['builtins.eval', 'HistoryBuffer.update'])
def test_fork_fallback_to_a_full_unpickling_never_runs_a_payload(name, tmp_path, monkeypatch):
    """onedl-mmengine's loader answers a failed weights-only load with
    ``torch.load(weights_only=False)``: shown live with torch's own load,
    then never reached (nor harmful) with disalign_mm's in front."""
    live, marker = tmp_path / 'live_marker', tmp_path / 'marker'
    torch.save({'state_dict': {}, 'meta': PAYLOADS[name](live)}, tmp_path / 'live.pth')
    with monkeypatch.context() as m:
        m.setattr(mm_checkpoint, 'torch', torch)  # the fork's loader as it ships
        mm_checkpoint._safe_torch_load(str(tmp_path / 'live.pth'), map_location='cpu')
    assert _wait_for(live, 10), 'the fork\'s fallback did not run the payload: proves nothing'

    assert ckpt.installed()
    calls = []
    load = mm_checkpoint.torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return load(*args, **kwargs)

    monkeypatch.setattr(mm_checkpoint.torch, 'load', spy)
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': PAYLOADS[name](marker)}, path)
    with pytest.raises(RuntimeError, match='refused to load checkpoint'):
        mm_checkpoint._safe_torch_load(str(path), map_location='cpu')
    assert not _wait_for(marker, 0), name
    # no fallback: the refusal is not the UnpicklingError the fork catches
    assert len(calls) == 1
    # and were it reached, the fallback's own load is disalign_mm's
    with pytest.raises(RuntimeError, match='refused to load checkpoint'):
        mm_checkpoint.torch.load(str(path), map_location='cpu', weights_only=False)
    assert not _wait_for(marker, 0), name
    assert len(calls) == 2 and calls[1] is False
