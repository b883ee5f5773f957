"""Weights-only checkpoint loading for mmengine, the same on every supported
torch (2.1 to 2.14), for local files and http(s) URLs alike.

What mmengine 0.10.7 does on its own:

- local files (``load_from``, ``resume``): ``torch.load(filename)``. On
  torch >= 2.6 that is weights-only by default, and fails on every Runner
  checkpoint ("Weights only load failed": the file holds numpy values and
  mmengine's ``HistoryBuffer``). On torch < 2.6 it is a full unpickling:
  a checkpoint can run any code.
- http(s) URLs (and ``torchvision://``, ``open-mmlab://``, ``mmcls://``,
  which resolve to URLs): ``torch.hub.load_state_dict_from_url``, whose
  default is ``weights_only=False`` on every torch.

torch's own answer, ``add_safe_globals`` / ``safe_globals``, exists only
from torch 2.4 / 2.5, and torch 2.1 refuses ``pickle_module`` together with
``weights_only=True``. So the plugin brings one restricted unpickler and
passes it to ``torch.load(f, weights_only=False, pickle_module=...)`` on
every torch: torch then wraps :class:`RestrictedUnpickler` (its storage
types and module renames) and everything else in the file goes through it.
:class:`RestrictedUnpickler` is Python's reference unpickler with every
operation that can reach code checked:

- globals (``GLOBAL``/``STACK_GLOBAL``) come only from
  :data:`ALLOWED_GLOBALS`, by name: nothing named in the file is imported;
- ``REDUCE`` calls only the globals marked ``'call'`` there, ``NEWOBJ``
  creates only those marked ``'new'`` (mmengine's ``HistoryBuffer``);
- ``BUILD`` sets state only on numpy arrays, plain numpy dtypes,
  ``OrderedDict`` and ``HistoryBuffer`` (whose state is checked: only its
  data and its own statistics functions);
- items are added only to lists, dicts and sets; object creation of
  protocols 0/1 (``INST``, ``OBJ``), extension codes, out-of-band buffers
  and text persistent ids are refused.

Three globals are replaced by checked versions: ``builtins.getattr``
(``HistoryBuffer`` pickles its statistics functions as
``getattr(HistoryBuffer, 'mean')``: only those four names resolve),
``_codecs.encode`` (protocol 2 writes ``bytes`` as
``encode(text, 'latin1')``: only that) and
``torch._tensor._rebuild_from_type_v2`` (it calls a function from the file:
only an allowed one, into a Tensor or Parameter).

:func:`install` (run when :mod:`disalign_mm.engine` is imported) makes
``mmengine.runner.checkpoint`` use it: that module's ``torch`` becomes a
view of torch whose ``load`` is :func:`safe_load` (every loader of the
module: local files, s3/petrel, pavi, open-mmlab files), and its
``load_url`` downloads as before (torch.hub's cache,
``<torch hub dir>/checkpoints/<file name>``) and then loads with
:func:`safe_load`. torch itself is not touched.

The maintained fork's loader (onedl-mmengine 0.10.12,
``mmengine.runner.checkpoint._safe_torch_load``) tries
``torch.load(weights_only=True)`` and, on a ``pickle.UnpicklingError``,
falls back to ``torch.load(weights_only=False)``: a full unpickling. Both
calls go through the same module's ``torch``, i.e. to :func:`safe_load`,
which ignores ``weights_only``; and :func:`safe_load` raises
``RuntimeError`` subclasses (:class:`CheckpointRefused` wrapped,
:class:`CheckpointCorrupt`), never the ``UnpicklingError`` that triggers
the fallback.

A file that is not a complete checkpoint (truncated, or not a checkpoint at
all) raises :class:`CheckpointCorrupt`, one line naming the file and the
cause, instead of whatever the unpickler or torch's zip reader met first
(``KeyError: 0``, ``PytorchStreamReader failed reading zip archive``).
"""
import _compat_pickle
import io
import os
import os.path as osp
import pickle
import struct
import sys
import types
import zipfile
from collections import Counter, OrderedDict
from typing import Any, Dict, Optional
from urllib.parse import urlparse

