"""
Export a fine-tuned checkpoint (finetune.py's out_dir/model) to the Hugging Face layout that the
engine loads (docs/checkpoint-format.md): config.json (with the `ponder` object), model.safetensors
(Hugging Face names plus `ponder.*`: λ MLP, per-layer heads, gates), and the tokenizer files the fine-tuned
checkpoint carries (ours: tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt; a Hugging
Face ALBERT's from --init: tokenizer.json, tokenizer_config.json, ..., spiece.model). The safetensors file is written here by hand (the format is a JSON header and raw
little-endian bytes), so this needs torch but not the safetensors package.

    python3 training/export.py --ckpt training/runs/sst2-palbert/model --out public/models/ponder-albert-sst2 --dtype fp16

The folder also loads in transformers as a plain AlbertForSequenceClassification (it ignores `ponder`).
"""

import argparse
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DTYPES = {'fp32': ('F32', 'float32'), 'fp16': ('F16', 'float16'), 'bf16': ('BF16', 'bfloat16')}
# The first two are required; spiece.model comes with a Hugging Face ALBERT tokenizer (finetune.py --init).
TOKENIZER_FILES = ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', 'spiece.model')


def die(msg):
    print(f'export: error: {msg}', file=sys.stderr)
    sys.exit(2)


def write_safetensors(path, tensors, dtype):
    """tensors: {name: torch tensor}; every tensor is converted to dtype ('fp32' | 'fp16' | 'bf16')."""
    import torch

    st_name, torch_name = DTYPES[dtype]
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to('cpu', getattr(torch, torch_name)).contiguous()
        # Raw bytes through a uint8 view: numpy has no bfloat16.
        raw = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b''
        header[name] = dict(dtype=st_name, shape=list(t.shape), data_offsets=[offset, offset + len(raw)])
        blobs.append(raw)
        offset += len(raw)
    header['__metadata__'] = dict(format='pt')
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)  # the data starts 8-byte aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help="finetune.py's <out_dir>/model folder")
    p.add_argument('--out', required=True)
    p.add_argument('--dtype', default='fp32', choices=sorted(DTYPES))
    args = p.parse_args()

    from model import load_checkpoint_meta, load_checkpoint_tensors, read_safetensors

    try:
        meta = load_checkpoint_meta(args.ckpt)
    except FileNotFoundError as e:
        die(str(e))
    if meta.get('kind') != 'finetune':
        die(f'{args.ckpt!r} is a {meta.get("kind")!r} checkpoint; export takes a fine-tuned one (finetune.py --out_dir X '
            f'writes X/model)')
    missing = [f for f in TOKENIZER_FILES[:2] if not os.path.isfile(os.path.join(args.ckpt, f))]
    if missing:
        die(f'{args.ckpt!r} lacks {missing}')

    import torch

    sd = {k[len('model.'):]: v.float() for k, v in load_checkpoint_tensors(args.ckpt, meta).items()}
    config = dict(meta['config'])
    L = config['num_hidden_layers']
    if config.get('ponder', {}).get('per_layer_heads'):
        # PABEE and gates train one head per layer; Hugging Face's `classifier` is the last layer's.
        sd['classifier.weight'] = sd[f'ponder.heads.{L - 1}.weight'].clone()
        sd['classifier.bias'] = sd[f'ponder.heads.{L - 1}.bias'].clone()
    config['dtype'] = DTYPES[args.dtype][1]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, 'model.safetensors')
    write_safetensors(path, sd, args.dtype)
    with open(os.path.join(args.out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    for name in TOKENIZER_FILES:
        src = os.path.join(args.ckpt, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(args.out, name))

    back = read_safetensors(path)
    worst = max(float((back[k].float() - v).abs().max()) if v.numel() else 0.0 for k, v in sd.items())
    assert set(back) == set(sd), 'tensor names changed in the round trip'
    size = os.path.getsize(path)
    print(f'wrote {args.out}: {len(sd)} tensors, {sum(v.numel() for v in sd.values()) / 1e6:.2f}M parameters, '
          f'model.safetensors {size / 1e6:.1f} MB ({args.dtype}); round trip max |diff| {worst:.3g}')


if __name__ == '__main__':
    main()
