import numpy as np
import pytest

from course_utils.emoji_data import FontMissingError, caption_for, find_font, load_emoji


def test_missing_font_names_the_package(tmp_path):
    with pytest.raises(FontMissingError, match="apt-get install fonts-noto-color-emoji"):
        find_font(tmp_path / "nope.ttf")


def test_captions():
    assert caption_for(":waving_hand_medium_skin_tone:") == "waving hand medium skin tone"
    data = load_emoji(32)
    for caption in ("cat face", "red heart", "flag Japan", "waving hand medium skin tone"):
        assert data.index(caption) >= 0
    with pytest.raises(KeyError, match="Similar"):
        data.index("cat fase")


def test_every_emoji_rendered_deterministically(tmp_path, monkeypatch):
    data = load_emoji(32)
    assert 3800 <= len(data) <= 4100 and data.images.shape[1:] == (32, 32, 3)
    assert len(set(data.captions)) == len(data)
    # no blank renders: every image has ink; most sit on white (keycaps and flags may fill the square)
    assert (data.images.reshape(len(data), -1).min(1) < 200).all()
    assert (data.images[:, 0, 0] >= 250).all(-1).mean() > 0.8
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))  # a fresh build, compared with the cached one
    fresh = load_emoji(32, progress=False)
    assert np.array_equal(fresh.images, data.images) and fresh.captions == data.captions


def test_fixed_split():
    a, b = load_emoji(64), load_emoji(32)
    assert np.array_equal(a.train_idx, b.train_idx) and np.array_equal(a.heldout_idx, b.heldout_idx)
    assert not set(a.train_idx) & set(a.heldout_idx)
    assert abs(len(a.heldout_idx) / len(a) - 0.1) < 0.01


def test_face_subset_and_tensor_range():
    data = load_emoji(32)
    faces = data.subset("face")
    assert 100 <= len(faces) <= 200 and all("face" in data.captions[i].split() for i in faces)
    x = data.tensor(faces[:4])
    assert x.shape == (4, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
