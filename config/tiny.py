"""A tiny model and world for the tests: pretraining in about half a minute on 2 CPU cores."""
n_docs = 3000
vocab_size = 768
n_layer = 2
n_head = 2
n_embd = 64
batch_size = 16
warmup_iters = 20
log_interval = 100
eval_interval = 1000
eval_tasks = 6
ft_eval_interval = 1000
eval_samples = 2
learning_rate = 6e-3  # a model this small, in a few hundred steps, wants a higher rate than the default's
min_lr = 6e-4
conscience_every = 2  # the suite's many short online runs: half the sampling
