import os
import sys

# tests/_tiny_runner.py and friends are helpers shared by the test modules
sys.path.insert(0, os.path.dirname(__file__))
