#!/usr/bin/env python3
"""Runs one of the Eclipse Paho interoperability test scripts (client_test.py, client_test5.py
from eclipse/paho.mqtt.testing) with its broken command line worked around.

usage: python3 paho-run.py PATH/client_test5.py --hostname=H -p P [-- unittest args, e.g. -v Test.test_basic]

Both scripts parse -h/--hostname and -p/--port with getopt and then call unittest.main() on the
same sys.argv, which rejects -p (and `-h HOST` prints the usage: `o in ("--help")` is a substring
test). This runner gives the script its own options and unittest only what follows `--`.
"""
import os
import runpy
import sys
import unittest

script, rest = sys.argv[1], sys.argv[2:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
own, ut = (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
_main = unittest.main
unittest.main = lambda *a, **k: _main(*a, **{**k, "argv": [script] + ut})
sys.argv = [script] + own
runpy.run_path(script, run_name="__main__")
