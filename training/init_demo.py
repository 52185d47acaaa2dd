"""
Demo and check of `finetune.py --init <Hugging Face ALBERT>` end to end (issue 3):

1. build a random-weight ALBERT with transformers (AlbertForPreTraining: E 64, H 128, 2 heads, intermediate 256,
   4 layers, our 16k vocabulary from training/artifacts/pretrain/tokenizer.json), save_pretrained it and copy our
   tokenizer files beside it: a folder exactly like a downloaded checkpoint;
2. check that model.py reads that folder to the same per-layer hidden states and pooled [CLS] as transformers'
   own AlbertModel (max relative difference <= 1e-4);
3. finetune.py --init <folder> --task SST-2 --method palbert --epochs 1 on a slice of SST-2, then export.py;
   check that the exported folder carries the checkpoint's sizes and tokenizer, and (with transformers) that it
   loads as AlbertForSequenceClassification whose predictions equal the last layer's in dev_predictions.tsv;
4. check that a BERT folder and a Hub id that cannot be reached (HF_HUB_OFFLINE=1) are refused at once, with
   finetune.py's exit code 2, before any GPU work.

    python3 training/init_demo.py --work training/runs/init-demo                  # GPU machine (transformers 5.17)
    python3 training/init_demo.py --work /tmp/demo --device cpu --max_train 300   # here: without transformers
                                                                                  # the folder is written by hand

Without transformers (this machine) step 1 writes config.json (transformers 5's keys: `dtype`, no
position_embedding_type) and model.safetensors by hand under the same tensor names, and the checks that
need transformers are skipped (said so in the output). Prints CHECK lines and a final RESULT line;
exits 1 if a check failed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SIZES = dict(embedding_size=64, hidden_size=128, num_attention_heads=2, intermediate_size=256, num_hidden_layers=4,
             max_position_embeddings=128, hidden_act='gelu_new', hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0,
             bos_token_id=2, eos_token_id=3)
TOKENIZER_FILES = ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt')
checks = []


def check(name, ok, detail=''):
    checks.append(dict(name=name, ok=bool(ok), detail=str(detail)))
    print(f'CHECK {name}: {"ok" if ok else "FAIL"} {detail}', flush=True)


def build_with_transformers(folder, bert_folder, vocab):
    import torch
    from transformers import AlbertConfig, AlbertForPreTraining, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = AlbertForPreTraining(AlbertConfig(vocab_size=vocab, **SIZES)).eval()
    model.save_pretrained(folder)
    BertForSequenceClassification(BertConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=128)).save_pretrained(bert_folder)
    return model.albert


def build_by_hand(folder, bert_folder, vocab):
    """What save_pretrained writes for AlbertForPreTraining under transformers 5, without transformers."""
    import torch

    from export import write_safetensors
    from model import AlbertConfig, AlbertMLMHead, AlbertModel, init_weights

    torch.manual_seed(0)
    cfg = AlbertConfig(vocab_size=vocab, **{k: v for k, v in SIZES.items()})
    albert, mlm = AlbertModel(cfg), AlbertMLMHead(cfg)
    init_weights(albert, cfg)
    init_weights(mlm, cfg)
    sop = torch.nn.Linear(cfg.hidden_size, 2)
    tensors = {f'albert.{k}': v for k, v in albert.state_dict().items()}
    tensors.update({f'predictions.{k}': v for k, v in mlm.state_dict().items()})
    tensors.update({'sop_classifier.classifier.weight': sop.weight, 'sop_classifier.classifier.bias': sop.bias})
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, 'model.safetensors'), tensors, 'fp32')
    config = dict(architectures=['AlbertForPreTraining'], classifier_dropout_prob=0.1, dtype='float32',
                  initializer_range=0.02, inner_group_num=1, model_type='albert', num_hidden_groups=1,
                  tie_word_embeddings=True, transformers_version='5.17.0 (emulated by training/init_demo.py)',
                  vocab_size=vocab, **SIZES)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(dict(sorted(config.items())), f, indent=2)
    os.makedirs(bert_folder, exist_ok=True)
    with open(os.path.join(bert_folder, 'config.json'), 'w') as f:
        json.dump(dict(architectures=['BertForSequenceClassification'], model_type='bert', vocab_size=vocab,
                       hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128), f, indent=2)
    write_safetensors(os.path.join(bert_folder, 'model.safetensors'),
                      {'bert.embeddings.word_embeddings.weight': torch.zeros(vocab, 64)}, 'fp32')
    return None


def compare_with_transformers(hf_albert, folder):
    """Per-layer hidden states and the pooled [CLS] of model.py (read from the folder) vs transformers' AlbertModel."""
    import torch

    from model import AlbertModel, hf_albert_config, hf_albert_encoder_state, read_hf_folder

    config, tensors = read_hf_folder(folder)
    cfg = hf_albert_config(config)
    enc, lacks = hf_albert_encoder_state(tensors, cfg)
    ours = AlbertModel(cfg).eval()
    ours.load_state_dict(enc)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, cfg.vocab_size, (3, 40), generator=g)
    am = torch.ones(3, 40, dtype=torch.long)
    am[1, 9:] = 0
    am[2, 31:] = 0
    tt = torch.zeros(3, 40, dtype=torch.long)
    tt[0, 20:] = 1
    with torch.no_grad():
        hs = ours(ids, tt, am, all_layers=True)
        pooled = ours.pool(hs[-1])
        if hf_albert is None:  # no transformers: the weights read back must equal what was written
            return lacks, None, len(hs)
        out = hf_albert(input_ids=ids, attention_mask=am, token_type_ids=tt, output_hidden_states=True)
    # hidden_states[0] is the embedding projection, then one per inner layer: one per layer here (1 group x 1 inner).
    ref = list(out.hidden_states[1:]) if out.hidden_states is not None else []
    if len(ref) != len(hs):
        print(f'transformers gave {len(ref)} per-layer hidden states for {len(hs)} layers: comparing the last only')
        hs, ref = hs[-1:], [out.last_hidden_state]
    valid = am.bool()
    worst = 0.0
    for a, b in zip(hs, ref):
        worst = max(worst, float((a - b)[valid].abs().max() / b[valid].abs().max()))
    worst = max(worst, float((pooled - out.pooler_output).abs().max() / out.pooler_output.abs().max()))
    return lacks, worst, (len(hs), len(ref))


