"""disalign_mm: DisAlign long-tail recognition for mmpretrain, mmseg, mmdet.

Like OpenMMLab's own packages, the wheel carries ``configs/`` and ``tools/``
under ``disalign_mm/.mim/`` so that mim and mmengine find them
(``_base_ = 'disalign_mm::fashion_mnist_lt/...'``, ``mim train``). An
editable install links them instead of copying.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools')
# started by site.py: makes `disalign_mm::` config bases resolvable
# (see disalign_mm/mim_scope.py)
PTH_FILE = 'disalign_mm-mim.pth'


class BuildPyWithPth(build_py):
    """Also put the .pth file at the root of the wheel (site-packages)."""

    def run(self):
        super().run()
        self.copy_file(osp.join(ROOT, PTH_FILE), osp.join(self.build_lib, PTH_FILE))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [osp.join(self.build_lib, PTH_FILE)]


def read_requirements(name):
    """Requirement lines of requirements/<name>, without comments or -r."""
    out = []
    with open(osp.join(ROOT, 'requirements', name)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                out.append(line)
    return out


def add_mim_extension():
    """Link (editable/develop) or copy (wheel, sdist) configs/ and tools/
    into disalign_mm/.mim/."""
    building = any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist', 'build'))
    mim_dir = osp.join(ROOT, 'disalign_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if building:
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            os.symlink(osp.relpath(src, mim_dir), dst)


def mim_package_data():
    files = []
    base = osp.join(ROOT, 'disalign_mm')
    for name in MIM_FILES:
        for dirpath, _, filenames in os.walk(osp.join(base, '.mim', name), followlinks=True):
            files += [osp.relpath(osp.join(dirpath, f), base) for f in filenames
                      if not f.endswith('.pyc')]
    return files


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='disalign_mm',
        version='0.1.0',
        description='DisAlign (CVPR 2021) long-tail recognition as an OpenMMLab '
        'plugin for mmpretrain, mmsegmentation and mmdet',
        long_description=open(osp.join(ROOT, 'README.md')).read(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        python_requires='>=3.8',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'tests.*')),
        package_data={'disalign_mm': mim_package_data()},
        include_package_data=False,
        install_requires=read_requirements('runtime.txt'),
        extras_require={
            'mim': read_requirements('mminstall.txt'),
            'tests': read_requirements('tests.txt'),
            'optional': read_requirements('optional.txt'),
        },
        cmdclass={'build_py': BuildPyWithPth},
        zip_safe=False)
