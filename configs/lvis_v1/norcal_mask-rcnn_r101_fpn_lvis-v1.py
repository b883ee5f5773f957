# NorCal (Pan et al., NeurIPS 2021), a post-hoc peer of DisAlign, over
# mask-rcnn_r101_fpn_sample1e-3_ms-1x_lvis-v1.py:
# no training. At test time the bbox classifier of the
# stage-1 model divides each foreground class's exponentiated logit by its
# training image count N_c ** gamma (LVIS image_count), keeps the background
# logit and renormalises: the foreground logits shifted by -gamma * log(N_c),
# then mmdet's softmax (disalign_mm.core.norcal_adjust; official code:
# tydpan/NorCal, projects/NorCal/norcal/roi_heads.py). Recipe table:
# docs/recipes.md. Test only, on the stage-1 checkpoint:
#
#   mim test mmdet configs/lvis_v1/norcal_mask-rcnn_r101_fpn_lvis-v1.py \
#       --checkpoint $STAGE1_CHECKPOINT
#
# gamma = 1.0 divides the foreground scores by the counts themselves (the
# analogue of logit adjustment's tau = 1). It is not a value taken from the
# paper: NorCal's official config leaves GAMMA at 0 and sets it per model on
# held-out data. Choose yours with tools/select_dense_second_stage.py.
_base_ = './mask-rcnn_r101_fpn_sample1e-3_ms-1x_lvis-v1.py'

model = dict(
    roi_head=dict(bbox_head=dict(
        cls_predictor_cfg=dict(type='NorCalLinear', gamma=1.0))))

# the counts of -gamma * log(N_c): image_count of the training annotation file
# (what NorCal's official code reads); or class_counts_file=...
custom_hooks = [dict(type='ClassCountsHook', source=dict(type='lvis', count='image_count'))]
# evaluation: stage 1's LVISMetric (same keys and values) that also writes
# the AP of every category to per_class_ap.json beside the log
val_evaluator = dict(type='LongTailLVISMetric')
test_evaluator = dict(type='LongTailLVISMetric')
