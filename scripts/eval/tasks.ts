/**
 * GLUE tasks as the eval CLI reads them: which TSV columns hold the text(s) and the label, how labels map to the
 * model's classes, and the task's metric. Column layouts follow the GLUE distribution (see shared/data/README.md):
 * the files are split on TAB only, with no quoting (MRPC and others contain bare `"`), as GLUE's own readers do.
 */
import { basename, dirname } from 'node:path';
import { badInput } from './errors';

export const TASK_NAMES = ['SST-2', 'CoLA', 'MRPC', 'RTE', 'STS-B', 'QNLI'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/** Where a field is: a header name, or a 0-based position for files without a header (CoLA). */
type Column = string | number;

export interface TaskSpec {
  name: TaskName;
  kind: 'classification' | 'regression';
  /** False: no header line, every row has exactly `fieldCount` fields. */
  header: boolean;
  fieldCount?: number;
  text: Column;
  pair?: Column;
  label: Column;
  /** Labels written as words, in GLUE's class order (index 0 first). Numeric labels are class indices. */
  labelNames?: readonly string[];
  /** Classes in the task (0 for regression). */
  numClasses: number;
}

export const TASKS: Record<TaskName, TaskSpec> = {
  'SST-2': {
    name: 'SST-2',
    kind: 'classification',
    header: true,
    text: 'sentence',
    label: 'label',
    numClasses: 2,
  },
  // CoLA: source, label, original mark, sentence; no header.
  CoLA: {
    name: 'CoLA',
    kind: 'classification',
    header: false,
    fieldCount: 4,
    text: 3,
    label: 1,
    numClasses: 2,
  },
  MRPC: {
    name: 'MRPC',
    kind: 'classification',
    header: true,
    text: '#1 String',
    pair: '#2 String',
    label: 'Quality',
    numClasses: 2,
  },
  RTE: {
    name: 'RTE',
    kind: 'classification',
    header: true,
    text: 'sentence1',
    pair: 'sentence2',
    label: 'label',
    labelNames: ['entailment', 'not_entailment'],
    numClasses: 2,
  },
  'STS-B': {
    name: 'STS-B',
    kind: 'regression',
    header: true,
    text: 'sentence1',
    pair: 'sentence2',
    label: 'score',
    numClasses: 0,
  },
  QNLI: {
    name: 'QNLI',
    kind: 'classification',
    header: true,
    text: 'question',
    pair: 'sentence',
    label: 'label',
    labelNames: ['entailment', 'not_entailment'],
    numClasses: 2,
  },
};

const normalize = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9]/g, '');

/** 'sst2', 'SST-2', 'sts_b' → the task; undefined when no task matches. */
export function findTask(name: string): TaskSpec | undefined {
  const key = normalize(name);
  const found = TASK_NAMES.find((t) => normalize(t) === key);
  return found ? TASKS[found] : undefined;
}

/** Looks a --task value up; an unknown name is bad input (exit 2). */
export function taskByName(name: string): TaskSpec {
  const task = findTask(name);
  if (!task) badInput(`unknown task '${name}'; known tasks: ${TASK_NAMES.join(', ')}`);
  return task;
}

/** The task named by the data file's folder (glue/SST-2/dev.tsv → SST-2), else by its file name (sst2.tsv). */
export function inferTask(path: string): TaskSpec {
  const folder = basename(dirname(path));
  const stem = basename(path).replace(/\.[^.]*$/, '');
  const task = findTask(folder) ?? findTask(stem);
  if (!task) {
    badInput(
      `cannot tell the task from '${path}' (its folder '${folder}' is not a GLUE task name); ` +
        `pass --task ${TASK_NAMES.join('|')}`,
    );
  }
  return task;
}

/** One row of the data file, before its label is checked against the model. */
export interface RawExample {
  /** 0-based position among the file's examples. */
  index: number;
  /** 1-based line in the file (for error messages). */
  line: number;
  text: string;
  pair?: string;
  rawLabel: string;
}

function listLines(problems: string[]): string {
  const shown = problems.slice(0, 5).join('; ');
  return problems.length > 5 ? `${shown}; and ${problems.length - 5} more` : shown;
}

/**
 * Parses a GLUE TSV for `task`. Throws bad input (exit 2) naming the file and lines for: a header without the task's
 * columns, rows with another number of fields than the header (or than CoLA's 4), empty texts or labels, blank lines
 * inside the file, and a file without examples.
 */