import disalign_mm

disalign_mm.check_environment()  # before torch or mmengine fail in their own words

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.logging import HistoryBuffer  # noqa: E402

CALL, NEW, VALUE = 'call', 'new', 'value'

# Everything a checkpoint may name, and what the unpickler may do with it.
# Pinned in tests/test_engine/test_checkpoint_safety.py: widening it is
# a reviewed change. Names this torch / numpy does not have are left out.
ALLOWED_GLOBALS: Dict[str, str] = {
    # containers and values that protocol 2 writes as calls
    'collections.OrderedDict': CALL,
    'collections.Counter': CALL,  # MultiStepLR's milestones
    'builtins.set': CALL,
    'builtins.frozenset': CALL,
    'builtins.complex': CALL,
    'builtins.bytearray': CALL,
    '_codecs.encode': CALL,  # checked: str -> latin-1 bytes only
    'builtins.getattr': CALL,  # checked: HistoryBuffer's statistics only
    # tensors (torch's own weights-only set, without sparse/quantized/nested)
    'torch._utils._rebuild_tensor': CALL,
    'torch._utils._rebuild_tensor_v2': CALL,
    'torch._utils._rebuild_tensor_v3': CALL,
    'torch._utils._rebuild_parameter': CALL,
    'torch._utils._rebuild_parameter_with_state': CALL,
    'torch._utils._rebuild_meta_tensor_no_storage': CALL,
    'torch._tensor._rebuild_from_type_v2': CALL,  # checked: allowed function
    'torch.Size': CALL,
    'torch.device': CALL,
    'torch.Tensor': VALUE,
    'torch.nn.parameter.Parameter': VALUE,
    'torch.bool': VALUE,
    'torch.uint8': VALUE,
    'torch.int8': VALUE,
    'torch.int16': VALUE,
    'torch.int32': VALUE,
    'torch.int64': VALUE,
    'torch.float16': VALUE,
    'torch.bfloat16': VALUE,
    'torch.float32': VALUE,
    'torch.float64': VALUE,
    'torch.complex64': VALUE,
    'torch.complex128': VALUE,
    # numpy scalars and arrays (meta, message_hub); numpy 1 and 2 names
    'numpy.ndarray': VALUE,
    'numpy.dtype': CALL,
    'numpy.core.multiarray._reconstruct': CALL,
    'numpy.core.multiarray.scalar': CALL,
    'numpy._core.multiarray._reconstruct': CALL,
    'numpy._core.multiarray.scalar': CALL,
    # mmengine's message hub
    'mmengine.logging.history_buffer.HistoryBuffer': NEW,
}

# the statistics functions HistoryBuffer pickles (mmengine 0.10: its
# defaults, registered on the first instance)
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
_HISTORY_BUFFER_STATE = ('max_length', '_log_history', '_count_history', 'statistics_methods')


class CheckpointRefused(pickle.UnpicklingError):
    """The file holds something outside :data:`ALLOWED_GLOBALS`."""


class CheckpointCorrupt(RuntimeError):
    """The file is not a complete checkpoint: truncated (an interrupted
    download or save) or not a checkpoint at all. A ``RuntimeError``, as
    torch's own, and not an ``UnpicklingError``: the fork's loader would
    answer that one with an unrestricted load (the module docstring)."""


# what the unpickler raises on bytes that are not (all of) a pickle: an
# unknown opcode (KeyError), a read past the end (EOFError, struct.error),
# a reference to nothing (IndexError, KeyError of the memo), pickle's own
_CORRUPT_PICKLE = (pickle.UnpicklingError, EOFError, KeyError, IndexError, struct.error,
                   UnicodeDecodeError, ValueError)
