"""
ALBERT encoder in plain PyTorch, with the module and parameter names of Hugging Face's
AlbertModel / AlbertForMaskedLM / AlbertForSequenceClassification, so that a state dict of ours
is (nearly) a Hugging Face one: see `hf_state_dict`. Post-LayerNorm like the original, because
the browser engine (src/model/types.ts) runs exactly that architecture.

Also: the checkpoint files of our training scripts (bf16, split into shards < 16 MiB), and the reading of a
Hugging Face ALBERT folder (config.json + model.safetensors or pytorch_model.bin) into this module
(`hf_albert_config`, `hf_albert_encoder_state`), which finetune.py's --init uses.
"""

import glob
import json
import math
import os
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class AlbertConfig:
    vocab_size: int = 16384
    embedding_size: int = 128
    hidden_size: int = 512
    num_hidden_layers: int = 12  # applications of the shared layer
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = 'gelu_new'
    max_position_embeddings: int = 128
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    classifier_dropout_prob: float = 0.1
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def hf_dict(self, **extra):
        """config.json as Hugging Face writes it for an ALBERT checkpoint (one group, one inner layer)."""
        d = asdict(self)
        d.update(model_type='albert', num_hidden_groups=1, inner_group_num=1, position_embedding_type='absolute')
        d.update(extra)
        return d


def _sdpa_reference(q, k, v, attn_mask=None, dropout_p=0.0):
    # Plain attention for old PyTorch (< 2.0, e.g. a CPU-only smoke test); same semantics as SDPA.
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float('-inf'))
    return F.dropout(s.softmax(-1), dropout_p) @ v


sdpa = getattr(F, 'scaled_dot_product_attention', _sdpa_reference)

ACT = {
    'gelu_new': lambda x: F.gelu(x, approximate='tanh'),
    'gelu': F.gelu,
    'relu': F.relu,
}


class AlbertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.embedding_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.embedding_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.embedding_size)
        self.LayerNorm = nn.LayerNorm(c.embedding_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        T = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.position_embeddings.weight[:T]
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class AlbertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.attn_p = c.attention_probs_dropout_prob
        self.output_dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x, attn_mask=None):
        B, T, H = x.shape
        q, k, v = (m(x).view(B, T, self.n_head, H // self.n_head).transpose(1, 2) for m in (self.query, self.key, self.value))
        y = sdpa(q, k, v, attn_mask=attn_mask, dropout_p=self.attn_p if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, H)
        return self.LayerNorm(x + self.output_dropout(self.dense(y)))


class AlbertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = AlbertAttention(c)
        self.ffn = nn.Linear(c.hidden_size, c.intermediate_size)
        self.ffn_output = nn.Linear(c.intermediate_size, c.hidden_size)
        self.full_layer_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.act = ACT[c.hidden_act]
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x, attn_mask=None):
        a = self.attention(x, attn_mask)
        return self.full_layer_layer_norm(a + self.dropout(self.ffn_output(self.act(self.ffn(a)))))


class AlbertLayerGroup(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.albert_layers = nn.ModuleList([AlbertLayer(c)])


class AlbertTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embedding_hidden_mapping_in = nn.Linear(c.embedding_size, c.hidden_size)
        self.albert_layer_groups = nn.ModuleList([AlbertLayerGroup(c)])


class AlbertModel(nn.Module):
    """Embeddings -> E->H projection -> one shared layer applied `num_hidden_layers` times (-> pooler)."""

    def __init__(self, c, add_pooling_layer=True):
        super().__init__()
        self.config = c
        self.embeddings = AlbertEmbeddings(c)
        self.encoder = AlbertTransformer(c)
        if add_pooling_layer:
            self.pooler = nn.Linear(c.hidden_size, c.hidden_size)
        # The shared layer, called through a plain attribute (kept out of the module tree, so not in the
        # state dict twice) that pretraining may swap for a torch.compile'd version of the same layer.
        self.__dict__['layer_fn'] = self.encoder.albert_layer_groups[0].albert_layers[0]

    @property
    def layer(self):
        return self.encoder.albert_layer_groups[0].albert_layers[0]

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, num_layers=None, all_layers=False):
        """Returns the last hidden states [B,T,H], or the list after each application if all_layers.
        attention_mask: [B,T] with 1 for real tokens, 0 for padding (Hugging Face's convention)."""
        mask = None
        if attention_mask is not None:
            mask = attention_mask[:, None, None, :].bool()  # SDPA: True = may attend
        x = self.encoder.embedding_hidden_mapping_in(self.embeddings(input_ids, token_type_ids))
        outs = []
        for _ in range(num_layers or self.config.num_hidden_layers):
            x = self.layer_fn(x, mask)
            outs.append(x)
        return outs if all_layers else x

    def pool(self, h):
        """The pooled [CLS] state z = tanh(W h[:, 0] + b) of one layer's output."""
        return torch.tanh(self.pooler(h[:, 0]))


class AlbertMLMHead(nn.Module):
    """Hugging Face's `predictions`: dense H->E, activation, LayerNorm, decoder tied to the word embeddings."""

    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.embedding_size)
        self.LayerNorm = nn.LayerNorm(c.embedding_size, eps=c.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.act = ACT[c.hidden_act]

    def forward(self, h, word_embeddings):
        return F.linear(self.LayerNorm(self.act(self.dense(h))), word_embeddings, self.bias)


class AlbertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.albert = AlbertModel(c, add_pooling_layer=False)
        self.predictions = AlbertMLMHead(c)
        init_weights(self, c)

    def forward(self, input_ids, labels_pos=None, num_layers=None):
        """labels_pos: boolean [B,T]; the head runs only there (the masked positions), which saves
        most of the vocabulary projection. Returns logits [n_masked, V] (or [B,T,V] without it)."""
        h = self.albert(input_ids, num_layers=num_layers)
        if labels_pos is not None:
            h = h[labels_pos]
        return self.predictions(h, self.albert.embeddings.word_embeddings.weight)


class AlbertForSequenceClassification(nn.Module):
    def __init__(self, c, num_labels):
        super().__init__()
        self.config = c
        self.num_labels = num_labels
        self.albert = AlbertModel(c, add_pooling_layer=True)
        self.dropout = nn.Dropout(c.classifier_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, num_labels)
        init_weights(self, c)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, num_layers=None):
        h = self.albert(input_ids, token_type_ids, attention_mask, num_layers=num_layers)
        return self.classifier(self.dropout(self.albert.pool(h)))


