"""
Command-line settings for the scripts: a flat table of named defaults, each overridable as
`--name=value`. `--help` lists them all; an unknown name or a bad value is a one-line
error with exit code 2, never a silent no-op and never a traceback.
"""

import os
import sys


class UsageError(Exception):
    """Bad input from the user: the scripts print it as one line and exit 2."""


def _convert(name, text, default):
    kind = type(default)
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"--{name} wants True or False, got {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise UsageError(f"--{name} wants {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    return text  # str settings (and None defaults) take the text as it is


def parse(settings, argv=None, doc=""):
    """settings: {name: (default, help)}. Returns {name: value}."""
    argv = sys.argv[1:] if argv is None else argv
    config = {name: default for name, (default, _) in settings.items()}
    for arg in argv:
        if arg in ("-h", "--help"):
            print(doc.strip() + "\n\nsettings (--name=value):")
            width = max(map(len, settings)) + 2
            for name, (default, text) in settings.items():
                print(f"  --{name:<{width}} {text} (default: {default})")
            sys.exit(0)
        if arg.startswith("--") and "=" not in arg and isinstance(settings.get(arg[2:], (None,))[0], bool):
            arg += "=True"  # a bare --name switches a True/False setting on
        if not arg.startswith("--") or "=" not in arg:
            raise UsageError(f"arguments look like --name=value, got {arg!r} (see --help)")
        name, text = arg[2:].split("=", 1)
        if name not in settings:
            raise UsageError(f"unknown setting --{name} (see --help)")
        config[name] = _convert(name, text, settings[name][0])
    return config


def positive(config, *names):
    """Sizes and counts must be > 0."""
    for name in names:
        if not config[name] > 0:
            raise UsageError(f"--{name} must be positive, got {config[name]}")


def main(run):
    """Run `run()`; print a UsageError as one line and exit 2."""
    try:
        run()
    except UsageError as e:
        prog = sys.argv[0].rsplit("/", 1)[-1]
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away, as in `--help | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
