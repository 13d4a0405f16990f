"""
Tests for tokenizer.py on a tiny corpus built here, so they run offline in a few seconds.
    python -m pytest -q tests/test_tokenizer.py
"""

import random

import pytest
import regex

import tokenizer

SPECIALS = ["<|task|>", "<|tests|>", "<|solution|>", "<|end|>"]
VOCAB_SIZE = 600


def make_corpus(seed=0, n_docs=300):
    rng = random.Random(seed)
    names = ["count_greater", "reverse_words", "sum_even", "max_gap", "is_sorted"]
    words = "the a list of numbers string return count each word in order sorted greater than all".split()
    docs = []
    for _ in range(n_docs):
        name, k = rng.choice(names), rng.randint(0, 999)
        spec = " ".join(rng.choice(words) for _ in range(12))
        docs.append(
            f"<|task|>Write {name}(xs): {spec}, constant {k}.\n"
            f"<|tests|>assert {name}([{k}, {k + 1}]) == {rng.randint(0, 9)}\n"
            f"<|solution|>def {name}(xs):\n"
            f"    result = 0\n"
            f"    for x in xs:\n"
            f"        if x > {k}:\n"
            f"            result += 1\n"
            f"    return result\n<|end|>"
        )
    return docs


@pytest.fixture(scope="module")
def enc():
    return tokenizer.train(make_corpus(), VOCAB_SIZE, SPECIALS)


UNICODE_TEXTS = [
    "",
    "héllo wörld, naïve café",
    "emoji 👋🏽 family 👨‍👩‍👧 flag 🇨🇿",
    "日本語のテキスト 中文 한국어",
    "combining e\u0301 a\u0308\u0323 and zero width\u200bjoin",
    "null\x00byte and \x01\x1f controls \ufffd",
    "windows\r\nline\rendings\n\n\n",
    "\ttabs\t\tand    long" + " " * 80 + "runs\n" + "\n" * 20,
    "    return result  # trailing   \n   ",
    "1234567890 3.14159 -42 0x1F 1_000_000",
    "'s 're 'll DON'T shouldn't",
]


@pytest.mark.parametrize("text", UNICODE_TEXTS)
def test_round_trip_unicode(enc, text):
    assert enc.decode(enc.encode_ordinary(text)) == text
    assert enc.decode(enc.encode(text, allowed_special="all")) == text


def test_round_trip_with_markers(enc):
    text = make_corpus(seed=1, n_docs=3)[0] + "<|end|><|task|>👋 x<|end|>"
    ids = enc.encode(text, allowed_special="all")
    assert enc.decode(ids) == text
    assert ids.count(enc.encode_single_token("<|end|>")) == 3


def test_special_tokens_are_single_tokens(enc):
    specials = [enc.encode(s, allowed_special="all") for s in SPECIALS]
    assert specials == [[VOCAB_SIZE - len(SPECIALS) + i] for i in range(len(SPECIALS))]
    # without allowed_special the markers are refused, not silently split
    with pytest.raises(ValueError):
        enc.encode("<|task|>")


def test_tiktoken_splits_like_training(enc):
    # encoding each training chunk on its own must give the same ids as tiktoken's own split
    text = "".join(UNICODE_TEXTS) + make_corpus(seed=2, n_docs=1)[0].replace("<|", "<")
    chunked = [i for chunk in regex.findall(tokenizer.SPLIT_PATTERN, text) for i in enc.encode_ordinary(chunk)]
    assert chunked == enc.encode_ordinary(text)


def test_frequent_words_become_single_tokens(enc):
    for word in [" result", " return", "def", "    ", " xs"]:
        assert len(enc.encode_ordinary(word)) == 1, word


def test_vocab_size(enc):
    assert enc.n_vocab == VOCAB_SIZE
    assert enc.max_token_value == VOCAB_SIZE - 1
    # a corpus with fewer pairs than the budget stops early instead of inventing tokens
    small = tokenizer.train(["abab"], 1000, ["<|end|>"])
    assert small.n_vocab == 256 + 2 + 1


def test_save_load(enc, tmp_path):
    path = tmp_path / "tok.json"
    tokenizer.save(enc, str(path))
    loaded = tokenizer.load(str(path))
    assert loaded.name == enc.name
    assert loaded._mergeable_ranks == enc._mergeable_ranks
    assert loaded._special_tokens == enc._special_tokens
    text = "".join(UNICODE_TEXTS) + make_corpus(seed=3, n_docs=2)[1]
    assert loaded.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
    assert [p.name for p in tmp_path.iterdir()] == ["tok.json"]  # no temp file left behind


def test_deterministic(enc):
    again = tokenizer.train(make_corpus(), VOCAB_SIZE, SPECIALS)
    assert again._mergeable_ranks == enc._mergeable_ranks
    assert again._special_tokens == enc._special_tokens
