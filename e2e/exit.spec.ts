import { expect, test } from '@playwright/test';
import { callHarness, openHarness } from './helpers';

// Early exit on the GPU (shaders/exit.wgsl, src/engine/plan.ts) on seeded random-weight models with
// exit heads (tests/fixtures/exit/random-model.ts), f32 weights on SwiftShader.
const HEAD_TOLERANCE = 1e-4; // heads vs the f64 CPU reference: max|gpu − cpu| / max|cpu|
const STAT_TOLERANCE = 1e-5; // the criterion's statistic vs evaluateExit f32 (log differs by ulps)

const FIXTURES = ['albert-exit', 'bert-exit', 'bert-exit-regression'] as const;

for (const name of FIXTURES) {
  test(`${name}: heads match the CPU reference; GPU exit layers equal evaluateExit (f32) for every criterion`, async ({
    page,
  }) => {
    await openHarness(page);
    const h = await callHarness(page, 'exitHeadsVsCpu', name, 5);
    console.log(`${name} heads: ${JSON.stringify(h)}`);
    for (const [what, d] of Object.entries(h.diffs)) {
      expect(d, `${what} vs CPU reference`).toBeLessThanOrEqual(HEAD_TOLERANCE);
    }
    expect(h.present).toEqual(h.expectedPresent);
    expect(h.layersPerExample.every((n) => n === h.layersPerExample[0])).toBe(true);

    // bert-exit runs its 7 examples as two plan runs (4 + 3), checking PonderNet's example indices.
    const maxBatch = name === 'bert-exit' ? 4 : undefined;
    const r = await callHarness(page, 'exitAgreement', name, 7, 1000, maxBatch);
    expect(r.planRuns).toBe(maxBatch ? 2 : 1);
    let compared = 0;
    for (const row of r.rows) {
      console.log(
        `${name} ${row.criterion}: ${row.outcome}` +
          (row.outcome === 'ok'
            ? ` exits [${row.exitLayers.join(' ')}], statistic diff ${row.statisticDiff.toExponential(2)}`
            : ''),
      );
      const criterion = JSON.parse(row.criterion) as { kind: string; head?: string };
      if (row.outcome === 'unsupported') {
        if (!criterion.head) expect(r.supported, `${row.criterion} refused`).not.toContain(criterion.kind);
        continue;
      }
      compared += row.exitLayers.length;
      expect(row.mismatches, row.criterion).toEqual([]);
      expect(row.firedMismatches, row.criterion).toBe(0);
      expect(row.answerMismatches, row.criterion).toBe(0);
      expect(row.statisticDiff, row.criterion).toBeLessThanOrEqual(STAT_TOLERANCE);
    }
    // Every supported kind was exercised, and exits landed on several layers.
    const ran = new Set(r.rows.filter((x) => x.outcome === 'ok').map((x) => JSON.parse(x.criterion).kind));
    for (const kind of r.supported) expect([...ran], `${kind} not exercised`).toContain(kind);
    expect(new Set(r.rows.flatMap((x) => x.exitLayers)).size).toBeGreaterThanOrEqual(3);
    console.log(`${name}: ${compared} example exits compared over ${r.rows.length} settings`);
  });
}

