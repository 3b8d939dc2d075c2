import type { RateLimit } from '../../src/emulator/faults.ts';

/** A pull against a rolling window: its limits (a later one after `after` requests), its size. */
export interface WindowRow {
  name: string;
  limits: RateLimit[];
  pages: number;
  concurrency: number;
  latencyMs?: number;
}

const row = (name: string, limits: RateLimit[], pages: number, concurrency: number): WindowRow => ({
  name,
  limits,
  pages,
  concurrency,
});
const ten = { count: 10, windowSeconds: 1 };
const fifty = { count: 50, windowSeconds: 5 };
const hundred = { count: 100, windowSeconds: 30 };

/**
 * The rolling-window rows of issue 17, one list for the real pulls (bench/pacing.ts), the
 * virtual-clock table (bench/pacing-sim.ts) and the pinned noise test (test/pacing-noise.test.ts),
 * so a row's name means the same pull in all three.
 */
export const WINDOW_ROWS = {
  tenC4: row('10 per 1 s, c4', [ten], 200, 4),
  tenC16: row('10 per 1 s, c16', [ten], 200, 16),
  fiftyC4: row('50 per 5 s, c4', [fifty], 300, 4),
  fiftyC16: row('50 per 5 s, c16', [fifty], 300, 16),
  hundredC4: row('100 per 30 s, c4', [hundred], 300, 4),
  hundredC16: row('100 per 30 s, c16', [hundred], 300, 16),
  halvingTenC4: row(
    '10 → 5 per 1 s after 100 requests, c4',
    [ten, { count: 5, windowSeconds: 1, after: 100 }],
    200,
    4,
  ),
  halvingTenC16: row(
    '10 → 5 per 1 s after 100 requests, c16',
    [ten, { count: 5, windowSeconds: 1, after: 100 }],
    200,
    16,
  ),
  halvingFiftyC4: row(
    '50 → 25 per 5 s after 150 requests, c4',
    [fifty, { count: 25, windowSeconds: 5, after: 150 }],
    300,
    4,
  ),
} satisfies Record<string, WindowRow>;
