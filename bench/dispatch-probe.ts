/**
 * What one dispatch costs, apart from the work it does (bench/deno `--dispatch-probe`; the Chromium
 * suite runs it too, informative only on SwiftShader). Each case puts N dispatches of a near-empty
 * kernel into ONE compute pass and reports, per dispatch:
 *
 *   GPU:    timestamp queries at the pass's beginning and end (when the device has them), / N;
 *   wall:   queue.submit() → onSubmittedWorkDone(), minus the median empty pass (no dispatch), / N;
 *   encode: createCommandEncoder() … finish() on the CPU before submit, minus the empty pass's, / N
 *           (wgpu records a pass's commands and validates and encodes them at pass.end(), so the
 *           span has to run to finish());
 *   submit: the queue.submit() call alone, minus the empty pass's, / N.
 *
 * Medians of `passes` passes, the cases interleaved round by round, after one untimed pass per case
 * that also checks the buffers hold what the N dispatches should have left (so a dropped dispatch
 * cannot pass for a fast one) and after the warm-up.
 * The forward pass is ~12–15 dispatches per layer, those of depths 2..L indirect (early exit writes
 * zeros into their args): the cases separate launch, barrier, indirect and pipeline-switch costs.
 */
import { createPipeline } from '../shaders/kernel';
import { median } from './common';
import { warmUpGpu } from './gpu-matmul';

export type DispatchCaseId =
  | 'direct'
  | 'direct-chain'
  | 'indirect-chain'
  | 'indirect-zero'
  | 'direct-chain-grid'
  | 'direct-chain-switch'
  | 'direct-own-buffers';

export interface DispatchProbeRecord {
  id: DispatchCaseId;
  /** What each dispatch does. */
  what: string;
  /** The pass's calls per dispatch (setPipeline/setBindGroup once per pass unless listed here). */
  calls: string;
  /** Workgroups per dispatch (as run: 0 for zero indirect args) and invocations per workgroup. */
  workgroups: number;
  invocations: number;
  /** µs per dispatch by timestamp queries, median and every pass; absent without timestamp-query. */
  gpuUs?: number;
  gpuAllUs?: number[];
  /** µs per dispatch by wall clock (submit → done, empty pass subtracted, at least 1e-3). */
  wallUs: number;
  wallAllUs: number[];
  /** CPU µs per dispatch to encode (command encoder to finish(), empty pass subtracted, at least 1e-3). */
  encodeUs: number;
  encodeAllUs: number[];
  /** CPU µs per dispatch inside queue.submit() (empty pass subtracted, at least 1e-3). */
  submitUs: number;
  /** Null when the check pass left the expected words, else what was wrong. */
  checkError: string | null;
}

export interface DispatchProbeReport {
  /** Dispatches per pass. */
  n: number;
  passes: number;
  /** Seconds of warmUpGpu() before the timed passes (0 on software adapters). */
  warmUpSec: number;
  timestamps: boolean;
  /** The empty pass (no dispatch), whole-pass µs: the median of the rounds' (at least 3). */
  empty?: { wallUs: number; encodeUs: number; submitUs: number; gpuUs?: number };
  records: DispatchProbeRecord[];
  /** Why the probe as a whole failed. */
  error?: string;
}

export interface DispatchProbeOptions {
  n: number;
  passes: number;
  timestamps: boolean;
  /** warmUpGpu() seconds before timing (the matmul probe's 1.5 s on a GPU; 0 on software). */
  warmUpSec: number;
}

// Case 1: an atomic counter hands each dispatch its own slot (WebGPU has no dispatch index), so
// no dispatch needs another's result.
const SLOT_WGSL = /* wgsl */ `
struct Slots { count: atomic<u32>, slot: array<u32> }
@group(0) @binding(0) var<storage, read_write> b: Slots;
@compute @workgroup_size(1) fn main() {
  let s = atomicAdd(&b.count, 1u);
  if (s < arrayLength(&b.slot)) { b.slot[s] = s + 1u; }
}`;

// The chain: every invocation adds STEP to its own word, so each dispatch reads what the previous
// one wrote. (wgpu puts a barrier between any two dispatches that bind one buffer read_write, case 1
// too: track/mod.rs skip_barrier() skips only read-only uses; case 7 has none.)
const CHAIN_WGSL = /* wgsl */ `
override WG: u32 = 1u;
override STEP: u32 = 1u;
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&data)) { data[g.x] = data[g.x] + STEP; }
}`;

/** The grid of case 5: a full-size launch (384 × 128 invocations, as a large layer kernel). */
const GRID = { workgroups: 384, invocations: 128 };

