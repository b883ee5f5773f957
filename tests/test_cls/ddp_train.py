"""Run by tests/test_cls/test_ddp.py under torchrun (2 CPU processes, gloo):
stage 2 of the Fashion-MNIST-LT config through mmengine's pytorch launcher.

usage (from the repository root):
    torchrun --nproc_per_node 2 -m tests.test_cls.ddp_train DATA_ROOT WORK_DIR CKPT OUT_DIR
"""
import os
import os.path as osp
import sys

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import Runner

from tests.test_cls.fixtures import FMNIST_STAGE2, fix_schedule, load_cfg, tiny_fmnist_options


class RecordCalibration(Hook):
    """Keep the calibration parameters after every iteration; save them
    with the final state dict of this rank."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.trace = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module
        self.trace.append(torch.cat([p.detach().flatten().clone()
                                     for p in model.head.fc.calibration.parameters()]))

    def after_run(self, runner):
        model = runner.model.module
        torch.save(dict(state=model.state_dict(), trace=self.trace,
                        world_size=torch.distributed.get_world_size(),
                        wrapper=type(runner.model).__name__),
                   osp.join(self.out_dir, f'rank{get_rank()}.pth'))


def main():
    data_root, work_dir, ckpt, out_dir = sys.argv[1:5]
    opts = tiny_fmnist_options(data_root, work_dir, max_epochs=2)
    opts.update({'load_from': ckpt, 'train_dataloader.batch_size': 8})
    cfg = load_cfg(FMNIST_STAGE2, opts)
    fix_schedule(cfg, 2)
    cfg.launcher = 'pytorch'  # mmengine's init_dist('pytorch', backend='gloo')
    if not torch.cuda.is_available():
        # mmengine 0.10.7's _init_dist_pytorch calls torch.cuda.set_device
        # unconditionally, which fails without a GPU; on CPU there is no
        # device to select
        torch.cuda.set_device = lambda device: None
    # DDP of a CPU module takes device_ids=None (mmengine passes [LOCAL_RANK])
    cfg.model_wrapper_cfg['device_ids'] = None
    runner = Runner.from_cfg(cfg)
    runner.register_hook(RecordCalibration(out_dir), priority='LOWEST')
    runner.train()


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
