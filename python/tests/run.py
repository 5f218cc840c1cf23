# SPDX-License-Identifier: MIT
"""Run the unittest suite of python/tests and end with cmocka's summary lines
("[  PASSED  ] N test(s)." ...), which tests/run.sh counts."""
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
good = result.testsRun - bad - len(result.skipped)
print(f"[  PASSED  ] {good} test(s).")
if result.skipped:
    print(f"[  SKIPPED ] {len(result.skipped)} test(s).")
if bad:
    print(f"[  FAILED  ] {bad} test(s), listed below:")
    for t, _ in result.failures + result.errors:
        print(f"[  FAILED  ] {t.id()}")
sys.exit(0 if result.wasSuccessful() else 1)
