/**
 * The pacer under noise, on a virtual clock (test/helpers/pacing-sim.ts): the rolling-window rows
 * of bench/pacing.ts through the real Pacer against the emulator's RateWindow, with seeded
 * one-way jitter, late timers and stalls. Medians and worst of `--seeds` runs, in milliseconds of
 * CPU; no process, no network.
 *
 *   npx node bench/pacing-sim.ts [--seeds N] [--only TEXT]
 */
import { parseArgs } from 'node:util';
import { WINDOW_ROWS } from '../test/helpers/pacing-rows.ts';
import { LOADED, type Noise, QUIET, simulate } from '../test/helpers/pacing-sim.ts';
import { median } from './harness.ts';

const { values: args } = parseArgs({
  options: { seeds: { type: 'string', default: '20' }, only: { type: 'string' } },
});

/**
 * Every rolling-window row, c4 and c16; then pulls long enough to outlive the 30 s forget timer,
 * and a Retry-After longer than the window (review of issue 24).
 */
const { tenC4, fiftyC4 } = WINDOW_ROWS;
const rows = [
  ...Object.values(WINDOW_ROWS),
  { ...tenC4, pages: 1500 },
  { ...fiftyC4, pages: 1500 },
  {
    ...tenC4,
    name: '10 per 1 s, Retry-After 3 s, c4',
    limits: [{ count: 10, windowSeconds: 1, retryAfter: 3 }],
  },
];

const seeds = Number(args.seeds);
const lines = [
  '| limit, pages | noise | × ideal, median (worst) of ' +
    seeds +
    ' | 429s, median | 429s outside learning, median (worst) |',
  '| --- | --- | --- | --- | --- |',
];
for (const row of rows.filter((r) => args.only === undefined || r.name.includes(args.only))) {
  for (const [label, noise] of [
    ['quiet', QUIET],
    ['loaded', LOADED],
  ] as [string, Noise][]) {
    const runs = Array.from({ length: seeds }, (_, i) => simulate({ ...row, noise, seed: i + 1 }));
    const ratio = runs.map((r) => r.seconds / r.ideal);
    const late = runs.map((r) => (100 * r.lateRefused) / r.requests);
    lines.push(
      `| ${row.name}, ${row.pages} | ${label} | ${median(ratio).toFixed(2)}× (${Math.max(...ratio).toFixed(2)}×) | ${median(runs.map((r) => r.refused))} | ${median(late).toFixed(1)} % (${Math.max(...late).toFixed(1)} %) |`,
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
