/**
 * The container, floor, start-up and Parquet measurements (issue 13), run by bench/run.ts after
 * its own sections; returns the RESULTS.md section. Every number here is a median (or a count)
 * from this one run; ratios are taken between runs of this same run.
 *
 * - Start-up: `--version` and `--help` through the installed-style bin (its shebang applies),
 *   peak RSS (VmHWM) and wall time, against bare `node`; what importing undici costs, and
 *   whether a run also loads the copy of undici bundled in Node (global fetch).
 * - Throughput against a static floor: nginx (its own process, one worker) serves pre-rendered
 *   pages; the pipeline to /dev/null, fetch-and-discard, and fetch-parse-discard, interleaved.
 * - Containers: the measured process alone in a memory cgroup (bench/cgroup.ts), with and
 *   without a limit: a million albums to S3, the smallest limit each format completes in, and
 *   the peak cgroup memory at 10,000 vs 1,000,000 albums inside 128 MiB.
 * - Parquet row groups: the old default (20,000 rows) and the new byte-sized one: rows per group,
 *   peak memory, and a DuckDB scan of the file.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalS3 } from '../scripts/local-s3.ts';
import { startS3 } from '../scripts/local-s3.ts';
import { type CgroupRun, detectCgroups } from './cgroup.ts';
import { floorCgroup } from './floor-cgroup.ts';
import { ensureNginx, type StaticSource, startStaticSource } from './static.ts';

const MiB = 1024 * 1024;
const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'dist/bin/spotify-batch.js');
const rssHook = join(root, 'bench/rss.mjs');
/** The bin's shebang runs `node` from PATH: the Node running the bench comes first. */
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;

export const median = (xs: number[]): number => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const range = (xs: number[], digits: number) =>
  `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
const check = (ok: boolean) => (ok ? 'met' : '**not met**');
const en = (n: number) => n.toLocaleString('en');

interface Measured {
  seconds: number;
  rssMiB: number;
  cpuSeconds: number;
  internalUndici: boolean;
}

/** One process, not in a cgroup: wall time, VmHWM and CPU time from bench/rss.mjs. */
export async function measure(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  tmp: string,
): Promise<Measured> {
  const rssFile = join(tmp, `rss-${process.hrtime.bigint()}`);
  const start = performance.now();
  const child = spawn(command, args, {
    env: {
      ...process.env,
      ...env,
      PATH,
      NODE_OPTIONS: `--import ${rssHook}`,
      BENCH_RSS_FILE: rssFile,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const seconds = (performance.now() - start) / 1000;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr}`);
  const [kib = 'NaN', cpu = 'NaN', internal = '0'] = (await readFile(rssFile, 'utf8')).split(' ');
  return {
    seconds,
    rssMiB: Number(kib) / 1024,
    cpuSeconds: Number(cpu),
    internalUndici: internal === '1',
  };
}

/** The bin with its shebang, as an installed `spotify-batch` runs. */
const pull = (out: string, extra: string[] = []) => [
  'new-releases',
  '--out',
  out,
  '--quiet',
  '--concurrency',
  '8',
  ...extra,
];

export interface Issue13Options {
  quick: boolean;
  runs: number;
  small: number;
  medium: number;
  large: number;
}

