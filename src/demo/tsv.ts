/**
 * GLUE-style TSV files for the dataset mode: a header row naming the columns (SST-2: `sentence  label`;
 * MRPC: `Quality  #1 ID  #2 ID  #1 String  #2 String`; `sentence1`/`sentence2` in the HF exports), or no header
 * with `text<TAB>label` rows. Labels may be class indices or label names.
 */

export interface DatasetRow {
  text: string;
  textPair?: string;
  /** Class index; undefined when the file has no label for this row. */
  label?: number;
}

export interface ParsedDataset {
  rows: DatasetRow[];
  /** Rows dropped (empty text, unknown label name, ...), with why, for the notice. */
  skipped: number;
  /** Rows beyond the limit that were not read. */
  truncated: number;
  hasLabels: boolean;
}

const TEXT_COLUMNS = ['sentence', 'text', 'sentence1', '#1 string', 'question', 'question1', 'premise'];
const PAIR_COLUMNS = ['sentence2', '#2 string', 'question2', 'hypothesis'];
const LABEL_COLUMNS = ['label', 'quality', 'gold_label'];

/** Parses a TSV text. `labels` are the model's label names (to read label columns that hold names). */
export function parseTsv(source: string, labels: readonly string[], limit = 2000): ParsedDataset {
  const lines = source
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) return { rows: [], skipped: 0, truncated: 0, hasLabels: false };
  const first = lines[0]!.split('\t').map((c) => c.trim().toLowerCase());
  const hasHeader = first.some((c) => [...TEXT_COLUMNS, ...PAIR_COLUMNS, ...LABEL_COLUMNS].includes(c));
  let textCol: number;
  let pairCol = -1;
  let labelCol: number;
  if (hasHeader) {
    textCol = first.findIndex((c) => TEXT_COLUMNS.includes(c));
    if (textCol < 0) textCol = 0;
    pairCol = first.findIndex((c) => PAIR_COLUMNS.includes(c));
    labelCol = first.findIndex((c) => LABEL_COLUMNS.includes(c));
  } else {
    textCol = 0;
    labelCol = first.length > 1 ? first.length - 1 : -1;
  }
  const body = hasHeader ? lines.slice(1) : lines;
  const lowerLabels = labels.map((l) => l.toLowerCase());
  const rows: DatasetRow[] = [];
  let skipped = 0;
  for (const line of body.slice(0, limit)) {
    const cells = line.split('\t');
    const text = (cells[textCol] ?? '').trim();
    if (text === '') {
      skipped++;
      continue;
    }
    const row: DatasetRow = { text };
    if (pairCol >= 0) {
      const pair = (cells[pairCol] ?? '').trim();
      if (pair !== '') row.textPair = pair;
    }
    if (labelCol >= 0 && labelCol !== textCol) {
      const raw = (cells[labelCol] ?? '').trim();
      const label = readLabel(raw, lowerLabels);
      if (label === null) {
        skipped++;
        continue;
      }
      if (label !== undefined) row.label = label;
    }
    rows.push(row);
  }
  return {
    rows,
    skipped,
    truncated: Math.max(0, body.length - limit),
    hasLabels: rows.some((r) => r.label !== undefined),
  };
}

/** undefined: no label given; null: a label that cannot be read (the row is skipped). */
function readLabel(raw: string, lowerLabels: string[]): number | undefined | null {
  if (raw === '') return undefined;
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    return lowerLabels.length === 0 || n < lowerLabels.length ? n : null;
  }
  const i = lowerLabels.indexOf(raw.toLowerCase());
  return i >= 0 ? i : null;
}
