/**
 * The incremental state at scale: bytes per id on disk, load time and memory retained per id
 * for a state of N ids (default 1,000,000), read through the same loadState the runs use. Run
 * with --expose-gc; prints one JSON line.
 *
 *   npx node --expose-gc bench/state.ts [ids]
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../src/core/options.ts';
import { spotifyId } from '../src/emulator/catalogue.ts';
import { Destinations } from '../src/sinks/open.ts';
import { loadState, STATE_HEADER } from '../src/state/state.ts';

const ids = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-state-bench-'));
const file = join(dir, 'state.tsv');
// 90 days of first-seen dates over 20 markets: what a daily pull keeps with the default TTL.
const markets = ['SE', 'US', 'DE', 'GB', 'FR', 'JP', 'BR', 'MX', 'ES', 'IT'];
const lines = [STATE_HEADER];
for (let i = 0; i < ids; i++) {
  const day = new Date(Date.UTC(2026, 8, 1) + (i % 90) * 86_400_000).toISOString().slice(0, 10);
  lines.push(`${spotifyId(1, 1, i)}\t${day}\t${markets[i % markets.length]}`);
}
await writeFile(file, `${lines.join('\n')}\n`);
lines.length = 0;
const bytes = (await stat(file)).size;
const destinations = new Destinations(
  {
    partSize: 8 * MiB,
    queueSize: 4,
    endpoint: undefined,
    forcePathStyle: false,
    region: undefined,
    sse: undefined,
    sseKmsKeyId: undefined,
    storageClass: undefined,
    tags: {},
  },
  process.env,
  process.stdout,
);
gc();
const before = process.memoryUsage().heapUsed;
const started = performance.now();
const state = await loadState(destinations, file);
const seconds = (performance.now() - started) / 1000;
gc();
const retained = process.memoryUsage().heapUsed - before;
console.log(
  JSON.stringify({
    ids: state.entries.size,
    fileBytes: bytes,
    bytesPerIdOnDisk: bytes / ids,
    loadSeconds: Math.round(seconds * 1000) / 1000,
    retainedMiB: Math.round((retained / MiB) * 10) / 10,
    bytesPerIdInMemory: Math.round(retained / ids),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
await rm(dir, { recursive: true, force: true });
