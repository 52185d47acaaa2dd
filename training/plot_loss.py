"""
Plot MLM loss curves from pretrain.py's log.csv files (needs matplotlib; no torch).

    python3 training/plot_loss.py --out training/artifacts/loss.png training/artifacts/sweep/g0_base.csv \
        training/artifacts/sweep/g2_short.csv training/artifacts/sweep/g3_aggr.csv \
        'training/artifacts/pretrain/log.csv=g1_depth, then 4 GPUs with decay'

Left: training loss against training seconds (wall time is the budget we spend); right: against
tokens seen. Held-out loss points (val_loss, always at full depth 12) are drawn as dots; during a
depth curriculum they sit above the training loss, which is measured at the current depth.
"""

import argparse
import csv
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('logs', nargs='+')
    p.add_argument('--out', default='training/artifacts/loss.png')
    p.add_argument('--title', default='ALBERT MLM pretraining (E128 H512 x12, 16k WordPiece)')
    args = p.parse_args()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for spec in args.logs:
        path, _, name = spec.partition('=')  # path[=label]
        rows = read(path)
        name = name or os.path.splitext(os.path.basename(path))[0]
        t = [float(r['train_seconds']) for r in rows]
        tok = [int(r['tokens']) / 1e6 for r in rows]
        loss = [float(r['loss']) for r in rows]
        val = [(float(r['train_seconds']), int(r['tokens']) / 1e6, float(r['val_loss'])) for r in rows if r['val_loss']]
        line = axes[0].plot(t, loss, lw=1, label=name)[0]
        axes[1].plot(tok, loss, lw=1, color=line.get_color(), label=name)
        axes[0].plot([v[0] for v in val], [v[2] for v in val], '.', color=line.get_color())
        axes[1].plot([v[1] for v in val], [v[2] for v in val], '.', color=line.get_color())
    for ax, xl in zip(axes, ['training seconds (compile and evaluation excluded)', 'tokens seen (millions)']):
        ax.set_xlabel(xl)
        ax.set_ylabel('masked-LM loss (nats)')
        ax.set_ylim(2.5, 10)
        ax.axhline(5.9, color='grey', ls=':', lw=1)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].text(5, 6.0, 'unigram plateau of the earlier probe', color='grey', fontsize=8)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
