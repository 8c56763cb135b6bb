"""The emoji dataset that the course's tiny model zoo is trained on.

Introduced in ``notebooks/08_train_your_own.ipynb``; the recipes in ``recipes/``
train the zoo on it.

Every fully-qualified emoji from the Noto Color Emoji font (Debian package
``fonts-noto-color-emoji``) is rendered, cropped to its glyph, centred on a white
square and resized with LANCZOS. Its caption is its English name from the
``emoji`` package (CLDR): ``":cat_face:"`` becomes ``"cat face"``.

The build is deterministic and cached as a ``.npz`` file, so it runs once per
machine (about a minute).
"""

from __future__ import annotations

import hashlib
import os
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
DATA_VERSION = 1  # bump when rendering changes, so old caches are rebuilt
SPLIT_SEED = 1234
HELD_OUT_FRACTION = 0.1


class FontMissingError(RuntimeError):
    """Raised when the Noto Color Emoji font cannot be found."""


def find_font(path: str | os.PathLike | None = None) -> Path:
    """Return the path of the Noto Color Emoji font, or explain how to install it."""
    candidates = [path] if path else [os.environ.get("COURSE_EMOJI_FONT"), *FONT_CANDIDATES]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise FontMissingError(
        "The Noto Color Emoji font was not found "
        f"(looked in: {', '.join(str(c) for c in candidates if c)}).\n"
        f"Install it with:  sudo apt-get install {FONT_PACKAGE}\n"
        "or point COURSE_EMOJI_FONT at a NotoColorEmoji.ttf file."
    )


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


def render(char: str, size: int, font) -> "PIL.Image.Image | None":  # noqa: F821
    """Render one emoji as an RGB image of ``size`` x ``size`` on white, or None if the font lacks it."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (FONT_SIZE * 3, FONT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((FONT_SIZE // 2, FONT_SIZE // 4), char, font=font, embedded_color=True)
    bbox = canvas.getchannel("A").getbbox()
    if bbox is None:
        return None  # the font has no glyph for it: it rendered empty
    glyph = canvas.crop(bbox)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return square.convert("RGB").resize((size, size), Image.LANCZOS)


@dataclass
class EmojiDataset:
    """Rendered emoji: ``images`` is uint8 (N, size, size, 3); ``captions``/``chars`` have N entries."""

    images: "numpy.ndarray"  # noqa: F821
    captions: list[str]
    chars: list[str]
    train_idx: "numpy.ndarray"  # noqa: F821
    heldout_idx: "numpy.ndarray"  # noqa: F821
    size: int

    def __len__(self) -> int:
        return len(self.captions)

    def index(self, caption: str) -> int:
        try:
            return self.captions.index(caption)
        except ValueError:
            close = [c for c in self.captions if caption.split()[0] in c][:5]
            raise KeyError(f"No emoji is captioned {caption!r}. Similar captions: {close}") from None

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


def load_emoji(size: int = 32, font_path: str | None = None, rebuild: bool = False,
               progress: bool = True) -> EmojiDataset:
    """Build (once) and load the emoji dataset at ``size`` px (32 or 64).

    The train / held-out split is fixed by ``SPLIT_SEED``, so every machine gets the same split.
    """
    import numpy as np

    if size not in (16, 32, 64):
        raise ValueError(f"size must be 16, 32 or 64 pixels, not {size!r}.")
    font_file = find_font(font_path)
    key = hashlib.sha256(f"{DATA_VERSION}-{size}-{font_file.stat().st_size}".encode()).hexdigest()[:10]
    path = cache_dir() / f"emoji-{size}px-{key}.npz"
    if path.exists() and not rebuild:
        z = np.load(path, allow_pickle=False)
        return EmojiDataset(z["images"], [str(c) for c in z["captions"]], [str(c) for c in z["chars"]],
                            z["train_idx"], z["heldout_idx"], size)

    from PIL import ImageFont
    from tqdm.auto import tqdm

    font = ImageFont.truetype(str(font_file), FONT_SIZE)
    images, captions, chars = [], [], []
    for char, caption in tqdm(fully_qualified_emoji(), desc=f"rendering emoji at {size}px",
                              disable=not progress):
        img = render(char, size, font)
        if img is not None:
            images.append(np.asarray(img))
            captions.append(caption)
            chars.append(char)
    images = np.stack(images)
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_held = int(round(len(images) * HELD_OUT_FRACTION))
    heldout_idx, train_idx = np.sort(perm[:n_held]), np.sort(perm[n_held:])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, images=images, captions=np.array(captions), chars=np.array(chars),
                        train_idx=train_idx, heldout_idx=heldout_idx)
    os.replace(tmp, path)
    return EmojiDataset(images, captions, chars, train_idx, heldout_idx, size)
