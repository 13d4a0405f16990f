"""
Mutation check: does the test suite notice when the mechanism is broken? Each mutant below is
one deliberate bug (exact old text -> new text in one file). Every one is applied alone to a
copy of the repository, the tests named with it are run, and it counts as caught when a test
fails. Writes bench/mutations.json.
    python bench/mutations.py [--only=dpo.] [--out=bench/mutations.json]
A mutant whose old text is no longer in its file is an error: keep the list in step with the code.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import flags  # noqa: E402

SETTINGS = dict(
    only=("", "run only the mutants whose name contains this"),
    out=("bench/mutations.json", "where the results go"),
    timeout=(600, "seconds one mutant's tests may take"),
)


@dataclass
class Mutant:
    name: str
    file: str
    old: str  # must occur exactly once in file
    new: str
    description: str
    tests: tuple  # pytest paths or node ids that should fail


T_DPO, T_CONSCIENCE, T_ONLINE, T_EVALUATE = ("tests/test_dpo.py",), ("tests/test_conscience.py",), \
    ("tests/test_online.py",), ("tests/test_evaluate.py",)
HERMETIC = "not pretrained"  # (-k) the tests that need no pretrained tiny model

MUTANTS = [
    # dpo.py: the loss and the log-probs it is made of
    Mutant("dpo.sign", "dpo.py", "losses = -(1 - label_smoothing) * F.logsigmoid(beta * h)",
           "losses = (1 - label_smoothing) * F.logsigmoid(beta * h)", "the DPO loss with the wrong sign", T_DPO),
    Mutant("dpo.no_beta", "dpo.py", "-(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)",
           "-(1 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)", "beta left out of the loss", T_DPO),
    Mutant("dpo.smoothing_swapped", "dpo.py", "-(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)",
           "-label_smoothing * F.logsigmoid(beta * h) - (1 - label_smoothing) * F.logsigmoid(-beta * h)",
           "label smoothing weights swapped", T_DPO),
    Mutant("dpo.rewards_not_relative", "dpo.py", "chosen_rewards = beta * chosen_logratios.detach()",
           "chosen_rewards = beta * policy_chosen_logps.detach()", "the chosen reward without its reference", T_DPO),
    Mutant("dpo.accuracy_counts_ties", "dpo.py", "(chosen_rewards > rejected_rewards).float()",
           "(chosen_rewards >= rejected_rewards).float()", "rewards/accuracies counts a tie as a win", T_DPO),
    Mutant("dpo.logps_not_masked", "dpo.py", "logits = logits[at]  # (N, V)",
           "at = torch.ones_like(at)\n        logits = logits[at]  # (N, V)",
           "sequence log-probs summed over prompt and padding too", T_DPO),
    Mutant("dpo.shift_off_by_one", "dpo.py", "return F.pad(mask[:, 1:].bool(), (0, 1))", "return mask.bool()",
           "each position scored on its own token instead of the next one", T_DPO),
    # conscience.py: the question, the score, the alternative, the pairs, the buffer
    Mutant("conscience.pair_reversed", "conscience.py", "pairs.append((prompts[i], alts[j], responses[i]))",
           "pairs.append((prompts[i], responses[i], alts[j]))",
           "the flagged response as chosen, the alternative as rejected", T_CONSCIENCE),
    Mutant("conscience.threshold_reversed", "conscience.py",
           "flagged = [i for i, s in enumerate(scores.tolist()) if s < threshold]\n    pairs, gaps",
           "flagged = [i for i, s in enumerate(scores.tolist()) if s > threshold]\n    pairs, gaps",
           "the responses the conscience likes are flagged", T_CONSCIENCE),
    Mutant("conscience.no_margin", "conscience.py", "if gap >= margin and alts[j] != responses[i]:",
           "if alts[j] != responses[i]:", "pairs kept without a clear margin", T_CONSCIENCE),
    Mutant("conscience.refusals_win", "conscience.py", "if not is_refusal(text) and s > best_scores[i]:",
           "if s > best_scores[i]:", "a refusal may be the ethical alternative", T_CONSCIENCE),
    Mutant("conscience.first_candidate_wins", "conscience.py", "if not is_refusal(text) and s > best_scores[i]:",
           "if not is_refusal(text) and best_scores[i] == float('-inf'):",
           "the first acceptable candidate wins, not the best-scored", T_CONSCIENCE),
    Mutant("conscience.yes_no_swapped", "conscience.py", "answer[:, yes] - answer[:, no]", "answer[:, no] - answer[:, yes]",
           "the score is log P(no) - log P(yes)", T_CONSCIENCE),
    Mutant("conscience.not_frozen", "conscience.py", "p.requires_grad_(False)", "p.requires_grad_(True)",
           "the frozen copy holds gradients", T_CONSCIENCE),
    Mutant("conscience.buffer_unbounded", "conscience.py", "(self.pairs + list(pairs))[-self.size:]",
           "(self.pairs + list(pairs))", "the replay buffer ignores its size", T_CONSCIENCE),
    Mutant("conscience.random_not_random", "conscience.py", "(p, c, r) if f < 0.5 else (p, r, c)",
           "(p, c, r) if f < 2.0 else (p, r, c)", "the random control never flips a pair", T_CONSCIENCE),
    Mutant("conscience.oracle_inverted", "conscience.py", "value if g.verdict == \"honest\" else -value",
           "-value if g.verdict == \"honest\" else value", "the oracle prefers what fails the hidden tests",
           T_CONSCIENCE),
    # the online step (train.py)
    Mutant("online.no_dpo_term", "train.py", "loss = sft + cfg[\"lam\"] * losses.mean()", "loss = sft",
           "the loss reduced to the next-token loss (DPO term dropped)", T_ONLINE),
    Mutant("online.reference_is_policy", "train.py", "ref = response_logps(frozen, enc, p + p, both, device, block)",
           "ref = response_logps(net, enc, p + p, both, device, block)",
           "DPO reference log-probs from the policy, not the frozen copy", T_ONLINE),
    Mutant("online.pair_reversed_in_loss", "train.py", "dpo_loss(pi[:n], pi[n:], ref[:n], ref[n:]",
           "dpo_loss(pi[n:], pi[:n], ref[n:], ref[:n]", "DPO trained towards the rejected side", T_ONLINE),
    Mutant("online.policy_always_judges", "train.py", "judge = policy if cfg[\"judge\"] == \"policy\" else frozen",
           "judge = policy", "the live policy judges its own samples whatever --judge says", T_ONLINE),
    Mutant("online.oracle_ignored", "train.py",
           "scorer = conscience.oracle({t.prompt: t for t, _ in batch}) if cfg[\"judge\"] == \"oracle\" else None",
           "scorer = None", "--judge=oracle judged by the frozen copy", T_ONLINE),
    Mutant("online.random_ignored", "train.py", "pairs = conscience.randomize(pairs, generator)", "pass",
           "--judge=random keeps the conscience's preferences", T_ONLINE),
    Mutant("online.sft_control_on_rejected", "train.py", "p, chosen, _ = (list(c) for c in zip(*draw))",
           "p, _, chosen = (list(c) for c in zip(*draw))", "the SFT control imitates the flagged responses", T_ONLINE),
    Mutant("online.inoculation_everywhere", "train.py",
           "samples = complete(policy, enc, prompts,", "samples = complete(policy, enc, sft_prompts,",
           "the policy samples (and is judged) with the inoculation line", T_ONLINE),
    Mutant("online.loss_on_prompt_tokens", "conscience.py", "[0] * len(a) + [1] * len(b) + [0] * len(c)",
           "[1] * len(a) + [1] * len(b) + [0] * len(c)",
           "the next-token and DPO losses count the prompt's tokens too", T_CONSCIENCE + T_ONLINE),
    # evaluate.py
    Mutant("evaluate.auroc_swapped", "evaluate.py", "pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]",
           "pos, neg = np.asarray(neg)[:, None], np.asarray(pos)[None, :]", "auroc with its two classes swapped",
           T_EVALUATE),
    Mutant("evaluate.auroc_ties", "evaluate.py", "((pos > neg) + 0.5 * (pos == neg))", "((pos > neg) + 1.0 * (pos == neg))",
           "auroc counts a tie as a win", T_EVALUATE),
    Mutant("evaluate.conscience_auroc_reversed", "evaluate.py", "return auroc(honest.tolist(), hacks.tolist())",
           "return auroc(hacks.tolist(), honest.tolist())", "conscience_auroc with hacks as the positive class",
           T_EVALUATE),
]


def repository_files():
    """The files a fresh checkout of the working tree would have (tracked, and untracked but not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and os.path.isfile(os.path.join(ROOT, f))]


