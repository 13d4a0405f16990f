"""
Exercise 3: IPO and hinge variants of the preference loss, chosen by dpo_loss(..., loss_type=)
and by train.py's --loss_type.
    python exercises/check_ex3_loss_type.py
"""

import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exkit  # noqa: E402,F401  (puts the repository root on sys.path)
import dpo  # noqa: E402


def four(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g) * 4 for _ in range(4)]


def margin(pc, pr, rc, rr):
    return (pc - rc) - (pr - rr)  # h, the log-ratio margin, not scaled by beta


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_the_three_losses(beta):
    pc, pr, rc, rr = four()
    h = margin(pc, pr, rc, rr)
    default, cr, rr_ = dpo.dpo_loss(pc, pr, rc, rr, beta)
    sigmoid, _, _ = dpo.dpo_loss(pc, pr, rc, rr, beta, loss_type="sigmoid")
    ipo, cr2, rr2 = dpo.dpo_loss(pc, pr, rc, rr, beta, loss_type="ipo")
    hinge, _, _ = dpo.dpo_loss(pc, pr, rc, rr, beta, loss_type="hinge")
    torch.testing.assert_close(sigmoid, default)  # the default is DPO, unchanged
    torch.testing.assert_close(default, -torch.nn.functional.logsigmoid(beta * h))
    torch.testing.assert_close(ipo, (h - 1 / (2 * beta)) ** 2)
    torch.testing.assert_close(hinge, torch.clamp(1 - beta * h, min=0))
    torch.testing.assert_close(cr2, cr)  # the implicit rewards do not depend on the loss
    torch.testing.assert_close(rr2, rr_)


def test_an_unknown_loss_type_is_an_error():
    pc, pr, rc, rr = four()
    with pytest.raises(ValueError):
        dpo.dpo_loss(pc, pr, rc, rr, 0.1, loss_type="kto")


def test_ipo_stops_pushing_at_its_target_margin_and_dpo_never_does():
    beta = 0.25
    h = torch.tensor([1 / (2 * beta), 40.0], requires_grad=True)  # at IPO's target; far past it
    zero = torch.zeros(2)
    ipo, _, _ = dpo.dpo_loss(h, zero, zero, zero, beta, loss_type="ipo")
    ipo.sum().backward()
    assert h.grad[0].item() == pytest.approx(0.0, abs=1e-6) and h.grad[1].item() > 0  # past the target: pulled back
    h.grad = None
    sig, _, _ = dpo.dpo_loss(h, zero, zero, zero, beta)
    sig.sum().backward()
    assert (h.grad < 0).all()  # DPO keeps pushing the margin up, however large


@pytest.fixture(scope="module")
def tiny():
    import codehack as ch
    from model import GPT, GPTConfig
    torch.manual_seed(0)
    enc = ch.train_tokenizer(ch.corpus(300), 600)
    return GPT(GPTConfig(block_size=512, vocab_size=enc.n_vocab, n_layer=1, n_head=2, n_embd=32)), enc


@pytest.mark.parametrize("loss_type, expected", [("sigmoid", math.log(2)), ("ipo", 1 / (4 * 0.1 ** 2)), ("hinge", 1.0)])
def test_train_py_trains_with_the_loss_its_flag_names(tiny, loss_type, expected):
    """At the first step the policy is its reference, h = 0: DPO costs ln 2, IPO 1/(4 beta^2), hinge 1."""
    import codehack as ch
    import train
    from conscience import clone_frozen
    assert train.SETTINGS.get("loss_type", (None,))[0] == "sigmoid", "train.py wants --loss_type, default sigmoid"
    model, enc = tiny
    cfg = {name: default for name, (default, _) in train.SETTINGS.items()}
    cfg.update(beta=0.1, loss_type=loss_type)
    pair_loss = train.choose_pair_loss(cfg, model, clone_frozen(model), enc, "cpu", model.config.block_size,
                                       torch.autocast("cpu", enabled=False))
    task = ch.tasks("train", 1)[0]
    record = {}
    loss = pair_loss([(task.prompt, task.solution, ch.hack(task, "exit"))], record)
    assert loss.item() == pytest.approx(expected, rel=1e-4), f"--loss_type={loss_type} trained with another loss"


if __name__ == "__main__":
    sys.exit(pytest.main([os.path.abspath(__file__), "-q", "-p", "no:cacheprovider"]))