# torch's messages for a zip checkpoint that is cut short or damaged, and for
# a legacy-format file that is not one
_CORRUPT_TORCH = ('PytorchStreamReader failed', 'Invalid magic number', 'invalid header or '
                  'archive is corrupted', 'failed finding central directory',
                  'The file might be corrupted', 'unexpected EOF')


def _name(obj: Any) -> str:
    if isinstance(obj, type):
        return f'{obj.__module__}.{obj.__qualname__}'
    return getattr(obj, '__qualname__', None) or type(obj).__name__


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` for unpickling: only HistoryBuffer's statistics."""
    if obj is HistoryBuffer and type(name) is str and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise CheckpointRefused(
        f'refusing getattr({_name(obj)}, {name!r}): the only attributes a checkpoint may '
        f'fetch are the statistics of mmengine HistoryBuffer {HISTORY_BUFFER_STATISTICS}')


def _latin1_encode(text: Any, encoding: Any = 'latin1') -> bytes:
    """``_codecs.encode`` for unpickling: how protocol 2 writes ``bytes``."""
    if type(text) is str and encoding in ('latin1', 'latin-1'):
        return text.encode('latin1')
    raise CheckpointRefused(f'refusing _codecs.encode({type(text).__name__}, {encoding!r}): '
                            "only str -> bytes with 'latin1' (how pickle writes bytes)")


def _checked_rebuild_from_type_v2(func, new_type, args, state):
    """torch's rebuild of a Tensor subclass or a Tensor with attributes; it
    calls ``func(*args)``, so ``func`` must be an allowed call."""
    if not _allowed_to(CALL, func) or new_type not in (torch.Tensor, torch.nn.Parameter):
        raise CheckpointRefused(
            f'refusing torch._tensor._rebuild_from_type_v2({_name(func)}, {_name(new_type)}): '
            'only allowed functions, into a Tensor or Parameter')
    return torch._tensor._rebuild_from_type_v2(func, new_type, args, state)


def _numpy_multiarray():
    try:  # numpy >= 2 (numpy.core is a deprecated alias there)
        from numpy._core import multiarray
    except ImportError:
        from numpy.core import multiarray
    return multiarray


def _resolve(name: str) -> Any:
    """The object an allowed name stands for here, or None if this torch /
    numpy lacks it. Only names of :data:`ALLOWED_GLOBALS` get here."""
    special = {
        'builtins.getattr': _restricted_getattr,
        '_codecs.encode': _latin1_encode,
        'torch._tensor._rebuild_from_type_v2': _checked_rebuild_from_type_v2,
        'collections.OrderedDict': OrderedDict,
        'collections.Counter': Counter,
        'builtins.set': set,
        'builtins.frozenset': frozenset,
        'builtins.complex': complex,
        'builtins.bytearray': bytearray,
        'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
        'numpy.ndarray': np.ndarray,
        'numpy.dtype': np.dtype,
        'torch.nn.parameter.Parameter': torch.nn.Parameter,
    }
    if name in special:
        return special[name]
    module, attr = name.rsplit('.', 1)
    if module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        return getattr(_numpy_multiarray(), attr, None)
    if module in ('torch', 'torch._utils'):
        return getattr(sys.modules[module], attr, None)
    raise KeyError(name)


_TABLES: Dict[str, Dict] = {}


def _tables() -> Dict[str, Dict]:
    """{'globals': name -> object, 'call'/'new': id -> object}, built once."""
    if not _TABLES:
        objects = {}
        for name in ALLOWED_GLOBALS:
            obj = _resolve(name)
            if obj is not None:
                objects[name] = obj
        _TABLES['globals'] = objects
        for role in (CALL, NEW):
            _TABLES[role] = {id(o): o for n, o in objects.items() if ALLOWED_GLOBALS[n] == role}
    return _TABLES


def _allowed_to(role: str, obj: Any) -> bool:
    return _tables()[role].get(id(obj)) is obj


def allowed_globals() -> Dict[str, Any]:
    """name -> object of :data:`ALLOWED_GLOBALS` that exist on this
    torch / numpy."""
    return dict(_tables()['globals'])


def _refuse_op(what: str):

    def refuse(self):
        raise CheckpointRefused(f'refusing pickle operation {what}: checkpoints never need it')

    return refuse


class RestrictedUnpickler(pickle._Unpickler):
    """Python's reference unpickler with the checks of the module docstring."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def load(self) -> Any:
        """Unpickle; bytes that are no complete pickle raise
        :class:`CheckpointCorrupt` (a refused operation stays
        :class:`CheckpointRefused`)."""
        try:
            return super().load()
        except CheckpointRefused:
            raise
        except _CORRUPT_PICKLE as e:
            what = 'ends early' if isinstance(e, (EOFError, struct.error)) else \
                f'is not a valid pickle ({type(e).__name__}: {str(e)[:80]})'
            raise CheckpointCorrupt(f'its pickled data {what}') from e

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as pickle maps them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f'{module}.{name}'
        objects = _tables()['globals']
        if full not in objects:
            raise CheckpointRefused(f'global {full!r} is not in the allow-list')
        return objects[full]

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if not _allowed_to(CALL, func) or type(args) is not tuple:
            raise CheckpointRefused(f'refusing to call {_name(func)}: not an allowed call')
        self.stack[-1] = func(*args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if not _allowed_to(NEW, cls) or type(args) is not tuple or args:
            raise CheckpointRefused(f'refusing to create {_name(cls)}: not an allowed class')
        self.append(cls.__new__(cls))

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        if type(kwargs) is not dict or kwargs:
            raise CheckpointRefused('refusing keyword arguments to __new__')
        self.load_newobj()

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is np.ndarray:
            inst.__setstate__(state)
        elif isinstance(inst, np.dtype):
            # (version, byte order, subarray, names, fields, ...): plain
            # dtypes only; a checkpoint holds no structured arrays
            if type(state) is not tuple or len(state) < 5 or \
                    any(x is not None for x in state[2:5]):
                raise CheckpointRefused('refusing a structured numpy dtype')
            inst.__setstate__(state)
        elif type(inst) is OrderedDict:  # a state_dict's _metadata
            if type(state) is not dict:
                raise CheckpointRefused('refusing non-dict state of an OrderedDict')
            inst.__dict__.update(state)
        elif type(inst) is HistoryBuffer:
            _check_history_buffer_state(state)
            inst.__setstate__(dict(state))
        else:
            raise CheckpointRefused(f'refusing to set the state of a {_name(type(inst))}')

    dispatch[pickle.BUILD[0]] = load_build

    def load_append(self):
        if type(self.stack[-2]) is not list:
            raise CheckpointRefused(f'refusing append to a {_name(type(self.stack[-2]))}')
        value = self.stack.pop()
        self.stack[-1].append(value)

    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        if type(self.stack[-1]) is not list:
            raise CheckpointRefused(f'refusing append to a {_name(type(self.stack[-1]))}')
        self.stack[-1].extend(items)

    dispatch[pickle.APPENDS[0]] = load_appends

    def load_setitem(self):
        if type(self.stack[-3]) not in (dict, OrderedDict):
            raise CheckpointRefused(f'refusing item assignment to a {_name(type(self.stack[-3]))}')
        value = self.stack.pop()
        key = self.stack.pop()
        self.stack[-1][key] = value

    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) not in (dict, OrderedDict):
            raise CheckpointRefused(f'refusing item assignment to a {_name(type(target))}')
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_additems(self):
        items = self.pop_mark()
        if type(self.stack[-1]) is not set:
            raise CheckpointRefused(f'refusing to add items to a {_name(type(self.stack[-1]))}')
        self.stack[-1].update(items)

    dispatch[pickle.ADDITEMS[0]] = load_additems

    for _op in ('INST', 'OBJ', 'EXT1', 'EXT2', 'EXT4', 'NEXT_BUFFER', 'READONLY_BUFFER',
                'PERSID'):
        dispatch[getattr(pickle, _op)[0]] = _refuse_op(_op)
    del _op


def _check_history_buffer_state(state: Any) -> None:
    if type(state) is not dict or not set(state) <= set(_HISTORY_BUFFER_STATE):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointRefused(f'refusing HistoryBuffer state {keys}')
    methods = state.get('statistics_methods', {})
    if type(methods) is not dict or any(
            type(name) is not str or name not in HISTORY_BUFFER_STATISTICS
            or fn is not getattr(HistoryBuffer, name)
            for name, fn in methods.items()):
        raise CheckpointRefused('refusing HistoryBuffer statistics other than its own '
                                f'{HISTORY_BUFFER_STATISTICS}')


def _restricted_load(file, **kwargs):
    return RestrictedUnpickler(file, **kwargs).load()


def _restricted_loads(data: bytes, **kwargs):
    return RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


# what torch.load needs of a pickle_module: Unpickler and load (the legacy
# formats call load directly), __name__ (torch checks for dill)
RESTRICTED_PICKLE = types.SimpleNamespace(
    __name__='disalign_mm.engine.checkpoint.RESTRICTED_PICKLE',
    Unpickler=RestrictedUnpickler, load=_restricted_load, loads=_restricted_loads,
    UnpicklingError=pickle.UnpicklingError)


def _corrupt(name: str, cause: str, fix: str = 're-download or re-save it'):
    """The one-line error of a file that is not a complete checkpoint
    (``cause`` kept as an attribute)."""
    error = CheckpointCorrupt(f'not a complete checkpoint file: {name!r} ({cause}): it is '
                              f'truncated or not a checkpoint; {fix}')
    error.cause = cause
    return error


def _zip_problem(f) -> Optional[str]:
    """Why ``f`` (a path or a seekable binary file), a zip file by its first
    bytes (torch's format since 1.6), is not a complete zip archive; None
    when it is one, or is no zip at all. Reads the archive's directory at
    the end of the file only: a file cut short has none (torch's reader then
    fails in a way that depends on the torch version: ``PytorchStreamReader
    failed reading zip archive``, ``OSError: [Errno 22]``)."""
    if isinstance(f, (str, os.PathLike)):
        if not osp.isfile(f):
            return None  # torch's own error (mmengine checks existence first)
        with open(f, 'rb') as fh:
            return _zip_problem(fh)
    if not (hasattr(f, 'seek') and hasattr(f, 'read')):
        return None
    start = f.tell()
    try:
        if f.read(4) != b'PK\x03\x04':
            return None
        f.seek(start)
        try:
            zipfile.ZipFile(f).close()
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            if 'not a zip file' in str(e):  # no end-of-archive record
                return "its zip archive (torch's format) has no end: the file was cut short"
            return f"its zip archive (torch's format) is damaged: {e}"
        return None
    finally:
        f.seek(start)


def safe_load(f, map_location=None) -> Any:
    """``torch.load`` of ``f`` through :class:`RestrictedUnpickler`.

    Raises:
        RuntimeError: The file holds something outside
            :data:`ALLOWED_GLOBALS`; the message names it. Nothing outside
            the allow-list was called.
        CheckpointCorrupt: The file is not a complete checkpoint (a
            ``RuntimeError``; one line naming the file and the cause).
    """
    name = str(f) if isinstance(f, (str, os.PathLike)) else type(f).__name__
    problem = _zip_problem(f)
    if problem:
        raise _corrupt(name, problem)
    try:
        return torch.load(f, map_location=map_location, pickle_module=RESTRICTED_PICKLE,
                          weights_only=False)
    except CheckpointCorrupt as e:  # from RestrictedUnpickler.load
        raise _corrupt(name, getattr(e, 'cause', str(e))) from None
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if any(m in str(e) for m in _CORRUPT_TORCH):
            raise _corrupt(name, first[:160]) from None
        raise
    except CheckpointRefused as e:
        raise RuntimeError(
            f'refused to load checkpoint {str(name)!r}: {e}. disalign_mm loads checkpoints '
            'weights-only (tensors, numpy values, mmengine HistoryBuffer: '
            'disalign_mm.engine.checkpoint.ALLOWED_GLOBALS), whatever the torch version. '
            'If you trust this file, convert it once in plain Python: '
            f'`c = torch.load({str(name)!r}, weights_only=False); '
            "torch.save({'state_dict': c['state_dict']}, 'weights.pth')` "
            'and load weights.pth instead.') from e


