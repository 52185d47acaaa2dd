"""
Write docs/results.md from the saved fine-tuning outputs (training/artifacts/glue/<task>-<method>-s<seed>/:
results.json and dev_predictions.tsv), beside the published PALBERT table.

    python3 training/results.py                      # reads training/artifacts/glue, writes docs/results.md

Every number in the generated page is computed here from those files: the metric at full depth and, for each
criterion, the metric and average layers at its default setting and along its curve (q for Q-exit, patience for
PABEE, depth k for fixed depth, the gate threshold for JEI-DNN-style gates; their curve over gamma, one gate set per
gamma, is read from results.json). Also: the majority class's score, each run's last epoch beside its chosen one,
every curve interpolated at equal average layers (1..12), PALBERT's and PonderNet's λ statistics, a paired bootstrap
of PALBERT - PABEE over the dev examples, the issue's three targets judged from these numbers, and the published
tables (../shared/docs/early-exit-methods.md section 6). Runs anywhere with Python 3 and numpy; no torch.
"""

import argparse
import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from finetune import TASKS, metrics  # noqa: E402  (stdlib-only at import time; the same metrics as training)

# ----------------------------------------------------------------------------------------------
# config
runs = 'training/artifacts/glue'
out = 'docs/results.md'
q_grid = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
# ----------------------------------------------------------------------------------------------

# PALBERT project page, ALBERT-base-v2, GLUE dev (docs: ../shared/docs/early-exit-methods.md section 6.1).
PAPER_DEV = {
    'ALBERT': {'SST-2': 92.7, 'RTE': 76.5, 'CoLA': 56.6, 'MRPC': 90.5, 'STS-B': 90.6},
    'ALBERT (9 L.)': {'SST-2': 91.1, 'RTE': 74.2, 'CoLA': 56.9, 'MRPC': 89.7, 'STS-B': 90.1},
    'ALBERT PABEE': {'SST-2': 92.7, 'RTE': 76.9, 'CoLA': 55.6, 'MRPC': 88.3, 'STS-B': 89.9},
    'ALBERT PonderNet': {'SST-2': 91.3, 'RTE': 74.0, 'CoLA': 51.3, 'MRPC': 87.1, 'STS-B': 88.2},
    'PALBERT': {'SST-2': 93.1, 'RTE': 78.3, 'CoLA': 58.1, 'MRPC': 89.3, 'STS-B': 89.9},
}
# PABEE's own README (same doc, section 6.2), ALBERT-base, GLUE dev; 1.57x speed-up = about 7.6 of 12 layers.
PABEE_OWN = {
    'ALBERT-base': {'SST-2': 92.8, 'RTE': 78.6, 'CoLA': 58.9, 'MRPC': 89.5, 'STS-B': 89.5},
    'ALBERT-base + PABEE (1.57× speed-up)': {'SST-2': 93.0, 'RTE': 80.1, 'CoLA': 61.2, 'MRPC': 90.0, 'STS-B': 90.1},
}
# The targets: (a) SST-2 full depth >= 85%; (b) PALBERT Q-exit q = 0.5 on SST-2 within 1 point of full depth
# with <= 65% of the layers; (c) PALBERT's mean over the five tasks >= PABEE's and PonderNet's at comparable layers.
TARGET_FULL_SST2 = 0.85
TARGET_POINTS = 1.0
TARGET_LAYER_FRAC = 0.65
BOOTSTRAP = 2000  # paired bootstrap resamples of the dev set (seed 0)
METHOD_NAMES = {'full': 'full depth', 'palbert': 'PALBERT', 'pondernet': 'PonderNet', 'pabee': 'PABEE',
                'gates': 'JEI-DNN gates'}


def read_predictions(path, regression):
    rows = []
    with open(path, encoding='utf-8') as f:
        header = f.readline().rstrip('\n').split('\t')
        for line in f:
            cells = dict(zip(header, line.rstrip('\n').split('\t')))
            conv = float if regression else int
            rows.append({
                'label': conv(float(cells['label'])) if not regression else float(cells['label']),
                'prediction': conv(float(cells['prediction'])) if not regression else float(cells['prediction']),
                'exit_layer': int(cells['exit_layer']),
                'layers': [conv(float(v)) for v in cells['layer_predictions'].split(',')],
                'lambdas': [float(v) for v in cells['lambdas'].split(',')] if cells.get('lambdas') else None,
                'gates': [float(v) for v in cells['gates'].split(',')] if cells.get('gates') else None,
            })
    return rows


def q_exit(lambdas, q):
    """PALBERT's Q-exit: first layer whose cumulative exit probability is strictly above q, else the last."""
    survival, cdf = 1.0, 0.0
    for n, lam in enumerate(lambdas, start=1):
        cdf = min(1.0, cdf + lam * survival)
        survival *= 1.0 - lam
        if cdf > q:
            return n
    return len(lambdas)


def pabee_exit(layers, patience, regression, tau=0.1):
    """PABEE: exit at the first layer where the last `patience` + 1 layers agree; patience 0 = no early exit."""
    if patience == 0:
        return len(layers)
    count = 0
    for i in range(1, len(layers)):
        same = abs(layers[i] - layers[i - 1]) < tau if regression else layers[i] == layers[i - 1]
        count = count + 1 if same else 0
        if count == patience:
            return i + 1
    return len(layers)


