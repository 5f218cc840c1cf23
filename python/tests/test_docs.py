# SPDX-License-Identifier: MIT
"""Every public name of the package has a docstring, and the README's
examples run."""
import inspect
import os
import re
import subprocess
import sys
import unittest

import tickcache
from tickcache import aio, dedupe, strategy
from support import ROOT, python_env, unique_name


def public(obj):
    for name in dir(obj):
        if not name.startswith("_"):
            yield name, getattr(obj, name)


class TestDocstrings(unittest.TestCase):
    def test_every_public_name_is_documented(self):
        missing = []
        for mod in (tickcache, strategy, dedupe, aio):
            self.assertTrue(mod.__doc__, mod.__name__)
            names = getattr(mod, "__all__", None) or [n for n, _ in public(mod)]
            for name in names:
                obj = getattr(mod, name)
                if isinstance(obj, (int, str, float)) or inspect.ismodule(obj):
                    continue
                if not (obj.__doc__ or "").strip():
                    missing.append(f"{mod.__name__}.{name}")
                if inspect.isclass(obj) and not issubclass(obj, BaseException):
                    for mname, m in public(obj):
                        if callable(m) and not (getattr(m, "__doc__", "") or "").strip():
                            missing.append(f"{mod.__name__}.{name}.{mname}")
        self.assertEqual(missing, [])


class TestReadmeExamples(unittest.TestCase):
    def run_example(self, path, fence, rename):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
        m = re.search(fence, text, re.S)
        self.assertIsNotNone(m, path)
        code = m.group(1)
        name = unique_name("readme")
        code = code.replace(rename, repr(name))
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=python_env(), timeout=60)
        subprocess.run([sys.executable, "-c",
                        f"import tickcache; tickcache.unlink({name!r}, missing_ok=True)"],
                       env=python_env())
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        return p.stdout

    def test_package_readme_example(self):
        out = self.run_example("python/README.md", r"## Example\n\n```python\n(.*?)```", '"demo"')
        self.assertEqual(out.splitlines()[:4], ["b'189.50'", "b'-'", "True", "True"])

    def test_top_readme_python_example(self):
        out = self.run_example("README.md", r"python3 - <<'PY'\n(.*?)PY\n", '"ict-py"')
        self.assertEqual(out.splitlines(), ["b'187.25' 1", "True"])


if __name__ == "__main__":
    unittest.main()