export function parseTsv(content: string, task: TaskSpec, file: string): RawExample[] {
  const lines = content.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) lines[i] = lines[i]!.replace(/\r$/, '');
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();

  let fieldCount: number;
  let first = 0;
  let col: { text: number; pair?: number; label: number };
  if (task.header) {
    if (lines.length === 0) badInput(`${file} is empty; a ${task.name} file starts with a header line`);
    const header = lines[0]!.split('\t').map((h) => h.trim());
    const find = (name: Column): number => (typeof name === 'number' ? name : header.indexOf(name));
    const wanted = [task.text, task.pair, task.label].filter((c): c is Column => c !== undefined);
    const missing = wanted.filter((c) => find(c) < 0);
    if (missing.length > 0) {
      badInput(
        `${file}: wrong columns for ${task.name}: expected a header with ${wanted.map((c) => `'${c}'`).join(', ')}, ` +
          `found ${header.map((h) => `'${h}'`).join(', ')} (missing ${missing.map((c) => `'${c}'`).join(', ')}); ` +
          `is this another task's file? pass --task`,
      );
    }
    fieldCount = header.length;
    first = 1;
    col = { text: find(task.text), label: find(task.label) };
    if (task.pair !== undefined) col.pair = find(task.pair);
  } else {
    fieldCount = task.fieldCount!;
    col = { text: task.text as number, label: task.label as number };
  }

  const examples: RawExample[] = [];
  const problems: string[] = [];
  for (let i = first; i < lines.length; i++) {
    const lineNo = i + 1;
    const fields = lines[i]!.split('\t');
    if (lines[i]!.trim() === '') {
      problems.push(`line ${lineNo} is blank`);
      continue;
    }
    if (fields.length !== fieldCount) {
      problems.push(`line ${lineNo} has ${fields.length} fields, expected ${fieldCount}`);
      continue;
    }
    const text = fields[col.text]!.trim();
    const pair = col.pair === undefined ? undefined : fields[col.pair]!.trim();
    const rawLabel = fields[col.label]!.trim();
    if (text === '' || pair === '') problems.push(`line ${lineNo} has an empty text`);
    else if (rawLabel === '') problems.push(`line ${lineNo} has an empty label`);
    else
      examples.push({
        index: examples.length,
        line: lineNo,
        text,
        rawLabel,
        ...(pair !== undefined && { pair }),
      });
  }
  if (problems.length > 0) {
    const layout = task.header
      ? `${fieldCount} tab-separated fields as in its header`
      : `${fieldCount} tab-separated fields (${task.name} has no header: source, label, mark, sentence)`;
    badInput(`${file}: wrong columns for ${task.name} (each row needs ${layout}): ${listLines(problems)}`);
  }
  if (examples.length === 0) badInput(`${file} has no examples`);
  return examples;
}

/** What the CLI needs to know of the model to check labels: its classes, or that it is a regression model. */
export interface ModelLabels {
  numLabels: number;
  labels: readonly string[];
  problemType: 'single_label_classification' | 'multi_label_classification' | 'regression';
}

/**
 * Turns the file's labels into the model's class indices (classification) or scores (regression). Integer labels
 * are class indices; word labels (RTE, QNLI) map to the model's class of that name when its id2label has it, else to
 * GLUE's class order. Throws bad input for a task/model kind mismatch and for any label outside the model's classes.
 */
export function resolveLabels(
  examples: readonly RawExample[],
  task: TaskSpec,
  model: ModelLabels,
  file: string,
): number[] {
  const modelRegression = model.problemType === 'regression';
  if (model.problemType === 'multi_label_classification') {
    badInput(`the model is a multi-label classifier; ${task.name} needs a single-label one`);
  }
  if (task.kind === 'regression' && !modelRegression) {
    badInput(`${task.name} is a regression task, but the model is a ${model.numLabels}-class classifier`);
  }
  if (task.kind === 'classification' && modelRegression) {
    badInput(`${task.name} is a classification task, but the model is a regression model (one output)`);
  }
  if (task.kind === 'classification' && model.numLabels < 2) {
    badInput(
      `the model has ${model.numLabels} classes (a base model without a classifier?); it cannot run ${task.name}`,
    );
  }
  const problems: string[] = [];
  const out: number[] = [];
  const modelNames = model.labels.map((l) => l.toLowerCase());
  for (const ex of examples) {
    const raw = ex.rawLabel;
    if (task.kind === 'regression') {
      const v = Number(raw);
      if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw) || !Number.isFinite(v)) {
        problems.push(`line ${ex.line}: score '${raw}' is not a number`);
      }
      out.push(v);
      continue;
    }
    let k: number;
    if (/^\d+$/.test(raw)) {
      k = Number(raw);
    } else {
      const name = raw.toLowerCase();
      const inModel = modelNames.indexOf(name);
      const inTask = task.labelNames?.indexOf(name) ?? -1;
      k = inModel >= 0 ? inModel : inTask;
      if (k < 0) {
        const accepted = task.labelNames ? `0..${model.numLabels - 1} or ${task.labelNames.join('/')}` : '';
        problems.push(
          `line ${ex.line}: label '${raw}' is not a class index${accepted ? ` (expected ${accepted})` : ''}`,
        );
        out.push(NaN);
        continue;
      }
    }
    if (k >= model.numLabels) {
      problems.push(
        `line ${ex.line}: label ${k} is outside the model's ${model.numLabels} classes (0..${model.numLabels - 1})`,
      );
    }
    out.push(k);
  }
  if (problems.length > 0) badInput(`${file}: labels the model cannot have: ${listLines(problems)}`);
  return out;
}