def gate_exit(gates, threshold):
    """JEI-DNN-style gates: exit at the first layer whose gate is strictly above the threshold, else the last.
    gates: g_1..g_{L-1} (the last layer has none)."""
    for n, g in enumerate(gates, start=1):
        if g > threshold:
            return n
    return len(gates) + 1


def evaluate(rows, exits, kind):
    pred = [r['layers'][e - 1] for r, e in zip(rows, exits)]
    gold = [r['label'] for r in rows]
    return metrics(kind, pred, gold)['score'], float(sum(exits) / len(exits))


def interp(pts, budget):
    """A curve's metric at `budget` average layers, linear between its points (points at equal layers averaged);
    None outside the curve's range. pts: (label, score, layers)."""
    by = {}
    for _, s, l in pts:
        by.setdefault(round(l, 9), []).append(s)
    xs = sorted(by)
    ys = [sum(by[x]) / len(by[x]) for x in xs]
    if budget < xs[0] - 1e-9 or budget > xs[-1] + 1e-9:
        return None
    if budget <= xs[0] + 1e-9:
        return ys[0]
    for i, x in enumerate(xs):
        if abs(x - budget) <= 1e-9:
            return ys[i]
        if x > budget:
            return ys[i - 1] + (ys[i] - ys[i - 1]) * (budget - xs[i - 1]) / (x - xs[i - 1])
    return ys[-1]


def _ranks(a):
    """Average ranks of ties, as finetune.metrics computes them (vectorised for the bootstrap)."""
    order = a.argsort(kind='stable')
    s = a[order]
    new = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(a)]
    r = np.empty(len(a))
    r[order] = ((starts + ends - 1) / 2.0)[np.cumsum(new) - 1]
    return r


