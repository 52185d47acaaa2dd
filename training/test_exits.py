"""
Checks of finetune.py's exit logic and model.py's exit heads against direct per-example loops written
from docs/early-exit-methods.md (PALBERT, PonderNet, PABEE, JEI-DNN-style gates), and of model.py's
reading of Hugging Face ALBERT checkpoints (finetune.py --init) against the transformers 5.17 goldens
in tests/fixtures/golden/ (skipped where that folder is missing). Needs numpy and torch (CPU is enough:
here `apt-get install python3-torch`, or the GPU machine). Not part of CI, which has no PyTorch.

    python3 training/test_exits.py
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from finetune import (best_exit, exit_distribution_train, fit_gates, gate_exit, gate_pos_weight,  # noqa: E402
                      gate_targets, pabee_exit, prior, q_exit, sample_exit)
from model import (AlbertConfig, AlbertWithExits, gate_features, hf_albert_config,  # noqa: E402
                   hf_albert_encoder_state, read_hf_folder)

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

# ---- JEI-DNN-style gates (docs section 4.3 / 4.4; the engine's criterion 'gate')
def features_loop(p):
    s_ = sorted(p, reverse=True)
    H = -sum(x * math.log(x) for x in p if x > 0)
    sq = sum(x * x for x in p)
    q_ = [x * x / sq for x in p]
    return [s_[0], H, s_[0] - s_[1], -sum(x * math.log(x) for x in q_ if x > 0)]


for p_ in ([0.7, 0.2, 0.1], [1.0, 0.0], [0.5, 0.5], [0.25, 0.25, 0.25, 0.25], [0.1, 0.6, 0.3]):
    got = gate_features(torch.tensor(p_, dtype=torch.float64)).tolist()
    want = features_loop(p_)
    check(f'gate features {p_}', all(abs(a - b) < 1e-12 for a, b in zip(got, want)), (got, want))
H3 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
q3 = [0.49 / 0.54, 0.04 / 0.54, 0.01 / 0.54]
check('gate features [0.7, 0.2, 0.1] by hand', torch.allclose(
    gate_features(torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)),
    torch.tensor([0.7, H3, 0.5, -sum(x * math.log(x) for x in q3)], dtype=torch.float64)))
check('gate features one-hot = [1, 0, 1, 0]', gate_features(torch.tensor([0.0, 1.0])).tolist() == [1.0, 0.0, 1.0, 0.0])
check('gate features batch shape', tuple(gate_features(torch.rand(3, 5, 4).softmax(-1)).shape) == (3, 5, 4))

# l* = argmin_l CE_l + gamma l / L (1-based, ties to the earliest), targets t_l = 1[l >= l*] for l = 1..L-1
ce = np.array([[0.9, 0.1, 0.30, 2.0],   # layer 1
               [0.5, 0.1, 0.29, 2.0],   # layer 2
               [0.1, 0.1, 0.10, 2.0]])  # layer 3
# gamma 0.3, L 3: costs 0.1, 0.2, 0.3 -> column 0: 1.0, 0.7, 0.4 -> 3; column 1: 0.2, 0.3, 0.4 -> 1;
# column 2: 0.40, 0.49, 0.40 -> tie, earliest 1; column 3: all CE equal -> 1
check('best exit by hand', best_exit(ce, 0.3).tolist() == [3, 1, 1, 1], best_exit(ce, 0.3))
check('best exit gamma 0 (argmin CE)', best_exit(ce, 0.0).tolist() == [3, 1, 3, 1], best_exit(ce, 0.0))
ce_r = rng.random((N, D)) * 2
for gm in (0.02, 0.15, 0.7, 5.0):
    want = [min(range(1, N + 1), key=lambda l: (ce_r[l - 1, d] + gm * l / N, l)) for d in range(D)]
    check(f'best exit loop gamma={gm}', best_exit(ce_r, gm).tolist() == want)
check('targets by hand', gate_targets(np.array([3, 1, 2]), 3).tolist() == [[0, 0], [1, 1], [0, 1]])
ls = best_exit(ce_r, 0.15)
t_ = gate_targets(ls, N)
check('targets loop', all(t_[d, l - 1] == (1.0 if l >= ls[d] else 0.0) for d in range(D) for l in range(1, N)))
check('targets shape [n, L-1]', t_.shape == (D, N - 1))

# pos_weight_l = min(5, (n - n_l) / max(n_l, 0.1))
pw, n_l = gate_pos_weight(np.array([1, 1, 2, 4, 4, 4, 4, 4, 4, 4]), 4)  # n = 10; n_1 = 2, n_2 = 1, n_3 = 0
check('pos_weight counts', n_l.tolist() == [2, 1, 0], n_l)
check('pos_weight values', np.allclose(pw, [4.0, 5.0, 5.0]), pw)  # 8/2; min(5, 9); min(5, 10/0.1)
pw2, _ = gate_pos_weight(np.array([1] * 9 + [2]), 3, cap=5.0)
check('pos_weight below the cap', np.allclose(pw2, [1 / 9, 5.0]), pw2)  # (10 - 9) / 9; min(5, 9 / 1)
pw3, nl3 = gate_pos_weight(ls, N)
check('pos_weight loop', np.allclose(pw3, [min(5, (D - (ls == l).sum()) / max((ls == l).sum(), 0.1))
                                         for l in range(1, N)]))

# exit at the first layer with g_l > threshold (strict), else the last layer L
g = rng.random((N - 1, D))
g[:, 0] = 0.5  # exactly the threshold: never fires
g[:, 1] = 0.0
g[3, 2] = 0.9
for thr in (0.1, 0.5, 0.9):
    got = gate_exit(g, thr)
    want = []
    for d in range(D):
        ex = N
        for l in range(1, N):
            if g[l - 1, d] > thr:
                ex = l
                break
        want.append(ex)
    check(f'gate exit loop thr={thr}', (got == np.array(want)).all())
check('gate exit: g = thr does not fire', gate_exit(g, 0.5)[0] == N)
check('gate exit: never -> L', gate_exit(g, 0.5)[1] == N)

# fit_gates: a gate that should fire when max p is high learns it; the weighted loss drops below ln 2 * mean w
n_ = 2000
fz = torch.stack([torch.linspace(0.5, 1.0, n_), 1 - torch.linspace(0.5, 1.0, n_)], -1)  # binary softmax rows
ff = gate_features(fz.double())[:, None, :].repeat(1, 2, 1).numpy()  # 2 gates, same features
tt = np.stack([(fz[:, 0] > 0.8).numpy(), (fz[:, 0] > 0.6).numpy()], -1).astype(np.float64)
a_, b_, bce_ = fit_gates(ff, tt, np.ones(2))
fitted = 1 / (1 + np.exp(-((ff * a_[None]).sum(-1) + b_)))
check('fit_gates separates', ((fitted > 0.5) == (tt > 0.5)).mean() > 0.97, ((fitted > 0.5) == (tt > 0.5)).mean())
check('fit_gates loss < ln 2', bce_ < math.log(2) * 0.5, bce_)
a2, b2, _ = fit_gates(ff, tt, np.array([5.0, 5.0]))
check('pos_weight moves the boundary earlier', (1 / (1 + np.exp(-((ff * a2[None]).sum(-1) + b2))) > 0.5).mean()
      > (fitted > 0.5).mean())

# the gates model: names and shapes of docs/checkpoint-format.md, g_n against a per-example loop
mg = AlbertWithExits(cfg, 3, 'gates').eval()
sd = mg.state_dict()
check('gates: per-layer heads', all(f'ponder.heads.{n}.weight' in sd for n in range(5)))
check('gates: L-1 gates [1,4] / [1]', [tuple(sd[f'ponder.gates.{n}.weight'].shape) for n in range(4)] == [(1, 4)] * 4
      and all(tuple(sd[f'ponder.gates.{n}.bias'].shape) == (1,) for n in range(4)) and 'ponder.gates.4.weight' not in sd)
pc = mg.ponder_config(default_criterion=dict(kind='gate', threshold=0.5), gamma=0.15)
check('gates: ponder config', pc['gates'] is True and pc['per_layer_heads'] is True and pc['method'] == 'gates'
      and pc['default_criterion'] == dict(kind='gate', threshold=0.5) and 'lambda_head' not in pc, pc)
with torch.no_grad():
    for gm_ in mg.ponder.gates:
        gm_.weight.normal_()
        gm_.bias.normal_()
    ids = torch.randint(5, 50, (3, 9))
    lg_, lam_ = mg(ids, attention_mask=torch.ones(3, 9, dtype=torch.long))
    gv = mg.gate_values(lg_)
check('gates: forward gives no lambdas', lam_ is None)
ok = True
for n in range(4):
    for b_i in range(3):
        p_ = torch.softmax(lg_[n, b_i].double(), -1).tolist()
        w_ = mg.ponder.gates[n].weight[0].double().tolist()
        z_ = sum(x * y for x, y in zip(features_loop(p_), w_)) + float(mg.ponder.gates[n].bias)
        ok &= abs(float(gv[n, b_i]) - 1 / (1 + math.exp(-z_))) < 1e-5
check('gates: g_n = sigmoid(a . f(softmax(head_n)) + b) per example', ok and tuple(gv.shape) == (4, 3))
z1 = mg.albert.pool(mg.albert(ids, num_layers=2))
check('gates: layer-2 logits from its own head', torch.allclose(mg.ponder.heads[1](z1), lg_[1], atol=1e-6))

# ---- Hugging Face ALBERT folders (finetune.py --init): transformers 5.17 goldens, if this checkout has them
GOLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'golden')
if os.path.isdir(os.path.join(GOLD, 'albert-odd')):
    conf, tens = read_hf_folder(os.path.join(GOLD, 'albert-odd'))
    hcfg = hf_albert_config(conf)
    enc, lacks = hf_albert_encoder_state(tens, hcfg)
    check('hf: albert-odd maps with its pooler', lacks == [], lacks)
    hm = AlbertWithExits(hcfg, 3, 'full').eval()
    missing_, unexpected_ = hm.albert.load_state_dict(enc, strict=False)
    hm.classifier.load_state_dict({'weight': tens['classifier.weight'], 'bias': tens['classifier.bias']})
    gold = json.load(open(os.path.join(GOLD, 'albert-odd', 'golden.json')))
    worst = 0.0
    for bt in gold['batches']:
        with torch.no_grad():
            lg_h, _ = hm(torch.tensor(bt['inputIds']), torch.tensor(bt['tokenTypeIds']), torch.tensor(bt['attentionMask']))
        want = torch.tensor(bt['perLayerLogits'])
        worst = max(worst, float((lg_h - want).abs().max() / want.abs().max()))
    check('hf: albert-odd per-layer logits = transformers 5.17 (rel 1e-4)', not missing_ and not unexpected_
          and worst < 1e-4, worst)
    print(f'hf golden albert-odd: max |ours - transformers| / max |transformers| = {worst:.2e}')

    def refused(fn, *words):
        try:
            fn()
        except ValueError as e:
            return all(w in str(e) for w in words) or str(e)
        return 'accepted'

    cg, tg = read_hf_folder(os.path.join(GOLD, 'albert-groups'))
    check('hf: albert-groups refused', refused(lambda: hf_albert_config(cg), 'layer group', 'inner') is True)
    cb, _ = read_hf_folder(os.path.join(GOLD, 'bert-odd'))
    check('hf: BERT refused', refused(lambda: hf_albert_config(cb), "model_type 'bert'", 'ALBERT') is True)
    check('hf: wrong hidden_size refused', refused(lambda: hf_albert_encoder_state(
        tens, hf_albert_config(dict(conf, hidden_size=125, num_attention_heads=5))), 'wrong shapes', 'hidden') is True)
    t_missing = {k: v for k, v in tens.items() if 'ffn_output' not in k}
    check('hf: missing tensors refused', refused(lambda: hf_albert_encoder_state(t_missing, hcfg), 'missing',
                                                 'ffn_output') is True)
    t_bare = {k[len('albert.'):]: v for k, v in tens.items() if k.startswith('albert.') and 'pooler' not in k}
    _, lacks_b = hf_albert_encoder_state(t_bare, hcfg)
    check('hf: bare AlbertModel names, no pooler', lacks_b == ['pooler.weight', 'pooler.bias'], lacks_b)
    check('hf: relu act and eps accepted', hf_albert_config(dict(conf, hidden_act='relu', layer_norm_eps=1e-6))
          .hidden_act == 'relu')
    check('hf: unknown act refused', refused(lambda: hf_albert_config(dict(conf, hidden_act='swish')), 'hidden_act')
          is True)
else:
    print('skipped the Hugging Face checks: no tests/fixtures/golden here')

print(f'{passed} passed, {failed} failed')
sys.exit(1 if failed else 0)
