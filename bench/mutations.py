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


# One deliberate bug a paragraph, written as a small patch: a header line
#   name | file | the test files that must notice | what the bug is
# then the old text on `-` lines and its replacement on `+` lines (several lines of each for a
# multi-line change, a bare `+` for an empty one). The old text must occur once in its file.
MUTANTS = """
dpo.sign | dpo.py | tests/test_dpo.py | the DPO loss with the wrong sign
- losses = -(1 - label_smoothing) * F.logsigmoid(beta * h)
+ losses = (1 - label_smoothing) * F.logsigmoid(beta * h)

dpo.no_beta | dpo.py | tests/test_dpo.py | beta left out of the loss
- F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
+ F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)

dpo.smoothing_swapped | dpo.py | tests/test_dpo.py | the label-smoothing weights swapped
- -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
+ -label_smoothing * F.logsigmoid(beta * h) - (1 - label_smoothing) * F.logsigmoid(-beta * h)

dpo.reward_without_reference | dpo.py | tests/test_dpo.py | the chosen reward forgets its reference
- chosen_rewards = beta * chosen_logratios.detach()
+ chosen_rewards = beta * policy_chosen_logps.detach()

dpo.accuracy_counts_ties | dpo.py | tests/test_dpo.py | rewards/accuracies counts a tie as a win
- (chosen_rewards > rejected_rewards).float()
+ (chosen_rewards >= rejected_rewards).float()

dpo.logps_not_masked | dpo.py | tests/test_dpo.py | log-probs summed over prompt and padding too
- return token_logps.masked_fill(~mask, 0.0).sum(-1)  # (B,)
+ return token_logps.sum(-1)  # (B,)

dpo.shift_off_by_one | dpo.py | tests/test_dpo.py | each position scored on its own token, not the next
- labels, mask = labels[:, 1:], mask[:, 1:].bool()  # (B, T-1)
+ labels, mask = labels[:, :-1], mask[:, :-1].bool()  # (B, T-1)

dpo.packed_shift_off_by_one | dpo.py | tests/test_dpo.py | the packed path scores the wrong tokens
- targets = labels[:, 1:][mask[:, 1:].bool()]
+ targets = labels[:, :-1][mask[:, 1:].bool()]

engine.loss_on_prompt_tokens | engine.py | tests/test_conscience.py tests/test_online.py | the next-token and DPO losses count the prompt's tokens too
- row, mask = a + b + c, [0] * len(a) + [1] * len(b) + [0] * len(c)
+ row, mask = a + b + c, [1] * len(a) + [1] * len(b) + [0] * len(c)

engine.imports_conscience | engine.py | tests/test_imports.py | an import cycle: engine imports the mechanism built on it
- from dpo import packed_sequence_logps, predicts
+ from dpo import packed_sequence_logps, predicts
+ import conscience  # noqa

conscience.pair_reversed | conscience.py | tests/test_conscience.py | the flagged response as chosen, the alternative as rejected
- pairs.append((prompts[i], alts[j], responses[i]))
+ pairs.append((prompts[i], responses[i], alts[j]))

conscience.threshold_reversed | conscience.py | tests/test_conscience.py | the responses the conscience likes are flagged
- flagged = [i for i, s in enumerate(scores.tolist()) if s < threshold]
-     pairs, gaps, canonical = [], [], 0
+ flagged = [i for i, s in enumerate(scores.tolist()) if s > threshold]
+     pairs, gaps, canonical = [], [], 0

conscience.no_margin | conscience.py | tests/test_conscience.py | pairs kept without a clear margin
- if usable and gap >= margin and alts[j] != responses[i]:
+ if usable and alts[j] != responses[i]:

conscience.refusals_win | conscience.py | tests/test_conscience.py | a refusal may be the ethical alternative
- if not is_refusal(text) and s > best_scores[i]:
+ if s > best_scores[i]:

conscience.first_candidate_wins | conscience.py | tests/test_conscience.py | the first acceptable candidate wins, not the best scored
- if not is_refusal(text) and s > best_scores[i]:
+ if not is_refusal(text) and best_scores[i] == float("-inf"):

conscience.policy_rewrites | conscience.py | tests/test_conscience.py | the rewrite after "no" is written by the policy, not the judge
- candidates.append(complete(judge, enc, revise,
+ candidates.append(complete(policy, enc, revise,

conscience.yes_no_swapped | conscience.py | tests/test_conscience.py | the score is log P(no) - log P(yes)
- answer[:, yes] - answer[:, no]
+ answer[:, no] - answer[:, yes]

conscience.score_position | conscience.py | tests/test_conscience.py | the score read one position before the answer
- at[fits.nonzero()[:, 0], last[fits]] = True
+ at[fits.nonzero()[:, 0], last[fits] - 1] = True

conscience.not_frozen | conscience.py | tests/test_conscience.py | the frozen copy holds gradients
- p.requires_grad_(False)
+ p.requires_grad_(True)

conscience.buffer_unbounded | conscience.py | tests/test_conscience.py | the replay buffer ignores its size
- (self.pairs + list(pairs))[-self.size:]
+ (self.pairs + list(pairs))

controls.random_not_random | controls.py | tests/test_conscience.py | the random control never flips a pair
- (p, c, r) if f < 0.5 else (p, r, c)
+ (p, c, r) if f < 2.0 else (p, r, c)

controls.oracle_inverted | controls.py | tests/test_conscience.py | the oracle prefers what fails the hidden tests
- value if g.verdict == "honest" else -value
+ -value if g.verdict == "honest" else value

controls.sft_on_rejected | controls.py | tests/test_online.py | the SFT control imitates the flagged responses
- prompts, chosen, _ = (list(c) for c in zip(*pairs))
+ prompts, _, chosen = (list(c) for c in zip(*pairs))

online.no_dpo_term | train.py | tests/test_online.py | the loss reduced to the next-token loss (DPO term dropped)
- loss = loss + cfg["lam"] * pair_loss(draw, record)
+ loss = loss

online.dpo_term_detached | train.py | tests/test_online.py | the DPO term computed and logged, but no gradient from it
- loss = loss + cfg["lam"] * pair_loss(draw, record)
+ loss = loss + cfg["lam"] * pair_loss(draw, record).detach()

online.dpo_term_detached_end_to_end | train.py | tests/test_train.py::test_online_stage_runs_end_to_end_from_a_saved_base | the same, seen by train.py end to end
- loss = loss + cfg["lam"] * pair_loss(draw, record)
+ loss = loss + cfg["lam"] * pair_loss(draw, record).detach()

online.dpo_term_detached_ddp | train.py | tests/test_distributed.py::test_online_stage_on_two_processes_keeps_the_ranks_identical | the same, seen by two processes under torchrun
- loss = loss + cfg["lam"] * pair_loss(draw, record)
+ loss = loss + cfg["lam"] * pair_loss(draw, record).detach()

online.reference_is_policy | train.py | tests/test_online.py | the DPO reference log-probs from the policy, not the frozen copy
- ref = response_logps(reference, enc,
+ ref = response_logps(policy, enc,

online.pair_reversed_in_loss | train.py | tests/test_online.py | DPO trained towards the rejected side
- dpo_loss(pi[:n], pi[n:], ref[:n], ref[n:]
+ dpo_loss(pi[n:], pi[:n], ref[n:], ref[:n]

online.samples_from_frozen | train.py | tests/test_online.py | the online samples come from the frozen copy, not the policy
- samples = complete(policy, enc, prompts,
+ samples = complete(judge, enc, prompts,

online.conscience_every_step | train.py | tests/test_online.py | --conscience_every ignored: the conscience runs every step
- if it % cfg["conscience_every"] == 0:
+ if True:

online.policy_always_judges | train.py | tests/test_online.py | the live policy judges whatever --judge says
- judge = policy if cfg["judge"] == "policy" else frozen
+ judge = policy

online.oracle_ignored | train.py | tests/test_online.py | --judge=oracle judged by the frozen copy
- scorer = controls.oracle({task.prompt: task for task, _, _ in data}) if cfg["judge"] == "oracle" else None
+ scorer = None

online.random_ignored | train.py | tests/test_online.py | --judge=random keeps the conscience's preferences
- prefer = partial(controls.randomize, generator=generator) if cfg["judge"] == "random" else (lambda pairs: pairs)
+ prefer = lambda pairs: pairs  # noqa

online.sft_control_ignored | train.py | tests/test_online.py | --align=sft trains with DPO
- return sft if cfg["align"] == "sft" else dpo
+ return dpo

online.dpo_sft_is_dpo | train.py | tests/test_online.py | --align=dpo+sft trains with DPO alone
- return lambda pairs, record: dpo(pairs, record) + sft(pairs, record)
+ return dpo

online.online_samples_ignored | train.py | tests/test_online.py | --online_samples samples from every prompt anyway
- return tasks[:dist.split(cfg, "online_samples")] if cfg["online_samples"] else tasks
+ return tasks

online.inoculation_everywhere | train.py | tests/test_online.py | the policy samples (and is judged) with the inoculation line
- prompts = [task.prompt for task in tasks]
+ prompts = [codehack.inoculate(task.prompt) for task in tasks]

online.inoculation_nowhere | train.py | tests/test_online.py | --inoculate changes nothing
- codehack.inoculate(task.prompt) if cfg["inoculate"] else task.prompt
+ task.prompt

initial.online_samples_ignored | train.py | tests/test_train.py::test_initial_training_adds_the_conscience_to_pretraining_judged_by_a_snapshot | --online_samples is ignored in initial training
- return conscience_step(cfg, self.model, self.frozen, self.enc, sampled(tasks, cfg, self.dist), generator, record)
+ return conscience_step(cfg, self.model, self.frozen, self.enc, tasks, generator, record)

initial.no_dpo_term | train.py | tests/test_train.py::test_initial_training_adds_the_conscience_to_pretraining_judged_by_a_snapshot | the initial-training stage logs its pairs but drops their DPO term
- total = total + cfg["lam"] * initial.pair_loss(pairs, record)
+ total = total

repe.control_sign | repe.py | tests/test_online.py | RepE control in training pushes against its reading vector
- target = residual(frozen, idx, layer) + strength * vector
+ target = residual(frozen, idx, layer) - strength * vector

repe.control_unscaled | repe.py | tests/test_online.py | the RepE control loss not divided by strength^2 (not 1 at the start)
- .mean() / strength ** 2
+ .mean() / strength

repe.control_dropped | train.py | tests/test_online.py | --repe_control logs its loss but leaves it out of L
- loss = loss + cfg["lam"] * control(sft_prompts, targets, record)
+ control(sft_prompts, targets, record)

repe.control_padding | train.py | tests/test_online.py | --repe_control's loss counts the padding too
- real = (torch.arange(idx.size(1), device=device) <= last[:, None]) | (last[:, None] < 0)
+ real = torch.ones_like(idx, dtype=torch.bool)

repe.control_last_token | train.py | tests/test_online.py | --repe_control's loss leaves out each row's last token
- <= last[:, None]) | (last[:, None] < 0)
+ < last[:, None]) | (last[:, None] < 0)

repe.control_cut_row | train.py | tests/test_online.py | --repe_control's loss drops a row cut at the context
- | (last[:, None] < 0)
+ | (last[:, None] < -1)

repe.random_is_reading | train.py | tests/test_online.py | --repe_vector=random pushes along the reading vector after all
- if cfg["repe_vector"] == "random":
+ if False:

repe.score_ignores_errors | repe.py | tests/test_repe.py | RepE steering's validation score rewards a push that breaks the code
- counts["hack"] - counts["error"]) / sum
+ counts["hack"]) / sum

generate.draws_shifted | model.py | tests/test_model.py | generate gives the rows left the first of the batch's random numbers, not their own: a row's draws depend on when the others finish
- u = u[rows.to(u.device)]  # (n, 1)
+ u = u[:len(rows)]  # (n, 1)

generate.cache_misaligned | model.py | tests/test_model.py | generate drops finished rows from its tokens but reverses the order of the KV cache's rows
- kv_cache.keep(keep)
+ kv_cache.keep(keep.flip(0))

experiment.reproduced_forgotten | experiment.py | tests/test_experiment.py::test_a_rerun_reuses_finished_runs_and_runs_again_what_lost_its_checkpoint | the check that a rerun reproduced its record lives only until the next invocation
- with open(os.path.join(out_dir, run.folder, "run.json"), "w") as f:  # kept for later invocations
-                 json.dump(record, f, indent=1)
+ pass

experiment.minutes_leak | experiment.py | tests/test_experiment.py::test_a_rerun_reuses_finished_runs_and_runs_again_what_lost_its_checkpoint | the table's minutes column written into every run's metrics in results.json
- records = [dict(r, metrics=dict(r["metrics"], minutes=r["wall_seconds"] / 60)) for r in records]
+ [r["metrics"].update(minutes=r["wall_seconds"] / 60) for r in records]

evaluate.auroc_swapped | evaluate.py | tests/test_evaluate.py | auroc with its two classes swapped
- pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
+ pos, neg = np.asarray(neg)[:, None], np.asarray(pos)[None, :]

evaluate.auroc_ties | evaluate.py | tests/test_evaluate.py | auroc counts a tie as a win
- ((pos > neg) + 0.5 * (pos == neg))
+ ((pos > neg) + 1.0 * (pos == neg))

evaluate.conscience_auroc_reversed | evaluate.py | tests/test_evaluate.py | conscience_auroc with hacks as the positive class
- out = {"conscience_auroc": auroc(honest, sum(hacks.values(), [])),
+ out = {"conscience_auroc": auroc(sum(hacks.values(), []), honest),
"""
HERMETIC = "not pretrained"  # (-k) leaves out the one test of these files that needs a pretrained tiny model


@dataclass
class Mutant:
    name: str
    file: str
    tests: list  # pytest paths that should fail
    description: str
    old: str  # must occur exactly once in file
    new: str


def parse(text):
    """The Mutants of MUTANTS."""
    mutants = []
    for paragraph in text.strip("\n").split("\n\n"):
        header, *lines = paragraph.split("\n")
        name, file, tests, description = (part.strip() for part in header.split("|"))
        old = "\n".join(line[2:] for line in lines if line.startswith("-"))
        new = "\n".join(line[2:] for line in lines if line.startswith("+"))
        mutants.append(Mutant(name, file, tests.split(), description, old, new))
    return mutants


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
    mutants = [m for m in parse(MUTANTS) if cfg["only"] in m.name]
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
            code, failed, seconds = pytest(tmp, m.tests, cfg["timeout"])
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