def score_of(kind, pred, gold):
    if kind != 'pearson_spearman':
        return metrics(kind, pred, gold)['score']

    def pearson(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    return (pearson(pred, gold) + pearson(_ranks(pred), _ranks(gold))) / 2


def paired_bootstrap(kind, gold, pred_a, pred_b, seed=0, n=BOOTSTRAP):
    """score(a) - score(b) on n resamples (with replacement) of the same dev examples."""
    rng = np.random.default_rng(seed)
    gold, pred_a, pred_b = np.asarray(gold), np.asarray(pred_a), np.asarray(pred_b)
    out = np.empty(n)
    for i in range(n):
        idx = rng.integers(0, len(gold), len(gold))
        out[i] = score_of(kind, pred_a[idx], gold[idx]) - score_of(kind, pred_b[idx], gold[idx])
    return out


def ci(samples):
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return f'[{signed(100 * lo, 1)}, {signed(100 * hi, 1)}]'


def fmt_range(xs):
    """[3, 4, 5, 8] -> '3–5, 8'"""
    out, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        out.append(f'{xs[i]}' if i == j else f'{xs[i]}–{xs[j]}')
        i = j + 1
    return ', '.join(out)


def signed(x, digits=2):
    """+1.23 / −1.23 (a real minus sign)."""
    return f'{x:+.{digits}f}'.replace('-', '−')


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def analyse(run):
    """Curves, equal-layer rows, checks and halting statistics of one run (dict with res, rows, kind, regression)."""
    res, rows, kind, regression = run['res'], run['rows'], run['kind'], run['regression']
    method, a = res['method'], res['args']
    name = METHOD_NAMES[method]
    L = len(rows[0]['layers'])
    n = len(rows)
    run['L'] = L
    run['default'] = (res['best']['default']['score'], res['best']['default']['avg_layers'])
    last = res['history'][-1]['default']
    run['last_epoch'] = (last['score'], last['avg_layers'])
    run['gold'] = [r['label'] for r in rows]
    run['pred'] = [r['prediction'] for r in rows]
    curves, equal = [], []  # (name, points) listed in full; (name, points) interpolated in the equal-layer table

    def points(label, exit_layer, settings):
        """(label(s), metric, avg layers) for each setting s; exit_layer(row, s) is the row's exit at s."""
        return [(label(s), *evaluate(rows, [exit_layer(r, s) for r in rows], kind)) for s in settings]

    def patience_points():
        return points(lambda t: f't={t}', lambda r, t: pabee_exit(r['layers'], t, regression), range(1, L))

    fixed = [(f'k={k}', *evaluate(rows, [k] * n, kind)) for k in range(1, L + 1)]
    run['fixed'] = fixed
    if method == 'full':
        curves.append((f'{name}, patience (its one head read at every layer)', patience_points()))
    if rows[0]['lambdas']:
        q_exit_at = lambda r, q: q_exit(r['lambdas'], q)  # noqa: E731
        curves.append((f'{name}, Q-exit', points(lambda q: f'q={q}', q_exit_at, q_grid)))
        fine = points(lambda q: f'q={q}', q_exit_at, [q / 100 for q in range(1, 100)])
        run['main'] = fine
        equal.append((f'{name}, Q-exit (q)', fine))
        lam = np.array([r['lambdas'][:L - 1] for r in rows])
        exits = np.array([q_exit(r['lambdas'], a['q']) for r in rows])
        counts = np.bincount(exits)
        run['halting'] = dict(mean=float(lam.mean()), layer_means=lam.mean(axis=0), sd_examples=float(lam.std(axis=0).mean()),
                              exit_sd=float(exits.std()), modal=int(counts.argmax()), modal_share=float(counts.max() / n),
                              q_score=evaluate(rows, list(exits), kind), cut_at=interp(fixed, float(exits.mean())))
        if method == 'palbert':  # the saved default must be the Q-exit of the saved lambdas
            check = evaluate(rows, list(exits), kind)
            if abs(check[0] - run['default'][0]) > 1e-5 or abs(check[1] - run['default'][1]) > 1e-6:  # TSV: 6 digits
                print(f'warning: {run["dir"]}: Q-exit from the TSV {check} != results.json {run["default"]}')
    if method in ('pabee', 'gates'):
        pts = patience_points()
        heads = ' (its PABEE-trained heads)' if method == 'gates' else ''
        curves.append((f'{name}{heads}, patience', pts))
        full_pts = pts + [('t=0', *evaluate(rows, [L] * n, kind))]
        if method == 'pabee':
            run['main'] = full_pts
        equal.append((f'{name}{heads}, patience (t)', full_pts))
    if rows[0].get('gates'):
        gate_exit_at = lambda r, t: gate_exit(r['gates'], t)  # noqa: E731
        curves.append((f'{name}, threshold τ at γ = {a.get("gamma")}', points(lambda t: f'τ={t}', gate_exit_at, q_grid)))
        fine = points(lambda t: f'τ={t}', gate_exit_at, [t / 100 for t in range(1, 100)])
        run['main'] = fine
        equal.append((f'{name}, threshold (τ)', fine))
        by_gamma = [r for r in res['best']['curves'].get('gates', []) if r['threshold'] == a['gate_threshold']]
        if by_gamma:  # one gate set per gamma: not recomputable from the TSV, which holds the default's gates
            curves.append((f'{name}, γ at τ = {a["gate_threshold"]} (from results.json)',
                           [(f'γ={r["gamma"]}', r['score'], r['avg_layers']) for r in by_gamma]))
        unw = res['best']['curves'].get('gates_unweighted', [])
        if unw:
            curves.append((f'{name}, τ without pos_weight at γ = {a.get("gamma")} (from results.json)',
                           [(f'τ={r["threshold"]}', r['score'], r['avg_layers']) for r in unw]))
            run['unweighted'] = unw
        run['gate_fit'] = res['best'].get('gates', {}).get(str(a.get('gamma')))
    if method == 'full':
        curves.append(('full depth model cut at layer k', fixed))
        equal.append(('full depth model cut at layer k', fixed))
    else:
        curves.append((f'{name}, same model cut at layer k', fixed))
        equal.append((f'{name}, same model cut at layer k', fixed))
    if method != 'pondernet':  # PonderNet's default is a mean over sampled exits; the TSV holds one draw
        check = metrics(kind, run['pred'], run['gold'])['score']
        if abs(check - run['default'][0]) > 1e-5:
            print(f'warning: {run["dir"]}: dev_predictions.tsv scores {check}, results.json {run["default"][0]}')
    run['curves'], run['equal'] = curves, equal
    return run


def baseline(task, gold):
    """The majority class's score on the dev set (classification); None for regression."""
    spec = TASKS[task]
    if spec['labels'] is None:
        return None
    major = max(set(gold), key=gold.count)
    return metrics(spec['metric'], [major] * len(gold), gold)['score']


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--runs', default=runs)
    p.add_argument('--out', default=out)
    args = p.parse_args()
    folders = sorted(d for d in glob.glob(os.path.join(args.runs, '*')) if os.path.isdir(d))
    if not folders:
        sys.exit(f'results: no run folders in {args.runs}')

    by_task = {}  # task -> method -> [runs, one per seed]
    for d in folders:
        res = json.load(open(os.path.join(d, 'results.json')))
        spec = TASKS[res['task']]
        regression = spec['labels'] is None
        run = dict(dir=d, res=res, kind=spec['metric'], regression=regression,
                   rows=read_predictions(os.path.join(d, 'dev_predictions.tsv'), regression))
        by_task.setdefault(res['task'], {}).setdefault(res['method'], []).append(analyse(run))
    tasks = [t for t in TASKS if t in by_task]
    methods = [m for m in METHOD_NAMES if any(m in by_task[t] for t in tasks)]
    seeds = sorted({r['res']['args']['seed'] for t in tasks for rs in by_task[t].values() for r in rs})
    one_seed = all(len(rs) == 1 for t in tasks for rs in by_task[t].values())

    def avg(task, method, key):  # mean over seeds of (score, layers)
        rs = by_task[task].get(method, [])
        if not rs:
            return None
        return mean(r[key][0] for r in rs), mean(r[key][1] for r in rs)

    def at(task, method, budget):  # the method's main curve at equal layers, mean over seeds
        rs = [r for r in by_task[task].get(method, []) if 'main' in r]
        vals = [interp(r['main'], budget) for r in rs]
        return mean(vals) if vals and None not in vals else None

    kinds = {t: TASKS[t]['metric'] for t in tasks}
    metric_names = {'acc': 'accuracy', 'mcc': 'Matthews corr.', 'acc_f1': '(acc + F1) / 2',
                    'pearson_spearman': '(Pearson + Spearman) / 2'}
    majority = {t: baseline(t, next(iter(by_task[t].values()))[0]['gold']) for t in tasks}
    n_dev = {t: len(next(iter(by_task[t].values()))[0]['gold']) for t in tasks}

    lines = ['# Results: early exit on our ALBERT', '',
             'Generated by `python3 training/results.py` from `training/artifacts/glue/` (per-example dev predictions saved',
             'by `training/finetune.py`); do not edit by hand. Metric: the task\'s GLUE metric on its dev set, ×100',
             '(accuracy; Matthews correlation for CoLA; mean of accuracy and F1 for MRPC; mean of Pearson and Spearman for',
             'STS-B). Layers: the average number of layer applications per example (speed-up = 12 / layers).', '']

    # ---- summary against the targets
    full_mean = {m: None for m in methods}
    lines += ['## What we measured against the issue\'s targets', '',
              f'Seed{"s" if len(seeds) > 1 else ""} {", ".join(map(str, seeds))} '
              + ('only: one run per task and method, so no spread across seeds is known. ' if len(seeds) == 1 else '. ')
              + 'Every number is on the GLUE dev set, and each run\'s epoch was chosen on that same dev set by its',
              'default operating point (a dev-set choice, so optimistic; the "last epoch" column below shows how much).',
              'Each method at its default setting: metric @ average layers; "majority" is the majority class\'s score.', '',
              '| task (metric, dev examples) | majority | ' + ' | '.join(METHOD_NAMES[m] for m in methods) + ' |',
              '|---|---|' + '---|' * len(methods)]
    for t in tasks:
        cells = []
        for m in methods:
            v = avg(t, m, 'default')
            cells.append('–' if v is None else f'{100 * v[0]:.2f}' + ('' if m == 'full' else f' @ {v[1]:.2f}'))
        maj = '–' if majority[t] is None else f'{100 * majority[t]:.1f}'
        lines.append(f'| {t} ({metric_names[kinds[t]]}, {n_dev[t]}) | {maj} | ' + ' | '.join(cells) + ' |')
    cells = []
    for m in methods:
        vs = [avg(t, m, 'default') for t in tasks]
        have = [v for v in vs if v is not None]
        full_mean[m] = (mean(v[0] for v in have), mean(v[1] for v in have), len(have))
        tag = '' if len(have) == len(tasks) else f' ({len(have)} tasks)'
        cells.append(f'{100 * full_mean[m][0]:.2f}' + ('' if m == 'full' else f' @ {full_mean[m][1]:.2f}') + tag)
    lines += [f'| mean of the {len(tasks)} tasks | | ' + ' | '.join(cells) + ' |', '']

    verdicts = []
    sst = by_task.get('SST-2', {})
    if 'full' in sst:
        f = avg('SST-2', 'full', 'default')[0]
        verdicts.append(f'- **(a) SST-2 at full depth ≥ {100 * TARGET_FULL_SST2:.0f}%**: {100 * f:.2f}% — '
                        + ('met.' if f >= TARGET_FULL_SST2 else 'not met.'))
    if 'full' in sst and 'palbert' in sst:
        f = avg('SST-2', 'full', 'default')[0]
        s, l = avg('SST-2', 'palbert', 'default')
        L = sst['palbert'][0]['L']
        q = sst['palbert'][0]['res']['args']['q']
        ok = (f - s) * 100 <= TARGET_POINTS and l <= TARGET_LAYER_FRAC * L
        best = max(sst['palbert'][0]['curves'][0][1], key=lambda x: x[1])
        verdicts.append(
            f'- **(b) PALBERT Q-exit q = {q} on SST-2 within {TARGET_POINTS:g} point of full depth using ≤ '
            f'{100 * TARGET_LAYER_FRAC:.0f}% of the layers**: {100 * s:.2f}% ({signed(100 * (s - f))} points) at {l:.2f} / {L} '
            f'= {100 * l / L:.1f}% of the layers (the limit is {TARGET_LAYER_FRAC * L:.2f}) — '
            + ('met' if ok else 'not met') + f'. Along its curve the best point is {best[0]}: {100 * best[1]:.1f}% at '
            f'{best[2]:.2f} layers, but choosing q there would be another dev-set choice.')
    if all(m in methods for m in ('palbert', 'pabee', 'pondernet')):
        pal, pab, pon = full_mean['palbert'], full_mean['pabee'], full_mean['pondernet']
        ok = pal[0] >= pab[0] and pal[0] >= pon[0]
        text = (f'- **(c) over the {len(tasks)} tasks, PALBERT\'s mean ≥ PABEE\'s and PonderNet\'s at comparable average '
                f'layers**: at the defaults PALBERT {100 * pal[0]:.2f} @ {pal[1]:.2f} layers, PABEE {100 * pab[0]:.2f} @ '
                f'{pab[1]:.2f}, PonderNet {100 * pon[0]:.2f} @ {pon[1]:.2f} — ' + ('met' if ok else 'not met') + '. ')
        if pal[0] < pab[0]:
            text += (f'PALBERT is {100 * (pab[0] - pal[0]):.2f} points below PABEE'
                     + (' while using more layers' if pal[1] > pab[1] else '') + '. ')
        if pal[0] >= pon[0]:
            text += (f'It is {100 * (pal[0] - pon[0]):.2f} points above PonderNet'
                     + (f', but with {pal[1] - pon[1]:.2f} more layers on average' if pal[1] > pon[1] else '') + '.')
        verdicts.append(text)
    lines += verdicts

    # equal layers, mean over the tasks, main curves: PALBERT / PonderNet Q-exit, PABEE patience
    main_methods = [m for m in ('palbert', 'pondernet', 'pabee') if m in methods]
    if main_methods:
        budgets = [b for b in range(1, 13) if all(at(t, m, b) is not None for t in tasks for m in main_methods)]
        if budgets:
            lines += ['', f'  At equal average layers (each method\'s curve interpolated linearly: Q-exit over q for PALBERT and '
                      f'PonderNet, patience for PABEE; mean of the {len(tasks)} tasks, only where every task\'s curve reaches '
                      f'that many layers):', '',
                      '  | layers | ' + ' | '.join(METHOD_NAMES[m] for m in main_methods)
                      + (' | PALBERT − PABEE |' if 'palbert' in main_methods and 'pabee' in main_methods else ' |'),
                      '  |---|' + '---|' * len(main_methods) + ('---|' if 'palbert' in main_methods and 'pabee' in main_methods else '')]
            spans = {}
            for b in budgets:
                vals = {m: mean(at(t, m, b) for t in tasks) for m in main_methods}
                for m in main_methods:
                    if m != 'palbert' and 'palbert' in vals:
                        spans.setdefault(m, []).append(vals['palbert'] - vals[m])
                row = f'  | {b} | ' + ' | '.join(f'{100 * vals[m]:.2f}' for m in main_methods)
                if 'palbert' in vals and 'pabee' in vals:
                    row += f' | {signed(100 * (vals["palbert"] - vals["pabee"]))}'
                lines.append(row + ' |')
            if spans:
                lines += ['', f'  From {budgets[0]} to {budgets[-1]} layers PALBERT\'s mean is '
                          + ', and '.join(f'{signed(100 * min(v))} to {signed(100 * max(v))} points against {METHOD_NAMES[m]}'
                                          + ('\'s Q-exit' if m == 'pondernet' else '') for m, v in spans.items()) + '.']
        if 'palbert' in main_methods and 'pabee' in main_methods:
            ahead = []
            for t in tasks:
                bs = [b for b in range(1, 13) if at(t, 'palbert', b) is not None and at(t, 'pabee', b) is not None]
                win = [b for b in bs if at(t, 'palbert', b) > at(t, 'pabee', b)]
                ahead.append(f'{t} at {fmt_range(win)} (of {bs[0]}–{bs[-1]}) layers' if win else
                             f'{t} nowhere in {bs[0]}–{bs[-1]} layers')
            lines += ['', '  Where PALBERT\'s Q-exit curve is above PABEE\'s patience curve at equal (whole) layers: '
                      + '; '.join(ahead) + '. PABEE cannot exit before layer 2 (patience 1 needs two agreeing layers), and at a budget of a '
                      'few layers its patience is 1–3, which exits on weak early heads; Q-exit reaches those budgets '
                      'through a low q instead.']
        if one_seed and 'palbert' in methods and 'pabee' in methods:
            diffs, parts, point = [], [], []
            for i, t in enumerate(tasks):
                if 'palbert' in by_task[t] and 'pabee' in by_task[t]:
                    ra, rb = by_task[t]['palbert'][0], by_task[t]['pabee'][0]
                    d = paired_bootstrap(kinds[t], ra['gold'], ra['pred'], rb['pred'], seed=i)
                    diffs.append(d)
                    point.append(ra['default'][0] - rb['default'][0])
                    parts.append(f'{t} {signed(100 * point[-1])} {ci(d)}')
            m = np.mean(diffs, axis=0)
            lines += ['', f'  PALBERT − PABEE at the defaults with 95% paired-bootstrap intervals over the dev examples '
                      f'({BOOTSTRAP} resamples; one seed, so training noise is not in them): ' + '; '.join(parts)
                      + f'; the {len(diffs)}-task mean {signed(100 * mean(point))} {ci(m)}.']
    lines.append('')

    # ---- per task
    for t in tasks:
        kind = kinds[t]
        lines += [f'## {t}', '',
                  f'{n_dev[t]} dev examples; metric: {metric_names[kind]}'
                  + ('' if majority[t] is None else f'; the majority class scores {100 * majority[t]:.2f}') + '.', '',
                  '| method | seed | best epoch / run | criterion at its default | metric | layers | last layer metric '
                  '| last epoch: metric @ layers |',
                  '|---|---|---|---|---|---|---|---|']
        for m in methods:
            for run in by_task[t].get(m, []):
                res, a = run['res'], run['res']['args']
                crit = {'full': 'none', 'palbert': f'Q-exit q={a["q"]}',
                        'pondernet': f'sampled ({a["ponder_samples"]} draws)', 'pabee': f'patience {a["patience"]}',
                        'gates': f'g > {a.get("gate_threshold")}, γ = {a.get("gamma")}'}[m]
                last = res['best']['per_layer'][-1]
                ran = len(res['history'])  # fewer than asked when glue.sh's time budget or --early_stop ended the run
                epochs = f'{res["best_epoch"]}/{ran}' + (f' of {a["epochs"]}' if ran < a['epochs'] else '')
                s, l = run['default']
                ls, ll = run['last_epoch']
                lines.append(f'| {METHOD_NAMES[m]} | {a["seed"]} | {epochs} | {crit} | {100 * s:.2f} | {l:.2f} | '
                             f'{100 * last["score"]:.2f} | {100 * ls:.2f} @ {ll:.2f} |')
        def tag(m, run):  # the seed, where a task and method has several runs
            return f' (seed {run["res"]["args"]["seed"]})' if len(by_task[t][m]) > 1 else ''

        rows_eq = [(METHOD_NAMES[m], name + tag(m, run), pts) for m in methods for run in by_task[t].get(m, [])
                   for name, pts in run['equal']]
        if rows_eq:
            L = max(r['L'] for rs in by_task[t].values() for r in rs)
            lines += ['', 'At equal average layers (each curve interpolated linearly between its points; – outside its '
                      'range):', '',
                      '| curve | ' + ' | '.join(str(b) for b in range(1, L + 1)) + ' |', '|---|' + '---|' * L]
            for _, name, pts in rows_eq:
                cells = [interp(pts, b) for b in range(1, L + 1)]
                lines.append(f'| {name} | ' + ' | '.join('–' if c is None else f'{100 * c:.1f}' for c in cells) + ' |')
        lines += ['', 'Along each criterion\'s curve (metric / layers):', '']
        for m in methods:
            for run in by_task[t].get(m, []):
                for name, pts in run['curves']:
                    cells = ', '.join(f'{lab}: {100 * s:.1f} / {l:.2f}' for lab, s, l in pts)
                    lines.append(f'- **{name}{tag(m, run)}**: {cells}')
        for m in ('palbert', 'pondernet'):
            for run in by_task[t].get(m, []):
                h = run['halting']
                lines.append(f'- **{METHOD_NAMES[m]}, λ{tag(m, run)}**: mean over layers 1–{run["L"] - 1} {h["mean"]:.3f} (per layer '
                             + ' '.join(f'{x:.3f}' for x in h['layer_means']) + f'), across-example SD {h["sd_examples"]:.3f}; '
                             f'Q-exit q = {run["res"]["args"]["q"]} exits at layer {h["modal"]} for '
                             f'{100 * h["modal_share"]:.0f}% of the examples (exit layer SD {h["exit_sd"]:.2f})')
        lines.append('')

    # ---- beside the papers
    lines += ['## Beside the paper', '',
              'PALBERT\'s published dev results on ALBERT-base-v2 (project page table, via',
              '`../shared/docs/early-exit-methods.md` §6.1; average layers are not published, nor is the metric of each',
              'column or whether a number is a mean over seeds), then ours at each default (metric @ average layers):', '',
              '| method | ' + ' | '.join(tasks) + f' | mean of the {len(tasks)} |', '|---|' + '---|' * (len(tasks) + 1)]
    for name, vals in PAPER_DEV.items():
        lines.append(f'| {name} (paper) | ' + ' | '.join(f'{vals[t]:.1f}' for t in tasks)
                     + f' | {mean(vals[t] for t in tasks):.2f} |')
    for m in methods:
        cells = []
        for t in tasks:
            v = avg(t, m, 'default')
            cells.append('–' if v is None else f'{100 * v[0]:.1f} @ {v[1]:.1f} L')
        fm = full_mean[m]
        lines.append(f'| {METHOD_NAMES[m]} (ours) | ' + ' | '.join(cells)
                     + f' | {100 * fm[0]:.2f} @ {fm[1]:.1f} L' + ('' if fm[2] == len(tasks) else f' ({fm[2]} tasks)') + ' |')
    lines += ['', 'PABEE\'s own README (§6.2; ALBERT-base, dev; its speed-up 1.57× is about 7.6 of 12 layers):', '',
              '| method | ' + ' | '.join(tasks) + f' | mean of the {len(tasks)} |', '|---|' + '---|' * (len(tasks) + 1)]
    for name, vals in PABEE_OWN.items():
        lines.append(f'| {name} | ' + ' | '.join(f'{vals[t]:.1f}' for t in tasks)
                     + f' | {mean(vals[t] for t in tasks):.2f} |')
    pm = {n: mean(PAPER_DEV[n][t] for t in tasks) for n in PAPER_DEV}
    paper_order = sorted(pm, key=lambda n: -pm[n])
    ours = {METHOD_NAMES[m]: full_mean[m][0] for m in methods if full_mean[m][2] == len(tasks)}
    our_order = sorted(ours, key=lambda n: -ours[n])
    lines += ['', f'Ordered by the mean over these {len(tasks)} tasks: the paper '
              + ' > '.join(f'{n} {pm[n]:.2f}' for n in paper_order) + '; ours (tasks all run) '
              + ' > '.join(f'{n} {100 * ours[n]:.2f}' for n in our_order) + '.', '']

    # ---- the gap
    epochs = {}
    for t in tasks:
        for rs in by_task[t].values():
            for r in rs:
                epochs.setdefault(r['res']['args']['epochs'], set()).add(t)
    all_runs = [r for t in tasks for rs in by_task[t].values() for r in rs]
    a0 = all_runs[0]['res']['args']
    recipe = ('; '.join(f'{e} epoch(s) on {", ".join(t for t in tasks if t in ts)}' for e, ts in sorted(epochs.items()))
              + f', seed(s) {", ".join(map(str, seeds))}')
    if 'gates' in methods:
        recipe += ' (JEI-DNN gates: the backbone and heads see 90% of the training set, the gates the other 10%)'
    lr_text = f'{a0["lr"]:.0e}'.replace('e-0', 'e-')
    lines += ['### The gap, honestly', '',
              '- Backbone: ours is a 5.6 M-parameter ALBERT (E 128, H 512) pretrained from scratch for about 10 GPU-minutes on',
              '  a 26.6 M-token corpus; ALBERT-base-v2 (12 M parameters, H 768) was pretrained on BookCorpus and Wikipedia',
              '  (about 3.3 B words) for 125k steps at batch 4096. Most of the distance to the paper\'s numbers comes from that.',
              f'- Recipe: {recipe}, lr {lr_text} ({a0["schedule"]} schedule, {100 * a0["warmup_frac"]:g}% warm-up), batch '
              f'{a0["batch_size"]}; the paper\'s protocol is up to 25 epochs',
              '  with early stopping, lr 1e-5, no schedule, and (probably) several seeds.']
    gaps = [(r['default'][0] - r['last_epoch'][0], r) for r in all_runs if len(r['res']['history']) > 1]
    if gaps:
        g, worst = max(gaps, key=lambda x: x[0])
        lines.append(f'- Epoch choice: the best epoch by the default point was picked on the dev set reported here (no '
                     f'held-out test set). Against each run\'s last epoch this adds {100 * mean(x for x, _ in gaps):.2f} '
                     f'points on average over {len(gaps)} runs, at most {100 * g:.2f} ({worst["res"]["task"]} '
                     f'{METHOD_NAMES[worst["res"]["method"]]}, epoch {worst["res"]["best_epoch"]} of '
                     f'{len(worst["res"]["history"])}).')
    hal = [(t, r) for t in tasks for r in by_task[t].get('palbert', [])]
    if hal:
        prior = hal[0][1]['res']['args']['prior_lambda']
        lo = min(r['halting']['mean'] for _, r in hal)
        hi = max(r['halting']['mean'] for _, r in hal)
        sd = max(r['halting']['sd_examples'] for _, r in hal)
        adapt = '; '.join(f'{t} {100 * r["halting"]["q_score"][0]:.1f} vs {100 * r["halting"]["cut_at"]:.1f}'
                          for t, r in hal if r['halting']['cut_at'] is not None)
        lines.append(f'- Halting: PALBERT\'s λ stays near (mostly below) the prior\'s λ_p = {prior:g} — its mean over layers '
                     f'1–{hal[0][1]["L"] - 1} is {lo:.3f}–{hi:.3f} per task — and hardly depends on the example: the '
                     f'across-example SD of λ is at most {sd:.3f}, and the exit layer\'s SD is '
                     f'{min(r["halting"]["exit_sd"] for _, r in hal):.2f}–{max(r["halting"]["exit_sd"] for _, r in hal):.2f} '
                     f'layers. So Q-exit acts as a per-task fixed depth, consistent with the KL term (β = '
                     f'{hal[0][1]["res"]["args"]["beta"]:g}) holding λ at its prior; the λ head has not learned which '
                     f'examples are easy. Q-exit against the same model cut at the same average depth (interpolated): '
                     f'{adapt} — no gain from adaptivity. (PonderNet\'s λ behaves the same: per-task sections.)')
    chance = [t for t in tasks if majority[t] is not None and 'full' in by_task[t]
              and avg(t, 'full', 'default')[0] - majority[t] < 0.03]
    for t in chance:
        acc = by_task[t]['full'][0]['res']['best']['default'].get('acc', 0.5)
        acc_se = 100 * math.sqrt(acc * (1 - acc) / n_dev[t])
        vals = [avg(t, m, 'default')[0] for m in methods if avg(t, m, 'default')]
        lines.append(f'- {t}: full depth scores {100 * avg(t, "full", "default")[0]:.2f} against the majority class\'s '
                     f'{100 * majority[t]:.2f}: this small backbone barely learns it. With {n_dev[t]} dev examples one '
                     f'standard error of the full-depth accuracy ({100 * acc:.1f}%) is {acc_se:.1f} points, so the methods\' '
                     f'spread ({100 * min(vals):.1f}–{100 * max(vals):.1f}) is mostly noise and epoch choice.')
    if 'STS-B' in by_task and all(m in by_task['STS-B'] for m in ('full', 'palbert', 'pabee')):
        sb = by_task['STS-B']
        lastl = {m: sb[m][0]['res']['best']['per_layer'][-1]['score'] for m in sb}
        lines.append(f'- STS-B (regression): at layer 12, full depth {100 * lastl["full"]:.1f}, PABEE\'s last head '
                     f'{100 * lastl["pabee"]:.1f}, PALBERT\'s shared head {100 * lastl["palbert"]:.1f}'
                     + (f', PonderNet\'s {100 * lastl["pondernet"]:.1f}' if 'pondernet' in lastl else '')
                     + '. Our reading (no ablation run): one head shared by every layer, trained on a loss spread over '
                     f'all of them (under the prior the first {sb["palbert"][0]["L"] - 1} layers carry '
                     f'{100 * (1 - (1 - sb["palbert"][0]["res"]["args"]["prior_lambda"]) ** (sb["palbert"][0]["L"] - 1)):.0f}% '
                     'of it), costs the regression most, while PABEE\'s per-layer heads with a loss weighted toward the '
                     'late layers lose less. PABEE\'s patience with threshold '
                     f'{sb["pabee"][0]["res"]["args"]["pabee_threshold"]:g} rarely fires ({sb["pabee"][0]["default"][1]:.2f} '
                     'layers at its default). Most of PALBERT\'s distance to PABEE in the mean is this task: '
                     f'{100 * (sb["pabee"][0]["default"][0] - sb["palbert"][0]["default"][0]):.1f} points here, '
                     f'{100 * (sb["pabee"][0]["default"][0] - sb["palbert"][0]["default"][0]) / len(tasks):.2f} of the mean.')
    gate_runs = [(t, r) for t in tasks for r in by_task[t].get('gates', []) if r.get('gate_fit')]
    if gate_runs:
        capped = [sum(1 for w in r['gate_fit']['pos_weight'] if w >= r['res']['args']['pos_weight_cap'])
                  for _, r in gate_runs]
        parts = []
        for t, r in gate_runs:
            thr = r['res']['args']['gate_threshold']
            u = [x for x in r.get('unweighted', []) if x['threshold'] == thr]
            parts.append(f'{t} {100 * r["default"][0]:.1f} @ {r["default"][1]:.2f}'
                         + (f' (without: {100 * u[0]["score"]:.1f} @ {u[0]["avg_layers"]:.2f})' if u else ''))
        lines.append(f'- JEI-DNN gates: pos_weight reaches its cap of {gate_runs[0][1]["res"]["args"]["pos_weight_cap"]:g} '
                     f'on {min(capped)}–{max(capped)} of the {gate_runs[0][1]["L"] - 1} gates, which pushes every gate '
                     'toward exiting: at τ = 0.5 they exit after ' + '; '.join(parts) + '. Where the first layers\' heads '
                     'still predict the majority class (CoLA: Matthews 0 at layers 1–2), early exits cost the metric, '
                     'which the per-example cross-entropy + γ·l/L target does not see. The gates\' backbone also trains '
                     'on 90% of the training set.')
        near = [(t, r) for t, r in gate_runs if majority[t] is not None and r['default'][0] - majority[t] < 0.015]
        if near:
            lines.append('  Near the majority class: ' + '; '.join(
                f'{t} gates {100 * r["default"][0]:.1f} @ {r["default"][1]:.2f} layers against {100 * majority[t]:.1f} for '
                f'always answering the majority class' for t, r in near) + '.')
        if 'SST-2' in by_task and 'gates' in by_task['SST-2']:
            g2 = at('SST-2', 'gates', 2)
            p2 = at('SST-2', 'palbert', 2)
            if g2 is not None and p2 is not None:
                lines.append(f'  Where the early layers are good (SST-2), the gates give the most accuracy per layer: '
                             f'{100 * g2:.1f} at 2 layers against PALBERT\'s Q-exit {100 * p2:.1f} (PABEE cannot stop '
                             'that early).')
    lines += ['', '## How these were run', '',
              'Each run is `python3 training/finetune.py --task <task> --method <method> --glue .data/glue --init '
              'training/artifacts/pretrain --epochs <E> --seed <seed>` (through `training/glue.sh`; '
              '`training/README.md` has the calls), all other arguments at their defaults:', '']
    shared = {}
    keys = [k for r in all_runs for k in r['res']['args']]
    for k in dict.fromkeys(keys):
        vals = {json.dumps(r['res']['args'][k]) for r in all_runs if k in r['res']['args']}
        v = next(r['res']['args'][k] for r in all_runs if k in r['res']['args'])
        if len(vals) == 1 and v != '' and k not in ('task', 'method', 'out_dir', 'deadline', 'seed', 'epochs', 'glue',
                                                     'init'):
            shared[k] = v
    lines.append('    ' + ' '.join(f'--{k} {v}' for k, v in shared.items()))
    lines += ['', 'The SST-2 runs other than the gates predate the gates\' arguments (`--gamma` and the rest are absent '
              'from their results.json) and `train_rows`; `--save_model` is 1 on SST-2 (its models are exported), 0 '
              'elsewhere.']
    lines += ['', '| run | epochs asked / run | seed | train rows | wall (s) |', '|---|---|---|---|---|']
    wall = {}
    jobs = os.path.join(args.runs, 'jobs.tsv')
    if os.path.exists(jobs):
        for line in open(jobs, encoding='utf-8'):
            c = line.rstrip('\n').split('\t')
            if len(c) >= 3:
                wall[c[0]] = c[2]
    for r in all_runs:
        base = os.path.basename(r['dir'])
        res = r['res']
        rows_ = res.get('train_rows')
        lines.append(f'| {base} | {res["args"]["epochs"]} / {len(res["history"])} | {res["args"]["seed"]} | '
                     f'{rows_ if rows_ is not None else "–"}'
                     + (f' (+{res["heldout_rows"]} held out)' if res.get('heldout_rows') else '')
                     + f' | {wall.get(base, "– (not in jobs.tsv)")} |')
    missing = [t for t in TASKS if t not in by_task]
    if missing:
        lines.append(f'\nTasks still to run: {", ".join(missing)} (`bash training/glue.sh`).')
    lines.append('')
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))
    print(f'wrote {args.out} ({len(by_task)} task(s), {len(folders)} runs)')


if __name__ == '__main__':
    main()
