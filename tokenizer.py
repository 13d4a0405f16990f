"""
Byte-level BPE trained on our own corpus and served by tiktoken.
    enc = train(texts, vocab_size=2048, special_tokens=["<|task|>", ...]); save(enc, "tok.json")
    enc = load("tok.json"); ids = enc.encode(text, allowed_special="all")
"""

import base64
import heapq
import json
import os
import re
import tempfile
from collections import Counter

import regex  # installed with tiktoken, which itself splits with it in _encode_only_native_bpe
import tiktoken

# GPT-4's cl100k_base split pattern. Python's `regex` and tiktoken's Rust fancy-regex split
# identically with it, so training sees exactly the chunks that tiktoken will encode.
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""


def count_chunks(texts, special_tokens):
    """Frequency of every pre-split chunk; special tokens cut the text and never join a chunk."""
    split_pattern = regex.compile(SPLIT_PATTERN)
    longest_first = sorted(special_tokens, key=len, reverse=True)  # a marker beats any shorter marker that is its prefix
    special_pattern = re.compile("|".join(map(re.escape, longest_first))) if special_tokens else None
    counts = Counter()
    for text in texts:
        for piece in special_pattern.split(text) if special_pattern else [text]:
            counts.update(split_pattern.findall(piece))
    return counts


def merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train(texts, vocab_size, special_tokens, name="codehack"):
    """Learn merges until vocab_size (bytes + merges + specials) or until no pair is left."""
    assert len(set(special_tokens)) == len(special_tokens), "duplicate special tokens"
    num_ranks = vocab_size - len(special_tokens)
    assert num_ranks >= 256, "vocab_size must leave room for the 256 single bytes"
    counts = count_chunks(texts, special_tokens)
    chunks = [list(chunk.encode("utf-8")) for chunk in counts]  # token ids, which are also ranks
    freqs = list(counts.values())

    # pair -> weighted count, and pair -> chunks that (may) contain it, so that one merge only
    # touches the chunks it changes instead of rescanning the whole corpus
    pair_counts, where = Counter(), {}
    for c, ids in enumerate(chunks):
        for pair in zip(ids, ids[1:]):
            pair_counts[pair] += freqs[c]
            where.setdefault(pair, set()).add(c)
    # max-heap by count, ties to the smallest pair of ids; stale entries are skipped when popped
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)

    vocab = [bytes([b]) for b in range(256)]  # rank -> token bytes
    rank_of = {token: rank for rank, token in enumerate(vocab)}
    while len(vocab) < num_ranks and heap:
        neg_count, pair = heapq.heappop(heap)
        if pair_counts[pair] != -neg_count:
            continue
        token = vocab[pair[0]] + vocab[pair[1]]
        if token not in rank_of:  # in principle another pair may spell the same bytes: keep one rank
            rank_of[token] = len(vocab)
            vocab.append(token)
        new_id = rank_of[token]
        changed = set()
        for c in sorted(where.pop(pair)):
            old, new = chunks[c], merge(chunks[c], pair, new_id)
            if len(new) == len(old):
                continue  # stale entry: an earlier merge already consumed this pair
            for p in zip(old, old[1:]):
                pair_counts[p] -= freqs[c]
                changed.add(p)
            for p in zip(new, new[1:]):
                pair_counts[p] += freqs[c]
                where.setdefault(p, set()).add(c)
                changed.add(p)
            chunks[c] = new
        for p in sorted(changed):
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))

    special_ids = {token: len(vocab) + i for i, token in enumerate(special_tokens)}
    return tiktoken.Encoding(name, pat_str=SPLIT_PATTERN, mergeable_ranks=rank_of, special_tokens=special_ids)


def dumps(enc):
    """The encoding as a JSON string (checkpoints carry their tokenizer this way)."""
    # tiktoken keeps these three private; they are exactly what its own pickling saves
    return json.dumps({
        "name": enc.name,
        "pat_str": enc._pat_str,
        "mergeable_ranks": {base64.b64encode(token).decode("ascii"): rank for token, rank in enc._mergeable_ranks.items()},
        "special_tokens": enc._special_tokens,
    })


def loads(text):
    state = json.loads(text)
    ranks = {base64.b64decode(token): rank for token, rank in state["mergeable_ranks"].items()}
    return tiktoken.Encoding(state["name"], pat_str=state["pat_str"], mergeable_ranks=ranks, special_tokens=state["special_tokens"])


def save(enc, path):
    """One JSON file, written to a temp file first so a reader never sees half of it."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps(enc))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    with open(path) as f:
        return loads(f.read())
