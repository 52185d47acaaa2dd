/** Command-line arguments of `npm run eval`; every problem is bad input (exit 2). */
import { parseArgs } from 'node:util';
import { badInput } from './errors';

export const USAGE = `Usage: npm run eval -- [--model <folder or Hub id>] [--data <GLUE tsv>] [options]

  --model PATH|ID     model folder (config.json, model.safetensors, tokenizer.json) or a Hugging Face Hub id
                      (default: the shipped model, the one folder in public/models/)
  --data FILE         a GLUE TSV (SST-2, CoLA, MRPC, RTE, STS-B, QNLI layouts)
                      (default: ../shared/data/glue/SST-2/dev.tsv beside the repository)
  --task NAME         SST-2 | CoLA | MRPC | RTE | STS-B | QNLI (default: the data file's folder name)
  --criterion KIND    palbert | pondernet-sample | pabee | max-prob | entropy | gate | fixed | none
                      (default: the model's default criterion, else full depth)
  --threshold X       the criterion's setting: q (palbert), seed (pondernet-sample), patience (pabee),
                      threshold (max-prob, entropy, gate), layer (fixed)
  --sweep             run every layer once, then evaluate every criterion the model supports across its
                      default settings (with --criterion: only that criterion)
  --budget X          sweep: the metric loss allowed against full depth, as a fraction (default 0.01 = 1 point)
  --out DIR           output folder (default eval-results/<model>-<task>)
  --limit N           only the first N examples
  --batch N           examples per classify() call (default 1, the batch size of published speed-ups)
  --help              this text

Writes DIR/predictions.jsonl and DIR/summary.json (and with --sweep DIR/sweep.csv, DIR/sweep.svg).
Exit codes: 0 done, 1 failure while running, 2 bad input (nothing written).`;

const HINT = 'Run `npm run eval -- --help` for the options.';

export interface EvalArgs {
  /** Absent: the shipped model (the one folder in public/models/). */
  model?: string;
  /** Absent: ../shared/data/glue/SST-2/dev.tsv beside the repository. */
  data?: string;
  task?: string;
  criterion?: string;
  threshold?: number;
  sweep: boolean;
  budget: number;
  out?: string;
  limit?: number;
  batch: number;
}

function number(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) badInput(`--${name} must be a number, got '${raw}'`);
  return v;
}

function positiveInteger(name: string, raw: string | undefined): number | undefined {
  const v = number(name, raw);
  if (v !== undefined && (!Number.isInteger(v) || v < 1))
    badInput(`--${name} must be a positive integer, got '${raw}'`);
  return v;
}

/** Parses argv (without node and the script). Returns 'help' for --help. */
export function parseEvalArgs(argv: readonly string[]): EvalArgs | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        data: { type: 'string' },
        task: { type: 'string' },
        criterion: { type: 'string' },
        threshold: { type: 'string' },
        sweep: { type: 'boolean', default: false },
        budget: { type: 'string' },
        out: { type: 'string' },
        limit: { type: 'string' },
        batch: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    badInput(`${(error as Error).message}\n${HINT}`);
  }
  if (values.help) return 'help';
  if (values.model === '') badInput(`--model is empty\n${HINT}`);
  if (values.data === '') badInput(`--data is empty\n${HINT}`);
  const threshold = number('threshold', values.threshold);
  if (threshold !== undefined && values.criterion === undefined) {
    badInput('--threshold needs --criterion (the threshold is the criterion\u2019s setting)');
  }
  if (values.sweep && threshold !== undefined) {
    badInput('--sweep evaluates every setting of a criterion; drop --threshold');
  }
  const budget = number('budget', values.budget) ?? 0.01;
  if (budget < 0) badInput(`--budget must be ≥ 0, got ${budget}`);
  if (budget >= 1) badInput(`--budget is a fraction of the metric (0.01 = 1 point), got ${budget}`);
  const args: EvalArgs = {
    sweep: values.sweep,
    budget,
    batch: positiveInteger('batch', values.batch) ?? 1,
  };
  if (values.model !== undefined) args.model = values.model;
  if (values.data !== undefined) args.data = values.data;
  if (values.task !== undefined) args.task = values.task;
  if (values.criterion !== undefined) args.criterion = values.criterion;
  if (threshold !== undefined) args.threshold = threshold;
  if (values.out !== undefined) args.out = values.out;
  const limit = positiveInteger('limit', values.limit);
  if (limit !== undefined) args.limit = limit;
  return args;
}
