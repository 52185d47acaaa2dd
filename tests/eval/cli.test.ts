// The CLI's bad-input paths, in-process: each must exit 2 with a clear message before starting a browser, and leave
// nothing behind (no output folder, no staging folder). The run itself is tested in e2e/eval.spec.ts.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criteriaFromConfig, main } from '../../scripts/eval/cli';

const fixtures = fileURLToPath(new URL('../fixtures', import.meta.url));
let root: string;
let model: string;
let data: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'ponder-eval-cli-'));
  model = join(root, 'model');
  mkdirSync(model);
  for (const f of ['config.json', 'model.safetensors'])
    copyFileSync(join(fixtures, 'golden', 'bert-odd', f), join(model, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    copyFileSync(join(fixtures, 'loading', 'wordpiece', f), join(model, f));
  }
  mkdirSync(join(root, 'SST-2'));
  data = join(root, 'SST-2', 'dev.tsv');
  writeFileSync(data, 'sentence\tlabel\nthe quick brown fox\t1\nhello world\t0\n');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function run(
  argv: string[],
  defaults?: { modelsDir: string; data: string },
): Promise<{ code: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const code = await main(argv, {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t + '\n'),
    cwd: root,
    ...(defaults && { defaults }),
  });
  return { code, err, out };
}

/** Expects exit 2, the message, and that the output folder (and any staging folder) does not exist. */
async function expectBadInput(argv: string[], message: RegExp): Promise<void> {
  const outDir = join(root, 'out', 'run');
  const { code, err } = await run([...argv, '--out', outDir]);
  expect(err).toMatch(message);
  expect(code).toBe(2);
  expect(existsSync(join(root, 'out'))).toBe(false);
  expect(readdirSync(root).sort()).toEqual(['SST-2', 'model', ...extraFiles].sort());
}
const extraFiles: string[] = [];

function tsv(name: string, content: string): string {
  const dir = join(root, name.split('/')[0]!);
  mkdirSync(dir, { recursive: true });
  const path = join(root, name);
  writeFileSync(path, content);
  if (!extraFiles.includes(name.split('/')[0]!)) extraFiles.push(name.split('/')[0]!);
  return path;
}

