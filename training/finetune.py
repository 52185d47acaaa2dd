"""
Fine-tune our ALBERT on a GLUE task and report the dev metric.

    python3 training/finetune.py --task SST-2 --init training/runs/a          # from a pretraining checkpoint
    python3 training/finetune.py --task SST-2 --init '' --tokenizer .data/prep # from random weights

method 'full' is the full-depth baseline (Hugging Face's AlbertForSequenceClassification: pooler on
[CLS] after the last layer, dropout, linear classifier). The early-exit methods of
docs/early-exit-methods.md (palbert, pondernet, pabee) are the next step of issue 3; asking for
one stops at once with a message.

Inputs are checked before any GPU work: unknown task or method, missing TSV files or columns,
a checkpoint folder without a pretraining checkpoint or tokenizer.
"""

import argparse
import json
import math
import os
import sys
import time

# ----------------------------------------------------------------------------------------------
# config
task = 'SST-2'
glue = '../shared/data/glue'
init = ''  # pretraining checkpoint folder ('' = random weights)
tokenizer = ''  # folder with tokenizer.json ('' = the --init folder)
out_dir = ''  # where results.json and dev predictions go ('' = do not write)
method = 'full'
num_layers = 0  # 0 = the checkpoint's depth
epochs = 3
lr = 1e-4
batch_size = 32
warmup_frac = 0.06
weight_decay = 0.01
max_len = 128
classifier_dropout = 0.1
seed = 42
device = 'cuda'
# ----------------------------------------------------------------------------------------------
CONFIG = {k: v for k, v in dict(globals()).items() if not k.startswith('_') and isinstance(v, (int, float, str))}

METHODS = ['full']
PLANNED = ['palbert', 'pondernet', 'pabee']

# Each task's TSV layout: header (None = no header row), column count, text columns, label column,
# label parsing, metric. Label column -1 means the last one.
TASKS = {
    'SST-2': dict(header=['sentence', 'label'], ncols=2, text=[0], label=1, labels=['0', '1'], metric='acc'),
    'CoLA': dict(header=None, ncols=4, text=[3], label=1, labels=['0', '1'], metric='mcc'),
    'MRPC': dict(header=['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'], ncols=5, text=[3, 4], label=0,
                 labels=['0', '1'], metric='acc_f1'),
    'RTE': dict(header=['index', 'sentence1', 'sentence2', 'label'], ncols=4, text=[1, 2], label=3,
                labels=['entailment', 'not_entailment'], metric='acc'),
    'STS-B': dict(header=['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2', 'sentence1',
                          'sentence2', 'score'], ncols=10, text=[7, 8], label=9, labels=None, metric='pearson_spearman'),
}


def die(msg):
    print(f'finetune: error: {msg}', file=sys.stderr)
    sys.exit(2)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in CONFIG.items():
        p.add_argument('--' + k, type=type(v), default=v)
    return p.parse_args()


def read_tsv(path, spec):
    """[(texts tuple, label)] with the layout checked; label is a class index or a float (STS-B)."""
    if not os.path.isfile(path):
        die(f'{path} does not exist (give --glue the folder that holds {task}/)')
    with open(path, encoding='utf-8-sig') as f:
        rows = f.read().split('\n')
    if rows and rows[-1] == '':
        rows.pop()
    if spec['header'] is not None:
        head = rows[0].split('\t')
        if head != spec['header']:
            die(f'{path}: header {head} is not the expected {spec["header"]}')
        rows = rows[1:]
    out = []
    for i, row in enumerate(rows):
        cells = row.split('\t')
        if len(cells) != spec['ncols']:
            die(f'{path}: row {i + 1} has {len(cells)} tab-separated fields, expected {spec["ncols"]}')
        y = cells[spec['label']]
        if spec['labels'] is None:
            try:
                y = float(y)
            except ValueError:
                die(f'{path}: row {i + 1}: score {y!r} is not a number')
        else:
            if y not in spec['labels']:
                die(f'{path}: row {i + 1}: label {y!r} is not one of {spec["labels"]}')
            y = spec['labels'].index(y)
        out.append((tuple(cells[c] for c in spec['text']), y))
    return out


