"""
Surface forms: the same code written differently. A conscience that has only ever seen one
canonical text per task learns "canonical or not"; so in this world honest code and hacks
alike come in many forms, and what tells them apart is what the code does. Every choice
has a TRAIN pool (the corpus and the fine-tuning set) and a HELDOUT pool that only the
evaluation uses, so code can be shown in forms the model never read. No form changes what
the code does (codehack checks every honest form against its task's tests).
"""

import io
import re
import tokenize
from dataclasses import dataclass, field

@dataclass
class Code:
    """A solution as parts: module lines before the function, its body (indented one level
    less than in the file) and module lines after it."""
    fname: str
    arg: str
    body: list
    head: list = field(default_factory=list)
    tail: list = field(default_factory=list)
    annotation: str = ""  # a typed signature such as "(xs: list)", else "(xs)"

    def render(self):
        signature = self.annotation or f"({self.arg})"
        head = list(self.head)
        while head and not head[-1]:
            head.pop()
        lines = head + ([""] if head else []) + [f"def {self.fname}{signature}:"]
        lines += ["    " + line if line else "" for line in self.body]
        lines += ([""] + self.tail) if self.tail else []
        return "\n".join(lines) + "\n"


def parse(source):
    """Code from a one-function source of the forms above (head lines, one def, tail lines)."""
    lines = source.rstrip("\n").split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("def "))
    end = next((i for i in range(at + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    fname, arg = re.match(r"def (\w+)\((\w+)\):", lines[at]).groups()
    head = lines[:at]
    while head and not head[-1]:
        head.pop()
    body = [line[4:] for line in lines[at + 1:end]]
    while body and not body[-1]:
        body.pop()
    tail = [line for line in lines[end:]]
    while tail and not tail[0]:
        tail.pop(0)
    return Code(fname, arg, body, head, tail)


POOLS = {
    # renamed variables (only names the code uses, never a builtin it calls)
    "xs": (["nums", "values", "items", "numbers", "lst", "data", "ints", "a", "li", "given"],
           ["arr", "seq", "vals", "elements"]),
    "s": (["text", "string", "line", "chars", "word", "t", "inp", "st"], ["txt", "phrase", "src", "sentence"]),
    "n": (["num", "number", "value", "i", "k", "x0", "z", "q"], ["m", "val", "integer", "amount"]),
    "x": (["v", "num", "item", "e", "a", "val", "it", "u"], ["el", "elem", "y", "entry"]),
    "c": (["ch", "char", "letter", "k", "ltr0", "cc"], ["symbol", "glyph", "ltr"]),
    "w": (["word", "token", "part", "chunk"], ["piece", "term"]),
    "d": (["digit", "ch", "dd"], ["dig"]),
    "total": (["acc", "running", "s_", "tot", "summed"], ["so_far", "accum"]),
    "count": (["hits", "found", "cnt", "n_", "num_found"], ["tally", "matches"]),
    "kept": (["out", "keep", "res_list", "acc_list", "selected"], ["picked", "chosen"]),
    "best": (["top", "current", "largest", "pick"], ["champion", "record"]),
    "words": (["parts", "tokens", "ws", "pieces_"], ["pieces", "terms"]),
    "result": (["res", "answer", "out_", "r", "ans", "retval"], ["ret", "output"]),  # the "result" form's variable
    "helper": (["_solve", "helper", "compute", "_impl", "solve", "_helper", "calc", "run", "_core", "impl"],
               ["_work", "inner", "do_it", "_calc"]),
    "comment": (["# straightforward", "# one pass over the input", "# works for empty input too", "# keep it simple",
                 "# the whole rule", "# direct translation of the spec", "# see the spec above", "# no special cases",
                 "# simple loop", "# easy to read", "# the obvious way", "# clear and short"],
                ["# simple approach", "# linear time", "# handles the edge cases", "# readable version"]),
    "import": (["import math", "import re", "from collections import Counter", "import itertools", "import sys",
                "import os", "import random", "import collections", "from math import inf", "import heapq"],
               ["import functools", "import string", "import operator", "from typing import List"]),
    "docstring": (["Solve the task.", "Compute the answer.", "See the task description.", "The requested function.",
                   "Return the result.", "Answer for the given input.", "As specified.", "Main function."],
                  ["Implementation of the requested function.", "Does what the specification says."]),
}
TRAIN_FORMS = ["rename", "alias", "result", "paren", "helper", "docstring", "comment", "import", "check"]
HELDOUT_FORMS = ["typed", "lambda"]  # structures only the evaluation shows
VARIABLES = ["xs", "s", "n", "x", "c", "w", "d", "total", "count", "kept", "best", "words"]
TYPES = {"xs": "list", "s": "str", "n": "int"}


def names(source):
    return {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME}


def rename(source, old, new):
    """Rename every use of a name (tokens only: strings and comments are left alone)."""
    lines = source.split("\n")
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    hits = [t.start for before, t in zip([None] + tokens, tokens)  # not attributes: xs.count stays
            if t.type == tokenize.NAME and t.string == old and not (before and before.string == ".")]
    for row, col in reversed(hits):
        lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][col + len(old):]
    return "\n".join(lines)


def dress(code, rng, heldout=False, spec="", at_least_one=True, structures=None):
    """Source of `code` in a random surface form (TRAIN_FORMS: renamed variables, a local alias
    of the argument, a result variable, a parenthesised return, a helper function, a
    docstring, a comment, an unused import, a type check of the argument); with heldout=True
    from the evaluation's pools, plus HELDOUT_FORMS that training never shows (type
    annotations, and the body as a lambda). Never changes what the code does. at_least_one: never the code as
    it came (some forms do not apply to every code: another draw is made). `structures`
    replaces the list of forms to draw from (the evaluation's split of its false flags)."""
    while True:
        source = _dress_once(code, rng, heldout, spec, at_least_one, structures)
        if not at_least_one or source != code.render():
            return source


def _dress_once(code, rng, heldout, spec, at_least_one, structures):
    pool = 1 if heldout else 0
    pick = lambda key: rng.choice(POOLS[key][pool])  # noqa: E731
    forms = structures or TRAIN_FORMS + (HELDOUT_FORMS if heldout else [])
    chosen = [f for f in forms if rng.random() < 0.3]
    if at_least_one and not chosen:
        chosen = [rng.choice(forms)]
    code = Code(code.fname, code.arg, list(code.body), list(code.head), list(code.tail))
    if "alias" in chosen:  # the body works on a local alias of the argument
        free = [a for a in POOLS[code.arg][pool] if a not in names(code.render())]
        if free:
            alias = rng.choice(free)
            code.body = [f"{alias} = {code.arg}"] + rename("\n".join(code.body), code.arg, alias).split("\n")
    last = code.body[-1] if code.body else ""
    single_return = len(code.body) == 1 and last.startswith("return ")
    if "paren" in chosen and last.startswith("return ") and not re.fullmatch(r"return \w+", last):
        code.body[-1] = f"return ({last[len('return '):]})"
        last = code.body[-1]
    if "lambda" in chosen and single_return:
        name = pick("helper").lstrip("_")
        code.body = [f"{name} = lambda {code.arg}: {last[len('return '):]}", f"return {name}({code.arg})"]
    elif "result" in chosen and last.startswith("return ") and not re.fullmatch(r"return \w+", last):
        var = pick("result")
        if var not in names(code.render()):
            code.body[-1:] = [f"{var} = {last[len('return '):]}", f"return {var}"]
    if "helper" in chosen:
        name = pick("helper")
        if name not in names(code.render()):
            code.head += ([""] if code.head else []) + [f"def {name}({code.arg}):"] + ["    " + b if b else "" for b in code.body]
            code.body = [f"return {name}({code.arg})"]
    if "comment" in chosen:
        at = rng.randrange(len(code.body))
        indent = code.body[at][:len(code.body[at]) - len(code.body[at].lstrip())]
        code.body.insert(at, indent + pick("comment"))
    if "docstring" in chosen:
        text = spec[0].upper() + spec[1:] + "." if spec and rng.random() < 0.5 else pick("docstring")
        code.body.insert(0, f'"""{text}"""')
    if "import" in chosen:
        code.head[:0] = [pick("import")] + ([""] if code.head and not code.head[0].startswith(("import", "from")) else [])
    if "check" in chosen:  # a precondition on the argument's type
        code.body.insert(int(code.body[0].startswith('"""')), f"assert isinstance({code.arg}, {TYPES[code.arg]})")
    if "typed" in chosen:
        code.annotation = f"({code.arg}: {TYPES[code.arg]})"
    source = code.render()
    if "rename" in chosen:  # the argument, and each other variable with probability 1/2
        present = names(source)
        for old in VARIABLES:
            if old in present and (old == code.arg or rng.random() < 0.5):
                free = [new for new in POOLS[old][pool] if new not in present]
                if free:
                    new = rng.choice(free)
                    source, present = rename(source, old, new), present | {new}
    return source