interface ProbeCase {
  id: DispatchCaseId;
  what: string;
  calls: string;
  workgroups: number;
  invocations: number;
  /** The N dispatches, with whatever set calls they need. */
  encode(pass: GPUComputePassEncoder): void;
  /** The buffers the check reads, each cleared before the check pass. */
  buffers: GPUBuffer[];
  /** Null when the words read back (every buffer's, concatenated) are right. */
  verify(words: Uint32Array): string | null;
}

function storage(device: GPUDevice, words: number, label: string): GPUBuffer {
  return device.createBuffer({
    label,
    size: 4 * words,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
}

function bind(device: GPUDevice, pipeline: GPUComputePipeline, buffer: GPUBuffer): GPUBindGroup {
  return device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer } }],
  });
}

/** Null when every word equals `expected(i)`, else the first one that does not. */
function expectWords(words: Uint32Array, expected: (i: number) => number): string | null {
  for (let i = 0; i < words.length; i++)
    if (words[i] !== expected(i)) return `word ${i} is ${words[i]}, expected ${expected(i)}`;
  return null;
}

async function buildCases(device: GPUDevice, n: number): Promise<{ cases: ProbeCase[]; own: GPUBuffer[] }> {
  const own: GPUBuffer[] = [];
  const keep = (b: GPUBuffer): GPUBuffer => (own.push(b), b);
  const slot = await createPipeline(device, { label: 'probe-slot', code: SLOT_WGSL });
  const chain = await createPipeline(device, { label: 'probe-chain', code: CHAIN_WGSL });
  const chainB = await createPipeline(device, {
    label: 'probe-chain-b',
    code: CHAIN_WGSL,
    constants: { STEP: 2 },
  });
  const grid = await createPipeline(device, {
    label: 'probe-chain-grid',
    code: CHAIN_WGSL,
    constants: { WG: GRID.invocations },
  });

  const args = keep(
    device.createBuffer({
      label: 'probe-args',
      size: 24,
      usage: GPUBufferUsage.INDIRECT,
      mappedAtCreation: true,
    }),
  );
  new Uint32Array(args.getMappedRange()).set([1, 1, 1, 0, 0, 0]);
  args.unmap();

  const slots = keep(storage(device, 1 + n, 'probe-slots'));
  const slotGroup = bind(device, slot, slots);
  const word = keep(storage(device, 1, 'probe-word'));
  const wordGroup = bind(device, chain, word);
  const wordGroupB = bind(device, chainB, word);
  const gridWords = keep(storage(device, GRID.workgroups * GRID.invocations, 'probe-grid'));
  const gridGroup = bind(device, grid, gridWords);
  const perDispatch = Array.from({ length: n }, (_, i) => keep(storage(device, 1, `probe-own-${i}`)));
  const perDispatchGroups = perDispatch.map((b) => bind(device, chain, b));

  const repeat = (f: () => void) => {
    for (let i = 0; i < n; i++) f();
  };

  const cases: ProbeCase[] = [
    {
      id: 'direct',
      what: 'dispatchWorkgroups(1): writes one word into its own slot (atomic counter), no dependency',
      calls: 'dispatch',
      workgroups: 1,
      invocations: 1,
      encode: (pass) => {
        pass.setPipeline(slot);
        pass.setBindGroup(0, slotGroup);
        repeat(() => pass.dispatchWorkgroups(1));
      },
      buffers: [slots],
      verify: (w) => expectWords(w, (i) => (i === 0 ? n : i)),
    },
    {
      id: 'direct-chain',
      what: 'dispatchWorkgroups(1): reads the previous dispatch’s word, writes the next (dependent chain)',
      calls: 'dispatch',
      workgroups: 1,
      invocations: 1,
      encode: (pass) => {
        pass.setPipeline(chain);
        pass.setBindGroup(0, wordGroup);
        repeat(() => pass.dispatchWorkgroups(1));
      },
      buffers: [word],
      verify: (w) => expectWords(w, () => n),
    },
    {
      id: 'indirect-chain',
      what: 'the chain by dispatchWorkgroupsIndirect, args (1, 1, 1)',
      calls: 'dispatchIndirect',
      workgroups: 1,
      invocations: 1,
      encode: (pass) => {
        pass.setPipeline(chain);
        pass.setBindGroup(0, wordGroup);
        repeat(() => pass.dispatchWorkgroupsIndirect(args, 0));
      },
      buffers: [word],
      verify: (w) => expectWords(w, () => n),
    },
    {
      id: 'indirect-zero',
      what: 'the chain by dispatchWorkgroupsIndirect, args (0, 0, 0): a skipped depth',
      calls: 'dispatchIndirect',
      workgroups: 0,
      invocations: 1,
      encode: (pass) => {
        pass.setPipeline(chain);
        pass.setBindGroup(0, wordGroup);
        repeat(() => pass.dispatchWorkgroupsIndirect(args, 12));
      },
      buffers: [word],
      verify: (w) => expectWords(w, () => 0),
    },
    {
      id: 'direct-chain-grid',
      what: `dispatchWorkgroups(${GRID.workgroups}) × ${GRID.invocations} invocations, each one guarded read-add-write of its own word (dependent)`,
      calls: 'dispatch',
      workgroups: GRID.workgroups,
      invocations: GRID.invocations,
      encode: (pass) => {
        pass.setPipeline(grid);
        pass.setBindGroup(0, gridGroup);
        repeat(() => pass.dispatchWorkgroups(GRID.workgroups));
      },
      buffers: [gridWords],
      verify: (w) => expectWords(w, () => n),
    },
    {
      id: 'direct-chain-switch',
      what: 'the chain, alternating two pipelines and two bind groups (as the layers do)',
      calls: 'setPipeline + setBindGroup + dispatch',
      workgroups: 1,
      invocations: 1,
      encode: (pass) => {
        for (let i = 0; i < n; i++) {
          pass.setPipeline(i % 2 ? chainB : chain);
          pass.setBindGroup(0, i % 2 ? wordGroupB : wordGroup);
          pass.dispatchWorkgroups(1);
        }
      },
      buffers: [word],
      // Pipeline B adds 2: the odd dispatches.
      verify: (w) => expectWords(w, () => n + Math.floor(n / 2)),
    },
    {
      // wgpu tracks usage per whole buffer: only separate buffers let it leave out the barrier.
      id: 'direct-own-buffers',
      what: 'dispatchWorkgroups(1): each dispatch adds 1 to a buffer of its own (no dependency, no barrier)',
      calls: 'setBindGroup + dispatch',
      workgroups: 1,
      invocations: 1,
      encode: (pass) => {
        pass.setPipeline(chain);
        for (const g of perDispatchGroups) {
          pass.setBindGroup(0, g);
          pass.dispatchWorkgroups(1);
        }
      },
      buffers: perDispatch,
      verify: (w) => expectWords(w, () => 1),
    },
  ];
  return { cases, own };
}