def run(cmd, env=None, timeout=900):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    print(f'$ {" ".join(cmd)}  (rc {p.returncode}, {time.time() - t:.1f}s)\n' + (p.stdout + p.stderr)[-3000:], flush=True)
    return p, time.time() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--work', default='training/runs/init-demo')
    ap.add_argument('--glue', default='.data/glue')
    ap.add_argument('--tokenizer', default=os.path.join(HERE, 'artifacts', 'pretrain'))
    ap.add_argument('--max_train', type=int, default=4000)
    ap.add_argument('--device', default='')
    args = ap.parse_args()

    import torch
    from tokenizers import Tokenizer

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        import transformers
    except ImportError:
        transformers = None
    print(f'init_demo: torch {torch.__version__}, transformers {transformers.__version__ if transformers else "missing"}'
          f', device {device}')
    hf_dir, bert_dir = os.path.join(args.work, 'hf-albert'), os.path.join(args.work, 'hf-bert')
    ft_dir, exp_dir = os.path.join(args.work, 'finetune'), os.path.join(args.work, 'export')
    shutil.rmtree(args.work, ignore_errors=True)
    vocab = Tokenizer.from_file(os.path.join(args.tokenizer, 'tokenizer.json')).get_vocab_size()

    # 1. the checkpoint folder
    builder = build_with_transformers if transformers else build_by_hand
    hf_albert = builder(hf_dir, bert_dir, vocab)
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(args.tokenizer, name), os.path.join(hf_dir, name))
    print(f'wrote {hf_dir}: {sorted(os.listdir(hf_dir))}' + ('' if transformers else ' (by hand: no transformers)'))

    # 2. model.py reads it as transformers does
    lacks, worst, layers = compare_with_transformers(hf_albert, hf_dir)
    check('the pooler comes from the checkpoint', lacks == [], lacks)
    if worst is None:
        print('SKIPPED the comparison with transformers\' AlbertModel: transformers is missing here')
    else:
        check('model.py = transformers AlbertModel (hidden states of every layer, pooled [CLS])', worst <= 1e-4,
              f'max rel diff {worst:.2e}, layers {layers}')

    # 3. fine-tune from it, export
    py = sys.executable
    p, ft_s = run([py, os.path.join(HERE, 'finetune.py'), '--init', hf_dir, '--task', 'SST-2', '--method', 'palbert',
                   '--epochs', '1', '--max_train', str(args.max_train), '--glue', args.glue, '--out_dir', ft_dir,
                   '--device', device])
    result = next((json.loads(l[len('RESULT '):]) for l in p.stdout.splitlines() if l.startswith('RESULT ')), None)
    check('finetune.py --init <HF folder> ran', p.returncode == 0 and result is not None, f'rc {p.returncode}')
    p, _ = run([py, os.path.join(HERE, 'export.py'), '--ckpt', os.path.join(ft_dir, 'model'), '--out', exp_dir,
                '--dtype', 'fp32'])
    check('export.py ran', p.returncode == 0, f'rc {p.returncode}')
    if p.returncode == 0:
        exp = json.load(open(os.path.join(exp_dir, 'config.json')))
        src = json.load(open(os.path.join(hf_dir, 'config.json')))
        keys = ['vocab_size', 'embedding_size', 'hidden_size', 'num_attention_heads', 'intermediate_size',
                'num_hidden_layers', 'hidden_act', 'max_position_embeddings']
        check('exported config has the checkpoint\'s sizes', all(exp[k] == src[k] for k in keys),
              {k: (exp[k], src[k]) for k in keys if exp[k] != src[k]})
        check('exported config: PALBERT ponder object', exp.get('ponder', {}).get('method') == 'palbert')
        same_tok = open(os.path.join(exp_dir, 'tokenizer.json'), 'rb').read() == open(
            os.path.join(hf_dir, 'tokenizer.json'), 'rb').read()
        check('exported tokenizer.json = the checkpoint\'s', same_tok)
        if transformers:
            from transformers import AlbertForSequenceClassification

            m = AlbertForSequenceClassification.from_pretrained(exp_dir).eval()  # ignores ponder.*
            tok = Tokenizer.from_file(os.path.join(exp_dir, 'tokenizer.json'))
            rows = open(os.path.join(args.glue, 'SST-2', 'dev.tsv'), encoding='utf-8').read().split('\n')[1:65]
            tsv = open(os.path.join(ft_dir, 'dev_predictions.tsv')).read().split('\n')[1:65]
            want = [int(r.split('\t')[4].split(',')[-1]) for r in tsv]
            got = []
            with torch.no_grad():
                for r in rows:
                    e = tok.encode(r.split('\t')[0])
                    got.append(int(m(input_ids=torch.tensor([e.ids]), token_type_ids=torch.tensor([e.type_ids]))
                                   .logits.argmax(-1)))
            check('the export loads in transformers; last-layer predictions = dev_predictions.tsv (64 dev rows)',
                  got == want, f'{sum(a == b for a, b in zip(got, want))}/64 equal')
        else:
            print('SKIPPED loading the export in transformers: transformers is missing here')

    # 4. refusals before any GPU work
    p, s = run([py, os.path.join(HERE, 'finetune.py'), '--init', bert_dir, '--task', 'SST-2', '--glue', args.glue,
                '--device', device], timeout=120)
    check('a BERT folder is refused at once', p.returncode == 2 and 'BERT' in p.stderr and s < 60,
          f'rc {p.returncode} in {s:.1f}s: {p.stderr.strip()[-200:]}')
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    p, s = run([py, os.path.join(HERE, 'finetune.py'), '--init', 'albert-base-v2', '--task', 'SST-2', '--glue',
                args.glue, '--device', device, '--max_train', '64', '--save_model', '0'], env=env, timeout=300)
    told = '--init DIR' in p.stderr or 'needs transformers' in p.stderr
    check('an unreachable Hub id is refused with what to do', p.returncode == 2 and told,
          f'rc {p.returncode} in {s:.1f}s: {p.stderr.strip()[-300:]}')

    failed = [c['name'] for c in checks if not c['ok']]
    summary = dict(transformers=transformers.__version__ if transformers else None, device=device,
                   finetune_seconds=round(ft_s, 1), finetune=result, checks=len(checks), failed=failed)
    with open(os.path.join(args.work, 'demo.json'), 'w') as f:
        json.dump(dict(summary, details=checks), f, indent=2)
    print('RESULT ' + json.dumps(summary))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
