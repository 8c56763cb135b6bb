"""Where the course lives and which release a hosted notebook installs: defined here and nowhere else.

Introduced in ``notebooks/00_setup.ipynb``: the *Open in Colab* / *Open in Studio Lab* badges at the top
of every notebook and the install cell under them are written from this module by
``tools/sync_notebook_headers.py`` (``--check`` is what the tests run), so they always point at the
same release: the git tag ``v<version>``, where the version is ``course_utils.__version__`` (also the
package version in ``pyproject.toml``, which reads it from there). ``RELEASING.md`` makes sure that tag
exists: a badge opens the notebook of that release, and its install cell installs the package of that
same release.
"""

from __future__ import annotations

from . import __version__

REPO_SLUG = "diffusers-course/taking-pipelines-apart"
REPO_URL = f"https://github.com/{REPO_SLUG}"
RELEASE_REF = f"v{__version__}"  # a git tag; RELEASING.md creates it
INSTALL_REQUIREMENT = f"diffusers-course @ git+{REPO_URL}@{RELEASE_REF}"

# What a hosted runtime already has and the install cell must never replace: swapping these under a running
# kernel breaks it (numpy's C API, IPython's display hooks) or needs a restart. They are pinned to the
# runtime's own versions with a pip constraints file written by the cell itself.
KEEP_RUNTIME = ("torch", "numpy", "ipython", "ipykernel", "ipywidgets")


def colab_url(notebook_path: str, ref: str = RELEASE_REF) -> str:
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{ref}/{notebook_path}"


def studiolab_url(notebook_path: str, ref: str = RELEASE_REF) -> str:
    return f"https://studiolab.sagemaker.aws/import/github/{REPO_SLUG}/blob/{ref}/{notebook_path}"


def badges_markdown(notebook_path: str) -> str:
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook_path)}) "
            f"[![Open In SageMaker Studio Lab](https://studiolab.sagemaker.aws/studiolab.svg)]"
            f"({studiolab_url(notebook_path)})")


def install_cell(requirement: str = INSTALL_REQUIREMENT) -> str:
    """The first code cell of every notebook. It runs only on Colab / Studio Lab and installs the course
    without replacing the runtime's torch, numpy, IPython, ipykernel or ipywidgets; then it says whether
    the kernel must restart (only when a package the kernel had already imported was replaced)."""
    keep = ", ".join(f'"{p}"' for p in KEEP_RUNTIME)
    return f"""\
# Runs only on Google Colab or SageMaker Studio Lab: installs the course ({RELEASE_REF}) there, keeping the runtime's
# own {', '.join(KEEP_RUNTIME[:-1])} and {KEEP_RUNTIME[-1]}. On your own machine, `make run` / `make lab` did it already.
import os, sys
if "google.colab" in sys.modules or os.path.isdir("/home/studio-lab-user"):
    import importlib.metadata as md, re, tempfile
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # huggingface_hub == huggingface-hub
    versions = lambda: {{norm(d.metadata["Name"]): d.version for d in md.distributions()}}
    before = versions()
    keep = os.path.join(tempfile.gettempdir(), "keep-runtime.txt")  # pip may add packages, but not replace these
    with open(keep, "w") as f:
        f.writelines(f"{{p}}=={{before[p]}}\\n" for p in ({keep}) if p in before)
    %pip install -q -c "{{keep}}" "{requirement}"
    after = versions()
    imported = {{norm(d) for m, ds in md.packages_distributions().items() if m in sys.modules for d in ds}}
    replaced = sorted(p for p in imported if p in before and before[p] != after.get(p))
    if replaced:
        print(f"Restart the runtime (Runtime > Restart session), then run from the top: this kernel had "
              f"imported {{', '.join(replaced)}}, and the install replaced them.")
    else:
        print("Installed. No restart needed: nothing this kernel had imported was replaced.")
"""