def _torch_load(f, map_location=None, weights_only=None):
    """``torch.load`` as mmengine.runner.checkpoint calls it. ``weights_only``
    is accepted and ignored: the load is weights-only either way."""
    return safe_load(f, map_location=map_location)


def download(url: str, model_dir: Optional[str] = None, progress: bool = True,
             file_name: Optional[str] = None) -> str:
    """Download ``url`` into torch.hub's cache the way
    ``torch.hub.load_state_dict_from_url`` does (``<hub dir>/checkpoints/<file
    name>``, kept for later runs) and return the local path. Nothing is
    loaded."""
    from torch.hub import download_url_to_file, get_dir
    if model_dir is None:
        model_dir = osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, file_name or osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        download_url_to_file(url, cached, None, progress=progress)
    return cached


def load_url(url: str, model_dir: Optional[str] = None, map_location=None,
             progress: bool = True, check_hash: bool = False,
             file_name: Optional[str] = None, weights_only=None) -> Any:
    """``torch.hub.load_state_dict_from_url`` (what mmengine's http(s)
    loader calls), loading with :func:`safe_load`. A checkpoint of the
    legacy zip format (one file in a zip, torch < 1.6) is read from the zip,
    as torch.hub does."""
    if check_hash:
        raise ValueError('check_hash is not supported by disalign_mm\'s load_url')
    cached = download(url, model_dir, progress, file_name)
    try:
        if zipfile.is_zipfile(cached):
            with zipfile.ZipFile(cached) as z:
                members = z.infolist()
                if len(members) == 1 and not members[0].is_dir():
                    return safe_load(io.BytesIO(z.read(members[0])), map_location)
        return safe_load(cached, map_location)
    except (CheckpointCorrupt, zipfile.BadZipFile) as e:
        raise _corrupt(cached, f'downloaded from {url}: {getattr(e, "cause", e)}',
                       'delete it to download it again') from None


class _TorchWithSafeLoad(types.ModuleType):
    """torch, as ``mmengine.runner.checkpoint`` sees it: ``load`` is
    :func:`safe_load`, every other name is torch's."""

    def __init__(self) -> None:
        super().__init__('torch', torch.__doc__)
        self.load = _torch_load

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def __repr__(self) -> str:
        return f'<torch {torch.__version__}, weights-only load by disalign_mm>'


def install() -> None:
    """Make ``mmengine.runner.checkpoint`` load weights-only (``load_from``,
    ``resume``, ``load_checkpoint``, every URL scheme). Idempotent."""
    from mmengine.runner import checkpoint as mm_checkpoint
    if not isinstance(mm_checkpoint.torch, _TorchWithSafeLoad):
        mm_checkpoint.torch = _TorchWithSafeLoad()
    mm_checkpoint.load_url = load_url


def installed() -> bool:
    from mmengine.runner import checkpoint as mm_checkpoint
    return isinstance(mm_checkpoint.torch, _TorchWithSafeLoad) and \
        mm_checkpoint.load_url is load_url
