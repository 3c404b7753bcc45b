"""The ``course`` command (also ``python -m course_utils``).

Each subcommand is a module with ``main(argv) -> exit code`` and its own ``--help``.
"""

from __future__ import annotations

import difflib
import importlib
import sys

COMMANDS = {
    "build": ("course_utils.tools.build", "write labs/ from solutions/ (--check: fail if stale)"),
    "doctor": ("course_utils.tools.doctor", "check the set-up: versions, device, profile, what to fix"),
    "grade": ("course_utils.tools.grade.command", "grade a folder of submitted notebooks"),
    "slides": ("course_utils.tools.slides", "export the slide decks to offline HTML"),
}


def usage() -> str:
    lines = ["usage: course COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`course COMMAND --help` explains each one."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f" (did you mean `course {close[0]}`?)" if close else ""
        print(f"course: unknown command {name!r}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as err:
        if err.name != COMMANDS[name][0]:
            raise
        print(f"course {name}: not available in this version of the course", file=sys.stderr)
        return 2
    try:
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        print(f"course {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
