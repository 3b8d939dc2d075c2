/**
 * Is flat memory (a million albums vs ten thousand, inside a 128 MiB cgroup) reachable at all?
 * The same cgroup runs for the fetch-and-discard floor (bench/floor.ts: node and undici's two
 * modules, nothing else), the floor that also JSON.parses each page, the floor that also makes
 * the rows and CSV (on one thread, and in a worker thread: what a parallel design would hold),
 * and the pipeline to /dev/null: peak cgroup memory at both sizes, medians of `runs`,
 * interleaved. The floor runs
 * with the bin's malloc settings and young generation, so only the work differs. Part of
 * `npm run bench` (bench/containers.ts); alone:
 *
 *   npx node bench/floor-cgroup.ts [runs=3] [small=10000] [large=1000000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bin,
  cgroupAndNginx,
  en,
  inCgroup,
  MiB,
  median,
  root,
  startStaticSource,
} from './harness.ts';

/** The table (markdown), or why it was not measured here. */
export async function floorCgroup(
  runs: number,
  small = 10_000,
  large = 1_000_000,
): Promise<string> {
  const { cgroups, nginx, reason } = cgroupAndNginx();
  if (reason !== undefined) return `Not measured here: ${reason}.`;
  const env = {
    MALLOC_ARENA_MAX: '2',
    MALLOC_MMAP_THRESHOLD_: '65536',
    MALLOC_TRIM_THRESHOLD_: '1048576',
  };
  const node = [process.execPath, '--max-semi-space-size=8', join(root, 'bench/floor.ts')];
  const cases = [
    { name: 'floor: fetch and discard', args: node, parse: '0' },
    { name: 'floor: fetch, JSON.parse, discard', args: node, parse: '1' },
    { name: 'floor: fetch, JSON.parse, rows and CSV on one thread', args: node, parse: 'rows' },
    {
      name: 'floor: fetch; JSON.parse, rows and CSV in a worker thread',
      args: node,
      parse: 'worker-rows',
    },
    {
      name: 'pipeline → /dev/null (the bin)',
      args: [bin, 'new-releases', '--out', '/dev/null'],
      parse: '0',
    },
  ];
  const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-floor-cgroup-'));
  const peaks = new Map<string, number[]>();
  /** Runs the OOM killer ended, per case and size (the worker variant sits near the limit). */
  const killed = new Map<string, number>();
  try {
    for (const albums of [small, large]) {
      const source = await startStaticSource(nginx, join(tmp, `static-${albums}`), albums);
      try {
        for (let i = 0; i < runs; i++) {
          for (const c of cases) {
            const [command, ...args] = c.args as [string, ...string[]];
            const r = await inCgroup(
              cgroups,
              128,
              command,
              command === node[0] ? args : [...args, '--quiet', '-c', '8'],
              { ...env, ...source.env, CONCURRENCY: '8', ALBUMS: String(albums), PARSE: c.parse },
            );
            const key = `${c.name}|${albums}`;
            if (r.oomKilled) {
              killed.set(key, (killed.get(key) ?? 0) + 1);
              continue;
            }
            peaks.set(key, [...(peaks.get(key) ?? []), r.peakBytes / MiB]);
          }
        }
      } finally {
        await source.stop();
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const lines = [
    `| process, inside 128 MiB (cgroup v${cgroups.version}), ${runs} runs | ${en(small)} albums, peak MiB | ${en(large)} albums, peak MiB | ratio |`,
    '| --- | --- | --- | --- |',
  ];
  /** The median peak of the runs that completed, and how many the OOM killer ended. */
  const cell = (key: string) => {
    const done = peaks.get(key) ?? [];
    const kills = killed.get(key) ?? 0;
    const peak = done.length > 0 ? median(done).toFixed(1) : '–';
    return kills > 0 ? `${peak} (**OOM-killed in ${kills} of ${runs}**)` : peak;
  };
  for (const c of cases) {
    const atSmall = median(peaks.get(`${c.name}|${small}`) ?? []);
    const atLarge = median(peaks.get(`${c.name}|${large}`) ?? []);
    const ratio = Number.isFinite(atLarge / atSmall) ? `${(atLarge / atSmall).toFixed(2)}×` : '–';
    lines.push(
      `| ${c.name} | ${cell(`${c.name}|${small}`)} | ${cell(`${c.name}|${large}`)} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.main) {
  const [runs = '3', small = '10000', large = '1000000'] = process.argv.slice(2);
  console.log(await floorCgroup(Number(runs), Number(small), Number(large)));
}
