/**
 * Throughput against a static floor (a section of `npm run bench`): nginx (its own process, one
 * worker; bench/static.ts) serves pages rendered ahead, so the source costs almost nothing; the
 * pipeline to /dev/null, fetch-and-discard (bench/floor.ts) and the references that also parse,
 * make rows and CSV (on one thread, and in a worker), interleaved; then one CPU profile of the
 * pipeline by stage.
 *
 *   npx node bench/static-floor.ts [--quick] [albums=100000]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bin,
  check,
  en,
  ensureNginx,
  type Measured,
  measure,
  median,
  profiled,
  pullArgs,
  range,
  root,
  selfTimeByStage,
  startStaticSource,
} from './harness.ts';

export async function staticFloorSection(
  quick: boolean,
  albums: number,
  nginx: string,
): Promise<string> {
  const runs = quick ? 2 : 7;
  const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-static-floor-'));
  const source = await startStaticSource(nginx, join(tmp, 'static'), albums);
  const cases = [
    {
      name: `pipeline → /dev/null (\`spotify-batch new-releases --out /dev/null -c 8\`)`,
      command: bin,
      args: pullArgs('/dev/null'),
      env: {},
    },
    {
      name: 'floor: fetch and discard (`node bench/floor.ts`)',
      command: process.execPath,
      args: ['--max-semi-space-size=8', join(root, 'bench/floor.ts')],
      env: { CONCURRENCY: '8', ALBUMS: String(albums) },
    },
    {
      name: 'reference: fetch, JSON.parse and discard (`PARSE=1 node bench/floor.ts`)',
      command: process.execPath,
      args: ['--max-semi-space-size=8', join(root, 'bench/floor.ts')],
      env: { CONCURRENCY: '8', ALBUMS: String(albums), PARSE: '1' },
    },
    {
      name: 'reference: fetch, JSON.parse, rows and CSV in a plain loop, one thread (`PARSE=rows`)',
      command: process.execPath,
      args: ['--max-semi-space-size=8', join(root, 'bench/floor.ts')],
      env: { CONCURRENCY: '8', ALBUMS: String(albums), PARSE: 'rows' },
    },
    {
      name: 'reference: fetch; JSON.parse, rows and CSV in a worker thread, bytes handed back (`PARSE=worker-rows`)',
      command: process.execPath,
      args: ['--max-semi-space-size=8', join(root, 'bench/floor.ts')],
      env: { CONCURRENCY: '8', ALBUMS: String(albums), PARSE: 'worker-rows' },
    },
  ];
  const results = cases.map(() => [] as Measured[]);
  let internal = false;
  let profile: [string, number][] = [];
  try {
    for (let i = 0; i < runs; i++) {
      for (const [k, c] of cases.entries()) {
        const m = await measure(c.command, c.args, { ...source.env, ...c.env });
        results[k]?.push(m);
        if (k === 0) internal ||= m.internalUndici;
      }
    }
    profile = selfTimeByStage((await profiled(pullArgs('/dev/null'), source.env)).profile);
  } finally {
    await source.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  const wall = (k: number) => median((results[k] as Measured[]).map((m) => m.seconds));
  const cpu = (k: number) => median((results[k] as Measured[]).map((m) => m.cpuSeconds));
  const ratio = wall(0) / wall(1);
  const perRun = (results[0] as Measured[]).map(
    (m, i) => m.seconds / ((results[1] as Measured[])[i] as Measured).seconds,
  );
  return `## Throughput against a static floor (${en(albums)} albums → /dev/null, ${runs} runs, interleaved)

nginx (${spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '') || 'nginx'}; its own process, one worker, no access log) serves every page from a file rendered ahead by the emulator, so the source costs almost nothing. Process wall time includes Node's start-up for every row. CPU is the process's own user + system time (all its threads). The floor and the references run with the bin's young generation (\`--max-semi-space-size=8\`). The references use the project's own \`albumToRows\` and \`csvRecord\` in plain loops, writing the CSV nowhere: no streams, no outputs, no state; they bound what any design of this work costs on this machine, with pages parsed by JSON.parse.

| process | wall s, median (min–max) | CPU s, median | peak RSS MiB, median |
| --- | --- | --- | --- |
${cases
  .map(
    (c, k) =>
      `| ${c.name} | ${wall(k).toFixed(2)} (${range(
        (results[k] as Measured[]).map((m) => m.seconds),
        2,
      )}) | ${cpu(k).toFixed(2)} | ${median((results[k] as Measured[]).map((m) => m.rssMiB)).toFixed(0)} |`,
  )
  .join('\n')}

| target | measured | |
| --- | --- | --- |
| pipeline within 1.5 × the fetch-and-discard floor | ${ratio.toFixed(2)}× (${wall(0).toFixed(2)} s / ${wall(1).toFixed(2)} s; run by run ${range(perRun, 2)}) | ${check(ratio <= 1.5)} |
| reference: JSON.parse alone over the floor | ${(wall(2) / wall(1)).toFixed(2)}× (${wall(2).toFixed(2)} s / ${wall(1).toFixed(2)} s) | |
| reference: the least this work costs on one thread (fetch, parse, rows, CSV; no streams) over the floor | ${(wall(3) / wall(1)).toFixed(2)}× (${wall(3).toFixed(2)} s / ${wall(1).toFixed(2)} s) | |
| reference: the least it costs with parse, rows and CSV in a worker thread, over the floor | ${(wall(4) / wall(1)).toFixed(2)}× (${wall(4).toFixed(2)} s / ${wall(1).toFixed(2)} s), peak RSS ${median((results[4] as Measured[]).map((m) => m.rssMiB)).toFixed(0)} vs ${median((results[3] as Measured[]).map((m) => m.rssMiB)).toFixed(0)} MiB on one thread | |
| pipeline over fetch + JSON.parse | ${(wall(0) / wall(2)).toFixed(2)}× (${wall(0).toFixed(2)} s / ${wall(2).toFixed(2)} s) | |
| pipeline over the one-thread least (what streams, the commit protocol and the CLI's start-up add) | ${(wall(0) / wall(3)).toFixed(2)}× (${wall(0).toFixed(2)} s / ${wall(3).toFixed(2)} s) | |

Node's bundled undici loaded by the pipeline run: ${internal ? '**yes** (undici is paid twice)' : 'no (the run pays for one undici, the npm package)'}.

Where the pipeline's CPU goes against this source (one \`--cpu-prof\` run, self time by where the sampled function lives):

| stage | share of samples |
| --- | --- |
${profile.map(([k, v]) => `| ${k} | ${v.toFixed(1)} % |`).join('\n')}
`;
}

if (import.meta.main) {
  const { nginx, reason } = ensureNginx();
  const albums = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 100_000);
  console.log(
    nginx === undefined
      ? `not measured here: ${reason}`
      : await staticFloorSection(process.argv.includes('--quick'), albums, nginx),
  );
}
