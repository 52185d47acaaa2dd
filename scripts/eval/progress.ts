/**
 * A progress bar on stderr (stdout keeps the summary clean for pipes). On a terminal it redraws one line; otherwise
 * (CI logs) it prints a line at every 10%.
 */
export class Progress {
  private readonly start = Date.now();
  private lastDecile = -1;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number): void {
    const fraction = this.total === 0 ? 1 : done / this.total;
    const seconds = (Date.now() - this.start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (this.total - done) / rate : NaN;
    const width = 30;
    const filled = Math.round(fraction * width);
    const text =
      `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${this.total} ` +
      `${(fraction * 100).toFixed(0).padStart(3)}%  ${rate.toFixed(1)} ex/s` +
      (done < this.total && Number.isFinite(eta)
        ? `  ETA ${formatSeconds(eta)}`
        : `  ${formatSeconds(seconds)}`);
    if (this.stream.isTTY) {
      this.stream.write(`\r${text}\x1b[K`);
      if (done >= this.total) this.stream.write('\n');
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        this.stream.write(`${text}\n`);
      }
    }
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
}
