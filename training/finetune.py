"""
Fine-tune our ALBERT on a GLUE task, with or without early-exit heads, and report dev metrics.

    python3 training/finetune.py --task SST-2 --init training/artifacts/pretrain              # full depth
    python3 training/finetune.py --task SST-2 --init training/artifacts/pretrain --method palbert
    python3 training/finetune.py --task RTE --init '' --tokenizer .data/prep                  # random weights
    python3 training/finetune.py --task SST-2 --init albert-base-v2 --method gates            # a Hugging Face ALBERT

Methods (docs: ../shared/docs/early-exit-methods.md; tensor names: docs/checkpoint-format.md):
  full       Hugging Face's AlbertForSequenceClassification: pooler on [CLS] after the last layer, classifier.
  palbert    shared pooler + shared classifier on every layer, Lambda MLP on [z_n ; z_{n-1}] (3 tanh blocks),
             loss = sum_n p_n CE_n + beta KL(p_G || p) with the released code's epsilon-truncation; Q-exit.
  pondernet  the same loss with a Linear(H -> 1) Lambda on z_n; Bernoulli-sampled exit.
  pabee      one classifier per layer, loss sum_i i CE_i / sum_i i; exit after `patience` agreeing layers.
  gates      JEI-DNN style: a PABEE model (heads and loss as above) trained on 90% of the training set, then,
             everything frozen, one gate g_l = sigmoid(a_l . f_l + b_l) per layer 1..L-1 on the detached
             features f_l = [max p, H(p), p1 - p2, H(p^2 / sum p^2)] of layer l's head softmax, fitted on the
             held-out 10% to the targets t_l = 1[l >= l*], l* = argmin_l CE_l + gamma l / L, with JEI-DNN's
             pos_weight; exit at the first layer with g_l > threshold (classification only).
Every layer is computed on the dev set and exits are simulated per example afterwards, which is what
batch-1 inference does. Each epoch records the method's default operating point, the per-layer metric
of the head(s) and the criterion's curve (q, patience); the best epoch by the default point is kept.

--init takes a pretrain.py checkpoint folder (meta.json + shards), a Hugging Face ALBERT folder as
save_pretrained writes it (config.json + model.safetensors or pytorch_model.bin, with tokenizer.json or a
spiece.model that transformers converts), or a Hub id such as albert-base-v2 (transformers' from_pretrained:
only where the Hub or a filled HF cache is reachable, so not on the GPU machine).

Inputs are checked before any GPU work: unknown task or method, missing TSV files or columns,
a checkpoint folder without a pretraining checkpoint or tokenizer, a Hugging Face checkpoint that is not
an ALBERT of model.py's shape (BERT, several layer groups, missing or mis-shaped tensors), gates on a
regression task.
"""

import argparse
import json
import hashlib
import math
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext

# ----------------------------------------------------------------------------------------------
# config
task = 'SST-2'
glue = '../shared/data/glue'
init = ''  # pretraining checkpoint folder, Hugging Face ALBERT folder or Hub id ('' = random weights)
tokenizer = ''  # folder with tokenizer.json ('' = the --init folder)
out_dir = ''  # results.json, dev_predictions.tsv and (save_model) the best epoch's model ('' = none)
method = 'full'  # full | palbert | pondernet | pabee | gates
num_layers = 0  # 0 = the checkpoint's depth
max_train = 0  # use only the first max_train training rows (0 = all), for smoke tests and demos
epochs = 3
early_stop = 0  # stop after this many epochs without a better dev score (0 = never; PALBERT's protocol: 25 / 5)
deadline = 0.0  # unix time: start no epoch that would end after it (0 = none); glue.sh's time budget
lr = 1e-4
lambda_lr = 0.0  # learning rate of the Lambda head (0 = lr)
schedule = 'linear'  # linear (warm-up, then linear decay to 0) | constant (PALBERT's released code)
batch_size = 32
warmup_frac = 0.06
weight_decay = 0.01
max_len = 128
classifier_dropout = 0.1
# exit heads
beta = 0.5  # weight of KL(p_G || p)
prior_lambda = 0.1  # lambda_p of the truncated geometric prior
epsilon = 0.05  # truncation: once CDF > 1 - epsilon, p_n := epsilon / N
lambda_hidden = 3  # PALBERT's Lambda MLP depth (tanh blocks)
q = 0.5  # Q-exit threshold of the default operating point (palbert, pondernet)
patience = 6  # PABEE's default patience
pabee_threshold = 0.1  # PABEE on regression: layers agree when |y_n - y_{n-1}| < this
ponder_samples = 5  # PonderNet: sampled inference runs averaged at each evaluation
# gates (JEI-DNN style)
gamma = 0.15  # cost weight of l* = argmin_l CE_l + gamma l / L (JEI-DNN's README example; its code default is 0.7)
gate_threshold = 0.5  # exit at the first layer with g_l > this (the config's default criterion)
gate_holdout = 0.1  # fraction of the training set held out to fit the gates (never the dev set)
holdout_seed = 0  # the held-out rows are fixed by this seed, not by --seed
pos_weight_cap = 5.0  # JEI-DNN: pos_weight_l = min(cap, (n - n_l) / max(n_l, 0.1))
gate_l2 = 1e-4  # tiny L2 on the 5 parameters per gate, so that the full-batch fit has a finite optimum
save_model = 1
eval_fp32 = 1  # evaluate without autocast, as the exported model will run
seed = 42
device = 'cuda'
# ----------------------------------------------------------------------------------------------
CONFIG = {k: v for k, v in dict(globals()).items() if not k.startswith('_') and isinstance(v, (int, float, str))}

