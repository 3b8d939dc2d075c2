/**
 * The pacer under noise, on a virtual clock (test/helpers/pacing-sim.ts): the rolling-window rows
 * of bench/pacing.ts through the real Pacer against the emulator's RateWindow, with seeded
 * one-way jitter, late timers and stalls. Medians and worst of `--seeds` runs, in milliseconds of
 * CPU; no process, no network.
 *
 *   npx node bench/pacing-sim.ts [--seeds N] [--only TEXT]
 */
import { parseArgs } from 'node:util';
import type { RateLimit } from '../src/emulator/faults.ts';
import { LOADED, type Noise, QUIET, simulate } from '../test/helpers/pacing-sim.ts';

const { values: args } = parseArgs({
  options: { seeds: { type: 'string', default: '20' }, only: { type: 'string' } },
});

export const rows: {
  name: string;
  limits: RateLimit[];
  pages: number;
  concurrency: number;
  latencyMs?: number;
}[] = [
  { name: '10 per 1 s, c4', limits: [{ count: 10, windowSeconds: 1 }], pages: 200, concurrency: 4 },
  {
    name: '10 per 1 s, c16',
    limits: [{ count: 10, windowSeconds: 1 }],
    pages: 200,
    concurrency: 16,
  },
  { name: '50 per 5 s, c4', limits: [{ count: 50, windowSeconds: 5 }], pages: 300, concurrency: 4 },
  {
    name: '50 per 5 s, c16',
    limits: [{ count: 50, windowSeconds: 5 }],
    pages: 300,
    concurrency: 16,
  },
  {
    name: '100 per 30 s, c4',
    limits: [{ count: 100, windowSeconds: 30 }],
    pages: 300,
    concurrency: 4,
  },
  {
    name: '100 per 30 s, c16',
    limits: [{ count: 100, windowSeconds: 30 }],
    pages: 300,
    concurrency: 16,
  },
  {
    name: '10 → 5 per 1 s after 100 requests, c4',
    limits: [
      { count: 10, windowSeconds: 1 },
      { count: 5, windowSeconds: 1, after: 100 },
    ],
    pages: 200,
    concurrency: 4,
  },
  {
    name: '10 → 5 per 1 s after 100 requests, c16',
    limits: [
      { count: 10, windowSeconds: 1 },
      { count: 5, windowSeconds: 1, after: 100 },
    ],
    pages: 200,
    concurrency: 16,
  },
  {
    name: '50 → 25 per 5 s after 150 requests, c4',
    limits: [
      { count: 50, windowSeconds: 5 },
      { count: 25, windowSeconds: 5, after: 150 },
    ],
    pages: 300,
    concurrency: 4,
  },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
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
