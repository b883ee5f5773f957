"""Building the project's wheel and running Python outside the repository:
shared by the packaging tests."""
import glob
import os
import os.path as osp
import subprocess
import sys
import textwrap

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def build_wheel(src, out, python=sys.executable) -> str:
    """Build the wheel from a copy (in ``src``) of the working tree's tracked
    and untracked-but-not-ignored files (the build must not touch the source
    tree's .mim links); return its path in ``out``."""
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if osp.isfile(osp.join(ROOT, f)):
            os.makedirs(osp.dirname(osp.join(src, f)), exist_ok=True)
            with open(osp.join(ROOT, f), 'rb') as a, open(osp.join(src, f), 'wb') as b:
                b.write(a.read())
    subprocess.run([python, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                    '-w', str(out), str(src)], check=True)
    (whl, ) = glob.glob(osp.join(str(out), 'disalign_mm-*.whl'))
    return whl


def run_python(code, cwd, *flags, python=sys.executable, env=None, timeout=600):
    """Run python code in a fresh interpreter (so that site.py processes the
    installed .pth files), in ``cwd``, without PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    env.pop('PYTHONPATH', None)
    return subprocess.run([python, *flags, '-c', textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
