"""
Checks of finetune.py's exit logic and model.py's exit heads against direct per-example loops written
from docs/early-exit-methods.md. Needs numpy and torch (CPU is enough: here `apt-get install
python3-torch`, or the GPU machine). Not part of CI, which has no PyTorch.

    python3 training/test_exits.py
"""

import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from finetune import exit_distribution_train, pabee_exit, prior, q_exit, sample_exit  # noqa: E402
from model import AlbertConfig, AlbertWithExits  # noqa: E402

passed = failed = 0


def check(name, ok, detail=''):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f'FAIL {name} {detail}')


rng = np.random.default_rng(0)
N, D = 12, 200

# prior: mass 1, geometric head, leftover on the last layer
pg = prior(N, 0.1)
check('prior sums to 1', abs(sum(pg) - 1) < 1e-12)
check('prior[0] = 0.1', abs(pg[0] - 0.1) < 1e-12)
check('prior[11] = 0.9^11', abs(pg[11] - 0.9 ** 11) < 1e-12, pg[11])

# Q-exit against a loop, including lambdas of 0 and 1 and q on a boundary (strict >)
lam = rng.random((N, D)) * 0.4
lam[:, 0] = 0.0
lam[0, 1] = 1.0
lam[:, 2] = 0.5  # CDF_1 = 0.5 exactly: q = 0.5 must not exit at layer 1
for q in (0.1, 0.5, 0.9):
    got = q_exit(lam, q)
    want = []
    for d in range(D):
        cdf, surv, ex = 0.0, 1.0, N
        for n in range(N):
            cdf += lam[n, d] * surv
            surv *= 1 - lam[n, d]
            if cdf > q:
                ex = n + 1
                break
        want.append(ex)
    check(f'q_exit q={q}', (got == np.array(want)).all(), np.nonzero(got != np.array(want)))
check('q_exit strict >', q_exit(lam, 0.5)[2] == 2)
check('q_exit never -> N', q_exit(lam, 0.5)[0] == N)

# Sampled exit: frequency of exiting at layer 1 ~ lambda_1
lam1 = np.full((N, 20000), 0.3)
ex = sample_exit(lam1, np.random.default_rng(1))
check('sample_exit P(1) ~ 0.3', abs((ex == 1).mean() - 0.3) < 0.02, (ex == 1).mean())
check('sample_exit P(2) ~ 0.21', abs((ex == 2).mean() - 0.21) < 0.02, (ex == 2).mean())

# PABEE patience against a loop; t = 0 never exits early
preds = rng.integers(0, 2, (N, D))
preds[:, :20] = 1  # all layers agree
for t in range(0, 7):
    got = pabee_exit(preds, t, False, 0.0)
    want = []
    for d in range(D):
        cnt, ex = 0, N
        if t > 0:
            for i in range(1, N):
                cnt = cnt + 1 if preds[i, d] == preds[i - 1, d] else 0
                if cnt == t:
                    ex = i + 1
                    break
        want.append(ex)
    check(f'pabee t={t}', (got == np.array(want)).all())
check('pabee agreeing layers exit at t+1', pabee_exit(preds, 3, False, 0.0)[0] == 4)
vals = np.cumsum(rng.random((N, D)) * 0.2, axis=0)
check('pabee regression tau=0 never exits', (pabee_exit(vals, 2, True, 0.0) == N).all())

# Training-time p: truncation and the early stop of the released code
lam_t = torch.tensor(rng.random((N, 8)) * 0.5, dtype=torch.float32)
p, computed = exit_distribution_train(lam_t, 0.05)
for b in range(8):
    c, cdf = 1.0, 0.0
    for n in range(N):
        raw = float(lam_t[n, b]) * c
        c *= 1 - float(lam_t[n, b])
        pn = 0.05 / N if cdf > 0.95 else raw
        if n >= computed:
            pn = 0.05 / N
        cdf += pn
        if abs(float(p[n, b]) - pn) > 1e-6:
            check(f'train p b={b} n={n}', False, (float(p[n, b]), pn))
            break
    else:
        check(f'train p b={b}', True)
big = torch.full((N, 4), 0.9)
p2, comp2 = exit_distribution_train(big, 0.05)
check('train p stops when every CDF > 1 - eps', comp2 == 2, comp2)  # 0.9 + 0.09 = 0.99 > 0.95 after layer 2
check('train p fill eps/N after the stop', torch.allclose(p2[2:], torch.full_like(p2[2:], 0.05 / N)))

# Exit heads: shapes, names (docs/checkpoint-format.md), z_0 = 0 for PALBERT's first Lambda input
cfg = AlbertConfig(vocab_size=50, embedding_size=8, hidden_size=16, num_attention_heads=2, intermediate_size=24,
                   num_hidden_layers=5, max_position_embeddings=16)
torch.manual_seed(0)
for method, names in [('palbert', ['ponder.lambda.0.weight', 'ponder.lambda.3.weight']),
                      ('pondernet', ['ponder.lambda.0.weight']), ('pabee', ['ponder.heads.4.weight']),
                      ('full', ['classifier.weight'])]:
    m = AlbertWithExits(cfg, 3, method).eval()
    sd = m.state_dict()
    check(f'{method} tensor names', all(n in sd for n in names), [k for k in sd if k.startswith('ponder')][:6])
    ids = torch.randint(5, 50, (2, 7))
    logits, lam = m(ids, attention_mask=torch.ones(2, 7, dtype=torch.long))
    check(f'{method} logits shape', tuple(logits.shape) == (5, 2, 3), logits.shape)
    check(f'{method} lambdas', (lam is None) == (method in ('pabee', 'full')))
    if method == 'palbert':
        check('palbert lambda width 2H', tuple(sd['ponder.lambda.0.weight'].shape) == (32, 32))
        z1 = m.albert.pool(m.albert(ids, num_layers=1))
        want = torch.sigmoid(m.lambda_logit(torch.cat([z1, torch.zeros_like(z1)], -1)))
        check('palbert layer-1 lambda uses z_0 = 0', torch.allclose(want, lam[0], atol=1e-6))
        check('ponder config', m.ponder_config()['lambda_head'] == dict(input='cat', hidden_layers=3, activation='tanh'))
    if method == 'pondernet':
        check('pondernet lambda width H', tuple(sd['ponder.lambda.0.weight'].shape) == (1, 16))

print(f'{passed} passed, {failed} failed')
sys.exit(1 if failed else 0)
