"""The supported range, declared once and honestly: the wheel's requirements
are ranges (no exact pin, no torch), they agree with the range checked at
import (disalign_mm.SUPPORTED), the two tested stacks pin versions inside it,
the oldest stack sits at its lower bounds, and this suite runs on one of them."""
import importlib.util
import os.path as osp
import re

import pytest

import disalign_mm

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WHEEL_FILES = ('runtime.txt', 'mminstall.txt', 'tests.txt', 'optional.txt')
STACKS = ('newest', 'oldest')


def _setup_module():
    spec = importlib.util.spec_from_file_location('disalign_mm_setup', osp.join(ROOT, 'setup.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() runs only under __main__
    return module


def _split(req):
    m = re.match(r'^([A-Za-z0-9_.-]+)\s*(.*)$', req)
    return m.group(1).lower().replace('_', '-'), m.group(2).replace(' ', '')


def _pins(stack):
    return dict(_split(r) for r in _setup_module().read_requirements(f'stack-{stack}.txt'))


def test_wheel_requirements_are_ranges_without_torch():
    read = _setup_module().read_requirements
    for name in WHEEL_FILES:
        for req in read(name):
            pkg, spec = _split(req)
            assert '==' not in spec and '===' not in spec, (name, req)
            # torch, torchvision and mmcv are compiled together: never
            # something pip may install or replace for a plugin
            assert pkg not in ('torch', 'torchvision'), (name, req)
    assert 'mmcv' not in dict(_split(r) for r in read('runtime.txt'))


def test_declared_ranges_are_the_import_check():
    read = _setup_module().read_requirements
    declared = dict(_split(r) for f in ('runtime.txt', 'mminstall.txt') for r in read(f))
    for name in disalign_mm.SUPPORTED:
        if name in ('torch', 'numpy'):
            continue  # not bounded in the wheel on purpose (runtime.txt says why)
        assert declared[name] == disalign_mm.spec_string(name)[len(name):], name
    assert declared['numpy'] == ''
    assert 'torch' not in declared


@pytest.mark.parametrize('stack', STACKS)
def test_stack_pins_are_inside_the_supported_range(stack):
    pins = _pins(stack)
    problems = disalign_mm.environment_problems(
        {name: pins[name].lstrip('=') for name in disalign_mm.SUPPORTED})
    assert problems == []
    for name in disalign_mm.SUPPORTED:
        assert pins[name].startswith('=='), (stack, name, pins[name])


def test_oldest_stack_is_the_lower_bound():
    pins = _pins('oldest')
    for name, (low, _) in disalign_mm.SUPPORTED.items():
        pinned = disalign_mm.version_tuple(pins[name].lstrip('='))
        low_t = disalign_mm.version_tuple(low)
        # the lower bound's release series (torch 2.1 -> 2.1.2)
        depth = len(low.split('.'))
        assert pinned[:depth] == low_t[:depth], (name, pins[name], low)


def test_this_environment_is_a_tested_stack():
    """The suite runs on one of the stacks it claims (make test / make
    test-oldest), and that stack passes the import check."""
    assert disalign_mm.environment_problems() == []
    import numpy
    import torch
    found = (torch.__version__.split('+')[0], numpy.__version__)
    stacks = {s: (_pins(s)['torch'].lstrip('='), _pins(s)['numpy'].lstrip('=')) for s in STACKS}
    assert found in stacks.values(), (found, stacks)
