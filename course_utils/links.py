"""Where the course lives: the one place its repository URL is defined.

Introduced in ``notebooks/00_setup.ipynb`` (the badges at the top of every notebook point here);
``tools/badges.py`` writes the badges from it and the tests check them.
"""

REPO_SLUG = "diffusers-course/taking-pipelines-apart"
BRANCH = "main"
REPO_URL = f"https://github.com/{REPO_SLUG}"
COURSE_VERSION = "0.1.0"  # the git tag the Colab / Studio Lab install cell pins


def colab_url(notebook_path: str) -> str:
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/{notebook_path}"


def studiolab_url(notebook_path: str) -> str:
    return f"https://studiolab.sagemaker.aws/import/github/{REPO_SLUG}/blob/{BRANCH}/{notebook_path}"


def badges_markdown(notebook_path: str) -> str:
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook_path)}) "
            f"[![Open In SageMaker Studio Lab](https://studiolab.sagemaker.aws/studiolab.svg)]"
            f"({studiolab_url(notebook_path)})")
