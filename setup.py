"""disalign_mm: DisAlign long-tail recognition for mmpretrain, mmseg, mmdet.

Like OpenMMLab's own packages, the wheel carries ``configs/`` and ``tools/``
under ``disalign_mm/.mim/`` so that mim and mmengine find them
(``_base_ = 'disalign_mm::fashion_mnist_lt/...'``, ``mim train``). In the
source tree (what an editable install serves) ``.mim/`` holds links to the
top-level folders; a wheel gets copies.
"""
import importlib.util
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def load_mim_scope():
    """disalign_mm/mim_scope.py, without importing the package."""
    spec = importlib.util.spec_from_file_location(
        'disalign_mm_mim_scope', osp.join(ROOT, 'disalign_mm', 'mim_scope.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_version():
    """``__version__`` of disalign_mm/version.py, without importing the
    package (its import checks the environment)."""
    namespace = {}
    with open(osp.join(ROOT, 'disalign_mm', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(name):
    """Requirement lines of requirements/<name>, without comments or -r."""
    out = []
    with open(osp.join(ROOT, 'requirements', name)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                out.append(line)
    return out


def link_mim_dirs():
    """disalign_mm/.mim/<name> -> ../../<name> for each of MIM_FILES."""
    mim_dir = osp.join(ROOT, 'disalign_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        dst = osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        os.symlink(osp.relpath(osp.join(ROOT, name), mim_dir), dst)


class BuildPy(build_py):
    """Copy configs/ and tools/ into the built package's .mim/ (the source
    tree keeps its links), and put the start-up .pth file of
    disalign_mm/mim_scope.py (it makes `disalign_mm::` config bases
    resolvable) at the root of the wheel, i.e. in site-packages. An editable
    install (PEP 660) cannot carry it: `python -m disalign_mm.mim_scope`
    writes it there (make install does)."""

    def _mim_files(self):
        out = []
        if getattr(self, 'editable_mode', False):
            return out
        for name in MIM_FILES:
            if osp.isfile(osp.join(ROOT, name)):
                out.append((osp.join(ROOT, name),
                            osp.join(self.build_lib, 'disalign_mm', '.mim', name)))
            for dirpath, dirnames, filenames in os.walk(osp.join(ROOT, name)):
                dirnames[:] = [d for d in dirnames if d != '__pycache__']
                rel = osp.relpath(dirpath, ROOT)
                out += [(osp.join(dirpath, f),
                         osp.join(self.build_lib, 'disalign_mm', '.mim', rel, f))
                        for f in filenames if not f.endswith('.pyc')]
        return out

    def run(self):
        super().run()
        for src, dst in self._mim_files():
            self.mkpath(osp.dirname(dst))
            self.copy_file(src, dst)
        load_mim_scope().write_pth(self.build_lib)

    def get_outputs(self, include_bytecode=1):
        pth = osp.join(self.build_lib, load_mim_scope().PTH_NAME)
        return super().get_outputs(include_bytecode) + [d for _, d in self._mim_files()] + [pth]


if __name__ == '__main__':
    link_mim_dirs()
    setup(
        name='disalign_mm',
        version=read_version(),
        description='DisAlign (CVPR 2021) long-tail recognition as an OpenMMLab '
        'plugin for mmpretrain, mmsegmentation and mmdet',
        long_description=open(osp.join(ROOT, 'README.md')).read(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        python_requires='>=3.8',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'tests.*')),
        install_requires=read_requirements('runtime.txt'),
        # the OpenMMLab packages, one extra per family (requirements/runtime.txt
        # says why none is in install_requires); 'mim' is the 0.1 name of
        # 'upstream'
        extras_require={
            'upstream': read_requirements('upstream.txt'),
            'mim': read_requirements('upstream.txt'),
            'fork': read_requirements('fork.txt'),
            'tests': read_requirements('tests.txt'),
            'optional': read_requirements('optional.txt'),
        },
        cmdclass={'build_py': BuildPy},
        zip_safe=False)