test('albert-exit with the GPU kernel tuning (split-K, short attention): GPU exit layers equal evaluateExit', async ({
  page,
}) => {
  // Exited examples are compacted out of later depths; with split-K the reductions and the
  // LayerNorms that sum partial sums must shrink with them.
  await openHarness(page);
  const r = await callHarness(page, 'exitAgreement', 'albert-exit', 7, 500, undefined, 'gpu');
  let compared = 0;
  for (const row of r.rows) {
    if (row.outcome !== 'ok') continue;
    compared += row.exitLayers.length;
    expect(row.mismatches, row.criterion).toEqual([]);
    expect(row.firedMismatches, row.criterion).toBe(0);
    expect(row.answerMismatches, row.criterion).toBe(0);
    expect(row.statisticDiff, row.criterion).toBeLessThanOrEqual(STAT_TOLERANCE);
  }
  console.log(`albert-exit (gpu tuning): ${compared} example exits compared over ${r.rows.length} settings`);
  expect(compared).toBeGreaterThan(50);
  expect(new Set(r.rows.flatMap((x) => x.exitLayers)).size).toBeGreaterThanOrEqual(3);
  // One example per call: batch-1 plans dispatch every depth directly and skip the layers after the
  // exit behind the exit gate (KernelTuning.batchOneExit 'gated', the GPU default).
  const one = await callHarness(page, 'exitAgreement', 'albert-exit', 3, 700, 1, 'gpu');
  let single = 0;
  for (const row of one.rows) {
    if (row.outcome !== 'ok') continue;
    single += row.exitLayers.length;
    expect(row.mismatches, `batch 1 ${row.criterion}`).toEqual([]);
    expect(row.firedMismatches, `batch 1 ${row.criterion}`).toBe(0);
    expect(row.answerMismatches, `batch 1 ${row.criterion}`).toBe(0);
    expect(row.statisticDiff, `batch 1 ${row.criterion}`).toBeLessThanOrEqual(STAT_TOLERANCE);
  }
  console.log(
    `albert-exit (gpu tuning, batch 1): ${single} example exits compared over ${one.rows.length} settings`,
  );
  expect(single).toBeGreaterThan(20);
  expect(new Set(one.rows.flatMap((x) => x.exitLayers)).size).toBeGreaterThanOrEqual(3);
  // Longer examples (up to 16 tokens, padded to the longest: more than 8 rows), where Q|K|V is split
  // at batch 1, so each depth's decide runs beside the next depth's Q|K|V reduction
  // (KernelTuning.decideInReduce; the gates' parameters from the plan's scratch copy) and the next
  // Q|K|V matmul ahead of the decision.
  const long = await callHarness(page, 'exitAgreement', 'albert-exit', 3, 900, 1, 'gpu', 16);
  let longExits = 0;
  for (const row of long.rows) {
    if (row.outcome !== 'ok') continue;
    longExits += row.exitLayers.length;
    expect(row.mismatches, `batch 1, long ${row.criterion}`).toEqual([]);
    expect(row.firedMismatches, `batch 1, long ${row.criterion}`).toBe(0);
    expect(row.answerMismatches, `batch 1, long ${row.criterion}`).toBe(0);
    expect(row.statisticDiff, `batch 1, long ${row.criterion}`).toBeLessThanOrEqual(STAT_TOLERANCE);
  }
  console.log(`albert-exit (gpu tuning, batch 1, up to 16 tokens): ${longExits} example exits compared`);
  expect(longExits).toBeGreaterThan(20);
  expect(new Set(long.rows.flatMap((x) => x.exitLayers)).size).toBeGreaterThanOrEqual(3);
});

