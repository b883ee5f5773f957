"""disalign_mm.benchmarks.stage1: a stage-1 checkpoint is reused only for the
same options and the same config file."""
import json

from disalign_mm.benchmarks.stage1 import STAMP_FILE, Stage1Run, reusable_checkpoint, stamp


def test_checkpoint_reused_only_for_the_same_settings(tmp_path):
    config = tmp_path / 'stage1.py'
    config.write_text('x = 1\n')
    run = Stage1Run('seed 0', str(tmp_path / 'seed0' / 'stage1'), {'randomness.seed': 0})
    assert run.log_file == str(tmp_path / 'seed0' / 'stage1.log')
    (tmp_path / 'seed0' / 'stage1').mkdir(parents=True)
    assert reusable_checkpoint(str(config), run) is None  # nothing trained yet
    ckpt = tmp_path / 'seed0' / 'stage1' / 'epoch_1.pth'
    ckpt.write_bytes(b'weights')
    (tmp_path / 'seed0' / 'stage1' / 'last_checkpoint').write_text(str(ckpt))
    assert reusable_checkpoint(str(config), run) is None  # no stamp: an interrupted run
    (tmp_path / 'seed0' / 'stage1' / STAMP_FILE).write_text(
        json.dumps(stamp(str(config), run.options)))
    assert reusable_checkpoint(str(config), run) == str(ckpt)
    other = Stage1Run('seed 0', run.work_dir, {'randomness.seed': 1})
    assert reusable_checkpoint(str(config), other) is None  # other options
    config.write_text('x = 2\n')
    assert reusable_checkpoint(str(config), run) is None  # the config changed
