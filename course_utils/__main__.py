"""``python -m course_utils doctor``: check a machine before a workshop; ``cache-hub``: pre-download hub mode."""

import sys

USAGE = """usage: python -m course_utils COMMAND [--help]

commands:
  doctor      check this machine before a workshop (versions, device, hub, the tiny zoo's integrity)
  cache-hub   download the real hub checkpoints into the Hugging Face cache (gigabytes; needs the hub)

`python -m course_utils COMMAND --help` explains each command; neither --help does any work."""


def cache_hub_main(argv) -> int:
    import argparse

    from .checkpoints import TINY_STAND_INS

    ap = argparse.ArgumentParser(
        prog="python -m course_utils cache-hub",
        description="Download the hub-mode checkpoints (safetensors weights and configs only, several GB) into the "
                    "Hugging Face cache, so that hub mode later loads them offline. Offline, it says so within "
                    "3 s and exits with status 1. Tiny mode needs none of this.")
    ap.add_argument("hub_ids", nargs="*", metavar="HUB_ID",
                    help=f"which checkpoints (default: google/ddpm-cat-256 and CompVis/stable-diffusion-v1-4); "
                         f"one of: {', '.join(TINY_STAND_INS)}")
    args = ap.parse_args(argv)
    unknown = [h for h in args.hub_ids if h not in TINY_STAND_INS]
    if unknown:
        ap.error(f"unknown hub id {unknown[0]!r}: cache-hub caches the course's checkpoints, one of "
                 f"{', '.join(TINY_STAND_INS)}.")
    from .checkpoints import cache_hub

    return cache_hub(args.hub_ids) if args.hub_ids else cache_hub()


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if not argv:
        print(USAGE)
        return 2
    if argv[0] == "doctor":
        from .doctor import main as doctor

        return doctor(argv[1:])
    if argv[0] == "cache-hub":
        return cache_hub_main(argv[1:])
    print(f"unknown command {argv[0]!r}: use `doctor` or `cache-hub`.\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