test('no layer work after the exit: work counter and timestamps', async ({ page }) => {
  await openHarness(page);
  const r = await callHarness(page, 'workAfterExit', 'albert-exit', 5);
  console.log(JSON.stringify(r));
  const L = r.numLayers;
  const seqLen = r.fixed2.bucket.seqLen;
  // Rows a depth's kernels cover: the whole padded bucket at layer 1; after that only the examples
  // still running (moved to the front slots; exited examples and padding are skipped); 0 once every
  // example has exited.
  const expectedRows = (exits: number[]) =>
    Array.from({ length: L }, (_, d) => (d === 0 ? r.rows : exits.filter((x) => x > d).length * seqLen));
  // Everyone exits at layer 2: layers 3..L dispatch zero workgroups (and layer 2 skips the padding).
  expect(r.fixed2.exitLayers).toEqual([2, 2, 2, 2, 2]);
  expect(r.fixed2.rowsPerLayer).toEqual([r.rows, 5 * seqLen, ...Array(L - 2).fill(0)]);
  expect(r.fixed2.runningPerLayer).toEqual([5, 5, ...Array(L - 2).fill(0)]);
  expect(r.fixed2.skippedLayers).toBe(L - 2);
  expect(r.first.rowsPerLayer).toEqual([r.rows, ...Array(L - 1).fill(0)]);
  // Mixed exits: each example is live until its own exit; rows shrink to the running examples.
  const last = Math.max(...r.mixed.exitLayers);
  expect(new Set(r.mixed.exitLayers).size).toBeGreaterThan(1);
  expect(r.mixed.rowsPerLayer).toEqual(expectedRows(r.mixed.exitLayers));
  expect(r.mixed.runningPerLayer).toEqual(
    Array.from({ length: L }, (_, d) => r.mixed.exitLayers.filter((x) => x > d).length),
  );
  expect(r.mixed.skippedLayers).toBe(L - last);
  // Moving and skipping rows changes no running example's numbers: bit-identical to full depth.
  expect(r.mixedSameAsFull).toBe(true);
  expect(r.full.rowsPerLayer).toEqual([r.rows, ...Array(L - 1).fill(5 * seqLen)]);
  expect(r.full.skippedLayers).toBe(0);
  // Batch 1: the same accounting, the same numbers as full depth.
  const one = r.single;
  const oneRows = one.full.bucket.seqLen;
  expect(one.fixed2.exitLayers).toEqual([2]);
  expect(one.fixed2.rowsPerLayer).toEqual([oneRows, oneRows, ...Array(L - 2).fill(0)]);
  expect(one.fixed2.runningPerLayer).toEqual([1, 1, ...Array(L - 2).fill(0)]);
  expect(one.fixed2.skippedLayers).toBe(L - 2);
  expect(one.sameAsFull).toBe(true);
  expect(one.full.rowsPerLayer).toEqual(Array(L).fill(oneRows));
  const palbertExit = one.palbert.exitLayers[0]!;
  expect(one.palbert.rowsPerLayer).toEqual(
    Array.from({ length: L }, (_, d) => (d < palbertExit ? oneRows : 0)),
  );
  // The CPU's share of a call (uploads + submit; encoding too when no command buffer was encoded
  // ahead) is measured, and is part of the wall time. It may read 0: a steady-state call only uploads
  // and submits, below the page's timer resolution (100 µs without cross-origin isolation).
  for (const t of [r.timing.full, r.timing.exitAt1]) {
    console.log(
      `wall ${t.wallMs?.toFixed(1)} ms, GPU ${t.gpuMs?.toFixed(1)} ms, encode + submit ${t.submitMs?.toFixed(2)} ms`,
    );
    expect(t.submitMs).toBeGreaterThanOrEqual(0);
    expect(t.submitMs!).toBeLessThan(t.wallMs!);
  }
  if (r.hasTimestamps) {
    expect(r.fixed2.layerMs).not.toBeNull();
    // A skipped depth is an empty pass plus a 100-byte copy: about 0.3 ms on SwiftShader, where an
    // executed depth takes 120-190 ms here. Bound: a tenth of the cheapest executed depth, not an
    // absolute 1 ms, which a busy 2-core machine once overshot (2.06 ms) with no work in the pass.
    const executed = r.fixed2.layerMs!.slice(0, 2);
    for (const ms of executed) expect(ms).toBeGreaterThan(1);
    for (const ms of r.fixed2.layerMs!.slice(2)) expect(ms).toBeLessThan(Math.min(...executed) / 10);
    // Batch 1: a skipped depth costs next to nothing.
    const oneMs = r.single.fixed2.layerMs!;
    console.log(`batch 1, exit at 2: layer GPU ms ${oneMs.map((x) => x.toFixed(2)).join(' ')}`);
    expect(Math.max(...oneMs.slice(2))).toBeLessThan(Math.min(...oneMs.slice(0, 2)) / 4);
    // The kernel profile: every dispatch of every pass timed, the numbers unchanged.
    expect(r.profile).not.toBeNull();
    expect(r.profile!.passes).toBe(L + 1);
    expect(r.profile!.attention).toBe(L);
    expect(r.profile!.dispatches).toBeGreaterThan(8 * L);
    expect(r.profile!.allTimed).toBe(true);
    expect(r.profile!.totalMs).toBeGreaterThan(0);
    expect(r.profile!.sameAsFull).toBe(true);
  } else {
    console.log('adapter has no timestamp-query: per-layer GPU times and the kernel profile not checked');
  }
});