export async function issue13(o: Issue13Options): Promise<string> {
  const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-issue13-'));
  const sections: string[] = [];
  try {
    sections.push(await startup(o, tmp));
    const { nginx, reason } = ensureNginx();
    if (nginx === undefined) {
      sections.push(`## Throughput against a static floor\n\nNot measured here: ${reason}.\n`);
    } else {
      sections.push(await staticFloor(o, tmp, nginx));
    }
    const { cgroups, reason: noCgroup } = detectCgroups();
    if (cgroups === undefined || nginx === undefined) {
      sections.push(
        `## Memory in a container\n\nNot measured here: ${noCgroup ?? 'no static source (nginx)'}.\n`,
      );
    } else {
      sections.push(await containers(o, tmp, nginx, cgroups));
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return sections.join('\n');
}

// --- start-up ------------------------------------------------------------------------------------

async function startup(o: Issue13Options, tmp: string): Promise<string> {
  const runs = o.quick ? 3 : 11;
  const node = process.execPath;
  const cases: { name: string; command: string; args: string[] }[] = [
    { name: 'bare `node -e 0`', command: node, args: ['-e', '0'] },
    { name: '`spotify-batch --version`', command: bin, args: ['--version'] },
    { name: '`spotify-batch --help`', command: bin, args: ['--help'] },
  ];
  const results = new Map<string, Measured[]>();
  // Interleaved, so load from other processes falls on every case alike.
  for (let i = 0; i < runs; i++) {
    for (const c of cases) {
      const m = await measure(c.command, c.args, {}, tmp);
      results.set(c.name, [...(results.get(c.name) ?? []), m]);
    }
  }
  const imports: [string, string][] = [
    ['bare `node` (ESM entry)', '0'],
    ["`import('undici')` (the npm package's index)", "await import('undici')"],
    ["Node's bundled undici (`globalThis.fetch`)", 'globalThis.fetch; Headers'],
    ["`import('yargs')`", "await import('yargs')"],
    ["`import('@aws-sdk/client-s3')`", "await import('@aws-sdk/client-s3')"],
  ];
  const importRows: string[] = [];
  for (const [name, code] of imports) {
    const ms: Measured[] = [];
    for (let i = 0; i < Math.min(runs, 5); i++) {
      ms.push(
        await measure(node, ['--input-type=module', '-e', code], {}, tmp).catch(() => ({
          seconds: Number.NaN,
          rssMiB: Number.NaN,
          cpuSeconds: Number.NaN,
          internalUndici: false,
        })),
      );
    }
    importRows.push(
      `| ${name} | ${median(ms.map((m) => m.rssMiB)).toFixed(1)} | ${(median(ms.map((m) => m.seconds)) * 1000).toFixed(0)} | ${ms.some((m) => m.internalUndici) ? 'yes' : 'no'} |`,
    );
  }
  const row = (name: string) => {
    const ms = results.get(name) as Measured[];
    const rss = ms.map((m) => m.rssMiB);
    const ms_ = ms.map((m) => m.seconds * 1000);
    return {
      name,
      rss: median(rss),
      rssRange: range(rss, 1),
      wall: median(ms_),
      wallRange: range(ms_, 0),
    };
  };
  const rows = cases.map((c) => row(c.name));
  const version = rows[1] as ReturnType<typeof row>;
  const help = rows[2] as ReturnType<typeof row>;
  return `## Start-up (${runs} runs each, interleaved)

Through the bin as installed (\`dist/bin/spotify-batch.js\`, its shebang applies). Peak RSS is VmHWM (it counts the pages of the \`node\` binary the process touched, as the issue's numbers do, and includes bench/rss.mjs, the hook that reads it); wall time is spawn to exit.

| command | peak RSS MiB, median (min–max) | wall ms, median (min–max) |
| --- | --- | --- |
${rows.map((r) => `| ${r.name} | ${r.rss.toFixed(1)} (${r.rssRange}) | ${r.wall.toFixed(0)} (${r.wallRange}) |`).join('\n')}

| target | measured | |
| --- | --- | --- |
| \`--version\` ≤ 60 MiB and ≤ 100 ms | ${version.rss.toFixed(1)} MiB, ${version.wall.toFixed(0)} ms | ${check(version.rss <= 60 && version.wall <= 100)} |
| \`--help\` ≤ 60 MiB and ≤ 100 ms | ${help.rss.toFixed(1)} MiB, ${help.wall.toFixed(0)} ms | ${check(help.rss <= 60 && help.wall <= 100)} |

What one import costs (\`node --input-type=module -e …\`, ${Math.min(runs, 5)} runs, medians), and whether the process then holds Node's own bundled undici too:

| import | peak RSS MiB | wall ms | Node's bundled undici loaded |
| --- | --- | --- | --- |
${importRows.join('\n')}
`;
}

// --- throughput against nginx ------------------------------------------------------------------

async function staticFloor(o: Issue13Options, tmp: string, nginx: string): Promise<string> {
  const runs = o.quick ? 2 : 7;
  const albums = o.medium;
  const source = await startStaticSource(nginx, join(tmp, `static-${albums}`), albums);
  const cases = [
    {
      name: `pipeline → /dev/null (\`spotify-batch new-releases --out /dev/null -c 8\`)`,
      command: bin,
      args: pull('/dev/null'),
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
        const m = await measure(c.command, c.args, { ...source.env, ...c.env }, tmp);
        results[k]?.push(m);
        if (k === 0) internal ||= m.internalUndici;
      }
    }
    profile = await profileRun(tmp, source);
  } finally {
    await source.stop();
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

// --- containers ------------------------------------------------------------------------------------

interface Format {
  name: string;
  key: string;
  extra: string[];
  /** Where the ladder of limits starts (MiB). */
  start: number;
}

const FORMATS: Format[] = [
  { name: 'CSV', key: 'albums.csv', extra: [], start: 128 },
  { name: 'CSV, gzip', key: 'albums.csv.gz', extra: [], start: 128 },
  { name: 'NDJSON, gzip', key: 'albums.ndjson.gz', extra: [], start: 128 },
  { name: 'Parquet', key: 'albums.parquet', extra: [], start: 256 },
];
const LADDER = [64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768];

async function containers(
  o: Issue13Options,
  tmp: string,
  nginx: string,
  cgroups: NonNullable<ReturnType<typeof detectCgroups>['cgroups']>,
): Promise<string> {
  const runs = o.runs;
  const s3 = await startS3();
  await s3.createBucket('bench');
  const run = async (
    source: StaticSource,
    limitMiB: number | undefined,
    out: string,
    extra: string[] = [],
  ): Promise<CgroupRun> => {
    const r = await cgroups.run(
      limitMiB === undefined ? undefined : limitMiB * MiB,
      bin,
      pull(out, extra),
      {
        ...process.env,
        ...source.env,
        ...s3.env,
        PATH,
      },
    );
    if (r.code !== 0 && !r.oomKilled) {
      throw new Error(
        `${out} (limit ${limitMiB ?? 'none'}) exited with ${r.code ?? r.signal}:\n${r.stderr}`,
      );
    }
    return r;
  };
  const ok = (r: CgroupRun) => r.code === 0 && !r.oomKilled;
  const digest = async (key: string) => objectDigest(s3, 'bench', key);
  const lines: string[] = [];
  try {
    // Small pull: the flat-memory baseline; the same to /dev/null (an output this small fills
    // less than one S3 part: the other part buffers are never touched).
    const smallSource = await startStaticSource(nginx, join(tmp, `static-${o.small}`), o.small);
    const small: CgroupRun[] = [];
    const smallNull: CgroupRun[] = [];
    try {
      for (let i = 0; i < runs; i++) {
        small.push(await run(smallSource, 128, 's3://bench/small.csv'));
        smallNull.push(await run(smallSource, 128, '/dev/null'));
      }
    } finally {
      await smallSource.stop();
    }
    // A medium pull: every part buffer in use, as at a million.
    const mediumSource = await startStaticSource(nginx, join(tmp, `static-${o.medium}`), o.medium);
    const medium: CgroupRun[] = [];
    try {
      for (let i = 0; i < runs; i++)
        medium.push(await run(mediumSource, 128, 's3://bench/medium.csv'));
    } finally {
      await mediumSource.stop();
    }
    const largeSource = await startStaticSource(nginx, join(tmp, `static-${o.large}`), o.large);
    try {
      // A million albums to S3, default settings, with and without the 128 MiB limit, alternated.
      const free: CgroupRun[] = [];
      const limited: CgroupRun[] = [];
      let freeDigest = '';
      let limitedDigest = '';
      for (let i = 0; i < runs; i++) {
        free.push(await run(largeSource, undefined, 's3://bench/free.csv'));
        if (i === 0) freeDigest = await digest('free.csv');
        limited.push(await run(largeSource, 128, 's3://bench/limited.csv'));
        const last = limited.at(-1) as CgroupRun;
        if (ok(last) && limitedDigest === '') limitedDigest = await digest('limited.csv');
      }
      // Where the memory goes: the libraries at rest, and the same pull without the upload.
      const rest: CgroupRun[] = [];
      const devNull: CgroupRun[] = [];
      const noFlag: CgroupRun[] = [];
      for (let i = 0; i < runs; i++) {
        rest.push(
          await cgroups.run(
            undefined,
            process.execPath,
            [
              '--max-semi-space-size=8',
              '--input-type=module',
              '-e',
              "const { createRequire } = await import('node:module'); const r = createRequire(process.cwd() + '/'); r('undici/lib/dispatcher/agent.js'); r('undici/lib/api/api-request.js'); await import('@aws-sdk/client-s3'); await import('yargs')",
            ],
            { ...process.env, PATH },
          ),
        );
        devNull.push(await run(largeSource, 128, '/dev/null'));
        // V8's own sizing inside the limit: `node dist/bin/spotify-batch.js`, no shebang flags.
        const r = await cgroups.run(
          128 * MiB,
          process.execPath,
          [bin, ...pull('s3://bench/noflag.csv')],
          {
            ...process.env,
            ...largeSource.env,
            ...s3.env,
            PATH,
          },
        );
        noFlag.push(r);
      }
      const row = (name: string, rs: CgroupRun[]) =>
        `| ${name} | ${rs.filter(ok).length}/${rs.length} | ${wall(rs).toFixed(2)} (${range(
          rs.map((r) => r.seconds),
          2,
        )}) | ${peak(rs).toFixed(1)} (${range(
          rs.map((r) => r.peakBytes / MiB),
          1,
        )}) |`;
      const wall = (rs: CgroupRun[]) => median(rs.filter(ok).map((r) => r.seconds));
      const peak = (rs: CgroupRun[]) => median(rs.filter(ok).map((r) => r.peakBytes / MiB));
      const allOk = limited.every(ok);
      const timeRatio = wall(limited) / wall(free);
      const flat = peak(limited) / peak(small);
      lines.push(`## Memory in a container (cgroup v${cgroups.version}, ${runs} runs each)

The measured process alone in its own memory cgroup under \`${cgroups.parent}\`; peak is the group's high-water mark (\`${cgroups.version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak'}\`: anonymous memory, kernel memory and page cache the process caused; the \`node\` binary's pages were already cached by earlier runs, as in a container that has run before). Default settings (5 MiB parts × 2), the bin as installed (its shebang sets \`--max-semi-space-size=8\` and glibc's \`MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=1048576\`), S3 is s3rver on loopback, the source nginx.

| run | completed | wall s, median (min–max) | peak cgroup MiB, median (min–max) |
| --- | --- | --- | --- |
| ${en(o.small)} albums → S3, 128 MiB limit | ${small.filter(ok).length}/${runs} | ${wall(small).toFixed(2)} (${range(
        small.map((r) => r.seconds),
        2,
      )}) | ${peak(small).toFixed(1)} (${range(
        small.map((r) => r.peakBytes / MiB),
        1,
      )}) |
| ${en(o.large)} albums → S3, no limit | ${free.filter(ok).length}/${runs} | ${wall(free).toFixed(2)} (${range(
        free.map((r) => r.seconds),
        2,
      )}) | ${peak(free).toFixed(1)} (${range(
        free.map((r) => r.peakBytes / MiB),
        1,
      )}) |
| ${en(o.large)} albums → S3, 128 MiB limit | ${limited.filter(ok).length}/${runs} | ${wall(limited).toFixed(2)} (${range(
        limited.map((r) => r.seconds),
        2,
      )}) | ${peak(limited).toFixed(1)} (${range(
        limited.map((r) => r.peakBytes / MiB),
        1,
      )}) |
${row(`${en(o.small)} albums → /dev/null, 128 MiB limit`, smallNull)}
${row(`${en(o.medium)} albums → S3, 128 MiB limit${o.quick ? '' : ' (every part buffer in use)'}`, medium)}
${row(`${en(o.large)} albums → /dev/null, 128 MiB limit (no upload buffers)`, devNull)}
${row(`${en(o.large)} albums → S3, 128 MiB limit, without the shebang (\`node dist/bin/spotify-batch.js\`: V8 sizes its young generation from the limit; glibc's malloc defaults)`, noFlag)}
${row("at rest: `node` loading what a run to S3 loads of its libraries (undici's Agent and request(), the AWS SDK client, yargs), then exiting", rest)}

| target | measured | |
| --- | --- | --- |
| ${en(o.large)} albums → S3 completes inside 128 MiB, ≤ 1.25 × the time without a limit, bytes identical | ${allOk ? 'completed every run' : `**${limited.filter((r) => !ok(r)).length} of ${runs} runs killed**`}; ${timeRatio.toFixed(2)}× (${wall(limited).toFixed(2)} s / ${wall(free).toFixed(2)} s); SHA-256 ${limitedDigest === '' ? 'not compared (no limited run completed)' : freeDigest === limitedDigest ? `identical (${freeDigest.slice(0, 16)}…)` : '**differs**'} | ${check(allOk && timeRatio <= 1.25 && freeDigest === limitedDigest)} |
| peak cgroup memory at ${en(o.large)} ≤ 1.1 × at ${en(o.small)}, inside 128 MiB | ${flat.toFixed(2)}× (${peak(limited).toFixed(1)} / ${peak(small).toFixed(1)} MiB) | ${check(allOk && flat <= 1.1)} |
| reference: ${en(o.large)} vs ${en(o.medium)} albums to S3${o.quick ? '' : ' (both with every part buffer in use)'} | ${(peak(limited) / peak(medium)).toFixed(2)}× (${peak(limited).toFixed(1)} / ${peak(medium).toFixed(1)} MiB) | |
| reference: ${en(o.large)} vs ${en(o.small)} albums to /dev/null (no part buffers) | ${(peak(devNull) / peak(smallNull)).toFixed(2)}× (${peak(devNull).toFixed(1)} / ${peak(smallNull).toFixed(1)} MiB) | |
`);

      // Is flatness reachable at all: Node and undici alone in the same cgroup, both sizes.
      lines.push(`Is flat memory reachable: the fetch-and-discard floor (Node and undici's two modules, nothing else; the same flags and malloc settings) in the same 128 MiB cgroup (\`bench/floor-cgroup.ts\`):

${await floorCgroup(runs, o.small, o.large)}
`);

      // The smallest limit each format completes in (one run per step), and its time there.
      const ladder: string[] = [];
      for (const format of FORMATS) {
        const out = `s3://bench/${format.key}`;
        const reference = await run(largeSource, undefined, out, format.extra);
        const tried = new Map<number, CgroupRun>();
        const at = async (limit: number) => {
          let r = tried.get(limit);
          if (r === undefined) {
            r = await run(largeSource, limit, out, format.extra);
            tried.set(limit, r);
          }
          return r;
        };
        let index = LADDER.indexOf(format.start);
        if (ok(await at(LADDER[index] as number))) {
          while (index > 0 && ok(await at(LADDER[index - 1] as number))) index--;
        } else {
          while (index < LADDER.length - 1 && !ok(await at(LADDER[++index] as number))) {}
        }
        const min = LADDER[index] as number;
        const atMin = tried.get(min) as CgroupRun;
        const below = index > 0 ? tried.get(LADDER[index - 1] as number) : undefined;
        ladder.push(
          `| ${format.name} | ${ok(atMin) ? `${min} MiB` : `> ${min} MiB`} | ${below === undefined ? '' : `${LADDER[index - 1]} MiB: ${below.oomKilled ? 'OOM-killed' : `exit ${below.code}`}`} | ${(reference.peakBytes / MiB).toFixed(0)} | ${reference.seconds.toFixed(1)} | ${ok(atMin) ? `${atMin.seconds.toFixed(1)} (${(atMin.seconds / reference.seconds).toFixed(2)}×)` : ''} | ${[
            ...tried.keys(),
          ]
            .sort((a, b) => a - b)
            .map((l) => `${l}${ok(tried.get(l) as CgroupRun) ? '✓' : '✗'}`)
            .join(' ')} |`,
        );
      }
      lines.push(`### The smallest memory limit per format (${en(o.large)} albums → S3, default settings, one run per limit)

| format | smallest limit that completes | the step below | peak without a limit, MiB | wall s without a limit | wall s at the smallest limit | limits tried |
| --- | --- | --- | --- | --- | --- | --- |
${ladder.join('\n')}
`);

      // Parquet row groups: old default (20,000 rows) vs the byte-sized default.
      lines.push(await parquetGroups(o, tmp, largeSource, cgroups));
    } finally {
      await largeSource.stop();
    }
  } finally {
    await s3.stop();
  }
  return lines.join('\n');
}

async function objectDigest(s3: LocalS3, bucket: string, key: string): Promise<string> {
  const object = await s3.getObject(bucket, key);
  if (object === undefined) return `missing ${key}`;
  return createHash('sha256').update(object.body).digest('hex');
}

async function parquetGroups(
  o: Issue13Options,
  tmp: string,
  source: StaticSource,
  cgroups: NonNullable<ReturnType<typeof detectCgroups>['cgroups']>,
): Promise<string> {
  const variants = [
    { name: 'old default: 20,000 rows per group', extra: ['--parquet-row-group', '20000'] },
    { name: 'new default: 8 MiB of row data per group', extra: [] },
  ];
  const rows: string[] = [];
  for (const [i, v] of variants.entries()) {
    const file = join(tmp, `groups-${i}.parquet`);
    const r = await cgroups.run(undefined, bin, pull(file, v.extra), {
      ...process.env,
      ...source.env,
      PATH,
    });
    if (r.code !== 0) throw new Error(`parquet ${v.name}: exit ${r.code}\n${r.stderr}`);
    const size = (await stat(file)).size;
    const scan = JSON.parse(
      execFileSync(process.execPath, [join(root, 'bench/duckdb.ts'), file, o.quick ? '3' : '7'], {
        encoding: 'utf8',
      }),
    ) as {
      rowGroups: number;
      rowsPerGroup: { min: number; max: number };
      totalRows: number;
      scanSeconds: number;
      scanMin: number;
      scanMax: number;
    };
    await rm(file);
    rows.push(
      `| ${v.name} | \`spotify-batch new-releases --out albums.parquet${v.extra.length ? ` ${v.extra.join(' ')}` : ''}\` | ${scan.rowGroups} | ${en(scan.rowsPerGroup.max)}${scan.rowsPerGroup.min !== scan.rowsPerGroup.max ? ` (last ${en(scan.rowsPerGroup.min)})` : ''} | ${(size / MiB).toFixed(1)} | ${(r.peakBytes / MiB).toFixed(0)} | ${r.seconds.toFixed(1)} | ${(scan.scanSeconds * 1000).toFixed(0)} (${(scan.scanMin * 1000).toFixed(0)}–${(scan.scanMax * 1000).toFixed(0)}) |`,
    );
  }
  return `### Parquet row groups (${en(o.large)} albums to a file, no memory limit; DuckDB scan = \`bench/duckdb.ts\`, median of ${o.quick ? 3 : 7} after a warm-up)

| row groups | command | groups | rows per group | file MiB | peak cgroup MiB | wall s | DuckDB scan ms, median (min–max) |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}

/** One pipeline run under --cpu-prof against `source`; self time per stage, largest first. */
async function profileRun(tmp: string, source: StaticSource): Promise<[string, number][]> {
  const dir = join(tmp, 'cpu-prof');
  await measure(
    process.execPath,
    ['--max-semi-space-size=8', '--cpu-prof', '--cpu-prof-dir', dir, bin, ...pull('/dev/null')],
    source.env,
    tmp,
  );
  const { readdir } = await import('node:fs/promises');
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile')) as string;
  const p = JSON.parse(await readFile(join(dir, file), 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const totals = new Map<string, number>();
  let all = 0;
  p.samples.forEach((id, i) => {
    const frame = byId.get(id);
    const dt = p.timeDeltas[i] ?? 0;
    const k = stage(frame?.url ?? '', frame?.functionName ?? '');
    totals.set(k, (totals.get(k) ?? 0) + dt);
    all += dt;
  });
  return [...totals.entries()]
    .map(([k, v]) => [k, (100 * v) / all] as [string, number])
    .sort((a, b) => b[1] - a[1]);
}

export function stage(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle (waiting for the network)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'V8/native (program)';
  // JSON.parse is inlined into parseJsonBody: its self time is the parse.
  if (url.includes('/dist/src/sources/parse.js')) return 'JSON.parse of pages (parseJsonBody)';
  if (fn === 'utf8Slice' || fn === 'toString' || fn === 'isUtf8' || fn === 'decodeUTF8')
    return 'UTF-8 validation and decoding of pages';
  if (url.includes('/undici/')) return 'HTTP client (undici)';
  if (
    url.includes('/yargs') ||
    url.includes('/string-width/') ||
    url.includes('/cliui/') ||
    url.includes('/wrap-ansi/')
  )
    return 'command line (yargs, help layout)';
  if (url.includes('/dist/src/sources/')) return 'source (ours: client, paging)';
  if (url.includes('/dist/src/transforms/'))
    return 'transforms (ours: album → rows, CSV, coalesce)';
  if (url.includes('/dist/src/')) return 'other of ours (pipeline, sinks, CLI)';
  if (fn === 'compileSourceTextModule' || fn === 'wrapSafe' || fn === 'compileForInternalLoader')
    return 'module loading (start-up)';
  if (url.includes('node:internal/streams') || url.includes('node:stream')) return 'Node streams';
  if (url.startsWith('node:')) return 'Node internals (net, fs, buffers, timers)';
  if (url === '') return 'V8 builtins and native (socket writes, Buffer copies)';
  return 'other dependencies';
}
