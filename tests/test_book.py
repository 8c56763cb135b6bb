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
    # every solution's code is a code block: a fence opened mid-line would turn the rest of the page to raw markdown
    solutions = (repo / "book" / "_solutions.md").read_text()
    assert not re.search(r"[^\n]```", solutions), re.search(r".*[^\n]```.*", solutions).group(0)
    assert guide.count("<pre") >= solutions.count("```") // 2, (guide.count("<pre"), solutions.count("```"))
    assert "08_train_your_own" in (html / "timings.html").read_text() or "train your own" in (html / "timings.html").read_text()
    for page in ("glossary.html", "intro.html"):
        assert (html / page).exists()


def test_cache_hub_offline_says_it_cannot(repo):
    r = subprocess.run([sys.executable, "-m", "course_utils", "cache-hub"], cwd=repo, capture_output=True, text=True,
                       timeout=30, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "Cannot cache" in r.stdout and "tiny mode needs nothing" in r.stdout


def test_instructor_guide_times_are_the_timings_pages(repo):
    """The schedule's running times quote the README's tiny-mode column (the timings page), not an older run."""
    readme = (repo / "README.md").read_text()
    tiny = {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^\| (\d\d) \|.*\| ([\d.]+) \| [\d.]+ \| [^|]* \|\s*$", readme, re.M)}
    assert len(tiny) >= 13, sorted(tiny)
    guide = (repo / "book" / "instructor_guide.md").read_text()
    quoted = re.findall(r"\| ((?:\d\d, )*\d\d) \((\d+) s\) \|", guide)
    assert len(quoted) >= 7, quoted
    for names, seconds in quoted:
        measured = sum(tiny[n] for n in names.split(", "))
        assert abs(int(seconds) - measured) <= max(2.0, 0.15 * measured), (names, seconds, measured)
