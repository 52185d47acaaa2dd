"""Token ids of SST-2 dev as training/finetune.py makes them: Hugging Face `tokenizers` (Python) on the
model's tokenizer.json, truncation to 128 tokens, rows read with split('\\n') / split('\\t').
Prints one JSON object {index: ids}. Used by scripts/crosscheck/sst2.ts (pip install tokenizers)."""
import json
import sys

from tokenizers import Tokenizer

tok_path, data_path, max_len = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = Tokenizer.from_file(tok_path)
tok.enable_truncation(max_len)
with open(data_path, encoding='utf-8-sig') as f:
    rows = f.read().split('\n')
if rows and rows[-1] == '':
    rows.pop()
texts = [row.split('\t')[0] for row in rows[1:]]
encs = tok.encode_batch(texts)
print(json.dumps({'version': __import__('tokenizers').__version__, 'ids': [e.ids for e in encs]}))