def metrics(kind, pred, gold):
    import numpy as np

    pred, gold = np.asarray(pred), np.asarray(gold)
    if kind == 'pearson_spearman':
        def pearson(a, b):
            a, b = a - a.mean(), b - b.mean()
            return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))

        def ranks(a):
            order = a.argsort(kind='stable')
            r = np.empty(len(a))
            r[order] = np.arange(len(a))
            for v in np.unique(a):  # average ranks of ties
                m = a == v
                r[m] = r[m].mean()
            return r

        p, s = pearson(pred, gold), pearson(ranks(pred), ranks(gold))
        return dict(pearson=p, spearman=s, score=(p + s) / 2)
    acc = float((pred == gold).mean())
    if kind == 'acc':
        return dict(acc=acc, score=acc)
    tp = float(((pred == 1) & (gold == 1)).sum())
    fp = float(((pred == 1) & (gold == 0)).sum())
    fn = float(((pred == 0) & (gold == 1)).sum())
    tn = float(((pred == 0) & (gold == 0)).sum())
    if kind == 'acc_f1':
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        return dict(acc=acc, f1=f1, score=(acc + f1) / 2)
    if kind == 'mcc':
        den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = (tp * tn - fp * fn) / den if den else 0.0
        return dict(mcc=mcc, acc=acc, score=mcc)
    raise ValueError(kind)


