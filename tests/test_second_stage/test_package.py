"""The second-stage package: the classification tool's API, imported on
first use, and its detection/segmentation sibling without mmpretrain."""
import subprocess
import sys

from tests.test_cls.fixtures import REPO


def test_dense_tool_does_not_import_mmpretrain():
    """An mmdet- or mmseg-only environment can import the dense tool."""
    code = ('import sys, disalign_mm.second_stage.dense; '
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mmpretrain'))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == '[]'


def test_the_public_api_is_there():
    import disalign_mm.second_stage as ss
    from disalign_mm.second_stage.select import Settings, select_second_stage
    assert ss.Settings is Settings and ss.select_second_stage is select_second_stage
    assert sorted(ss.__all__) == ['Settings', 'select_second_stage']
