"""The version of disalign_mm, in one place: ``disalign_mm.__version__``
imports it and ``setup.py`` reads this file without importing the package
(which would check the environment and need torch)."""
__version__ = '0.2.0'
