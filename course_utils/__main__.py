"""``python -m course_utils doctor``: check a machine before a workshop; ``cache-hub``: pre-download hub mode."""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "doctor":
        from .doctor import main as doctor

        return doctor(argv[1:])
    if argv and argv[0] == "cache-hub":
        from .checkpoints import cache_hub

        return cache_hub()
    print("usage: python -m course_utils doctor [--no-hub]\n       python -m course_utils cache-hub")
    return 2


if __name__ == "__main__":
    sys.exit(main())
