"""Is this checkpoint a replica? (random weights: the machinery is tested, not the pictures)

Introduced in ``notebooks/01_pipeline_in_four_lines.ipynb``; the notebooks' workload parameters
(``fast``, ``steps``, ``size``, ``batch``, ``dtype``) are plain Python in each notebook's first cells.

``make hub-replica`` (``tools/hub_replica.py``) writes replicas of the hub checkpoints (their real configs,
seeded random weights) into a Hugging Face cache, so that hub mode runs where the hub cannot be reached, as in
CI. A replica draws noise, so a notebook guards each assert about *what the picture shows* with a condition it
prints::

    trained = not is_replica(path)
    print("trained weights:", trained)
    if trained:
        assert psnr_mean > 20
"""

from __future__ import annotations

import json
from pathlib import Path

#: the stamp tools/hub_replica.py writes in the cache's repo folder (next to blobs/, refs/, snapshots/)
REPLICA_STAMP = ".course-replica.json"


def is_replica(path) -> bool:
    """True if ``path`` (what ``resolve_checkpoint`` returned) is a snapshot written by ``tools/hub_replica.py``.

    A hub id (not a local folder) or the course's tiny zoo is never a replica. Reads one small file.
    """
    p = Path(str(path))
    if not p.is_dir():
        return False
    p = p.resolve()
    # <cache>/models--org--name/snapshots/<commit>: the stamp is two levels up, and names this commit
    if p.parent.name != "snapshots":
        return False
    try:
        stamp = json.loads((p.parent.parent / REPLICA_STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("commit") == p.name
