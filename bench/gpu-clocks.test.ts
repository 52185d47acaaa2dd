import { describe, expect, it } from 'vitest';
import { parseClockLine, startClockLog, windowStats } from './gpu-clocks';

describe('gpu-clocks', () => {
  it('parses nvidia-smi csv lines (local time) and rejects others', () => {
    const s = parseClockLine('2026/11/27 13:01:31.250, 345, 1980');
    expect(s).toEqual([new Date(2026, 10, 27, 13, 1, 31, 250).getTime(), 345, 1980]);
    expect(parseClockLine('timestamp, clocks.current.sm [MHz], clocks.max.sm [MHz]')).toBeNull();
    expect(parseClockLine('')).toBeNull();
  });

  it('summarises only the samples inside a window', () => {
    const t = (ms: number): [number, number, number] => [1000 + ms, 300 + ms, 1980];
    const samples = [t(0), t(50), t(100), t(150), t(200)];
    const r = windowStats(samples, { fromMs: 1040, toMs: 1160 });
    expect(r).toMatchObject({ samples: 3, minMhz: 350, p50Mhz: 400, maxMhz: 450, maxClockMhz: 1980 });
    expect(windowStats(samples, { fromMs: 0, toMs: 10 }).samples).toBe(0);
  });

  it('fills in windows when the sampler stops, from lines that arrive late', async () => {
    const now = Date.now();
    const line = (dt: number, mhz: number) => {
      const d = new Date(now + dt);
      const p = (n: number, w = 2) => String(n).padStart(w, '0');
      return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}, ${mhz}, 1980`;
    };
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    async function* lines() {
      await gate; // everything arrives only when the sampler stops, like a block-buffered pipe
      yield line(5, 600);
      yield line(10_000, 1980);
    }
    const log = await startClockLog(async () => ({ lines: lines(), stop: async () => release() }));
    expect(log).not.toBeNull();
    const w = log!.window();
    await new Promise((r) => setTimeout(r, 20));
    const rec = w.close();
    expect(rec.samples).toBeUndefined();
    await log!.finish();
    expect(rec).toMatchObject({ samples: 1, p50Mhz: 600, maxClockMhz: 1980 });
  });

  it('is null when nvidia-smi cannot start', async () => {
    expect(await startClockLog(async () => null)).toBeNull();
  });
});
