"""
Masked-LM pretraining of our ALBERT from scratch, on the ids that prepare_data.py wrote.

    python3 training/pretrain.py --out_dir training/runs/a --max_minutes 8
    python3 training/pretrain.py --resume training/artifacts/pretrain --out_dir training/runs/b
    torchrun --standalone --nproc_per_node=4 training/pretrain.py ...   # data parallel

Every key of the config below can be overridden as --key value. The run stops after max_steps or
max_minutes (whichever first) and writes a resumable checkpoint into out_dir: meta.json, bf16
shards < 16 MiB (weights and AdamW moments) and log.csv (the loss curve, appended across resumes).
Inputs are checked before any GPU work: missing data, a checkpoint of another architecture or
tokenizer, or a depth schedule past the model's depth stop the run at once.
"""

import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext

# ----------------------------------------------------------------------------------------------
# config
data_dir = '.data/prep'  # prepare_data.py's --out
out_dir = 'training/runs/pretrain'
resume = ''  # checkpoint folder to continue from ('' = from scratch)
seed = 1337
# model (must match the checkpoint when resuming)
embedding_size = 128
hidden_size = 512
num_hidden_layers = 12
num_attention_heads = 8
intermediate_size = 2048
max_position_embeddings = 128
pos_init = 'sinusoidal'  # normal | sinusoidal (init only; the table is learned either way)
# data and masking
seq_len = 128  # tokens per sample, [CLS] included
batch_size = 256  # per process
mask_prob = 0.15
wwm = 1  # whole-word masking: a word's ## pieces are masked together
replace_mask = 0.8  # of the chosen tokens: [MASK] ...
replace_random = 0.1  # ... a random token; the rest are left unchanged
# depth curriculum: "step:depth,step:depth" (global steps); the shared layer is applied `depth` times
depth_schedule = '0:12'
# optimizer: AdamW, linear warm-up, constant, then a linear decay over the last decay_minutes of
# this run's max_minutes (or decay_steps of max_steps), to lr * min_lr_frac
lr = 1e-3
warmup_steps = 1000
rewarm_steps = 0  # on resume: warm up again over this many steps (e.g. when the AdamW moments were dropped)
min_lr_frac = 0.1
decay_minutes = 0.0
decay_steps = 0
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.98
grad_clip = 1.0
# budget and logging
max_steps = 1_000_000
max_minutes = 8.0
log_interval = 50
eval_interval = 500
eval_batches = 20
ckpt_minutes = 3.0  # also save every this many minutes (a killed run keeps its progress)
compile = 1  # torch.compile the shared layer (falls back to eager if compiling fails)
device = 'cuda'
# ----------------------------------------------------------------------------------------------
CONFIG = {k: v for k, v in dict(globals()).items() if not k.startswith('_') and isinstance(v, (int, float, str))}
MODEL_KEYS = ['embedding_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size',
              'max_position_embeddings']


def die(msg):
    print(f'pretrain: error: {msg}', file=sys.stderr)
    sys.exit(2)


# Settings a resumed run takes from the checkpoint's last run unless given on the command line.
INHERITED = MODEL_KEYS + ['pos_init', 'seq_len', 'batch_size', 'mask_prob', 'wwm', 'replace_mask', 'replace_random',
                          'depth_schedule', 'lr', 'warmup_steps', 'min_lr_frac', 'weight_decay', 'beta1', 'beta2',
                          'grad_clip', 'seed']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in CONFIG.items():
        p.add_argument('--' + k, type=type(v), default=v)
    args = p.parse_args(argv)
    meta_path = os.path.join(args.resume, 'meta.json') if args.resume else ''
    if meta_path and os.path.isfile(meta_path):
        with open(meta_path) as f:
            last = json.load(f).get('history', [{}])[-1].get('args', {})
        p.set_defaults(**{k: last[k] for k in INHERITED if k in last})
        args = p.parse_args(argv)
    return args


def parse_depth_schedule(s, max_depth):
    try:
        sched = sorted((int(a), int(b)) for a, b in (item.split(':') for item in s.split(',')))
    except ValueError:
        die(f'--depth_schedule {s!r} is not "step:depth,step:depth,..."')
    if sched[0][0] != 0:
        die(f'--depth_schedule {s!r} must start at step 0')
    if any(not 1 <= d <= max_depth for _, d in sched):
        die(f'--depth_schedule {s!r}: depths must be within 1..{max_depth}')
    return sched


def depth_at(sched, step):
    return [d for s, d in sched if s <= step][-1]


