# SPDX-License-Identifier: MIT
# The fixtures of the hvsim package (hvsim_host, hvsim_vm, hvsim_service,
# hvsim_python, hvsim_run, ...): the package must be importable, e.g.
# PYTHONPATH=sim/python in the source tree, or after make install.
pytest_plugins = ["hvsim.pytest_plugin"]
