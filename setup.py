"""setup.py shim: Beam's --setup_file needs one, and the sve_kernels extension is built here at install time."""
from setuptools import setup

setup()
