"""
Train our own lower-cased WordPiece tokenizer and pre-tokenize the pretraining corpus.

    python3 training/prepare_data.py                       # paths below, from the repo root
    python3 training/prepare_data.py --corpus .data/corpus --glue .data/glue --out .data/prep
    python3 training/prepare_data.py --tokenizer training/artifacts/tokenizer   # reuse a tokenizer

Writes to --out:
    tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt  (loads in
        @xenova/transformers 2.17 as a BertTokenizer and in Hugging Face as BertTokenizerFast)
    train.bin, val.bin   uint16 token ids: every corpus line's ids followed by [SEP]
    meta.json            vocab size, special ids, token counts, sha256 of tokenizer.json

Corpus files may be plain (*.txt) or xz-compressed (*.txt.xz): the GPU machine gets them
xz-compressed because only 64 MiB travel per call. Needs `tokenizers` (the GPU machine has it).
"""

import argparse
import glob
import hashlib
import json
import lzma
import os
import shutil
import sys
import time

# ----------------------------------------------------------------------------------------------
# config (every key can be overridden as --key value)
corpus = '../shared/data/corpus'  # folder of *.txt / *.txt.xz, one paragraph or review per line
glue = '../shared/data/glue'  # GLUE folder; the training text of `tasks` joins the tokenizer's data
tasks = 'SST-2,CoLA,MRPC,RTE,STS-B'
out = '.data/prep'
tokenizer = ''  # folder with an existing tokenizer.json: skip training and reuse it
vocab_size = 16384
min_frequency = 2
limit_alphabet = 1000
val_every = 200  # every n-th corpus line goes to val.bin (0.5%)
# ----------------------------------------------------------------------------------------------
CONFIG = {k: v for k, v in dict(globals()).items() if not k.startswith('_') and isinstance(v, (int, float, str))}

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']  # ids 0..4, as ALBERT's config expects
MAX_LEN = 128  # model_max_length in tokenizer_config.json; pretraining never sees longer inputs

# Which columns hold text in each task's train.tsv, and the header (None: the file has none).
TASK_TEXT = {
    'SST-2': dict(header=['sentence', 'label'], cols=[0], ncols=2),
    'CoLA': dict(header=None, cols=[3], ncols=4),
    'MRPC': dict(header=['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'], cols=[3, 4], ncols=5),
    'RTE': dict(header=['index', 'sentence1', 'sentence2', 'label'], cols=[1, 2], ncols=4),
    'STS-B': dict(header=None, cols=[7, 8], ncols=10),
    'QNLI': dict(header=['index', 'question', 'sentence', 'label'], cols=[1, 2], ncols=4),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in CONFIG.items():
        p.add_argument('--' + k, type=type(v), default=v)
    return p.parse_args()


def die(msg):
    print(f'prepare_data: error: {msg}', file=sys.stderr)
    sys.exit(2)


def open_text(path):
    if path.endswith('.xz'):
        return lzma.open(path, 'rt', encoding='utf-8')
    return open(path, encoding='utf-8')


def corpus_files(folder):
    if not os.path.isdir(folder):
        die(f'corpus folder {folder!r} does not exist (give --corpus: a folder of *.txt or *.txt.xz files)')
    files = sorted(glob.glob(os.path.join(folder, '*.txt')) + glob.glob(os.path.join(folder, '*.txt.xz')))
    if not files:
        die(f'corpus folder {folder!r} holds no *.txt or *.txt.xz file')
    return files


def task_sentences(glue_dir, task):
    """The text columns of a task's train.tsv, with its layout checked before any work."""
    if task not in TASK_TEXT:
        die(f'unknown task {task!r}; known: {", ".join(TASK_TEXT)}')
    spec = TASK_TEXT[task]
    path = os.path.join(glue_dir, task, 'train.tsv')
    if not os.path.isfile(path):
        die(f'{path} does not exist (give --glue the folder that holds {task}/train.tsv, or drop {task} from --tasks)')
    out_lines = []
    with open(path, encoding='utf-8-sig') as f:
        rows = f.read().split('\n')
    if rows and rows[-1] == '':
        rows.pop()
    if spec['header'] is not None:
        head = rows[0].split('\t')
        if head != spec['header']:
            die(f'{path}: header {head} is not the expected {spec["header"]}')
        rows = rows[1:]
    for i, row in enumerate(rows):
        cells = row.split('\t')
        if len(cells) != spec['ncols']:
            die(f'{path}: row {i + 1} has {len(cells)} tab-separated fields, expected {spec["ncols"]}')
        out_lines.extend(cells[c] for c in spec['cols'])
    return out_lines


def build_tokenizer(texts):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token='[UNK]', continuing_subword_prefix='##', max_input_chars_per_word=100))
    # strip_accents=None follows lowercase, as in bert-base-uncased (and @xenova/transformers does the same)
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix='##')
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIALS,
        limit_alphabet=limit_alphabet,
        continuing_subword_prefix='##',
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def add_post_processor(tok):
    from tokenizers import processors

    cls_id, sep_id = tok.token_to_id('[CLS]'), tok.token_to_id('[SEP]')
    tok.post_processor = processors.TemplateProcessing(
        single='[CLS] $A [SEP]',
        pair='[CLS] $A [SEP] $B:1 [SEP]:1',
        special_tokens=[('[CLS]', cls_id), ('[SEP]', sep_id)],
    )