def check_inputs():
    """Everything that can be wrong before the GPU is touched. Returns (data meta, resume meta)."""
    for name in ('meta.json', 'train.bin', 'val.bin', 'tokenizer.json'):
        if not os.path.isfile(os.path.join(data_dir, name)):
            die(f'{data_dir}/{name} is missing: run training/prepare_data.py --out {data_dir} first')
    with open(os.path.join(data_dir, 'meta.json')) as f:
        dmeta = json.load(f)
    if seq_len > max_position_embeddings:
        die(f'--seq_len {seq_len} exceeds max_position_embeddings {max_position_embeddings}')
    if hidden_size % num_attention_heads:
        die(f'hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}')
    if not 0 < mask_prob < 1 or replace_mask + replace_random > 1:
        die('mask_prob must be in (0,1) and replace_mask + replace_random at most 1')
    parse_depth_schedule(depth_schedule, num_hidden_layers)
    rmeta = None
    if resume:
        from model import AlbertConfig, check_model_compatible, load_checkpoint_meta

        try:
            rmeta = load_checkpoint_meta(resume)
        except FileNotFoundError as e:
            die(f'--resume: {e}')
        if rmeta.get('kind') != 'pretrain':
            die(f'--resume {resume!r} is a {rmeta.get("kind")!r} checkpoint, not a pretraining one')
        try:
            check_model_compatible(rmeta['config'], model_config(dmeta))
        except ValueError as e:
            die(f'--resume {resume!r}: {e}; pass the checkpoint\'s sizes (see its meta.json) or start from scratch')
        if rmeta['tokenizer_sha256'] != dmeta['tokenizer_sha256']:
            die(f'--resume {resume!r} was trained with another tokenizer than {data_dir}/tokenizer.json: '
                f'rebuild the data with prepare_data.py --tokenizer <the checkpoint\'s tokenizer folder>')
    return dmeta, rmeta


def model_config(dmeta):
    from model import AlbertConfig

    return AlbertConfig(vocab_size=dmeta['vocab_size'], **{k: globals()[k] for k in MODEL_KEYS})


