"""Shared fixtures for every test in the repository (the real emulators, once per session)."""

pytest_plugins = ["sfpipe_devstack.pytest_plugin"]