def main():
    globals().update(vars(parse_args()))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    # -- checks before any GPU work
    if task not in TASKS:
        die(f'unknown task {task!r}; known: {", ".join(TASKS)}')
    if method not in METHODS:
        if method in PLANNED:
            die(f'method {method!r} is not implemented yet (issue 3); available: {", ".join(METHODS)}')
        die(f'unknown method {method!r}; available: {", ".join(METHODS)}')
    spec = TASKS[task]
    train_rows = read_tsv(os.path.join(glue, task, 'train.tsv'), spec)
    dev_rows = read_tsv(os.path.join(glue, task, 'dev.tsv'), spec)
    tok_dir = tokenizer or init
    if not tok_dir or not os.path.isfile(os.path.join(tok_dir, 'tokenizer.json')):
        die(f'no tokenizer.json in {tok_dir!r}: give --tokenizer (prepare_data.py --out folder) or a checkpoint --init')
    rmeta = None
    if init:
        from model import load_checkpoint_meta

        try:
            rmeta = load_checkpoint_meta(init)
        except FileNotFoundError as e:
            die(f'--init: {e}')
        if rmeta.get('kind') != 'pretrain':
            die(f'--init {init!r} is a {rmeta.get("kind")!r} checkpoint; expected a pretraining one')

    import numpy as np
    import torch
    import torch.nn.functional as F
    from tokenizers import Tokenizer

    from model import AlbertConfig, AlbertForSequenceClassification, load_checkpoint_tensors

    if device == 'cuda' and not torch.cuda.is_available():
        die('no CUDA device here (pass --device cpu for a tiny smoke test)')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok = Tokenizer.from_file(os.path.join(tok_dir, 'tokenizer.json'))
    tok.enable_truncation(max_len)

    def encode(rows):
        encs = tok.encode_batch([r[0] if len(r) == 1 else r for r, _ in rows])
        return [(e.ids, e.type_ids) for e in encs], [y for _, y in rows]

    t0 = time.time()
    train_x, train_y = encode(train_rows)
    dev_x, dev_y = encode(dev_rows)
    print(f'{task}: {len(train_x):,} train / {len(dev_x):,} dev examples, tokenized in {time.time() - t0:.1f}s')

    if rmeta:
        cfg = AlbertConfig.from_dict(rmeta['config'])
    else:
        cfg = AlbertConfig(vocab_size=tok.get_vocab_size())
    cfg.classifier_dropout_prob = classifier_dropout
    n_out = 1 if spec['labels'] is None else len(spec['labels'])
    model = AlbertForSequenceClassification(cfg, n_out)
    if rmeta:
        tensors = load_checkpoint_tensors(init, rmeta)
        enc = {k[len('model.albert.'):]: v.float() for k, v in tensors.items() if k.startswith('model.albert.')}
        missing, unexpected = model.albert.load_state_dict(enc, strict=False)
        assert not unexpected and set(missing) <= {'pooler.weight', 'pooler.bias'}, (missing, unexpected)
        print(f'loaded encoder from {init} (pretraining step {rmeta["step"]:,}); pooler and classifier are new')
    model.to(device)
    depth = num_layers or cfg.num_hidden_layers
    amp = torch.autocast('cuda', dtype=torch.bfloat16) if device == 'cuda' else torch.autocast('cpu', enabled=False)

    def batches(x, y, bs, shuffle):
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        for i in range(0, len(x), bs):
            idx = order[i:i + bs]
            T = max(len(x[j][0]) for j in idx)
            ids = torch.zeros(len(idx), T, dtype=torch.long)
            tt = torch.zeros(len(idx), T, dtype=torch.long)
            am = torch.zeros(len(idx), T, dtype=torch.long)
            for r, j in enumerate(idx):
                n = len(x[j][0])
                ids[r, :n] = torch.tensor(x[j][0])
                tt[r, :n] = torch.tensor(x[j][1])
                am[r, :n] = 1
            yy = torch.tensor([y[j] for j in idx], dtype=torch.float32 if n_out == 1 else torch.long)
            yield ids.to(device), tt.to(device), am.to(device), yy.to(device)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-6)
    total = epochs * math.ceil(len(train_x) / batch_size)
    warm = max(1, int(warmup_frac * total))

    @torch.no_grad()
    def evaluate():
        model.eval()
        preds = []
        for ids, tt, am, _ in batches(dev_x, dev_y, 256, False):
            with amp:
                out = model(ids, tt, am, num_layers=depth).float()
            preds.extend(out[:, 0].tolist() if n_out == 1 else out.argmax(-1).tolist())
        model.train()
        return preds, metrics(spec['metric'], preds, dev_y)

    step, history = 0, []
    t0 = time.time()
    for ep in range(epochs):
        for ids, tt, am, yy in batches(train_x, train_y, batch_size, True):
            cur = lr * min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm)))
            for g in opt.param_groups:
                g['lr'] = cur
            with amp:
                out = model(ids, tt, am, num_layers=depth).float()
            loss = F.mse_loss(out[:, 0], yy) if n_out == 1 else F.cross_entropy(out, yy)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
        preds, m = evaluate()
        history.append(dict(epoch=ep + 1, step=step, seconds=round(time.time() - t0, 1), **m))
        print(f'{task} epoch {ep + 1}: dev ' + ' '.join(f'{k} {v:.4f}' for k, v in m.items())
              + f' ({time.time() - t0:.0f}s, last train loss {loss.item():.4f})', flush=True)
    result = dict(task=task, method=method, init=init or None, pretrain_step=rmeta['step'] if rmeta else 0,
                  depth=depth, args={k: globals()[k] for k in CONFIG}, history=history, final=history[-1])
    print('RESULT ' + json.dumps(dict(task=task, init=init or None, pretrain_step=result['pretrain_step'],
                                      final=history[-1])))
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, 'results.json'), 'w') as f:
            json.dump(result, f, indent=2)
        with open(os.path.join(out_dir, 'dev_predictions.tsv'), 'w') as f:
            f.write('index\tprediction\tlabel\n')
            f.writelines(f'{i}\t{p}\t{g}\n' for i, (p, g) in enumerate(zip(preds, dev_y)))


if __name__ == '__main__':
    main()