def main():
    globals().update(vars(parse_args()))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    dmeta, rmeta = check_inputs()

    import numpy as np
    import torch
    import torch.nn.functional as F
    from model import AlbertForMaskedLM, init_weights, load_checkpoint_tensors, save_checkpoint

    # -- processes and device (torchrun sets RANK/WORLD_SIZE for data parallel runs)
    ddp = int(os.environ.get('WORLD_SIZE', '1')) > 1
    if ddp:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        dist.init_process_group(backend='nccl' if device == 'cuda' else 'gloo')
        rank, world = dist.get_rank(), dist.get_world_size()
        dev = f'cuda:{int(os.environ["LOCAL_RANK"])}' if device == 'cuda' else 'cpu'
        if device == 'cuda':
            torch.cuda.set_device(dev)
    else:
        rank, world, dev = 0, 1, device
    master = rank == 0
    if device == 'cuda' and not torch.cuda.is_available():
        die('no CUDA device here (pass --device cpu for a tiny smoke test)')
    torch.manual_seed(seed + rank + (rmeta['step'] if rmeta else 0))
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    amp = torch.autocast('cuda', dtype=torch.bfloat16) if device == 'cuda' else nullcontext()

    # -- data: the whole id stream lives on the device; samples are random windows (nanoGPT style)
    def load_ids(name):
        return torch.from_numpy(np.fromfile(os.path.join(data_dir, name), dtype=np.uint16).astype(np.int64)).to(dev)

    train_ids, val_ids = load_ids('train.bin'), load_ids('val.bin')
    V, CLS, SEP, PAD, MASK = dmeta['vocab_size'], dmeta['cls_id'], dmeta['sep_id'], dmeta['pad_id'], dmeta['mask_id']
    with open(os.path.join(data_dir, 'tokenizer.json'), encoding='utf-8') as f:
        vocab = json.load(f)['model']['vocab']
    is_cont = torch.zeros(V, dtype=torch.bool)
    for tok, i in vocab.items():
        is_cont[i] = tok.startswith('##')
    is_cont = is_cont.to(dev)
    offsets = torch.arange(seq_len - 1, device=dev)

    def get_batch(ids, B, gen=None):
        starts = torch.randint(0, len(ids) - seq_len, (B,), device=dev, generator=gen)
        x = torch.empty(B, seq_len, dtype=torch.long, device=dev)
        x[:, 0] = CLS
        x[:, 1:] = ids[starts[:, None] + offsets]
        special = (x == CLS) | (x == SEP) | (x == PAD)
        r = torch.rand(B, seq_len, device=dev, generator=gen)
        if wwm:
            word = torch.cumsum((~is_cont[x]).long(), dim=1) - 1  # word index of each token
            r = torch.gather(r, 1, word.clamp(min=0))  # one draw per word
        chosen = (r < mask_prob) & ~special
        u = torch.rand(B, seq_len, device=dev, generator=gen)
        inp = torch.where(chosen & (u < replace_mask), torch.full_like(x, MASK), x)
        rnd = chosen & (u >= replace_mask) & (u < replace_mask + replace_random)
        inp = torch.where(rnd, torch.randint(5, V, x.shape, device=dev, generator=gen), inp)
        return inp, chosen, x[chosen]

    # -- model and optimizer
    cfg = model_config(dmeta)
    model = AlbertForMaskedLM(cfg)
    init_weights(model, cfg, pos_init=pos_init)
    model.to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=lr, betas=(beta1, beta2), eps=1e-6, **({'fused': True} if device == 'cuda' else {}))
    step, tokens_seen, time_before, history = 0, 0, 0.0, []
    if rmeta:
        tensors = load_checkpoint_tensors(resume, rmeta)
        model.load_state_dict({k[len('model.'):]: v.float() for k, v in tensors.items() if k.startswith('model.')})
        for n, p in model.named_parameters():
            if f'opt.{n}.exp_avg' in tensors:
                opt.state[p] = {
                    'step': torch.tensor(float(rmeta['step']), device=p.device if device == 'cuda' else 'cpu'),
                    'exp_avg': tensors[f'opt.{n}.exp_avg'].float().to(p.device),
                    'exp_avg_sq': tensors[f'opt.{n}.exp_avg_sq'].float().to(p.device),
                }
        if not opt.state and master:
            print('the checkpoint has no optimizer moments: AdamW starts fresh (consider --rewarm_steps)')
        step, tokens_seen, time_before = rmeta['step'], rmeta['tokens'], rmeta['train_seconds']
        history = rmeta.get('history', [])
        if master:
            print(f'resumed {resume} at step {step:,}, {tokens_seen / 1e6:.1f}M tokens')
    n_params = sum(p.numel() for p in model.parameters())
    if master:
        print(f'model: {n_params / 1e6:.2f}M parameters, {cfg}')
    raw = model
    if compile and device == 'cuda':
        raw.albert.__dict__['layer_fn'] = torch.compile(raw.albert.layer)
    if ddp:
        model = DDP(model, device_ids=[dev] if device == 'cuda' else None)

    sched = parse_depth_schedule(depth_schedule, num_hidden_layers)
    run_first_step = step
    max_seconds = max_minutes * 60

    def lr_at(it, elapsed):
        mult = min(1.0, (it + 1) / warmup_steps)
        if rewarm_steps > 0:
            mult = min(mult, (it - run_first_step + 1) / rewarm_steps)
        frac = 0.0
        if decay_minutes > 0:
            frac = max(frac, (elapsed - (max_seconds - decay_minutes * 60)) / (decay_minutes * 60))
        if decay_steps > 0:
            frac = max(frac, (it - (run_first_step + max_steps - decay_steps)) / decay_steps)
        frac = min(max(frac, 0.0), 1.0)
        return lr * mult * (1.0 - (1.0 - min_lr_frac) * frac)

    def train_step(depth):
        inp, chosen, labels = get_batch(train_ids, batch_size)
        with amp:
            logits = model(inp, chosen, num_layers=depth)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        acc = (logits.argmax(-1) == labels).float().mean()
        return loss.detach(), acc.detach()

    # Compile (or fail) now, on a throwaway step, so that a compiler problem costs seconds, not the run.
    if compile and device == 'cuda':
        t = time.time()
        try:
            train_step(depth_at(sched, step))
        except Exception as e:  # noqa: BLE001 - any compiler failure: fall back to eager
            print(f'torch.compile failed ({type(e).__name__}: {str(e)[:300]}); running eager')
            raw.albert.__dict__['layer_fn'] = raw.albert.layer
        opt.zero_grad(set_to_none=True)
        if master:
            print(f'compile warm-up {time.time() - t:.1f}s')

    @torch.no_grad()
    def evaluate():
        model.eval()
        gen = torch.Generator(device=dev).manual_seed(1234)
        tot, acc, n = 0.0, 0.0, 0
        for _ in range(eval_batches):
            inp, chosen, labels = get_batch(val_ids, batch_size, gen)
            with amp:
                logits = raw(inp, chosen)
            tot += F.cross_entropy(logits.float(), labels, reduction='sum').item()
            acc += (logits.argmax(-1) == labels).sum().item()
            n += labels.numel()
        model.train()
        return tot / n, acc / n

    log_path = os.path.join(out_dir, 'log.csv')
    cols = ['step', 'tokens', 'train_seconds', 'lr', 'depth', 'seq_len', 'batch', 'loss', 'mlm_acc', 'val_loss', 'val_acc']
    if master:
        os.makedirs(out_dir, exist_ok=True)
        if rmeta and os.path.abspath(resume) != os.path.abspath(out_dir) and os.path.isfile(os.path.join(resume, 'log.csv')):
            shutil.copyfile(os.path.join(resume, 'log.csv'), log_path)
        if not os.path.isfile(log_path):
            with open(log_path, 'w', newline='') as f:
                csv.writer(f).writerow(cols)

    def log_row(row):
        with open(log_path, 'a', newline='') as f:
            csv.writer(f).writerow([row.get(c, '') for c in cols])

    run_args = {k: globals()[k] for k in CONFIG}

    def save(elapsed):
        tensors = {f'model.{k}': v for k, v in raw.state_dict().items()}
        for n, p in raw.named_parameters():
            st = opt.state.get(p)
            if st:
                tensors[f'opt.{n}.exp_avg'] = st['exp_avg']
                tensors[f'opt.{n}.exp_avg_sq'] = st['exp_avg_sq']
        meta = dict(kind='pretrain', config=cfg.hf_dict(), step=step, tokens=tokens_seen,
                    train_seconds=time_before + elapsed, tokenizer_sha256=dmeta['tokenizer_sha256'],
                    history=history + [dict(first_step=run_first_step, last_step=step, args=run_args,
                                            processes=world)])
        save_checkpoint(out_dir, tensors, meta)
        for name in ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'):
            src = os.path.join(data_dir, name)
            if os.path.isfile(src):
                shutil.copyfile(src, os.path.join(out_dir, name))

    # -- training loop
    if master:
        print(f'training: {world} process(es) x batch {batch_size} x {seq_len} tokens, lr {lr}, '
              f'depth schedule {sched}, up to {max_minutes} min / {max_steps} steps')
    t0 = time.time()
    last_ckpt = t0
    loss_acc = torch.zeros((), device=dev)
    acc_acc = torch.zeros((), device=dev)
    n_acc = 0
    elapsed = 0.0
    while True:
        depth = depth_at(sched, step)
        cur_lr = lr_at(step, elapsed)
        for g in opt.param_groups:
            g['lr'] = cur_lr
        loss, acc = train_step(depth)
        torch.nn.utils.clip_grad_norm_(raw.parameters(), grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += batch_size * seq_len * world
        loss_acc += loss
        acc_acc += acc
        n_acc += 1
        if step % log_interval == 0 or step - run_first_step >= max_steps:
            # One sync per log interval: all processes agree on the clock (and so on stopping).
            clock = torch.tensor([time.time() - t0], device=dev)
            stats = torch.stack([loss_acc, acc_acc]) / n_acc
            if ddp:
                dist.broadcast(clock, 0)
                dist.all_reduce(stats)
                stats /= world
            elapsed = clock.item()
            row = dict(step=step, tokens=tokens_seen, train_seconds=round(time_before + elapsed, 1),
                       lr=f'{cur_lr:.3g}', depth=depth, seq_len=seq_len, batch=batch_size * world,
                       loss=f'{stats[0].item():.4f}', mlm_acc=f'{stats[1].item():.4f}')
            loss_acc.zero_()
            acc_acc.zero_()
            n_acc = 0
            done = elapsed >= max_seconds or step - run_first_step >= max_steps
            if master and (step % eval_interval == 0 or done):
                vl, va = evaluate()
                row.update(val_loss=f'{vl:.4f}', val_acc=f'{va:.4f}')
            if master:
                log_row(row)
                print(' '.join(f'{k} {v}' for k, v in row.items()), flush=True)
                if done or time.time() - last_ckpt > ckpt_minutes * 60:
                    save(elapsed)
                    last_ckpt = time.time()
            if done:
                break
    if master:
        print(f'done: step {step:,}, {tokens_seen / 1e6:.1f}M tokens, {elapsed:.0f}s this run, '
              f'{(step - run_first_step) / max(elapsed, 1e-9):.1f} steps/s; checkpoint in {out_dir}')
    if ddp:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