class AlbertWithExits(nn.Module):
    """ALBERT classifier with the early-exit heads of docs/early-exit-methods.md, under the tensor names
    of docs/checkpoint-format.md (`ponder.lambda.{i}`, `ponder.heads.{n}`, `ponder.gates.{n}`), so export
    is a rename-free copy.

    method 'full' and 'palbert'/'pondernet': one shared head (pooler -> dropout -> `classifier`) on every
    layer's [CLS]; 'pabee': one classifier per layer (`ponder.heads`); 'palbert': a Lambda MLP on
    [z_n ; z_{n-1}] (z_0 = 0) with `lambda_hidden` Linear(2H->2H)+tanh blocks; 'pondernet': Linear(H->1) on z_n;
    'gates' (JEI-DNN style): PABEE's per-layer heads plus one Linear(4 -> 1) gate on layers 1..L-1 that reads
    the detached features of that layer's head softmax (`gate_features`); gates are fitted after training
    (finetune.py), not by forward()'s loss.
    forward() runs every layer and returns per-layer outputs; exits are decided outside (exits.py logic
    in finetune.py), which equals batch-1 behaviour because each example's decision is its own."""

    def __init__(self, c, num_labels, method='full', lambda_hidden=3):
        super().__init__()
        self.config, self.num_labels, self.method = c, num_labels, method
        self.albert = AlbertModel(c, add_pooling_layer=True)
        self.dropout = nn.Dropout(c.classifier_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, num_labels)
        self.ponder = nn.Module()
        H = c.hidden_size
        self.per_layer_heads = method in ('pabee', 'gates')
        if self.per_layer_heads:
            self.ponder.heads = nn.ModuleList([nn.Linear(H, num_labels) for _ in range(c.num_hidden_layers)])
        if method == 'gates':  # the last layer always exits: gates on layers 1..L-1 only
            self.ponder.gates = nn.ModuleList([nn.Linear(4, 1) for _ in range(c.num_hidden_layers - 1)])
        if method in ('palbert', 'pondernet'):
            w, k = (2 * H, lambda_hidden) if method == 'palbert' else (H, 0)
            self.lambda_input = 'cat' if method == 'palbert' else 'current'
            layers = [nn.Linear(w, w) for _ in range(k)] + [nn.Linear(w, 1)]
            self.ponder.add_module('lambda', nn.ModuleList(layers))
            self.lambda_dropout = nn.Dropout(c.classifier_dropout_prob)
        init_weights(self, c)

    def lambda_logit(self, u):
        layers = getattr(self.ponder, 'lambda')
        for lin in layers[:-1]:
            u = torch.tanh(lin(u))
        return layers[-1](u)[:, 0]

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, num_layers=None):
        """Returns (logits [N, B, C], lambdas [N, B] or None): every layer's head output and halting probability."""
        hs = self.albert(input_ids, token_type_ids, attention_mask, num_layers=num_layers, all_layers=True)
        logits, lambdas = [], []
        z_prev = None
        for n, h in enumerate(hs):
            z = self.albert.pool(h)
            head = self.ponder.heads[n] if self.per_layer_heads else self.classifier
            logits.append(head(self.dropout(z)))
            if self.method in ('palbert', 'pondernet'):
                if self.lambda_input == 'cat':
                    # z_{n-1} is not detached: gradients reach both layers' states, as in the released code.
                    u = torch.cat([z, torch.zeros_like(z) if z_prev is None else z_prev], dim=-1)
                else:
                    u = z
                lambdas.append(torch.sigmoid(self.lambda_logit(self.lambda_dropout(u)).float()))
            z_prev = z
        return torch.stack(logits), (torch.stack(lambdas) if lambdas else None)

    def gate_values(self, logits):
        """g_n = sigmoid(a_n . f_n + b_n) for layers 1..L-1 from per-layer head logits [L, B, C] (any device,
        computed on the logits' device in their float type): [L-1, B]. What the browser engine computes."""
        x = logits[:-1].float() if logits.dtype in (torch.float16, torch.bfloat16) else logits[:-1]
        f = gate_features(x.softmax(-1))  # [L-1, B, 4]
        W = torch.cat([g.weight for g in self.ponder.gates]).to(f)  # [L-1, 4]
        b = torch.cat([g.bias for g in self.ponder.gates]).to(f)  # [L-1]
        return torch.sigmoid((f * W[:, None, :]).sum(-1) + b[:, None])

    def ponder_config(self, default_criterion=None, **training):
        """config.json's `ponder` object (docs/checkpoint-format.md)."""
        d = dict(format_version=1, method=self.method, per_layer_heads=self.per_layer_heads,
                 gates=self.method == 'gates')
        if self.method in ('palbert', 'pondernet'):
            d['lambda_head'] = dict(input=self.lambda_input, hidden_layers=len(getattr(self.ponder, 'lambda')) - 1,
                                    activation='tanh')
        d['default_criterion'] = default_criterion or {
            'palbert': dict(kind='palbert', q=0.5),
            'pondernet': dict(kind='pondernet-sample', seed=42),
            'pabee': dict(kind='pabee', patience=6),
            'gates': dict(kind='gate', threshold=0.5),
        }.get(self.method, dict(kind='none'))  # kinds of src/exit/criteria.ts
        d['training'] = training
        return d


def gate_features(p):
    """JEI-DNN's gate input from softmax rows p [..., C] (C >= 2): [max p, H(p), p_(1) - p_(2), H(p^2 / sum p^2)],
    natural log, 0 ln 0 = 0 -> [..., 4]. Detached: the gates never shape the heads (docs section 4.3)."""
    p = p.detach()
    top = p.topk(2, dim=-1).values
    q = p * p / (p * p).sum(-1, keepdim=True)
    ent = lambda r: -torch.xlogy(r, r).sum(-1)  # noqa: E731
    return torch.stack([top[..., 0], ent(p), top[..., 0] - top[..., 1], ent(q)], dim=-1)