describe('eval CLI: bad input exits 2 and writes nothing', () => {
  it('--help prints the usage and exits 0', async () => {
    const { code, out } = await run(['--help']);
    expect(code).toBe(0);
    expect(out).toMatch(/npm run eval -- \[--model <folder or Hub id>\]/);
  });

  it('missing files', async () => {
    await expectBadInput(
      ['--model', model, '--data', join(root, 'SST-2', 'nope.tsv')],
      /data file not found: .*nope\.tsv/,
    );
    await expectBadInput(
      ['--model', join(root, 'no-model'), '--data', data],
      /model folder not found: .*no-model/,
    );
    await expectBadInput(
      ['--model', join(model, 'config.json'), '--data', data],
      /is a file; give the folder/,
    );
    await expectBadInput(
      ['--model', root, '--data', data],
      /has no config\.json, model\.safetensors, tokenizer\.json/,
    );
    // Relative paths resolve against the working directory given to main (npm's INIT_CWD).
    await expectBadInput(
      ['--model', 'model', '--data', 'SST-2/missing.tsv'],
      /data file not found: .*SST-2\/missing\.tsv/,
    );
  });

  it('wrong columns', async () => {
    const cola = tsv('CoLA/dev.tsv', 'sentence\tlabel\nthe fox\t1\n');
    await expectBadInput(['--model', model, '--data', cola], /wrong columns for CoLA.*expected 4/);
    await expectBadInput(
      ['--model', model, '--data', data, '--task', 'RTE'],
      /missing 'sentence1', 'sentence2'/,
    );
  });

  it('labels outside the model classes', async () => {
    const two = tsv('two/SST-2.tsv', 'sentence\tlabel\nthe fox\t1\nthe dog\t2\n');
    await expectBadInput(
      ['--model', model, '--data', two],
      /line 3: label 2 is outside the model's 2 classes/,
    );
    const text = tsv('text/SST-2.tsv', 'sentence\tlabel\nthe fox\tpositive\n');
    await expectBadInput(['--model', model, '--data', text], /label 'positive' is not a class index/);
    const sts = tsv('STS-B/dev.tsv', 'index\tsentence1\tsentence2\tscore\n0\tthe fox\tthe dog\t3.5\n');
    await expectBadInput(
      ['--model', model, '--data', sts],
      /STS-B is a regression task, but the model is a 2-class/,
    );
  });

  it('a criterion the model has no head for, checked before running', async () => {
    await expectBadInput(
      ['--model', model, '--data', data, '--criterion', 'pabee', '--threshold', '2'],
      /no head for criterion 'pabee': it needs per-layer classifier heads.*supports: max-prob, entropy, fixed, none/,
    );
    await expectBadInput(
      ['--model', model, '--data', data, '--criterion', 'palbert', '--threshold', '0.5'],
      /Lambda head/,
    );
    await expectBadInput(['--model', model, '--data', data, '--sweep', '--criterion', 'gate'], /exit gates/);
  });

  it('unknown task or criterion names and bad settings', async () => {
    await expectBadInput(['--model', model, '--data', data, '--task', 'MNLI'], /unknown task 'MNLI'/);
    await expectBadInput(
      ['--model', model, '--data', data, '--criterion', 'patience'],
      /unknown exit criterion "patience"/,
    );
    await expectBadInput(
      ['--model', model, '--data', data, '--sweep', '--criterion', 'early'],
      /unknown exit criterion "early"/,
    );
    await expectBadInput(
      ['--model', model, '--data', data, '--criterion', 'fixed', '--threshold', '9'],
      /integer in \[1, 5\]/,
    );
    await expectBadInput(
      ['--model', model, '--data', data, '--criterion', 'max-prob', '--threshold', '1.5'],
      /\[0, 1\]/,
    );
    await expectBadInput(['--model', model, '--data', data, '--criterion', 'max-prob'], /needs a threshold/);
    await expectBadInput(
      ['--model', model, '--data', data, '--batch', '0'],
      /--batch must be a positive integer/,
    );
  });

  it('without --model: the one model of public/models/, else a clear error; without --data: SST-2 dev', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ponder-eval-models-'));
    try {
      let r = await run(['--out', join(root, 'out', 'x')], { modelsDir: empty, data });
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/no --data given: .*SST-2\/dev\.tsv/);
      expect(r.err).toMatch(/no --model given, and there is no shipped model in/);
      mkdirSync(join(empty, 'a'));
      mkdirSync(join(empty, 'b'));
      writeFileSync(join(empty, 'a', 'config.json'), '{}');
      writeFileSync(join(empty, 'b', 'config.json'), '{}');
      r = await run([], { modelsDir: empty, data });
      expect(r.err).toMatch(/holds 2 models \(a, b\): pick one/);
      rmSync(join(empty, 'b'), { recursive: true });
      // One model: it is used (this one lacks weights, which the folder check reports).
      r = await run([], { modelsDir: empty, data });
      expect(r.err).toMatch(/no --model given: the shipped model .*\/a/);
      expect(r.err).toMatch(/has no model\.safetensors, tokenizer\.json/);
      r = await run(['--model', model], { modelsDir: empty, data: join(root, 'SST-2', 'absent.tsv') });
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/data file not found: .*absent\.tsv/);
      expect(existsSync(join(root, 'out'))).toBe(false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('--out naming an existing file', async () => {
    const file = join(root, 'model', 'config.json');
    const { code, err } = await run(['--model', model, '--data', data, '--out', file]);
    expect(code).toBe(2);
    expect(err).toMatch(/exists and is not a folder/);
  });
});

describe('criteria from config.json', () => {
  it("follows the ponder object's heads", () => {
    const plain = { problemType: 'single_label_classification' as const };
    expect(criteriaFromConfig(plain)).toEqual(['max-prob', 'entropy', 'fixed', 'none']);
    expect(criteriaFromConfig({ ...plain, exitHeads: { lambda_head: { input: 'cat' } } })).toEqual([
      'palbert',
      'pondernet-sample',
      'max-prob',
      'entropy',
      'fixed',
      'none',
    ]);
    expect(
      criteriaFromConfig({ ...plain, exitHeads: { lambdaHead: { input: 'cat', hiddenLayers: 3 } } }),
    ).toEqual(['palbert', 'pondernet-sample', 'max-prob', 'entropy', 'fixed', 'none']);
    expect(criteriaFromConfig({ ...plain, exitHeads: { perLayerHeads: true, gates: false } })).toEqual([
      'pabee',
      'max-prob',
      'entropy',
      'fixed',
      'none',
    ]);
    expect(criteriaFromConfig({ ...plain, exitHeads: { per_layer_heads: true, gates: true } })).toEqual([
      'pabee',
      'max-prob',
      'entropy',
      'gate',
      'fixed',
      'none',
    ]);
    expect(criteriaFromConfig({ problemType: 'regression' })).toEqual(['fixed', 'none']);
  });
});
