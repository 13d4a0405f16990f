"""
Command-line settings for the scripts: a flat table of named defaults, each overridable as
`--name=value` or by a config file (`python train.py config/tiny.py --name=value`), applied
in order, so that a flag after the file wins. `--help` lists them all; an unknown name or a
bad value is a one-line error with exit code 2, never a silent no-op and never a traceback.
"""

import ast
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


def is_config_file(arg):
    return not arg.startswith("-") and arg.endswith(".py")


def read_config(path):
    """[(name, value, line)] of a config file: `name = value` lines whose values are Python
    literals. The file is parsed, never run, so anything else in it is an error."""
    try:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from None
    except SyntaxError as e:
        raise UsageError(f"{path}{f':{e.lineno}' if e.lineno else ''}: not Python: {e.msg}") from None
    except ValueError as e:  # bytes that are not UTF-8
        raise UsageError(f"{path}: not a Python text file ({e.__class__.__name__})") from None
    out = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise UsageError(f"{path}:{node.lineno}: a config file holds `name = value` lines only")
        try:
            out.append((node.targets[0].id, ast.literal_eval(node.value), node.lineno))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise UsageError(f"{path}:{node.lineno}: the value of {node.targets[0].id} is not a literal") from None
    return out


def _check_type(where, name, value, default):
    """A config file's value, of the default's type (an int will do for a float)."""
    kind = type(default)
    if kind is float and type(value) is int:
        return float(value)
    if default is not None and type(value) is not kind:
        raise UsageError(f"{where}: {name} wants {kind.__name__}, got {value!r}")
    return value


def parse(settings, argv=None, doc=""):
    """settings: {name: (default, help)}; argv: --name=value flags and config files, in the
    order they apply. Returns {name: value}."""
    argv = sys.argv[1:] if argv is None else argv
    config = {name: default for name, (default, _) in settings.items()}
    for arg in argv:
        if arg in ("-h", "--help"):
            print(doc.strip() + "\n\nsettings (--name=value, or name = value in a config file given before them):")
            width = max(map(len, settings)) + 2
            for name, (default, text) in settings.items():
                print(f"  --{name:<{width}} {text} (default: {default})")
            sys.exit(0)
        if is_config_file(arg):
            for name, value, line in read_config(arg):
                if name not in settings:
                    raise UsageError(f"{arg}:{line}: unknown setting {name} (see --help)")
                config[name] = _check_type(f"{arg}:{line}", name, value, settings[name][0])
            continue
        if arg.startswith("--") and "=" not in arg and isinstance(settings.get(arg[2:], (None,))[0], bool):
            arg += "=True"  # a bare --name switches a True/False setting on
        if not arg.startswith("--") or "=" not in arg:
            raise UsageError(f"arguments look like --name=value or a config file NAME.py, got {arg!r} (see --help)")
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
