"""`make book` builds the Jupyter Book offline, warnings as errors, with every notebook's pictures."""

import re
import subprocess
import sys


def test_book_builds_with_every_notebook(repo):
    r = subprocess.run([sys.executable, "tools/build_book.py"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    html = repo / "book" / "_build" / "html"
    notebooks = sorted(p.stem for p in (repo / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for name in notebooks:
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert len(re.findall(r"<img[^>]+src=\"[^\"]+\.png\"", page)) >= 1 or "data:image/png" in page, name
    traj = (html / "notebooks" / "06_guidance_and_latents.html").read_text()
    assert "data:image/gif;base64," in traj  # the trajectory animation
    guide = (html / "instructor_guide.html").read_text()
    assert "Half day" in guide and "Solution." in guide and "cache-hub" in guide
    assert "08_train_your_own" in (html / "timings.html").read_text() or "train your own" in (html / "timings.html").read_text()
    for page in ("glossary.html", "intro.html"):
        assert (html / page).exists()


def test_cache_hub_offline_says_it_cannot(repo):
    r = subprocess.run([sys.executable, "-m", "course_utils", "cache-hub"], cwd=repo, capture_output=True, text=True,
                       timeout=30, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "Cannot cache" in r.stdout and "tiny mode needs nothing" in r.stdout
