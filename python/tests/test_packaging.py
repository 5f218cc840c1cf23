# SPDX-License-Identifier: MIT
"""pip install ./python --no-build-isolation works offline and installs a
package that works from anywhere."""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

from support import ROOT, unique_name


@unittest.skipIf(os.environ.get("TC_SANITIZER"), "packaging is not what a sanitizer run checks")
@unittest.skipUnless(importlib.util.find_spec("pip"), "pip is not installed for this Python")
class TestPipInstall(unittest.TestCase):
    def test_pip_install_offline(self):
        with tempfile.TemporaryDirectory() as target:
            env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
            env.pop("PYTHONPATH", None)
            if os.environ.get("BUILDDIR"):
                env["TICKCACHE_BUILDDIR"] = os.environ["BUILDDIR"]
            p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                                "--no-index", "--no-deps", "--target", target,
                                os.path.join(ROOT, "python")],
                               capture_output=True, text=True, env=env, timeout=600)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            name = unique_name("pip")
            code = ("import sys, tickcache\n"
                    "assert tickcache.__file__.startswith(sys.argv[1]), tickcache.__file__\n"
                    "c = tickcache.Cache(sys.argv[2], create=True, memory='1M')\n"
                    "c.set('k', b'installed'); print(c.get('k').decode())\n"
                    "c.close(); tickcache.unlink(sys.argv[2])\n")
            env["PYTHONPATH"] = target
            p = subprocess.run([sys.executable, "-c", code, target, name], capture_output=True,
                               text=True, env=env, cwd=tempfile.gettempdir(), timeout=60)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "installed\n", ""))


if __name__ == "__main__":
    unittest.main()