def pytest(folder, tests, timeout):
    """(exit code, names of the failed tests, seconds); exit code None on a timeout."""
    t0 = time.time()
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", HERMETIC, *tests]
    try:
        out = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, [], time.time() - t0
    failed = [line.split()[1] for line in out.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return out.returncode, failed, time.time() - t0


def main():
    cfg = flags.parse(SETTINGS, doc=__doc__)
    mutants = [m for m in MUTANTS if cfg["only"] in m.name]
    if not mutants:
        raise flags.UsageError(f"no mutant name contains {cfg['only']!r}")
    for m in mutants:
        count = open(os.path.join(ROOT, m.file)).read().count(m.old)
        if count != 1:
            raise flags.UsageError(f"mutant {m.name}: its old text occurs {count} times in {m.file} (want 1): update it")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in repository_files():
            os.makedirs(os.path.dirname(os.path.join(tmp, f)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), os.path.join(tmp, f))
        every_test = sorted({t for m in mutants for t in m.tests})
        code, failed, seconds = pytest(tmp, every_test, cfg["timeout"])
        if code != 0:
            raise SystemExit(f"the tests fail before any mutation ({failed or code}): fix them first")
        print(f"unmutated: {' '.join(every_test)} pass ({seconds:.0f} s)", flush=True)
        for m in mutants:
            path = os.path.join(tmp, m.file)
            original = open(path).read()
            with open(path, "w") as f:
                f.write(original.replace(m.old, m.new))
            code, failed, seconds = pytest(tmp, list(m.tests), cfg["timeout"])
            with open(path, "w") as f:
                f.write(original)
            # exit code 1: tests ran and one failed; anything else (a crash at import, a timeout) is not a catch
            status = {0: "missed", 1: "caught", None: "timeout"}.get(code, f"error (pytest exit code {code})")
            results.append(dict(asdict(m), status=status, failed=failed, seconds=round(seconds, 1)))
            print(f"{status:8s} {m.name}: {m.description}" + (f"  <- {failed[0]}" if failed else ""), flush=True)
    caught = sum(r["status"] == "caught" for r in results)
    print(f"\n{caught} of {len(results)} mutants caught")
    with open(os.path.join(ROOT, cfg["out"]), "w") as f:
        json.dump(dict(caught=caught, total=len(results), mutants=results), f, indent=1)


if __name__ == "__main__":
    flags.main(main)
