"""GPT-2 small's shape (12 layers, 12 heads, width 768, context 1,024; 87M parameters with
this vocabulary) for a CUDA GPU, with GPT-2's learning rate (not tuned here).
    python train.py config/gpt2_small.py
    torchrun --standalone --nproc_per_node=4 train.py config/gpt2_small.py
"""
device = "cuda"
compile = True
n_layer = 12
n_head = 12
n_embd = 768
block_size = 1024
batch_size = 16
grad_accum = 4
learning_rate = 6e-4
min_lr = 6e-5