test('streaming mode delivers the same per-layer events as single submit, during the pass', async ({
  page,
}) => {
  await openHarness(page);
  const r = await callHarness(page, 'streamingEvents', 'albert-exit', 4);
  console.log(JSON.stringify({ ...r, layerOrder: r.layerOrder.join('') }));
  expect(r.sameEvents).toBe(true);
  expect(r.sameResults).toBe(true);
  expect(r.events).toBe(r.expectedEvents);
  expect(r.eventsBeforeResolve).toBe(r.events);
  // Layer order: all of layer 1, then layer 2, ...
  expect([...r.layerOrder].sort((a, b) => a - b)).toEqual(r.layerOrder);
  // Batch 1 under the GPU tuning, examples long enough to split Q|K|V: a depth's records are final
  // one pass later (its decide runs beside the next depth's Q|K|V reduction), and each streamed
  // event still carries them.
  const one = await callHarness(page, 'streamingEvents', 'albert-exit', 3, true);
  console.log(JSON.stringify({ ...one, layerOrder: one.layerOrder.join('') }));
  expect(one.sameEvents).toBe(true);
  expect(one.sameResults).toBe(true);
  expect(one.events).toBe(one.expectedEvents);
});

test('criterion errors before GPU work; default criterion from config; supported criteria', async ({
  page,
}) => {
  await openHarness(page);
  const bert = await callHarness(page, 'exitApi', 'bert-exit');
  console.log(JSON.stringify(bert));
  expect(bert.supported).toEqual([
    'palbert',
    'pondernet-sample',
    'max-prob',
    'entropy',
    'gate',
    'fixed',
    'none',
  ]);
  expect(bert.defaultCriterion).toEqual({ kind: 'none' });
  expect(bert.pabee.code).toBe('unsupported-criterion');
  expect(bert.pabee.message).toMatch(/per-layer classifier heads/);
  expect(bert.gate.code).toBe('no error');
  expect(bert.badQ.code).toBe('invalid-input');
  expect(bert.unknown.code).toBe('unsupported-criterion');
  const albert = await callHarness(page, 'exitApi', 'albert-exit');
  expect(albert.supported).toEqual([
    'palbert',
    'pondernet-sample',
    'pabee',
    'max-prob',
    'entropy',
    'gate',
    'fixed',
    'none',
  ]);
  expect(albert.defaultCriterion).toEqual({ kind: 'palbert', q: 0.5 });
  const regression = await callHarness(page, 'exitApi', 'bert-exit-regression');
  expect(regression.supported).toEqual(['palbert', 'pondernet-sample', 'pabee', 'fixed', 'none']);
  expect(regression.gate.code).toBe('unsupported-criterion');
});

test('back-to-back passes in one submit give the same results as one call', async ({ page }) => {
  await openHarness(page);
  const r = await callHarness(page, 'backToBackSameAsSingle', 'albert-exit');
  console.log(JSON.stringify(r));
  expect(r.length).toBe(4);
  for (const x of r) expect(x.same, `${x.tuning} tuning, batch ${x.batch}`).toBe(true);
  // The criterion did exit somewhere before the last layer, so the reset of the exit state mattered.
  expect(Math.min(...r.flatMap((x) => x.exitLayers))).toBeLessThan(6);
});
