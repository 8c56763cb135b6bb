import subprocess
import sys


def test_ruff_is_clean(repo):
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "course_utils", "recipes", "tools", "tests", "benchmarks"],
                       cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
