"""Packaging beside pyproject.toml: only what pyproject cannot say.

The training configs live in ``configs/`` at the repository root (the README's paths) and are
installed as ``btdnet/configs/*.yaml`` (package data, read by ``btdnet.engine.config``), so a
wheel install can train with ``--config synthetic.yaml``. pyproject's ``packages.find`` cannot
add a package whose folder is elsewhere, so the package list is built here.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["btdnet*", "bicor*"]), "btdnet.configs"],
    package_dir={"btdnet.configs": "configs"},  # its *.yaml: pyproject's package-data
)