def init_weights(model, c, pos_init='normal'):
    """Hugging Face's ALBERT init: N(0, 0.02) weights, zero biases, unit LayerNorms, zero padding row.
    pos_init='sinusoidal' starts the (still learned, absolute) position table at sin/cos waves of the
    same scale, so that attention by relative offset is linear in it from step 0."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=c.initializer_range)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=c.initializer_range)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if pos_init == 'sinusoidal':
        P, E = c.max_position_embeddings, c.embedding_size
        pos = torch.arange(P, dtype=torch.float32)[:, None]
        freq = torch.exp(-math.log(10000.0) * torch.arange(0, E, 2, dtype=torch.float32) / E)
        table = torch.zeros(P, E)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq)
        emb = [m for m in model.modules() if isinstance(m, AlbertEmbeddings)][0]
        with torch.no_grad():
            emb.position_embeddings.weight.copy_(table * c.initializer_range * math.sqrt(2.0))
    elif pos_init != 'normal':
        raise ValueError(f'unknown pos_init {pos_init!r} (normal | sinusoidal)')


def hf_state_dict(model):
    """Our state dict under Hugging Face's names: only the tied MLM decoder needs adding."""
    sd = {k: v for k, v in model.state_dict().items()}
    if 'predictions.bias' in sd:
        sd['predictions.decoder.weight'] = sd['albert.embeddings.word_embeddings.weight']
        sd['predictions.decoder.bias'] = sd['predictions.bias']
    return sd


# ---------------------------------------------------------------------------------------------
# Checkpoint files: a folder with meta.json and shards *.pt, each under 16 MiB, tensors in bf16
# (model weights and the optimizer's moments), so that they can be committed and carried.

SHARD_BYTES = 15 * 1024 * 1024


