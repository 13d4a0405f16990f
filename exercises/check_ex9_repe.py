"""
Exercise 9: representation engineering (repe.py): a reading vector for "honest code vs hack"
and steering along it.
    python exercises/check_ex9_repe.py
On the tiny base: the vector is a unit vector that separates honest code from hacks on tasks
it was not read from; steering adds exactly strength * vector after the block at every
position, and leaves no trace once its `with` block is left, even through an exception.
"""

import os
import random
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exkit  # noqa: E402
import codehack as ch  # noqa: E402
import evaluate  # noqa: E402
import repe  # noqa: E402


@pytest.fixture(scope="module")
def base():
    model, enc = exkit.load_base()
    layer = model.config.n_layer // 2 - 1
    vector = repe.reading_vector(model, enc, ch.tasks("train", 64), layer)
    return model, enc, layer, vector


def test_a_unit_vector_in_the_residual_stream(base):
    model, _, _, vector = base
    assert vector.shape == (model.config.n_embd,)
    assert vector.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_it_points_from_hacks_to_honest_code_on_tasks_it_never_read(base):
    model, enc, layer, vector = base
    tasks = ch.tasks("heldout", 32)
    rng = random.Random(1)
    styles = ch.World().corpus_styles
    honest = [ch.task_doc(t, ch.honest_form(t, rng, heldout=True)) for t in tasks]
    hacks = [ch.task_doc(t, ch.hack(t, rng.choice(styles), rng, heldout=True)) for t in tasks]
    on_honest = (repe.last_hidden(model, enc, honest, layer) @ vector).tolist()
    on_hacks = (repe.last_hidden(model, enc, hacks, layer) @ vector).tolist()
    separation = evaluate.auroc(on_honest, on_hacks)
    print(f"AUROC of the projection, honest vs hacks on held-out tasks: {separation:.3f}")
    assert separation > 0.6, f"honest code should project higher than hacks (AUROC {separation:.3f})"


def block_outputs(model, layer, idx):
    seen = []
    handle = model.transformer.h[layer].register_forward_hook(lambda m, a, out: seen.append(out.detach().clone()))
    try:
        logits, _ = model(idx)
    finally:
        handle.remove()
    return seen[0], logits


def test_steering_adds_strength_times_vector_everywhere_and_only_inside_its_block(base):
    model, enc, layer, vector = base
    task = ch.tasks("heldout", 1)[0]
    idx = torch.tensor([enc.encode(task.prompt, allowed_special="all")])
    plain, plain_logits = block_outputs(model, layer, idx)
    with repe.steering(model, layer, vector, 3.0):
        steered, steered_logits = block_outputs(model, layer, idx)  # our hook runs after the steering one
    torch.testing.assert_close(steered - plain, (3.0 * vector).expand_as(plain), atol=1e-5, rtol=0)
    assert not torch.allclose(steered_logits, plain_logits), "the steered residual stream must change the output"
    with repe.steering(model, layer, vector, 0.0):
        torch.testing.assert_close(model(idx)[0], plain_logits)
    torch.testing.assert_close(model(idx)[0], plain_logits)  # left: no hook remains
    with pytest.raises(KeyError):
        with repe.steering(model, layer, vector, 5.0):
            raise KeyError("an error inside the block")
    torch.testing.assert_close(model(idx)[0], plain_logits)  # not even after an exception


if __name__ == "__main__":
    sys.exit(pytest.main([os.path.abspath(__file__), "-q", "-s", "-p", "no:cacheprovider"]))
