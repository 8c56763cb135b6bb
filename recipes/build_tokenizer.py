"""Build tiny-sd's tokenizer: CLIP's real BPE tokenizer (49,408 tokens, 77 positions).

    python recipes/build_tokenizer.py            # downloads the open_clip_torch wheel with pip
    python recipes/build_tokenizer.py --wheel open_clip_torch-3.3.0-py3-none-any.whl

The merges ship inside the ``open_clip_torch`` wheel as ``bpe_simple_vocab_16e6.txt.gz``;
this script converts them into the ``vocab.json`` / ``merges.txt`` files that
``transformers.CLIPTokenizer`` reads, the same files ``CompVis/stable-diffusion-v1-4/tokenizer`` has.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OPEN_CLIP = "open-clip-torch==3.3.0"
OUT = Path(__file__).resolve().parents[1] / "course_utils" / "zoo" / "tiny-sd" / "tokenizer"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=False))


def read_merges(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        raw = z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    return lines[1 : 49152 - 256 - 2 + 1]  # exactly CLIP's 48,894 merges


def build(wheel: Path, out: Path = OUT) -> Path:
    from transformers import CLIPTokenizer

    merges = read_merges(wheel)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = Path(tmp, "vocab.json"), Path(tmp, "merges.txt")
        vocab_file.write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
        merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        tok = CLIPTokenizer(str(vocab_file), str(merges_file), pad_token="<|endoftext|>", model_max_length=77)
    ids = tok("a photograph of an astronaut riding a horse").input_ids
    assert ids == [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407], ids
    # Write the files the real repository's tokenizer/ folder has (vocab.json, merges.txt and
    # the configs), which every transformers version reads, rather than a 3.6 MB tokenizer.json.
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*"):
        stale.unlink()
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    reloaded = CLIPTokenizer.from_pretrained(out)
    assert reloaded("a photograph of an astronaut riding a horse").input_ids == ids
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, help="a local open_clip_torch wheel (else pip downloads it)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.wheel is not None and (not args.wheel.is_file() or args.wheel.suffix != ".whl"):
        ap.error(f"--wheel {args.wheel} is not a wheel file: pass a downloaded open_clip_torch-*.whl, or leave "
                 "--wheel out to let pip download it")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} is a file: give a folder")
    wheel = args.wheel
    if wheel is None:
        tmp = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", OPEN_CLIP, "-d", str(tmp)], check=True)
        wheel = next(tmp.glob("open_clip_torch-*.whl"))
    print("wrote", build(wheel, args.out))


if __name__ == "__main__":
    main()
