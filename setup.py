"""The part of the packaging that pyproject.toml cannot express: the suite's top-level folders inside
the wheel.

The repository keeps ``cases/``, ``targets/`` and ``docs/`` at its top level (its CI runs
``pytest cases/``); an installed wsconform must still find them, from any directory. So the wheel
carries them as package data of three packages mapped onto those folders with ``package_dir``:
``harness.bundled.cases`` -> ``cases/`` and so on, installed as ``harness/bundled/cases/...``.
``harness.bundled`` (harness/bundled/__init__.py) looks there first and falls back to the checkout's
folders, which is what a source checkout or an editable install uses (nothing is copied for those).

Packages are discovered here rather than listed in pyproject.toml, because pyproject.toml's
``packages.find`` cannot be combined with extra mapped packages, and a hand-written list would
silently drop a package somebody adds later.
"""

from setuptools import find_namespace_packages, setup

BUNDLED = {
    "cases": ["**/*.yaml", "**/*.md", "data/**/*"],
    # every file a target folder needs: adapters, target.yaml, expected.yaml, Dockerfile and sources
    "targets": ["**/*", "**/.dockerignore"],
    "docs": ["autobahn-case-ids.txt", "autobahn-comparison.md", "targets.md"],
}

packages = [
    p for p in find_namespace_packages(include=["harness", "harness.*"]) if "__pycache__" not in p
] + [f"harness.bundled.{kind}" for kind in BUNDLED]

setup(
    packages=packages,
    package_dir={f"harness.bundled.{kind}": kind for kind in BUNDLED},
    package_data={
        "harness": ["py.typed"],
        "harness.report": ["templates/*.html", "templates/*.css"],
        "harness.targets.runners": ["*.js"],
        "harness.scaffold": ["templates/*"],
        **{f"harness.bundled.{kind}": patterns for kind, patterns in BUNDLED.items()},
    },
    exclude_package_data={
        # what a local set-up or run leaves in a target folder: never part of the suite
        "harness.bundled.targets": ["*/node_modules/*", "*/__pycache__/*", "*.pyc", "*/wsconform-ca.pem"],
        "harness.bundled.cases": ["*/__pycache__/*"],
    },
)
