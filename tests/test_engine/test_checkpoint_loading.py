"""Runner checkpoints through mmengine's loaders as disalign_mm patches them:
local files and http(s) URLs, ``load_from`` of a stage-2 run and ``resume``,
on every supported torch; and the patched loaders agree with mmengine's own
wherever mmengine's own can load the file."""
import functools
import http.server
import os
import shutil
import threading

import numpy as np
import pytest
import torch
import torch.utils.model_zoo
from mmengine.logging import HistoryBuffer
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

from disalign_mm.engine import checkpoint as ckpt
from tests.tiny_runner import TinyModel, make_runner

TORCH_WEIGHTS_ONLY_DEFAULT = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]) \
    >= (2, 6)
FREEZE = dict(type='DisAlignFreezeHook')


@pytest.fixture(scope='module')
def stage1_ckpt(tmp_path_factory):
    work = tmp_path_factory.mktemp('stage1')
    make_runner(work, model=TinyModel(disalign=False), max_iters=3).train()
    return str(work / 'iter_3.pth')


@pytest.fixture
def server(tmp_path):
    """A static http server on 127.0.0.1 serving ``root``; yields (root, url)."""
    root = tmp_path / 'served'
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                            functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f'http://127.0.0.1:{httpd.server_address[1]}'
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """torch.hub's cache (where mmengine's http loader downloads to)."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    return tmp_path / 'torch_home'


def test_patch_is_installed_and_leaves_torch_alone():
    assert ckpt.installed()
    assert torch.load.__module__ == 'torch.serialization'
    assert mm_checkpoint.torch.load is not torch.load
    assert mm_checkpoint.torch.nn is torch.nn and mm_checkpoint.torch.save is torch.save


def test_torch_load_of_a_runner_checkpoint_without_the_patch(stage1_ckpt):
    """The two problems being solved: torch >= 2.6 refuses a Runner
    checkpoint (weights-only by default), older torch unpickles anything."""
    if TORCH_WEIGHTS_ONLY_DEFAULT:
        import pickle
        with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
            torch.load(stage1_ckpt)
    else:
        assert torch.load(stage1_ckpt)['meta']['iter'] == 3  # full unpickling


def test_runner_checkpoint_loads(stage1_ckpt):
    out = _load_checkpoint(stage1_ckpt, map_location='cpu')
    assert set(out) >= {'meta', 'state_dict', 'message_hub', 'optimizer'}
    buf = out['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and len(buf.data[0]) == 3
    assert np.isfinite(buf.mean()) and out['meta']['iter'] == 3


@pytest.mark.slow
def test_load_from_and_resume_round_trip(stage1_ckpt, tmp_path):
    runner = make_runner(tmp_path / 'a', model=TinyModel(disalign=False), max_iters=3,
                         load_from=stage1_ckpt)
    runner.load_or_resume()
    state = _load_checkpoint(stage1_ckpt)['state_dict']
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    runner = make_runner(tmp_path / 'b', model=TinyModel(disalign=False), max_iters=5,
                         load_from=stage1_ckpt, resume=True)
    runner.train()
    assert runner.iter == 5
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 5
    assert runner.optim_wrapper.optimizer.state_dict()['state']  # momentum came back


def _assert_same(a, b, where='checkpoint'):
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, HistoryBuffer):
        _assert_same(a.data, b.data, where)
        assert a.max_length == b.max_length, where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f'{where}[{k!r}]')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, (where, a, b)


@pytest.fixture
def unpatched(monkeypatch):
    """mmengine's loaders as mmengine ships them, for the duration of a test."""
    monkeypatch.setattr(mm_checkpoint, 'torch', torch)
    monkeypatch.setattr(mm_checkpoint, 'load_url', torch.utils.model_zoo.load_url)


def _both(filename, unpatched_fixture_request):
    patched = _load_checkpoint(filename, map_location='cpu')
    unpatched_fixture_request.getfixturevalue('unpatched')
    return patched, _load_checkpoint(filename, map_location='cpu')


def test_patched_local_loader_agrees_with_mmengine(stage1_ckpt, tmp_path, request):
    # a plain state dict: mmengine's own loader reads it on every torch
    plain = tmp_path / 'plain.pth'
    torch.save({'state_dict': TinyModel().state_dict()}, plain)
    patched, own = _both(str(plain), request)
    _assert_same(patched, own)
    if not TORCH_WEIGHTS_ONLY_DEFAULT:  # a Runner checkpoint too (unsafely)
        patched = ckpt.safe_load(stage1_ckpt, map_location='cpu')
        _assert_same(patched, _load_checkpoint(stage1_ckpt, map_location='cpu'))