METHODS = ['full', 'palbert', 'pondernet', 'pabee', 'gates']
PLANNED = []
GATE_GAMMAS = [0.02, 0.05, 0.1, 0.15, 0.3, 0.7]  # one gate set per gamma, for the curve
GATE_THRESHOLDS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]

# Each task's TSV layout: header (None = no header row), column count, text columns, label column,
# label values in the file (None: a float score), metric, and the label names written to config.json.
TASKS = {
    'SST-2': dict(header=['sentence', 'label'], ncols=2, text=[0], label=1, labels=['0', '1'], metric='acc',
                  names=['negative', 'positive']),
    'CoLA': dict(header=None, ncols=4, text=[3], label=1, labels=['0', '1'], metric='mcc',
                 names=['unacceptable', 'acceptable']),
    'MRPC': dict(header=['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'], ncols=5, text=[3, 4], label=0,
                 labels=['0', '1'], metric='acc_f1', names=['not_equivalent', 'equivalent']),
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


def prior(N, lam_p):
    """Truncated geometric prior over N layers: lam_p (1 - lam_p)^(n-1), the leftover mass on layer N."""
    p = [lam_p * (1 - lam_p) ** n for n in range(N - 1)]
    return p + [1.0 - sum(p)]


def exit_distribution_train(lam, eps):
    """PALBERT's training-time p_n (released code, docs section 1.4): unnormalised, epsilon-truncated.
    lam: [N, B] fp32. Returns (p [N, B], computed layers n*): once every example's CDF exceeds 1 - eps
    after layer n*, later layers get p = eps / N and no task loss (the code stops computing them)."""
    import torch

    N = lam.shape[0]
    c = torch.ones_like(lam[0])
    cdf = torch.zeros_like(lam[0])
    ps, computed = [], N
    for n in range(N):
        p_n = lam[n] * c
        c = c * (1 - lam[n])
        p_n = torch.where(cdf > 1 - eps, torch.full_like(p_n, eps / N), p_n)
        cdf = cdf + p_n
        ps.append(p_n)
        if bool((cdf > 1 - eps).all()):
            computed = n + 1
            break
    ps += [torch.full_like(lam[0], eps / N)] * (N - len(ps))
    return torch.stack(ps), computed


def q_exit(lam, q_):
    """Q-exit (inference, no truncation): first layer (1-based) with CDF_n > q, else N. lam: [N, D] numpy."""
    import numpy as np

    N = lam.shape[0]
    survive = np.cumprod(np.vstack([np.ones((1, lam.shape[1])), 1 - lam[:-1]]), axis=0)
    cdf = np.cumsum(lam * survive, axis=0)
    over = cdf > q_
    return np.where(over.any(0), over.argmax(0) + 1, N)


def sample_exit(lam, rng):
    """PonderNet: at layer n halt with probability lambda_n; layer N if never."""
    import numpy as np

    halt = rng.random(lam.shape) < lam
    return np.where(halt.any(0), halt.argmax(0) + 1, lam.shape[0])


def pabee_exit(outs, t, regression, thr):
    """PABEE with patience t: exit at the first layer i where the last t+1 layers agree (argmax equal, or
    |y_i - y_{i-1}| < thr for regression); t = 0: no early exit. outs: [N, D] predictions per layer."""
    import numpy as np

    N, D = outs.shape
    ex = np.full(D, N)
    if t == 0:
        return ex
    same = np.abs(np.diff(outs, axis=0)) < thr if regression else outs[1:] == outs[:-1]  # [N-1, D]
    for d in range(D):
        cnt = 0
        for i in range(1, N):
            cnt = cnt + 1 if same[i - 1, d] else 0
            if cnt == t:
                ex[d] = i + 1
                break
    return ex


def best_exit(ce, gamma_):
    """JEI-DNN's per-sample best exit l* = argmin_l [CE_l + gamma l / L], 1-based (ties: the earliest); the cost
    l / L is the fraction of the L layers run. ce: [L, n] per-layer cross-entropies."""
    import numpy as np

    L = ce.shape[0]
    return (ce + gamma_ * np.arange(1, L + 1)[:, None] / L).argmin(0) + 1


def gate_targets(lstar, L):
    """t_l = 1[l >= l*] for the gates of layers l = 1..L-1: at or after the best exit a gate should fire. [n, L-1]."""
    import numpy as np

    return (np.arange(1, L)[None, :] >= np.asarray(lstar)[:, None]).astype(np.float64)


def gate_pos_weight(lstar, L, cap=5.0):
    """JEI-DNN's pos_weight_l = min(cap, (n - n_l) / max(n_l, 0.1)) for l = 1..L-1, n_l = how many samples have
    l as best exit. Returns (pos_weight [L-1], n_l [L-1])."""
    import numpy as np

    lstar = np.asarray(lstar)
    n_l = np.array([(lstar == l).sum() for l in range(1, L)], dtype=np.float64)
    return np.minimum(cap, (len(lstar) - n_l) / np.maximum(n_l, 0.1)), n_l


def fit_gates(feats, targets, pos_weight, l2=1e-4, max_iter=500):
    """Fit the L-1 gates (Linear(4 -> 1) each) at once: full-batch L-BFGS on BCEWithLogits(pos_weight), the mean
    over samples x gates as in JEI-DNN, + l2 (|a|^2 + b^2). feats [n, L-1, 4], targets [n, L-1], pos_weight [L-1].
    float64 on the CPU, from zeros: deterministic. Returns (a [L-1, 4], b [L-1], the weighted BCE at the end)."""
    import torch

    f = torch.as_tensor(feats, dtype=torch.float64)
    t = torch.as_tensor(targets, dtype=torch.float64)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.as_tensor(pos_weight, dtype=torch.float64))
    a = torch.zeros(f.shape[1], 4, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(f.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = bce((f * a).sum(-1) + b, t) + l2 * (a.square().sum() + b.square().sum())
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return a.numpy().copy(), b.numpy().copy(), float(bce((f * a).sum(-1) + b, t))


def gate_exit(g, thr):
    """Exit at the first layer n (1-based) whose gate g_n > thr, else the last layer L (the browser engine's
    criterion 'gate': strict >). g: [L-1, D], the gates of layers 1..L-1."""
    import numpy as np

    over = g > thr
    return np.where(over.any(0), over.argmax(0) + 1, g.shape[0] + 1)


def hf_tokenizer_dir(source):
    """A folder with tokenizer.json for a Hugging Face checkpoint (folder or Hub id): its own, or what
    transformers' fast AutoTokenizer writes for it (e.g. from ALBERT's spiece.model) into a temporary folder."""
    if os.path.isfile(os.path.join(source, 'tokenizer.json')):
        return source
    try:
        from transformers import AutoTokenizer
    except ImportError:
        die(f'--init {source!r} has no tokenizer.json; converting its tokenizer (spiece.model, vocab.txt) needs '
            'transformers (and sentencepiece), as on the GPU machine. Or write tokenizer.json once where they are: '
            'AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR), or pass --tokenizer')
    try:
        t = AutoTokenizer.from_pretrained(source, use_fast=True)
    except Exception as e:  # noqa: BLE001 -- any failure here means: no usable tokenizer
        die(f'--init {source!r}: no tokenizer.json, and transformers could not load a tokenizer from it '
            f'({type(e).__name__}: {str(e)[:300]}); pass --tokenizer DIR with a tokenizer.json')
    if not t.is_fast:
        die(f'--init {source!r}: transformers gave a slow tokenizer ({type(t).__name__}); the engine needs '
            'tokenizer.json: install tokenizers/sentencepiece where you convert it, or pass --tokenizer')
    staging = tempfile.mkdtemp(prefix='finetune-tokenizer-')
    t.save_pretrained(staging)
    if not os.path.isfile(os.path.join(staging, 'tokenizer.json')):
        die(f'--init {source!r}: the converted tokenizer wrote no tokenizer.json ({sorted(os.listdir(staging))})')
    return staging


def load_init(path):
    """What --init names, checked before any GPU work. None for random weights; else a dict: kind 'ours'
    (meta of a pretraining checkpoint) or 'hf' (config AlbertConfig, encoder state dict checked against it,
    names it lacks), and the folder of its tokenizer."""
    from model import hf_albert_config, hf_albert_encoder_state, load_checkpoint_meta, read_hf_folder

    if not path:
        return None
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, 'meta.json')):
        try:
            rmeta = load_checkpoint_meta(path)
        except FileNotFoundError as e:
            die(f'--init: {e}')
        if rmeta.get('kind') != 'pretrain':
            die(f'--init {path!r} is a {rmeta.get("kind")!r} checkpoint; expected a pretraining one')
        return dict(kind='ours', meta=rmeta, tok_dir=path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, 'config.json')):
            die(f'--init {path!r} is a folder with neither meta.json (a pretrain.py checkpoint) nor config.json '
                '(a Hugging Face save_pretrained folder)')
        try:
            config, tensors = read_hf_folder(path)
        except (FileNotFoundError, ValueError) as e:
            die(f'--init: {e}')
        source = path
    elif re.fullmatch(r'[A-Za-z0-9][\w.-]*(/[\w.-]+)?', path):  # a Hub id such as albert-base-v2 or albert/albert-base-v2
        try:
            import transformers
        except ImportError:
            die(f'--init {path!r} is neither a folder nor loadable: a Hub id needs transformers (on the GPU machine)')
        hint = ('The Hub is reachable only with network access (not on the GPU machine) or from a filled HF cache: '
                'where it is, save AutoModel.from_pretrained(ID) and AutoTokenizer.from_pretrained(ID) with '
                'save_pretrained(DIR), carry DIR, and pass --init DIR')
        try:
            hf_cfg = transformers.AutoConfig.from_pretrained(path)
        except Exception as e:  # noqa: BLE001 -- offline, unknown id, no cache: all end here
            die(f'--init {path!r}: not a local folder, and transformers could not load it from the Hugging Face Hub '
                f'or the HF cache ({type(e).__name__}: {str(e)[:300]}). {hint}')
        config = hf_cfg.to_dict()
        try:
            hf_albert_config(config, source=path)  # refuse BERT etc. before fetching weights
            tensors = transformers.AutoModel.from_pretrained(path).state_dict()
        except ValueError as e:
            die(f'--init: {e}')
        except Exception as e:  # noqa: BLE001
            die(f'--init {path!r}: transformers could not load the weights ({type(e).__name__}: {str(e)[:300]}). {hint}')
        source = path
    else:
        die(f'--init {path!r}: no such folder, and not a Hugging Face Hub id')
    try:
        cfg = hf_albert_config(config, source=os.path.join(source, 'config.json') if os.path.isdir(source) else source)
        enc, lacks = hf_albert_encoder_state(tensors, cfg, source=source)
    except ValueError as e:
        die(f'--init: {e}')
    return dict(kind='hf', config=cfg, encoder=enc, lacks=lacks, tok_dir=hf_tokenizer_dir(source),
                n_tensors=len(tensors))


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
    if schedule not in ('linear', 'constant'):
        die(f'unknown schedule {schedule!r} (linear | constant)')
    spec = TASKS[task]
    if method == 'gates' and spec['labels'] is None:
        die(f'--method gates needs class probabilities (its gate features are those of a softmax), but {task} is a '
            'regression task: use pabee, palbert or pondernet there')
    if method == 'gates' and not 0 < gate_holdout < 1:
        die(f'--gate_holdout {gate_holdout} must be a fraction in (0, 1)')
    train_rows = read_tsv(os.path.join(glue, task, 'train.tsv'), spec)
    dev_rows = read_tsv(os.path.join(glue, task, 'dev.tsv'), spec)
    if max_train:
        train_rows = train_rows[:max_train]
    src = load_init(init)
    rmeta = src['meta'] if src and src['kind'] == 'ours' else None
    tok_dir = tokenizer or (src['tok_dir'] if src else '')
    if not tok_dir or not os.path.isfile(os.path.join(tok_dir, 'tokenizer.json')):
        die(f'no tokenizer.json in {tok_dir!r}: give --tokenizer (prepare_data.py --out folder) or a checkpoint --init')

    import numpy as np
    import torch
    import torch.nn.functional as F
    from tokenizers import Tokenizer

    from model import AlbertConfig, AlbertWithExits, gate_features, load_checkpoint_tensors, save_checkpoint

    if device == 'cuda' and not torch.cuda.is_available():
        die('no CUDA device here (pass --device cpu for a tiny smoke test)')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok = Tokenizer.from_file(os.path.join(tok_dir, 'tokenizer.json'))
    tok.no_padding()  # a Hugging Face tokenizer.json may ask for padding; batches() pads
    tok.enable_truncation(max_len)

    def encode(rows):
        encs = tok.encode_batch([r[0] if len(r) == 1 else r for r, _ in rows])
        return [(e.ids, e.type_ids) for e in encs], [y for _, y in rows]

    if rmeta:
        cfg = AlbertConfig.from_dict(rmeta['config'])
    elif src:
        cfg = src['config']
    else:
        cfg = AlbertConfig(vocab_size=tok.get_vocab_size())
    if tok.get_vocab_size() > cfg.vocab_size:
        die(f'the tokenizer in {tok_dir!r} has {tok.get_vocab_size():,} tokens but the model only {cfg.vocab_size:,} '
            'embeddings: use the tokenizer that came with the checkpoint')
    if max_len > cfg.max_position_embeddings:
        die(f'--max_len {max_len} exceeds the model\'s max_position_embeddings {cfg.max_position_embeddings}')
    cfg.classifier_dropout_prob = classifier_dropout
    if num_layers:
        cfg.num_hidden_layers = num_layers
    N = cfg.num_hidden_layers
    if method == 'gates' and N < 2:
        die('--method gates needs at least 2 layers')

    t0 = time.time()
    train_x, train_y = encode(train_rows)
    dev_x, dev_y = encode(dev_rows)
    held_x, held_y = [], []
    if method == 'gates':
        # A fixed held-out part of the TRAINING set fits the gates; the backbone and heads never train on it.
        order = np.random.default_rng(holdout_seed).permutation(len(train_x))
        k = max(1, round(gate_holdout * len(train_x)))
        held, keep = sorted(order[:k]), sorted(order[k:])
        held_x, held_y = [train_x[i] for i in held], [train_y[i] for i in held]
        train_x, train_y = [train_x[i] for i in keep], [train_y[i] for i in keep]
    print(f'{task}: {len(train_x):,} train / {len(dev_x):,} dev examples'
          + (f' / {len(held_x):,} held out for the gates' if held_x else '') + f', tokenized in {time.time() - t0:.1f}s')
    regression = spec['labels'] is None
    n_out = 1 if regression else len(spec['labels'])
    model = AlbertWithExits(cfg, n_out, method, lambda_hidden=lambda_hidden)
    if rmeta:
        tensors = load_checkpoint_tensors(init, rmeta)
        enc = {k[len('model.albert.'):]: v.float() for k, v in tensors.items() if k.startswith('model.albert.')}
        missing, unexpected = model.albert.load_state_dict(enc, strict=False)
        assert not unexpected and set(missing) <= {'pooler.weight', 'pooler.bias'}, (missing, unexpected)
        print(f'loaded encoder from {init} (pretraining step {rmeta["step"]:,}); pooler and heads are new')
    elif src:
        missing, unexpected = model.albert.load_state_dict(src['encoder'], strict=False)
        assert not unexpected and missing == src['lacks'], (missing, unexpected)
        print(f'loaded encoder from Hugging Face ALBERT {init} ({len(src["encoder"])} of its {src["n_tensors"]} '
              f'tensors); pooler {"new" if missing else "from the checkpoint"}, heads new')
    model.to(device)
    amp = torch.autocast('cuda', dtype=torch.bfloat16) if device == 'cuda' else nullcontext()
    eval_amp = nullcontext() if eval_fp32 else amp
    n_params = {k: sum(p.numel() for n, p in model.named_parameters() if n.startswith(k)) for k in ('albert', 'ponder')}
    print(f'method {method}: {n_params["albert"] / 1e6:.2f}M backbone + {n_params["ponder"] / 1e6:.2f}M exit-head '
          f'parameters, {N} layers')

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
            yy = torch.tensor([y[j] for j in idx], dtype=torch.float32 if regression else torch.long)
            yield ids.to(device), tt.to(device), am.to(device), yy.to(device)

    # The gates are not trained by gradient steps on the task loss: fit_gates() sets them after each epoch.
    trained = [(n, p) for n, p in model.named_parameters() if not n.startswith('ponder.gates')]
    groups = [
        {'params': [p for n, p in trained if not n.startswith('ponder.lambda') and p.dim() >= 2],
         'weight_decay': weight_decay, 'base_lr': lr},
        {'params': [p for n, p in trained if not n.startswith('ponder.lambda') and p.dim() < 2],
         'weight_decay': 0.0, 'base_lr': lr},
        {'params': [p for n, p in model.named_parameters() if n.startswith('ponder.lambda')],
         'weight_decay': 0.0, 'base_lr': lambda_lr or lr},
    ]
    opt = torch.optim.AdamW([g for g in groups if g['params']], lr=lr, betas=(0.9, 0.98), eps=1e-6)
    total = epochs * math.ceil(len(train_x) / batch_size)
    warm = max(1, int(warmup_frac * total))
    p_g = torch.tensor(prior(N, prior_lambda), device=device)

    def per_layer_loss(logits, yy):
        if regression:
            return (logits[..., 0] - yy) ** 2  # [N, B]
        return F.cross_entropy(logits.reshape(-1, n_out), yy.repeat(logits.shape[0]), reduction='none').view(
            logits.shape[0], -1)

    def loss_fn(logits, lambdas, yy):
        """The training loss of each method (docs sections 1.4, 2.2, 3.2); logits [N, B, C] fp32."""
        if method == 'full':
            return per_layer_loss(logits[-1:], yy).mean()
        ll = per_layer_loss(logits, yy)
        if method in ('pabee', 'gates'):  # gates: PABEE's heads and loss train the backbone and the IMs
            w = torch.arange(1, N + 1, device=ll.device, dtype=ll.dtype)
            return (w[:, None] * ll).mean(1).sum() / w.sum()
        p, computed = exit_distribution_train(lambdas, epsilon)
        task_loss = (p[:computed] * ll[:computed]).mean(1).sum()
        # KL(p_G || p) as the code computes it (KLDivLoss(log p, p_G), batchmean); the clamp only guards log(0).
        kl = (p_g[:, None] * (p_g[:, None].log() - p.clamp_min(1e-30).log())).sum(0).mean()
        return task_loss + beta * kl

    @torch.no_grad()
    def run_split(x, y):
        """Every layer's outputs (no dropout): preds [N, D] (class or value), lambdas [N, D] or None, logits [N, D, C]."""
        model.eval()
        outs, lams = [], []
        for ids, tt, am, _ in batches(x, y, 256, False):
            with eval_amp:
                logits, lam = model(ids, tt, am)
            outs.append(logits.float())
            if lam is not None:
                lams.append(lam.float())
        model.train()
        logits = torch.cat(outs, 1).cpu()
        preds = (logits[..., 0] if regression else logits.argmax(-1)).numpy()
        return preds, (torch.cat(lams, 1).cpu().numpy() if lams else None), logits

    def set_gates(a, b):
        with torch.no_grad():
            for n, g in enumerate(model.ponder.gates):
                g.weight.copy_(torch.from_numpy(a[n:n + 1]))
                g.bias.copy_(torch.from_numpy(b[n:n + 1]))

    def fit_all_gates(held_logits, dev_logits, preds):
        """Phase 2 (method gates), everything else frozen: for each gamma, best exits and targets on the held-out
        rows, one gate set fitted there with JEI-DNN's pos_weight, and its dev curve over thresholds; plus, for
        comparison, the default gamma fitted without pos_weight. Leaves the default gamma's (weighted) gates in
        the model; returns (curve, unweighted curve, fits, those gates on the dev set [N-1, D])."""
        lg = held_logits.double()
        ce = (lg.logsumexp(-1) - lg.gather(-1, torch.tensor(held_y)[None, :, None].expand(N, -1, 1))[..., 0]).numpy()
        feats = gate_features(lg[:-1].softmax(-1)).permute(1, 0, 2).numpy()  # [n, N-1, 4]
        curve, unweighted, fits = [], [], {}
        for gm, weighted in [(g_, True) for g_ in sorted(set(GATE_GAMMAS) | {gamma})] + [(gamma, False)]:
            lstar = best_exit(ce, gm)
            pw, n_l = gate_pos_weight(lstar, N, pos_weight_cap)
            a, b, bce = fit_gates(feats, gate_targets(lstar, N), pw if weighted else np.ones_like(pw), gate_l2)
            set_gates(a, b)
            with torch.no_grad():
                g_dev = model.gate_values(dev_logits).numpy()  # float32, as the engine computes them
            pts = [dict(gamma=gm, threshold=t, **point(preds, gate_exit(g_dev, t))[0]) for t in GATE_THRESHOLDS]
            if not weighted:
                unweighted = pts
                continue
            curve += pts
            fits[str(gm)] = dict(weight=a.round(6).tolist(), bias=b.round(6).tolist(), pos_weight=pw.round(4).tolist(),
                                 n_best_exit=n_l.astype(int).tolist() + [int((lstar == N).sum())],
                                 mean_best_exit=float(lstar.mean()), bce=bce)
            if gm == gamma:
                default_gates, keep = g_dev, (a, b)
        set_gates(*keep)
        return curve, unweighted, fits, default_gates

    def point(preds, exits):
        chosen = preds[exits - 1, np.arange(preds.shape[1])]
        return dict(metrics(spec['metric'], chosen, dev_y), avg_layers=float(exits.mean())), chosen

    def evaluate():
        preds, lam, logits = run_split(dev_x, dev_y)
        gates = None
        D = preds.shape[1]
        per_layer = [dict(layer=n + 1, **point(preds, np.full(D, n + 1))[0]) for n in range(N)]
        curves, extra = {}, {}
        if method == 'full':
            default, chosen = point(preds, np.full(D, N))
            exits = np.full(D, N)
        elif method in ('palbert', 'pondernet'):
            curves['q_exit'] = [dict(q=qq, **point(preds, q_exit(lam, qq))[0])
                                for qq in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)]
            if method == 'palbert':
                exits = q_exit(lam, q)
                default, chosen = point(preds, exits)
            else:
                runs = [point(preds, sample_exit(lam, np.random.default_rng(s_)))[0] for s_ in range(ponder_samples)]
                exits = sample_exit(lam, np.random.default_rng(0))
                _, chosen = point(preds, exits)
                default = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
                default['score_std'] = float(np.std([r['score'] for r in runs]))
                curves['sample_runs'] = runs
            extra['mean_lambda'] = lam.mean(1).round(4).tolist()
        else:  # pabee, and gates' PABEE-trained heads
            curves['patience'] = [dict(patience=t, **point(preds, pabee_exit(preds, t, regression, pabee_threshold))[0])
                                  for t in range(N)]
            exits = pabee_exit(preds, patience, regression, pabee_threshold)
            default, chosen = point(preds, exits)
        if method == 'gates':
            curves['gates'], curves['gates_unweighted'], extra['gates'], gates = fit_all_gates(
                run_split(held_x, held_y)[2], logits, preds)
            exits = gate_exit(gates, gate_threshold)
            default, chosen = point(preds, exits)
        return dict(default=default, per_layer=per_layer, curves=curves, **extra), (chosen, exits, preds, lam, gates)

    step, history, best, best_state, best_dev, stale, stopped = 0, [], None, None, None, 0, None
    t0 = time.time()
    for ep in range(epochs):
        t_ep = time.time()
        if ep and deadline and t_ep + epoch_s > deadline:
            stopped = f'deadline: epoch {ep + 1} would end after it (the last took {epoch_s:.0f}s)'
            print(f'stop: {stopped}')
            break
        for ids, tt, am, yy in batches(train_x, train_y, batch_size, True):
            mult = 1.0 if schedule == 'constant' else min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm)))
            for g in opt.param_groups:
                g['lr'] = g['base_lr'] * mult
            with amp:
                logits, lambdas = model(ids, tt, am)
            loss = loss_fn(logits.float(), lambdas, yy)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
        ev, dev_out = evaluate()
        epoch_s = time.time() - t_ep
        d = ev['default']
        history.append(dict(epoch=ep + 1, step=step, seconds=round(time.time() - t0, 1), train_loss=loss.item(), **ev))
        full_depth = ev['per_layer'][-1]['score']
        print(f'{task} {method} epoch {ep + 1}: dev default ' + ' '.join(f'{k} {v:.4f}' for k, v in d.items())
              + f' | last layer {full_depth:.4f} | per layer '
              + ' '.join(f'{r["score"]:.3f}' for r in ev['per_layer'])
              + f' ({time.time() - t0:.0f}s, train loss {loss.item():.4f})', flush=True)
        if method == 'gates':
            print('  gates, dev at threshold ' + str(gate_threshold) + ' (gamma: score / layers): ' + ', '.join(
                f'{r["gamma"]}: {r["score"]:.4f} / {r["avg_layers"]:.2f}' for r in ev['curves']['gates']
                if r['threshold'] == gate_threshold), flush=True)
        if best is None or d['score'] > best['default']['score']:
            best, best_dev, stale = history[-1], dev_out, 0
            best_state = {k: v.detach().to('cpu', copy=True) for k, v in model.state_dict().items()}
        else:
            stale += 1
            if early_stop and stale >= early_stop:
                stopped = f'early stop: {stale} epochs without a better dev score'
                print(stopped)
                break
    result = dict(task=task, method=method, init=init or None, init_kind=src['kind'] if src else None,
                  pretrain_step=rmeta['step'] if rmeta else 0, layers=N, args={k: globals()[k] for k in CONFIG},
                  train_rows=len(train_x), heldout_rows=len(held_x), stopped=stopped, history=history,
                  best_epoch=best['epoch'], best=best)
    print('RESULT ' + json.dumps(dict(task=task, method=method, init=init or None, pretrain_step=result['pretrain_step'],
                                      best_epoch=best['epoch'], default=best['default'],
                                      last_layer=best['per_layer'][-1])))
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, 'results.json'), 'w') as f:
            json.dump(result, f, indent=2)
        chosen, exits, preds, lam, gates = best_dev
        with open(os.path.join(out_dir, 'dev_predictions.tsv'), 'w') as f:
            # Per dev example at the best epoch: the default criterion's prediction and exit layer, every
            # layer's prediction and (palbert/pondernet) lambda -- what the browser engine is checked against;
            # method gates adds a column: the gates g_1..g_{L-1} of the default gamma.
            f.write('index\tlabel\tprediction\texit_layer\tlayer_predictions\tlambdas'
                    + ('\tgates' if gates is not None else '') + '\n')
            for i in range(len(dev_y)):
                lp = ','.join(f'{v:.6g}' if regression else str(int(v)) for v in preds[:, i])
                lm = '' if lam is None else ','.join(f'{v:.6g}' for v in lam[:, i])
                gt = '' if gates is None else '\t' + ','.join(f'{v:.7g}' for v in gates[:, i])
                f.write(f'{i}\t{dev_y[i]}\t{chosen[i]:.6g}\t{exits[i]}\t{lp}\t{lm}{gt}\n')
        if save_model:
            labels = spec.get('names') or spec['labels'] or ['score']
            if method == 'gates':
                ponder = model.ponder_config(default_criterion=dict(kind='gate', threshold=gate_threshold),
                                             backbone='pabee', gamma=gamma, gate_holdout=gate_holdout,
                                             holdout_seed=holdout_seed, pos_weight_cap=pos_weight_cap,
                                             gate_l2=gate_l2, seed=seed)
            else:
                ponder = model.ponder_config(beta=beta, prior_lambda=prior_lambda, epsilon=epsilon, seed=seed)
            if rmeta:
                tok_sha = rmeta['tokenizer_sha256']
            else:
                with open(os.path.join(tok_dir, 'tokenizer.json'), 'rb') as f:
                    tok_sha = hashlib.sha256(f.read()).hexdigest()
            meta = dict(kind='finetune', task=task, method=method, best_epoch=best['epoch'],
                        config=cfg.hf_dict(architectures=['AlbertForSequenceClassification'], num_labels=n_out,
                                           id2label={str(i): l for i, l in enumerate(labels)},
                                           label2id={l: i for i, l in enumerate(labels)},
                                           problem_type='regression' if regression else 'single_label_classification',
                                           ponder=ponder),
                        init=init or None, init_kind=src['kind'] if src else None,
                        tokenizer_sha256=tok_sha, dev=best['default'])
            save_checkpoint(os.path.join(out_dir, 'model'), {f'model.{k}': v for k, v in best_state.items()}, meta,
                            dtype=torch.float32)
            for name in ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt',
                         'spiece.model'):
                if os.path.isfile(os.path.join(tok_dir, name)):
                    shutil.copyfile(os.path.join(tok_dir, name), os.path.join(out_dir, 'model', name))
            tc = os.path.join(out_dir, 'model', 'tokenizer_config.json')
            if not os.path.isfile(tc):  # export.py and @xenova/transformers want one; tokenizer.json holds the rest
                with open(tc, 'w') as f:
                    json.dump(dict(tokenizer_class='PreTrainedTokenizerFast', model_max_length=max_len), f, indent=2)


if __name__ == '__main__':
    main()
