/**
 * The GPU's SM clock during parts of a benchmark run, from `nvidia-smi` sampling every 50 ms in the
 * background (bench/deno, where the GPU machine has it). A batch-1 call is a burst of a few ms
 * after ≥ 10 ms idle (Deno's readback), and the GPU's power management may keep its clocks low for
 * such work: the numbers here say at what clock the timed calls ran. Windows are marked by wall-clock
 * time while the bench runs; their statistics are filled in at the end, when the sampler has stopped
 * (nvidia-smi's output through a pipe arrives in blocks, not line by line).
 */

import { median } from './common';

/** One part of the run and the SM clock nvidia-smi saw during it. */
export interface SmClockRecord {
  /** Date.now() at the start and end of the window. */
  fromMs: number;
  toMs: number;
  samples?: number;
  minMhz?: number;
  p50Mhz?: number;
  maxMhz?: number;
  /** The card's maximum SM clock (nvidia-smi clocks.max.sm). */
  maxClockMhz?: number;
}

export interface ClockWindow {
  /** Ends the window; the record is filled in by ClockLog.finish(). */
  close(): SmClockRecord;
}

export interface ClockLog {
  window(): ClockWindow;
  /** Stops the sampler and fills in every window's statistics. */
  finish(): Promise<void>;
}

/** A sample line `timestamp, clocks.sm, clocks.max.sm` (csv, noheader, nounits) → [epoch ms, MHz, max]. */
export function parseClockLine(line: string): [number, number, number] | null {
  const m = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}),\s*(\d+),\s*(\d+)\s*$/.exec(
    line.trim(),
  );
  if (!m) return null;
  const [y, mo, d, h, mi, s, ms, mhz, max] = m.slice(1).map(Number) as number[];
  // nvidia-smi prints local time, as Date's constructor reads it.
  return [new Date(y!, mo! - 1, d!, h!, mi!, s!, ms!).getTime(), mhz!, max!];
}

/** Statistics of the samples that fall in [fromMs, toMs]. */
export function windowStats(samples: readonly [number, number, number][], rec: SmClockRecord): SmClockRecord {
  const inside = samples.filter(([t]) => t >= rec.fromMs && t <= rec.toMs);
  if (!inside.length) return { ...rec, samples: 0 };
  const mhz = inside.map(([, v]) => v);
  return {
    ...rec,
    samples: mhz.length,
    minMhz: Math.min(...mhz),
    p50Mhz: median(mhz),
    maxMhz: Math.max(...mhz),
    maxClockMhz: inside[0]![2],
  };
}

/**
 * Starts the sampler with `spawn` (which runs nvidia-smi and hands back its stdout lines as they come,
 * and a stop function); null when it cannot start.
 */
export async function startClockLog(
  spawn: (args: string[]) => Promise<{ lines: AsyncIterable<string>; stop(): Promise<void> } | null>,
): Promise<ClockLog | null> {
  const proc = await spawn([
    '--query-gpu=timestamp,clocks.sm,clocks.max.sm',
    '--format=csv,noheader,nounits',
    '-lms',
    '50',
  ]);
  if (!proc) return null;
  const samples: [number, number, number][] = [];
  const reading = (async () => {
    for await (const line of proc.lines) {
      const s = parseClockLine(line);
      if (s) samples.push(s);
    }
  })();
  const records: SmClockRecord[] = [];
  return {
    window() {
      const fromMs = Date.now();
      return {
        close() {
          const rec: SmClockRecord = { fromMs, toMs: Date.now() };
          records.push(rec);
          return rec;
        },
      };
    },
    async finish() {
      await proc.stop();
      await reading;
      for (const rec of records) Object.assign(rec, windowStats(samples, rec));
    },
  };
}