def save_checkpoint(folder, tensors, meta, dtype=torch.bfloat16):
    """tensors: flat {name: tensor}; floating ones written as `dtype` (bf16 by default) shards. Names before the first '.'
    form groups ('model', 'opt') that never share a shard, so the weights can travel without the
    optimizer's moments. Replaces the folder's shards."""
    os.makedirs(folder, exist_ok=True)
    for old in glob.glob(os.path.join(folder, 'shard-*.pt')):
        os.remove(old)
    shards, groups = [], {}
    cur, size, cur_group = {}, 0, None

    def flush():
        nonlocal cur, size
        if cur:
            groups.setdefault(cur_group, []).append(len(shards))
            shards.append(cur)
        cur, size = {}, 0

    for name, t in tensors.items():
        group = name.split('.', 1)[0]
        if group != cur_group:
            flush()
            cur_group = group
        t = t.detach().to('cpu')
        if t.is_floating_point():
            t = t.to(dtype)
        t = t.contiguous()
        nbytes = t.numel() * t.element_size()
        if nbytes > SHARD_BYTES:
            # Split big tensors by rows so that every file stays small.
            flush()
            rows = max(1, SHARD_BYTES // max(1, nbytes // t.shape[0]))
            for j, piece in enumerate(torch.split(t, rows)):
                cur = {f'{name}@@{j}': piece.clone()}
                flush()
            continue
        if size + nbytes > SHARD_BYTES:
            flush()
        cur[name] = t
        size += nbytes
    flush()
    for i, s in enumerate(shards):
        torch.save(s, os.path.join(folder, f'shard-{i:02d}.pt'))
    meta = dict(meta, shards=len(shards), shard_groups=groups)
    with open(os.path.join(folder, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)


def load_checkpoint_meta(folder, need=('model',)):
    """meta.json of a checkpoint folder, after checking that the shards of the groups in `need` exist."""
    path = os.path.join(folder, 'meta.json')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{folder!r} is not a checkpoint folder (no meta.json)')
    with open(path) as f:
        meta = json.load(f)
    groups = meta.get('shard_groups') or {'model': list(range(meta['shards']))}
    for g in need:
        missing = [i for i in groups.get(g, []) if not os.path.isfile(os.path.join(folder, f'shard-{i:02d}.pt'))]
        if missing or g not in groups:
            raise FileNotFoundError(f'{folder!r}: the {g!r} shard files {missing} are missing')
    return meta


def load_checkpoint_tensors(folder, meta):
    """All tensors of the shards present (optimizer shards may have been left behind)."""
    out, pieces = {}, {}
    for i in range(meta['shards']):
        path = os.path.join(folder, f'shard-{i:02d}.pt')
        if not os.path.isfile(path):
            continue
        for name, t in torch.load(path, map_location='cpu').items():
            if '@@' in name:
                base, j = name.split('@@')
                pieces.setdefault(base, {})[int(j)] = t
            else:
                out[name] = t
    for base, parts in pieces.items():
        out[base] = torch.cat([parts[j] for j in sorted(parts)])
    return out


def check_model_compatible(ckpt_config, config):
    """Raise a ValueError naming every architecture field that differs."""
    a, b = asdict(AlbertConfig.from_dict(ckpt_config)), asdict(config)
    arch = [k for k in a if not k.endswith('dropout_prob') and a[k] != b[k]]
    if arch:
        diffs = ', '.join(f'{k}: checkpoint {a[k]} vs requested {b[k]}' for k in arch)
        raise ValueError(f'the checkpoint has another architecture ({diffs})')


# ---------------------------------------------------------------------------------------------
# Hugging Face ALBERT checkpoints (finetune.py --init <folder or Hub id>). The module above uses HF's
# parameter names, so mapping is: take `albert.*` (AlbertForMaskedLM / AlbertForSequenceClassification /
# AlbertForPreTraining) or the bare AlbertModel's names, drop HF's buffers and the task heads, check shapes.

# transformers' AlbertConfig defaults (ALBERT-xxlarge sizes), for keys a config.json leaves out.
HF_ALBERT_DEFAULTS = dict(vocab_size=30000, embedding_size=128, hidden_size=4096, num_hidden_layers=12,
                          num_hidden_groups=1, num_attention_heads=64, intermediate_size=16384, inner_group_num=1,
                          hidden_act='gelu_new', hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                          max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02,
                          layer_norm_eps=1e-12, classifier_dropout_prob=0.1, position_embedding_type='absolute',
                          pad_token_id=0, bos_token_id=2, eos_token_id=3)
SAFETENSORS_DTYPES = {'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16,
                      'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8,
                      'BOOL': torch.bool}


def read_safetensors(path):
    """{name: tensor} of a .safetensors file, read by hand (an 8-byte header length, a JSON header, raw
    little-endian bytes), so that no safetensors package is needed."""
    with open(path, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        if info['dtype'] not in SAFETENSORS_DTYPES:
            raise ValueError(f'{path}: tensor {name} has dtype {info["dtype"]}, which this reader does not know')
        a, b = info['data_offsets']
        buf = torch.frombuffer(bytearray(data[a:b]), dtype=torch.uint8) if b > a else torch.zeros(0, dtype=torch.uint8)
        out[name] = buf.view(SAFETENSORS_DTYPES[info['dtype']]).reshape(info['shape'])
    return out


def hf_albert_config(d, source='config.json'):
    """Our AlbertConfig from a Hugging Face config dict, or a ValueError that says what to fix."""
    mt = d.get('model_type')
    if mt != 'albert':
        hint = (' A BERT checkpoint has no shared layer to map onto model.py (the browser engine loads BERT folders '
                'directly; fine-tuning one here would need a BERT module in training/model.py).' if mt == 'bert' else '')
        raise ValueError(f'{source}: model_type {mt!r}, but finetune.py fine-tunes ALBERT only: give an ALBERT '
                         f'checkpoint (model_type "albert", e.g. albert-base-v2).{hint}')
    d = {**HF_ALBERT_DEFAULTS, **{k: v for k, v in d.items() if v is not None}}
    problems = []
    if d['num_hidden_groups'] != 1 or d['inner_group_num'] != 1:
        problems.append(f'{d["num_hidden_groups"]} layer group(s) x {d["inner_group_num"]} inner layer(s): model.py '
                        'has one shared layer (num_hidden_groups 1, inner_group_num 1, as every released ALBERT)')
    if d['hidden_act'] not in ACT:
        problems.append(f'hidden_act {d["hidden_act"]!r}: model.py implements {", ".join(ACT)}')
    if d['position_embedding_type'] != 'absolute':
        problems.append(f'position_embedding_type {d["position_embedding_type"]!r}: only "absolute" is implemented')
    if d['hidden_size'] % d['num_attention_heads']:
        problems.append(f'hidden_size {d["hidden_size"]} is not a multiple of num_attention_heads '
                        f'{d["num_attention_heads"]}')
    if problems:
        raise ValueError(f'{source}: this ALBERT does not fit training/model.py: ' + '; '.join(problems))
    return AlbertConfig.from_dict(d)


def read_hf_folder(folder):
    """(config dict, {name: tensor}) of a save_pretrained folder: config.json plus model.safetensors, a sharded
    model.safetensors.index.json, or pytorch_model.bin. Raises FileNotFoundError / ValueError with what to fix."""
    cpath = os.path.join(folder, 'config.json')
    if not os.path.isfile(cpath):
        raise FileNotFoundError(f'{folder!r} has no config.json (a Hugging Face folder as save_pretrained writes it)')
    with open(cpath) as f:
        config = json.load(f)
    st, index, binf = (os.path.join(folder, n) for n in ('model.safetensors', 'model.safetensors.index.json',
                                                         'pytorch_model.bin'))
    if os.path.isfile(st):
        tensors = read_safetensors(st)
    elif os.path.isfile(index):
        with open(index) as f:
            files = sorted(set(json.load(f)['weight_map'].values()))
        tensors = {}
        for name in files:
            tensors.update(read_safetensors(os.path.join(folder, name)))
    elif os.path.isfile(binf):
        tensors = torch.load(binf, map_location='cpu')
    else:
        raise FileNotFoundError(f'{folder!r} has config.json but no model.safetensors, model.safetensors.index.json '
                                'or pytorch_model.bin')
    return config, tensors


def hf_albert_encoder_state(tensors, cfg, source='checkpoint'):
    """The AlbertModel part of a Hugging Face ALBERT state dict, under model.py's names, checked against an
    AlbertModel(cfg): returns (state dict, names of ours that it lacks, which may only be the pooler). Raises a
    ValueError naming missing, unexpected or mis-shaped tensors."""
    if any(k.startswith('albert.') for k in tensors):
        enc = {k[len('albert.'):]: v for k, v in tensors.items() if k.startswith('albert.')}
    else:  # a bare AlbertModel: no prefix, no task heads
        enc = {k: v for k, v in tensors.items() if k.split('.', 1)[0] in ('embeddings', 'encoder', 'pooler')}
    if not enc:
        raise ValueError(f'{source}: no ALBERT encoder tensors (expected albert.embeddings.*, albert.encoder.* or, for '
                         f'a bare AlbertModel, embeddings.* / encoder.*); first names: {sorted(tensors)[:5]}')
    out = {}
    for k, v in enc.items():
        if k.endswith('position_ids') or k.endswith('token_type_ids'):
            continue  # HF buffers
        if 'LayerNorm' in k or 'layer_norm' in k:  # old TF-converted names
            k = k.replace('.gamma', '.weight').replace('.beta', '.bias')
        out[k] = v
    want = {k: tuple(v.shape) for k, v in AlbertModel(cfg).state_dict().items()}
    missing = [k for k in want if k not in out]
    unexpected = [k for k in out if k not in want]
    shapes = [f'{k}: checkpoint {tuple(out[k].shape)} vs config {want[k]}' for k in want
              if k in out and tuple(out[k].shape) != want[k]]
    hard_missing = [k for k in missing if not k.startswith('pooler.')]
    if hard_missing or unexpected or shapes:
        parts = []
        if hard_missing:
            parts.append(f'missing {hard_missing}')
        if unexpected:
            parts.append(f'unexpected {unexpected} (more layers or groups than config.json says?)')
        if shapes:
            parts.append('wrong shapes: ' + '; '.join(shapes) + ' (does config.json belong to these weights?)')
        raise ValueError(f'{source}: the weights do not match an ALBERT of its config.json: ' + ', '.join(parts))
    return {k: v.float() for k, v in out.items()}, missing
