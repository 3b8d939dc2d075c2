/**
 * What claiming albums in --market order costs (src/transforms/turn.ts): a `{market}` pull with
 * and without `--state`, the markets pulled side by side, against the emulator answering each
 * page after a latency. Without a state the markets do not wait on each other; with one, each
 * waits for the markets before it, so this is the turns' price.
 *
 *   npx node bench/turns.ts [RUNS] [ALBUMS_PER_MARKET] [LATENCY_MS] [MARKETS] [CONCURRENCY]
 *   (defaults: 3 400 100 SE,DE,US,FR 4: four markets of 8 pages, 100 ms a page)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, measure, median, startEmulatorProcess } from './harness.ts';

const [runs = 3, albums = 400, latency = 100] = process.argv.slice(2, 5).map(Number);
const markets = process.argv[5] ?? 'SE,DE,US,FR';
const concurrency = process.argv[6] ?? '4';
const emulator = await startEmulatorProcess(albums, latency);
const times: Record<'without' | 'with', number[]> = { without: [], with: [] };
try {
  for (let run = 0; run < runs; run++) {
    // Taking turns, run by run: the machine's noise falls on both alike.
    for (const kind of ['without', 'with'] as const) {
      const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-turns-'));
      const args = ['new-releases', '-q', '--market', markets, '--concurrency', concurrency];
      args.push('--out', join(dir, '{market}.csv'));
      if (kind === 'with') args.push('--state', join(dir, 'state.tsv'));
      times[kind].push((await measure(process.execPath, [bin, ...args], emulator.env)).seconds);
      await rm(dir, { recursive: true, force: true });
    }
  }
} finally {
  await emulator.stop();
}
const [without, withState] = [median(times.without), median(times.with)];
console.log(
  `--market ${markets}, ${albums} albums a market, ${latency} ms a page, --concurrency ${concurrency}, ${runs} runs: ` +
    `without --state ${without.toFixed(2)} s, with --state ${withState.toFixed(2)} s (${(withState / without).toFixed(2)}x)`,
);