@pytest.mark.slow
def test_patched_http_loader_agrees_with_mmengine(stage1_ckpt, server, torch_home, request):
    root, url = server
    shutil.copy(stage1_ckpt, root / 'stage1.pth')
    # mmengine's own http loader unpickles fully (weights_only=False) on every
    # torch, so it reads a Runner checkpoint; ours must give the same
    patched, own = _both(f'{url}/stage1.pth', request)
    _assert_same(patched, own)


@pytest.mark.slow
def test_stage2_load_from_http(stage1_ckpt, server, torch_home, tmp_path):
    root, url = server
    shutil.copy(stage1_ckpt, root / 'stage1.pth')
    runner = make_runner(tmp_path / 'stage2', max_iters=2, hooks=[FREEZE],
                         load_from=f'{url}/stage1.pth')
    runner.train()
    # downloaded once into torch.hub's cache, as mmengine does
    cached = torch_home / 'hub' / 'checkpoints' / 'stage1.pth'
    assert cached.is_file() and cached.read_bytes() == (root / 'stage1.pth').read_bytes()
    stage1 = ckpt.safe_load(stage1_ckpt)['state_dict']
    after = runner.model.state_dict()
    for k in stage1:  # the frozen stage-1 model arrived and stayed bit-identical
        assert torch.equal(after[k], stage1[k]), k
    assert not torch.equal(after['fc.calibration.alpha'], torch.ones(3))  # stage 2 trained
    # a second run reads the cache, not the server
    (root / 'stage1.pth').unlink()
    runner = make_runner(tmp_path / 'again', max_iters=1, hooks=[FREEZE],
                         load_from=f'{url}/stage1.pth')
    runner.train()


class _Eval:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()", )


@pytest.mark.slow
def test_malicious_http_checkpoint_is_refused(stage1_ckpt, server, torch_home, tmp_path):
    root, url = server
    evil = ckpt.safe_load(stage1_ckpt)
    evil['meta']['note'] = _Eval(tmp_path / 'marker')
    torch.save(evil, root / 'evil.pth')
    runner = make_runner(tmp_path / 'stage2', max_iters=2, hooks=[FREEZE],
                         load_from=f'{url}/evil.pth')
    with pytest.raises(RuntimeError, match=r"refused to load checkpoint .*'builtins\.eval'"):
        runner.train()
    assert not (tmp_path / 'marker').exists()
    # the same through mmengine's other URL schemes' entry point
    with pytest.raises(RuntimeError, match='refused to load checkpoint'):
        mm_checkpoint.load_from_http(f'{url}/evil.pth')
    assert not (tmp_path / 'marker').exists()


def test_legacy_zip_from_http_is_read_like_torch_hub(server, torch_home, tmp_path):
    """torch.hub reads a zip holding one torch < 1.6 file; so does ours."""
    root, url = server
    inner = tmp_path / 'weights.pth'
    torch.save({'w': torch.arange(3)}, inner, _use_new_zipfile_serialization=False)
    import zipfile
    with zipfile.ZipFile(root / 'weights.zip', 'w') as z:
        z.write(inner, 'weights.pth')
    out = mm_checkpoint.load_from_http(f'{url}/weights.zip')
    assert torch.equal(out['w'], torch.arange(3))
    assert os.path.isfile(torch_home / 'hub' / 'checkpoints' / 'weights.zip')


