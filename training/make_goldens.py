#!/usr/bin/env python3
"""Write the PyTorch golden fixtures that the TypeScript CPU reference and the WGSL engine are tested against.

For each fixture this writes, under OUT/<name>/:
  config.json, model.safetensors  -- a small random-weight Hugging Face sequence-classification checkpoint with
                                     odd shapes, exactly as save_pretrained writes it (fp32 safetensors);
  golden.json                     -- several padded input batches and, for each, the logits PALBERT's shared
                                     head gives after every layer (the model's own pooler + classifier applied
                                     to each layer's hidden state), the normal forward's logits and the pooled
                                     [CLS] vector of the first example after every layer.

Numbers are computed in fp32 on the CPU with deterministic algorithms, from the checkpoint as reloaded from
disk, so the goldens describe the saved files and nothing else. Needs torch, transformers and safetensors
(only the GPU machine has them; see training/README.md).

    python3 training/make_goldens.py --out tests/fixtures/golden
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
import transformers
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
)


@dataclass
class Fixture:
    name: str
    arch: str  # 'albert' | 'bert'
    seed: int
    config: dict
    # Each batch: (sequence length the batch is padded to, the real lengths of its examples).
    batches: list[tuple[int, list[int]]]
    # Scale of the random LayerNorm gammas around 1 and of every bias (so that no parameter is a no-op).
    norm_spread: float = 0.2
    bias_std: float = 0.1
    # Examples given a single segment (all token types 0); the others get two.
    single_segment: list[int] = field(default_factory=list)


FIXTURES = [
    Fixture(
        name='albert-odd',
        arch='albert',
        seed=1001,
        config=dict(
            vocab_size=101,
            embedding_size=40,
            hidden_size=120,
            num_attention_heads=5,
            intermediate_size=333,
            num_hidden_layers=7,
            num_hidden_groups=1,
            inner_group_num=1,
            max_position_embeddings=64,
            type_vocab_size=2,
            hidden_act='gelu_new',
            initializer_range=0.1,
            layer_norm_eps=1e-12,
            id2label={0: 'negative', 1: 'neutral', 2: 'positive'},
            label2id={'negative': 0, 'neutral': 1, 'positive': 2},
        ),
        batches=[(37, [37, 5, 23]), (64, [64, 41]), (5, [5])],
        single_segment=[2],
    ),
    Fixture(
        # 6 layers over 3 groups of 2 inner layers: the schedule is [0,1] [0,1] [2,3] [2,3] [4,5] [4,5].
        name='albert-groups',
        arch='albert',
        seed=1002,
        config=dict(
            vocab_size=67,
            embedding_size=20,
            hidden_size=36,
            num_attention_heads=3,
            intermediate_size=70,
            num_hidden_layers=6,
            num_hidden_groups=3,
            inner_group_num=2,
            max_position_embeddings=40,
            type_vocab_size=2,
            hidden_act='relu',
            initializer_range=0.18,
            layer_norm_eps=1e-6,
            num_labels=2,
        ),
        batches=[(37, [37, 5, 17]), (40, [40, 9]), (5, [5])],
    ),
    Fixture(
        name='bert-odd',
        arch='bert',
        seed=1003,
        config=dict(
            vocab_size=103,
            hidden_size=84,
            num_attention_heads=6,
            intermediate_size=170,
            num_hidden_layers=5,
            max_position_embeddings=48,
            type_vocab_size=2,
            hidden_act='gelu',
            initializer_range=0.11,
            layer_norm_eps=1e-12,
            num_labels=2,
        ),
        batches=[(37, [37, 5, 20]), (48, [48, 31]), (5, [5])],
        single_segment=[1],
    ),
    Fixture(
        name='bert-regression',
        arch='bert',
        seed=1004,
        config=dict(
            vocab_size=50,
            hidden_size=32,
            num_attention_heads=2,
            intermediate_size=37,
            num_hidden_layers=3,
            max_position_embeddings=24,
            type_vocab_size=2,
            hidden_act='gelu_new',
            initializer_range=0.18,
            layer_norm_eps=1e-5,
            num_labels=1,
            problem_type='regression',
        ),
        batches=[(24, [13, 5, 24, 7]), (5, [5])],
    ),
]

PAD, CLS, SEP, FIRST_WORD = 0, 2, 3, 4


def deterministic() -> None:
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')
    torch.set_num_threads(1)


def build_model(fx: Fixture) -> torch.nn.Module:
    torch.manual_seed(fx.seed)
    if fx.arch == 'albert':
        model = AlbertForSequenceClassification(AlbertConfig(**fx.config))
    else:
        model = BertForSequenceClassification(BertConfig(**fx.config))
    # Hugging Face initializes LayerNorm to (1, 0) and biases to 0; randomize them so that a kernel that drops a
    # bias, a gamma or a beta fails the test.
    gen = torch.Generator().manual_seed(fx.seed + 1)
    init = fx.config['initializer_range']
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            is_norm = 'norm' in name.lower()
            if name.endswith('bias'):
                p.copy_(fx.bias_std * noise)
            elif is_norm and p.dim() == 1:
                p.copy_(1.0 + fx.norm_spread * noise)
            else:
                p.copy_(init * noise)
    return model.eval()


def save_checkpoint(model: torch.nn.Module, path: str) -> list[str]:
    os.makedirs(path, exist_ok=True)
    kwargs = {}
    if 'safe_serialization' in inspect.signature(model.save_pretrained).parameters:
        kwargs['safe_serialization'] = True
    model.save_pretrained(path, **kwargs)
    files = sorted(os.listdir(path))
    assert 'config.json' in files and 'model.safetensors' in files, files
    return files


def make_inputs(rng: np.random.Generator, fx: Fixture, seq_len: int, lengths: list[int]):
    vocab = fx.config['vocab_size']
    ids = np.full((len(lengths), seq_len), PAD, dtype=np.int64)
    types = np.zeros((len(lengths), seq_len), dtype=np.int64)
    mask = np.zeros((len(lengths), seq_len), dtype=np.int64)
    for b, n in enumerate(lengths):
        assert 3 <= n <= seq_len <= fx.config['max_position_embeddings']
        words = rng.integers(FIRST_WORD, vocab, size=n)
        row = words.copy()
        row[0] = CLS
        row[n - 1] = SEP
        if b not in fx.single_segment and n >= 5:
            # [CLS] a.. [SEP] b.. [SEP]: the second segment (and its [SEP]) has token type 1.
            a = int(rng.integers(1, n - 3))
            row[a + 1] = SEP
            types[b, a + 2 : n] = 1
        ids[b, :n] = row
        mask[b, :n] = 1
    return ids, types, mask


def hidden_state_modules(model: torch.nn.Module, arch: str) -> list[torch.nn.Module]:
    """Modules whose successive calls produce the hidden state after layer 1, 2, ..., L."""
    if arch == 'albert':
        # One call of a layer group is one of the L "layers" (it applies all inner_group_num layers).
        return list(model.albert.encoder.albert_layer_groups)
    return list(model.bert.encoder.layer)


def pool_and_classify(model: torch.nn.Module, arch: str, hidden: torch.Tensor):
    cls = hidden[:, 0]
    if arch == 'albert':
        pooled = torch.tanh(model.albert.pooler(cls))
    else:
        pooled = torch.tanh(model.bert.pooler.dense(cls))
    return pooled, model.classifier(pooled)


def first_tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return first_tensor(output[0])
    if hasattr(output, 'last_hidden_state'):
        return output.last_hidden_state
    raise TypeError(f'unexpected layer output {type(output)}')


def run_batch(model, arch: str, num_layers: int, ids, types, mask):
    captured: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: captured.append(first_tensor(out).detach().clone()))
        for m in hidden_state_modules(model, arch)
    ]
    try:
        with torch.no_grad():
            out = model(
                input_ids=torch.from_numpy(ids),
                token_type_ids=torch.from_numpy(types),
                attention_mask=torch.from_numpy(mask),
                output_hidden_states=True,
                return_dict=True,
            )
    finally:
        for h in hooks:
            h.remove()
    assert len(captured) == num_layers, f'{len(captured)} layer outputs captured, expected {num_layers}'
    hs = out.hidden_states
    notes = []
    if hs is not None and len(hs) == num_layers + 1:
        worst = max(float((a - b).abs().max()) for a, b in zip(captured, hs[1:]))
        if worst != 0.0:
            notes.append(f'hooked layer outputs differ from output_hidden_states[1:] by {worst}')
    else:
        notes.append(f'output_hidden_states gave {None if hs is None else len(hs)} entries (L={num_layers})')
    per_layer_logits, per_layer_pooled = [], []
    with torch.no_grad():
        for h in captured:
            pooled, logits = pool_and_classify(model, arch, h)
            per_layer_logits.append(logits)
            per_layer_pooled.append(pooled)
    diff = float((per_layer_logits[-1] - out.logits).abs().max())
    assert diff <= 1e-6, f'last layer logits differ from model(...).logits by {diff}'
    return out.logits, per_layer_logits, per_layer_pooled, notes


def to_list(t: torch.Tensor):
    return t.detach().to(torch.float32).cpu().tolist()


def make_fixture(fx: Fixture, out_root: str) -> dict:
    path = os.path.join(out_root, fx.name)
    if os.path.exists(path):
        shutil.rmtree(path)
    model = build_model(fx)
    files = save_checkpoint(model, path)
    # Compute from the checkpoint as reloaded, so the goldens describe the files and nothing else.
    reloaded, info = AutoModelForSequenceClassification.from_pretrained(path, output_loading_info=True)
    reloaded = reloaded.eval()
    problems = {k: list(v) for k, v in info.items() if v}
    assert not problems, f'{fx.name}: reload problems {problems}'
    assert all(p.dtype == torch.float32 for p in reloaded.parameters())
    num_layers = fx.config['num_hidden_layers']
    rng = np.random.default_rng(fx.seed)
    batches, notes = [], []
    spread = []
    for seq_len, lengths in fx.batches:
        ids, types, mask = make_inputs(rng, fx, seq_len, lengths)
        logits, per_layer, pooled, batch_notes = run_batch(reloaded, fx.arch, num_layers, ids, types, mask)
        notes += batch_notes
        # The model in memory before saving must agree exactly with the reloaded one.
        with torch.no_grad():
            before = model(
                input_ids=torch.from_numpy(ids),
                token_type_ids=torch.from_numpy(types),
                attention_mask=torch.from_numpy(mask),
            ).logits
        moved = float((before - logits).abs().max())
        assert moved <= 1e-6, f'{fx.name}: reload changed the logits by {moved}'
        if moved != 0.0:
            notes.append(f'reloaded model differs from the saved one by {moved}')
        # Evidence that every layer matters: how far each layer's logits move from the previous layer's.
        spread.append(
            [float((per_layer[i] - per_layer[i - 1]).abs().max()) for i in range(1, num_layers)]
        )
        batches.append(
            dict(
                batch=len(lengths),
                seqLen=seq_len,
                lengths=lengths,
                inputIds=ids.tolist(),
                tokenTypeIds=types.tolist(),
                attentionMask=mask.tolist(),
                perLayerLogits=[to_list(x) for x in per_layer],
                logits=to_list(logits),
                perLayerPooledFirst=[to_list(p[0]) for p in pooled],
            )
        )
    config = json.load(open(os.path.join(path, 'config.json')))
    golden = dict(
        fixture=fx.name,
        architecture=fx.arch,
        numLayers=num_layers,
        numLabels=reloaded.config.num_labels,
        generatedBy='training/make_goldens.py',
        torch=torch.__version__,
        transformers=transformers.__version__,
        attnImplementation=getattr(reloaded.config, '_attn_implementation', None),
        device='cpu',
        dtype='float32',
        notes='perLayerLogits[n][b] = classifier(tanh(pooler(hidden_after_layer_{n+1}[b, 0]))); '
        'logits = model(...).logits; perLayerPooledFirst[n] = the pooled vector of example 0.',
        batches=batches,
    )
    with open(os.path.join(path, 'golden.json'), 'w') as f:
        json.dump(golden, f, separators=(',', ':'))
        f.write('\n')
    from safetensors import safe_open

    with safe_open(os.path.join(path, 'model.safetensors'), framework='pt') as st:
        names = {k: list(st.get_slice(k).get_shape()) for k in st.keys()}
        metadata = st.metadata()
    sizes = {f: os.path.getsize(os.path.join(path, f)) for f in sorted(os.listdir(path))}
    return dict(
        files=files,
        sizes=sizes,
        tensors=names,
        metadata=metadata,
        config=config,
        layerSpread=spread,
        maxAbsLogit=max(abs(v) for b in batches for layer in b['perLayerLogits'] for r in layer for v in r),
        notes=notes,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='tests/fixtures/golden', help='folder that receives one folder per fixture')
    parser.add_argument('--only', nargs='*', help='fixture names to (re)generate')
    parser.add_argument('--report', help='also write a JSON report (tensor names, config, sizes) here')
    args = parser.parse_args()
    deterministic()
    print(f'torch {torch.__version__}, transformers {transformers.__version__}, python {sys.version.split()[0]}')
    report = {}
    failures: list[str] = []
    for fx in FIXTURES:
        if args.only and fx.name not in args.only:
            continue
        try:
            r = make_fixture(fx, args.out)
        except Exception as e:  # keep going: one run on the GPU machine should show every problem at once
            failures.append(f'{fx.name}: {type(e).__name__}: {e}')
            print(f'FAILED {failures[-1]}')
            continue
        report[fx.name] = r
        total = sum(r['sizes'].values())
        print(f"{fx.name}: {r['files']} {total / 1024:.0f} KiB, max |logit| {r['maxAbsLogit']:.3f}")
        print(f"  per-layer logit change (batch 0): {['%.3f' % v for v in r['layerSpread'][0]]}")
        for n in r['notes']:
            print(f'  note: {n}')
        if min(min(s) for s in r['layerSpread']) < 1e-3 or math.isnan(r['maxAbsLogit']):
            print('  WARNING: some layer barely changes the logits')
    if args.report:
        with open(args.report, 'w') as f:
            json.dump(report, f, indent=1)
    for f in failures:
        print(f'FAILED {f}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