interface PassTimes {
  encodeMs: number;
  submitMs: number;
  wallMs: number;
  gpuMs?: number;
}

interface Timestamps {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
}

/** One compute pass holding `encode`'s dispatches (none when null), timed on every clock. */
async function runPass(
  device: GPUDevice,
  encode: ((pass: GPUComputePassEncoder) => void) | null,
  ts: Timestamps | null,
): Promise<PassTimes> {
  const t0 = performance.now();
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass(
    ts
      ? { timestampWrites: { querySet: ts.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } }
      : {},
  );
  encode?.(pass);
  pass.end();
  if (ts) {
    encoder.resolveQuerySet(ts.querySet, 0, 2, ts.resolve, 0);
    encoder.copyBufferToBuffer(ts.resolve, 0, ts.readback, 0, 16);
  }
  const commands = encoder.finish();
  const t1 = performance.now();
  device.queue.submit([commands]);
  const t2 = performance.now();
  await device.queue.onSubmittedWorkDone();
  const t3 = performance.now();
  const times: PassTimes = { encodeMs: t1 - t0, submitMs: t2 - t1, wallMs: t3 - t1 };
  if (ts) {
    await ts.readback.mapAsync(GPUMapMode.READ);
    const [begin, end] = new BigUint64Array(ts.readback.getMappedRange().slice(0));
    ts.readback.unmap();
    times.gpuMs = Number(end! - begin!) / 1e6;
  }
  return times;
}

/** Clears the case's buffers, runs its N dispatches once and reads the buffers back. */
async function checkPass(device: GPUDevice, c: ProbeCase): Promise<string | null> {
  const bytes = c.buffers.reduce((s, b) => s + b.size, 0);
  const readback = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  device.pushErrorScope('validation');
  const encoder = device.createCommandEncoder();
  for (const b of c.buffers) encoder.clearBuffer(b);
  const pass = encoder.beginComputePass();
  c.encode(pass);
  pass.end();
  let offset = 0;
  for (const b of c.buffers) {
    encoder.copyBufferToBuffer(b, 0, readback, offset, b.size);
    offset += b.size;
  }
  device.queue.submit([encoder.finish()]);
  const invalid = await device.popErrorScope();
  if (invalid) {
    readback.destroy();
    return `validation: ${invalid.message}`;
  }
  await readback.mapAsync(GPUMapMode.READ);
  const words = new Uint32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  readback.destroy();
  return c.verify(words);
}