# Files that are not a complete checkpoint: one line naming the file and the
# cause (the fix too), from the loader every path uses, whatever the format.
def _truncated_zip(src, dst):
    data = open(src, 'rb').read()
    dst.write_bytes(data[:len(data) // 2])  # an interrupted download or save


def _truncated_legacy(src, dst, fraction=0.5):
    """torch < 1.6's format (pickles, then the storages' bytes), cut short."""
    path = dst.with_suffix('.full')
    torch.save(ckpt.safe_load(src), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    dst.write_bytes(data[:int(len(data) * fraction)])


def _garbage(src, dst):
    # bytes that start with a zero byte: what gave `KeyError: 0` from pickle.py
    dst.write_bytes(b'\x00' + np.random.default_rng(0).bytes(4096))


def _html(src, dst):
    dst.write_bytes(b'<html><body>404 Not Found</body></html>\n')  # a failed download


def _empty(src, dst):
    dst.write_bytes(b'')


INCOMPLETE = {'truncated zip': _truncated_zip, 'garbage bytes': _garbage, 'html page': _html,
              'empty file': _empty}
# where a legacy file is cut decides which reader meets its end: the pickles
# (EOF, or a reference to nothing), or torch's storage reads
INCOMPLETE.update({f'truncated legacy at {f:.1%}': functools.partial(_truncated_legacy, fraction=f)
                   for f in (0.002, 0.05, 0.5, 0.99)})


def _assert_one_clear_line(error, path, fix='re-download or re-save it'):
    msg = str(error)
    assert isinstance(error, ckpt.CheckpointCorrupt) and isinstance(error, RuntimeError)
    assert '\n' not in msg, msg
    assert msg.startswith(f'not a complete checkpoint file: {str(path)!r} ('), msg
    assert msg.endswith(f'it is truncated or not a checkpoint; {fix}'), msg
    # not chained to the unpickler's or torch's own traceback
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.mark.parametrize('kind', sorted(INCOMPLETE))
def test_incomplete_checkpoint_is_one_clear_line(kind, stage1_ckpt, tmp_path):
    path = tmp_path / 'stage1.pth'
    INCOMPLETE[kind](stage1_ckpt, path)
    with pytest.raises(RuntimeError) as info:
        _load_checkpoint(str(path), map_location='cpu')  # what the tools and load_from use
    _assert_one_clear_line(info.value, path)
    cause = info.value.cause
    if kind == 'truncated zip':
        assert cause == "its zip archive (torch's format) has no end: the file was cut short"
    elif kind in ('garbage bytes', 'html page'):
        assert cause.startswith('its pickled data is not a valid pickle (KeyError: '), cause
    elif kind == 'empty file':
        assert cause == 'its pickled data ends early', cause
    else:  # the pickles end early or refer to what is cut off, or a storage is short
        assert cause == 'its pickled data ends early' or \
            cause.startswith('its pickled data is not a valid pickle (') or \
            'The file might be corrupted' in cause, cause


def test_incomplete_checkpoint_as_load_from_of_a_runner(stage1_ckpt, tmp_path):
    path = tmp_path / 'stage1.pth'
    _truncated_zip(stage1_ckpt, path)
    runner = make_runner(tmp_path / 'stage2', max_iters=2, hooks=[FREEZE], load_from=str(path))
    with pytest.raises(RuntimeError) as info:
        runner.train()
    _assert_one_clear_line(info.value, path)


@pytest.mark.slow
def test_incomplete_checkpoint_from_http(stage1_ckpt, server, torch_home):
    root, url = server
    _truncated_zip(stage1_ckpt, root / 'stage1.pth')
    with pytest.raises(RuntimeError) as info:
        _load_checkpoint(f'{url}/stage1.pth', map_location='cpu')
    cached = torch_home / 'hub' / 'checkpoints' / 'stage1.pth'
    _assert_one_clear_line(info.value, cached, fix='delete it to download it again')
    assert f'downloaded from {url}/stage1.pth: ' in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['garbage bytes'])  # a truncated zip: the Runner test above
def test_incomplete_checkpoint_as_load_from_of_mim_train(kind, stage1_ckpt, tmp_path):
    """`mim train mmpretrain STAGE2 --cfg-options load_from=BROKEN` ends with
    the one line, not with pickle's `KeyError: 0` or torch's zip reader."""
    import subprocess

    from tests.test_cls import fixtures as fx
    path = tmp_path / 'broken.pth'
    INCOMPLETE[kind](stage1_ckpt, path)
    opts = dict(fx.tiny_fmnist_options(fx.make_fmnist(str(tmp_path / 'data')),
                                       str(tmp_path / 'work')), load_from=str(path))
    cmd = [fx.MIM, 'train', 'mmpretrain', fx.FMNIST_STAGE2, '--cfg-options'] + \
        [f'{k}={v}' for k, v in opts.items()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([fx.REPO, os.environ.get('PYTHONPATH', '')]))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env,
                         cwd=str(tmp_path))
    assert res.returncode != 0
    # the training process's error (mim then reports its exit status)
    (line, ) = [ln for ln in res.stderr.splitlines()
                if ln.startswith('disalign_mm.engine.checkpoint.CheckpointCorrupt: ')]
    assert line.split(': ', 1)[1].startswith(
        f'not a complete checkpoint file: {str(path)!r} ('), res.stderr[-3000:]
    assert line.endswith('re-download or re-save it'), line
    assert 'pickle.py' not in res.stderr and 'KeyError' not in res.stderr.replace(line, '')
    assert 'PytorchStreamReader' not in res.stderr