def write_tokenizer_files(tok, folder):
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, 'tokenizer.json'))
    vocab = tok.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(len(by_id))), 'vocabulary ids are not contiguous'
    with open(os.path.join(folder, 'vocab.txt'), 'w', encoding='utf-8') as f:
        f.write(''.join(t + '\n' for t, _ in by_id))
    names = dict(pad_token='[PAD]', unk_token='[UNK]', cls_token='[CLS]', sep_token='[SEP]', mask_token='[MASK]')
    with open(os.path.join(folder, 'special_tokens_map.json'), 'w') as f:
        json.dump(names, f, indent=2)
    cfg = dict(
        tokenizer_class='BertTokenizer',  # @xenova/transformers picks its class from this name
        do_lower_case=True,
        strip_accents=None,
        tokenize_chinese_chars=True,
        model_max_length=MAX_LEN,
        clean_up_tokenization_spaces=True,
        **names,
    )
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    globals().update(vars(parse_args()))  # the config above, overridden from the command line

    # Every input is checked before the slow work starts.
    files = corpus_files(corpus)
    task_list = [t for t in tasks.split(',') if t]
    task_text = []
    if not tokenizer:
        for t in task_list:
            task_text.extend(task_sentences(glue, t))
    else:
        for name in ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'):
            if not os.path.isfile(os.path.join(tokenizer, name)):
                die(f'--tokenizer {tokenizer!r} holds no {name}')
    if vocab_size > 65535:
        die('vocab_size must fit uint16 (at most 65535)')

    try:
        from tokenizers import Tokenizer
    except ImportError:
        die('the `tokenizers` package is missing: run this on the GPU machine (see training/README.md)')
    import numpy as np

    t0 = time.time()
    lines = []
    for path in files:
        with open_text(path) as f:
            lines.extend(s.strip() for s in f if s.strip())
    print(f'read {len(lines):,} corpus lines from {len(files)} files in {time.time() - t0:.1f}s')

    if tokenizer:
        tok = Tokenizer.from_file(os.path.join(tokenizer, 'tokenizer.json'))
        print(f'reusing {tokenizer}/tokenizer.json (vocab {tok.get_vocab_size()})')
    else:
        t1 = time.time()
        tok = build_tokenizer(lines + task_text)
        print(f'trained WordPiece vocab {tok.get_vocab_size()} on corpus + {len(task_text):,} task texts '
              f'({",".join(task_list)}) in {time.time() - t1:.1f}s')
    for i, s in enumerate(SPECIALS):
        if tok.token_to_id(s) != i:
            die(f'tokenizer has {s} at id {tok.token_to_id(s)}, expected {i}')
    if tokenizer:
        # Byte-for-byte copies: checkpoints name their tokenizer by the sha256 of tokenizer.json.
        os.makedirs(out, exist_ok=True)
        for name in ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'):
            src = os.path.join(tokenizer, name)
            if os.path.abspath(src) != os.path.abspath(os.path.join(out, name)):
                shutil.copyfile(src, os.path.join(out, name))
    else:
        add_post_processor(tok)
        write_tokenizer_files(tok, out)

    # Pre-tokenize: ids of each line, then [SEP]; lines go to val.bin every `val_every`-th.
    t2 = time.time()
    sep = tok.token_to_id('[SEP]')
    train_parts, val_parts = [], []
    chunk = 20000
    for start in range(0, len(lines), chunk):
        encs = tok.encode_batch(lines[start:start + chunk], add_special_tokens=False)
        for j, e in enumerate(encs):
            ids = np.asarray(e.ids + [sep], dtype=np.uint16)
            (val_parts if (start + j) % val_every == 0 else train_parts).append(ids)
    train = np.concatenate(train_parts)
    val = np.concatenate(val_parts)
    train.tofile(os.path.join(out, 'train.bin'))
    val.tofile(os.path.join(out, 'val.bin'))
    unk = int((train == tok.token_to_id('[UNK]')).sum())
    print(f'tokenized: train {len(train):,} tokens, val {len(val):,} tokens, [UNK] {unk / len(train):.4%}, '
          f'{time.time() - t2:.1f}s')

    meta = dict(
        vocab_size=tok.get_vocab_size(),
        pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4,
        train_tokens=int(len(train)), val_tokens=int(len(val)),
        tokenizer_sha256=sha256(os.path.join(out, 'tokenizer.json')),
        corpus_files=[os.path.basename(p) for p in files],
        tasks=task_list if not tokenizer else [],
        reused_tokenizer=tokenizer or None,
    )
    with open(os.path.join(out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    example = 'Hello, world! Naïve café: 3.14 — 😀'
    enc = tok.encode(example)
    print(f'example {example!r} -> {enc.tokens}')
    print(f'wrote {out}/ in {time.time() - t0:.1f}s total')


if __name__ == '__main__':
    main()
