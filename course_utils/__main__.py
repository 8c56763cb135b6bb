"""``python -m course_utils doctor``: check a machine before a workshop."""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "doctor":
        print("usage: python -m course_utils doctor [--no-hub]")
        return 2
    from .doctor import main as doctor

    return doctor(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
