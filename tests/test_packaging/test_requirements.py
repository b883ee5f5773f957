"""The supported range, declared once and honestly: the wheel's requirements
are ranges (no exact pin, no torch, no OpenMMLab distribution outside the
family extras), the extras of each family agree with the range checked at
import (disalign_mm.SUPPORTED), the tested stacks pin versions inside it,
the oldest stack of each family sits at its lower bounds, and this suite
runs on one of them."""
import glob
import importlib.util
import os.path as osp
import re

import pytest

import disalign_mm

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the extras of each family (setup.py: extras_require)
FAMILY_FILES = {'upstream': 'upstream.txt', 'fork': 'fork.txt'}
WHEEL_FILES = ('runtime.txt', 'tests.txt', 'optional.txt') + tuple(FAMILY_FILES.values())
STACKS = sorted(osp.basename(p)[len('stack-'):-len('.txt')]
                for p in glob.glob(osp.join(ROOT, 'requirements', 'stack-*.txt')))
# the oldest tested stack of each family: its pins are the lower bounds
OLDEST = {'upstream': 'oldest', 'fork': 'fork'}


def _setup_module():
    spec = importlib.util.spec_from_file_location('disalign_mm_setup', osp.join(ROOT, 'setup.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() runs only under __main__
    return module


def _split(req):
    m = re.match(r'^([A-Za-z0-9_.-]+)\s*(.*)$', req)
    return m.group(1).lower().replace('_', '-'), m.group(2).replace(' ', '')


def _read(name):
    return dict(_split(r) for r in _setup_module().read_requirements(name))


def _pins(stack):
    return _read(f'stack-{stack}.txt')


def _family(pins):
    return 'fork' if 'onedl-mmcv' in pins else 'upstream'


def _stack_providers(stack):
    """{import name: (distribution, pinned version)} of a stack: what
    :func:`disalign_mm.environment_problems` would find in its venv."""
    pins = _pins(stack)
    out = {}
    for import_name, ranges in disalign_mm.SUPPORTED.items():
        (dist, ) = [d for d in ranges if d in pins]
        assert pins[dist].startswith('=='), (stack, dist, pins[dist])
        out[import_name] = (dist, pins[dist][2:])
    return out


def test_stacks():
    assert {'oldest', 'fork'} <= set(STACKS), STACKS
    assert {_family(_pins(s)) for s in STACKS} == {'upstream', 'fork'}


def test_wheel_requirements_are_ranges_without_torch():
    for name in WHEEL_FILES:
        for pkg, spec in _read(name).items():
            assert '==' not in spec and '===' not in spec, (name, pkg)
            # torch, torchvision and mmcv are compiled together: never
            # something pip may install or replace for a plugin
            assert pkg not in ('torch', 'torchvision'), (name, pkg)
    # what every install gets names no OpenMMLab distribution of either family:
    # pip would install it over the other family's (same import names)
    openmmlab = {d for k, ranges in disalign_mm.SUPPORTED.items() for d in ranges
                 if k not in ('torch', 'numpy')}
    assert not openmmlab & set(_read('runtime.txt')), _read('runtime.txt')
    for name in ('tests.txt', 'optional.txt'):
        assert not openmmlab & set(_read(name)), name
    assert set(_setup_module().read_requirements('runtime.txt')) == {'numpy'}


@pytest.mark.parametrize('family', sorted(FAMILY_FILES))
def test_family_extras_are_the_import_check(family):
    """Each family's extra declares exactly the ranges SUPPORTED checks for
    that family's distributions, and no distribution of the other family."""
    declared = _read(FAMILY_FILES[family])
    for import_name, ranges in disalign_mm.SUPPORTED.items():
        if import_name in ('torch', 'numpy'):
            continue  # not bounded in the wheel on purpose (runtime.txt says why)
        mine = [d for d in ranges if disalign_mm.family_of(d) == family or
                (import_name == 'mim' and d in declared)]
        assert len(mine) == 1, (family, import_name, mine)
        dist = mine[0]
        assert declared[dist] == disalign_mm.spec_string(dist)[len(dist):], (family, dist)
    for ranges in disalign_mm.SUPPORTED.values():
        for dist in ranges:
            if disalign_mm.family_of(dist) not in (None, family):
                assert dist not in declared, (family, dist)


def test_setup_extras_are_the_family_files():
    src = open(osp.join(ROOT, 'setup.py')).read()
    for family, fname in FAMILY_FILES.items():
        assert f"'{family}': read_requirements('{fname}')" in src
    assert "install_requires=read_requirements('runtime.txt')" in src


@pytest.mark.parametrize('stack', STACKS)
def test_stack_pins_are_inside_the_supported_range(stack):
    providers = _stack_providers(stack)
    assert disalign_mm.environment_problems(providers) == []
    family = _family(_pins(stack))
    assert {disalign_mm.family_of(d) for d, _ in providers.values()} == {None, family}


@pytest.mark.parametrize('family', sorted(OLDEST))
def test_oldest_stack_is_the_lower_bound(family):
    """Of the family's distributions; torch's and numpy's bounds are the
    oldest upstream stack's (the fork needs no older ones)."""
    for import_name, (dist, pinned) in _stack_providers(OLDEST[family]).items():
        bounds = disalign_mm.SUPPORTED[import_name][dist]
        if bounds is None or (disalign_mm.family_of(dist) is None and family == 'fork'):
            continue
        low = bounds[0]
        # the lower bound's release series (torch 2.1 -> 2.1.2)
        depth = len(low.split('.'))
        assert disalign_mm.version_tuple(pinned)[:depth] == \
            disalign_mm.version_tuple(low)[:depth], (family, dist, pinned, low)


def test_this_environment_is_a_tested_stack():
    """The suite runs on one of the stacks it claims (make test,
    make test-oldest, make test-fork), and that stack passes the import
    check."""
    assert disalign_mm.environment_problems() == []
    found = {k: (d, v.split('+')[0]) for k, [(d, v, _)] in disalign_mm.find_providers().items()}
    stacks = {s: _stack_providers(s) for s in STACKS}
    assert found in stacks.values(), (found, stacks)