/** µs per dispatch from whole-pass ms, less the empty pass; clamped positive as timePasses() does. */
export function perDispatchUs(passMs: number, emptyMs: number, n: number): number {
  return Math.max(1e-3, ((passMs - emptyMs) * 1000) / n);
}

export async function dispatchProbe(
  device: GPUDevice,
  options: DispatchProbeOptions,
): Promise<DispatchProbeReport> {
  const { n, passes } = options;
  const report: DispatchProbeReport = {
    n,
    passes,
    warmUpSec: options.warmUpSec,
    timestamps: options.timestamps,
    records: [],
  };
  const ts: Timestamps | null = options.timestamps
    ? {
        querySet: device.createQuerySet({ type: 'timestamp', count: 2 }),
        resolve: device.createBuffer({
          size: 16,
          usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        }),
        readback: device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      }
    : null;
  let own: GPUBuffer[] = [];
  try {
    const built = await buildCases(device, n);
    own = built.own;
    const { cases } = built;
    // The untimed first pass of each case (compile, first touch) is its check.
    const checks: (string | null)[] = [];
    for (const c of cases) checks.push(await checkPass(device, c));
    if (options.warmUpSec > 0) await warmUpGpu(device, options.warmUpSec);
    // Rounds of one pass per case and clock, plus an empty pass (at least 3 of those): interleaved,
    // so that clocks or load drifting during the probe touch every case alike.
    const empty: PassTimes[] = [];
    const emptyGpu: number[] = [];
    const wall = cases.map((): PassTimes[] => []);
    const gpu = cases.map((): number[] => []);
    for (let round = 0; round < Math.max(3, passes); round++) {
      empty.push(await runPass(device, null, null));
      if (ts) emptyGpu.push((await runPass(device, null, ts)).gpuMs!);
      if (round >= passes) continue;
      for (const [i, c] of cases.entries()) {
        wall[i]!.push(await runPass(device, c.encode, null));
        if (ts) gpu[i]!.push((await runPass(device, c.encode, ts)).gpuMs!);
      }
    }
    // The median empty pass, as the cases' passes are medians: the fastest would bias the wall
    // column upwards by the round trip's spread (Deno: 10.4 ms min, 11.4 ms p50 on the H200).
    const middle = (f: (t: PassTimes) => number) => median(empty.map(f));
    const e = {
      wallMs: middle((t) => t.wallMs),
      encodeMs: middle((t) => t.encodeMs),
      submitMs: middle((t) => t.submitMs),
    };
    report.empty = {
      wallUs: e.wallMs * 1000,
      encodeUs: e.encodeMs * 1000,
      submitUs: e.submitMs * 1000,
      ...(ts ? { gpuUs: median(emptyGpu) * 1000 } : {}),
    };
    for (const [i, c] of cases.entries()) {
      const passTimes = wall[i]!;
      const wallAllUs = passTimes.map((t) => perDispatchUs(t.wallMs, e.wallMs, n));
      const encodeAllUs = passTimes.map((t) => perDispatchUs(t.encodeMs, e.encodeMs, n));
      const gpuAllUs = gpu[i]!.map((ms) => (ms * 1000) / n);
      report.records.push({
        id: c.id,
        what: c.what,
        calls: c.calls,
        workgroups: c.workgroups,
        invocations: c.invocations,
        ...(ts ? { gpuUs: median(gpuAllUs), gpuAllUs } : {}),
        wallUs: median(wallAllUs),
        wallAllUs,
        encodeUs: median(encodeAllUs),
        encodeAllUs,
        submitUs: median(passTimes.map((t) => perDispatchUs(t.submitMs, e.submitMs, n))),
        checkError: checks[i]!,
      });
    }
  } catch (error) {
    report.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } finally {
    ts?.querySet.destroy();
    ts?.resolve.destroy();
    ts?.readback.destroy();
    for (const b of own) b.destroy();
  }
  return report;
}

/** One console line per case (the Deno log). */
export function dispatchProbeLines(r: DispatchProbeReport): string[] {
  if (r.error) return [`dispatch probe: ${r.error}`];
  const us = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(2));
  return r.records.map(
    (x) =>
      `dispatch probe ${x.id} (N ${r.n}): GPU ${us(x.gpuUs)} µs, wall ${us(x.wallUs)} µs, encode ${us(x.encodeUs)} µs, ` +
      `submit ${us(x.submitUs)} µs per dispatch; ${x.checkError ? `CHECK FAILED ${x.checkError}` : 'check ok'}`,
  );
}
