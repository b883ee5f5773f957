"""DisAlign (CVPR 2021) as an OpenMMLab 2.x plugin.

``disalign_mm.core`` holds the math in plain torch; ``disalign_mm.engine``
the codebase-agnostic mmengine pieces; ``disalign_mm.cls``, ``.seg`` and
``.det`` the host adapters for mmpretrain, mmsegmentation and mmdet (import
the one you use, e.g. ``custom_imports=dict(imports=['disalign_mm.cls'])``).
"""
__version__ = '0.1.0'
