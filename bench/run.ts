/**
 * The benchmark suite (`npm run bench`; `npm run bench -- --quick` for a smoke run).
 *
 * Every measured command runs as its own process, with peak RSS read from the OS for that
 * process (its own high-water mark VmHWM, written by bench/rss.mjs at exit), against an emulator in another
 * process whose pages are rendered ahead (`--prerender`), and a local S3 server (s3rver) in
 * this one. Each scenario runs RUNS times; medians, min–max and ratios come from the same run.
 * Results go to bench/RESULTS.md, rewritten whole (quick mode: bench/out/RESULTS-quick.md);
 * measurements run by hand for one change are kept in bench/HISTORY.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { containersSection } from './containers.ts';
import {
  cgroupAndNginx,
  bin as cli,
  ensureNginx,
  type Measured,
  MiB,
  measure,
  median,
  profiled,
  root,
  selfTimeByStage,
  startBucket,
  startEmulatorProcess,
} from './harness.ts';
import { reportBench } from './report.ts';
import { startupSection } from './startup.ts';
import { staticFloorSection } from './static-floor.ts';

const quick = process.argv.includes('--quick');
const RUNS = quick ? 1 : 3;
const SMALL = quick ? 2_000 : 10_000;
const MEDIUM = quick ? 10_000 : 100_000;
const LARGE = quick ? 20_000 : 1_000_000;
const LATENCY_PAGES = quick ? 40 : 200;
const outDir = join(root, 'bench/out');

type Sample = Pick<Measured, 'seconds' | 'rssMiB' | 'runSeconds'>;

interface Row {
  scenario: string;
  command: string;
  samples: Sample[];
  extra?: string;
}

const rows: Row[] = [];
const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-bench-'));

/**
 * Runs `node <args>` once as its own process: the CLI as installed (the bin executed, so its
 * shebang's V8 flags apply) unless BENCH_NO_SHEBANG is set, which runs it as
 * `node dist/bin/spotify-batch.js` (V8 sizes its heap itself).
 */
function measureOnce(args: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  const asBin = args[0] === cli && env.BENCH_NO_SHEBANG === undefined;
  return asBin ? measure(cli, args.slice(1), env) : measure(process.execPath, args, env);
}

async function scenario(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  extra?: string,
): Promise<Row> {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { seconds, rssMiB, runSeconds } = await measureOnce(args, env);
    samples.push({ seconds, rssMiB, ...(runSeconds === undefined ? {} : { runSeconds }) });
  }
  const row: Row = { scenario: name, command, samples, ...(extra ? { extra } : {}) };
  rows.push(row);
  const m = median(samples.map((s) => s.seconds));
  process.stderr.write(
    `${name}: ${m.toFixed(2)} s, ${median(samples.map((s) => s.rssMiB)).toFixed(0)} MiB\n`,
  );
  return row;
}

const med = (row: Row, key: keyof Sample) => median(row.samples.map((s) => s[key] ?? Number.NaN));
const range = (row: Row, key: keyof Sample, digits: number) => {
  const xs = row.samples.map((s) => s[key] ?? Number.NaN);
  return `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
};

// --- 1. memory and throughput to /dev/null ---------------------------------------------------
const pipelineArgs = (out: string, extra: string[] = []) => [
  cli,
  'new-releases',
  '--out',
  out,
  '--quiet',
  ...extra,
];
const sizes: Record<number, Row> = {};
let csvBytes = 0;
let csvRows = 0;
const capped: Record<number, Row> = {};
const SEMI = '--max-semi-space-size=8';
for (const albums of [SMALL, MEDIUM, LARGE]) {
  const emulator = await startEmulatorProcess(albums);
  try {
    sizes[albums] = await scenario(
      `pipeline → /dev/null, ${albums.toLocaleString('en')} albums`,
      `spotify-batch new-releases --out /dev/null --concurrency 8`,
      pipelineArgs('/dev/null', ['--concurrency', '8']),
      emulator.env,
    );
    capped[albums] = await scenario(
      `same without the shebang's ${SEMI} (V8 sizes the young generation), ${albums.toLocaleString('en')} albums`,
      `node dist/bin/spotify-batch.js new-releases --out /dev/null --concurrency 8`,
      pipelineArgs('/dev/null', ['--concurrency', '8']),
      { ...emulator.env, BENCH_NO_SHEBANG: '1' },
    );
    if (albums === LARGE) {
      const file = join(tmp, 'large.csv');
      await measureOnce(pipelineArgs(file, ['--concurrency', '8']), emulator.env);
      const text = await readFile(file);
      csvBytes = text.length;
      csvRows = text.reduce((n, byte) => n + (byte === 10 ? 1 : 0), 0) - 1;
      await rm(file);
      await scenario(
        'floor: fetch and discard (concurrency 8)',
        'node bench/floor.ts',
        [join(root, 'bench/floor.ts')],
        {
          ...emulator.env,
          CONCURRENCY: '8',
          ALBUMS: String(albums),
        },
      );
      await scenario(
        'naive baseline → /dev/null (sequential, all in memory)',
        'node bench/naive.ts',
        [join(root, 'bench/naive.ts')],
        {
          ...emulator.env,
          OUT: '/dev/null',
        },
      );
      // --- 2. to S3 ---------------------------------------------------------------------------
      const s3 = await startBucket();
      try {
        await scenario(
          `pipeline → S3 (default parts: 5 MiB × queue 2), ${albums.toLocaleString('en')} albums`,
          'spotify-batch new-releases --out s3://bench/albums.csv --concurrency 8',
          pipelineArgs('s3://bench/albums.csv', ['--concurrency', '8']),
          { ...emulator.env, ...s3.env },
        );
        await scenario(
          `same to S3 without the shebang's ${SEMI}`,
          `node dist/bin/spotify-batch.js new-releases --out s3://bench/albums.csv --concurrency 8`,
          pipelineArgs('s3://bench/albums.csv', ['--concurrency', '8']),
          { ...emulator.env, ...s3.env, BENCH_NO_SHEBANG: '1' },
        );
        await scenario(
          'naive baseline → S3 (one PutObject)',
          'OUT=s3://bench/naive.csv node bench/naive.ts',
          [join(root, 'bench/naive.ts')],
          {
            ...emulator.env,
            ...s3.env,
            OUT: 's3://bench/naive.csv',
          },
        );
      } finally {
        await s3.stop();
      }
    }
  } finally {
    await emulator.stop();
  }
}

// --- 3. latency hiding -------------------------------------------------------------------------
const latencyRows: { concurrency: number; row: Row; ideal: number }[] = [];
{
  const emulator = await startEmulatorProcess(LATENCY_PAGES * 50, 100);
  try {
    for (const concurrency of [4, 8, 16]) {
      const row = await scenario(
        `100 ms/page, ${LATENCY_PAGES} pages, concurrency ${concurrency}`,
        `spotify-batch new-releases --out /dev/null --concurrency ${concurrency}`,
        [
          cli,
          'new-releases',
          '--out',
          '/dev/null',
          '--log-format',
          'json',
          '--concurrency',
          String(concurrency),
        ],
        emulator.env,
      );
      latencyRows.push({ concurrency, row, ideal: (LATENCY_PAGES * 0.1) / concurrency });
    }
  } finally {
    await emulator.stop();
  }
}

// --- 4. where the CPU goes ---------------------------------------------------------------------
const profileAlbums = quick ? 20_000 : 200_000;
const profile = await (async () => {
  const emulator = await startEmulatorProcess(profileAlbums);
  try {
    const args = ['new-releases', '--out', '/dev/null', '--quiet', '--concurrency', '8'];
    return selfTimeByStage((await profiled(args, emulator.env)).profile);
  } finally {
    await emulator.stop();
  }
})();

// --- 5. formats ---------------------------------------------------------------------------------
const FORMAT_ALBUMS = quick ? 10_000 : 100_000;
const formatRows: { format: string; row: Row; bytes: number }[] = [];
{
  const emulator = await startEmulatorProcess(FORMAT_ALBUMS);
  try {
    for (const [format, file] of [
      ['CSV', 'f.csv'],
      ['CSV, gzip', 'f.csv.gz'],
      ['NDJSON, gzip', 'f.ndjson.gz'],
      ['Parquet (default row groups: 8 MiB of row data)', 'f.parquet'],
    ] as const) {
      const out = join(tmp, file);
      const row = await scenario(
        `${format} → file, ${FORMAT_ALBUMS.toLocaleString('en')} albums`,
        `spotify-batch new-releases --out ${file} --concurrency 8`,
        pipelineArgs(out, ['--concurrency', '8']),
        emulator.env,
      );
      formatRows.push({ format, row, bytes: (await readFile(out)).length });
      await rm(out);
    }
  } finally {
    await emulator.stop();
  }
}
const parquetLibraries = quick
  ? []
  : execFileSync(process.execPath, [join(root, 'bench/parquet.ts'), '300000'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { library: string; seconds: number; rssMiB: number; bytes: number },
      );

// --- the commit barrier: last byte → every output published (bench/commit.ts) -----------------
const commitRuns = quick ? 2 : 5;
const commitCases = execFileSync(
  process.execPath,
  [join(root, 'bench/commit.ts'), String(commitRuns)],
  { encoding: 'utf8' },
)
  .trim()
  .split('\n')
  .map(
    (l) =>
      JSON.parse(l) as {
        case: string;
        outputs: number;
        commitSeconds: number;
        commitMin: number;
        commitMax: number;
        runSeconds: number;
      },
  );

// --- pacing to a rate limit (bench/pacing.ts; before = the issue-17 pacer, bench/pacing-before-24.json)
const pacingSection = execFileSync(
  process.execPath,
  [
    join(root, 'bench/pacing.ts'),
    '--baseline',
    join(root, 'bench/pacing-before-24.json'),
    ...(quick ? ['--quick'] : []),
  ],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);

// --- 6. memory of --dedupe ----------------------------------------------------------------------
const dedupeAlbums = quick ? 100_000 : 1_000_000;
const dedupe = JSON.parse(
  execFileSync(
    process.execPath,
    ['--expose-gc', join(root, 'bench/dedupe.ts'), String(dedupeAlbums)],
    {
      encoding: 'utf8',
    },
  ),
) as {
  albums: number;
  rows: number;
  retainedBytes: number;
  bytesPerAlbum: number;
  bytesPerRow: number;
};

// --- the incremental state at scale (bench/state.ts) ------------------------------------------
const stateIds = quick ? 100_000 : 1_000_000;
const stateBench = JSON.parse(
  execFileSync(process.execPath, ['--expose-gc', join(root, 'bench/state.ts'), String(stateIds)], {
    encoding: 'utf8',
  }),
) as {
  ids: number;
  fileBytes: number;
  bytesPerIdOnDisk: number;
  loadSeconds: number;
  retainedMiB: number;
  bytesPerIdInMemory: number;
};

// --- start-up, the static floor, containers (bench/startup.ts, static-floor.ts, containers.ts) --
const sections = [await startupSection(quick)];
const { nginx, reason: noNginx } = ensureNginx();
sections.push(
  nginx === undefined
    ? `## Throughput against a static floor\n\nNot measured here: ${noNginx}.\n`
    : await staticFloorSection(quick, MEDIUM, nginx),
);
const containers = cgroupAndNginx();
sections.push(
  containers.reason !== undefined
    ? `## Memory in a container\n\nNot measured here: ${containers.reason}.\n`
    : await containersSection(
        { quick, runs: RUNS, small: SMALL, medium: MEDIUM, large: LARGE },
        containers.nginx,
        containers.cgroups,
      ),
);
const footprintMd = sections.join('\n');

// --- --report: the page's aggregates at LARGE albums, drawing it, end to end (bench/report.ts) --
const reportMd = await reportBench({ quick, runs: RUNS, large: LARGE, withLibraries: !quick });

// --- report -------------------------------------------------------------------------------------
const node = process.version;
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: root,
    encoding: 'utf8',
  }).trim();
  if (execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' }).trim())
    commit += ' (with uncommitted changes)';
} catch {}
const small = sizes[SMALL] as Row;
const large = sizes[LARGE] as Row;
const find = (prefix: string) => rows.find((r) => r.scenario.startsWith(prefix)) as Row;
const floor = find('floor');
const naive = find('naive baseline → /dev/null');
const s3Row = find('pipeline → S3');
const s3Capped = find('same to S3');
const naiveS3 = find('naive baseline → S3');
const mbps = (row: Row) => csvBytes / MiB / med(row, 'seconds');
const rps = (row: Row) => csvRows / med(row, 'seconds');
const table = (list: Row[]) =>
  [
    '| scenario | wall s, median (min–max) | peak RSS MiB, median (min–max) | rows/s | CSV MiB/s |',
    '| --- | --- | --- | --- | --- |',
    ...list.map(
      (r) =>
        `| ${r.scenario} | ${med(r, 'seconds').toFixed(2)} (${range(r, 'seconds', 2)}) | ${med(r, 'rssMiB').toFixed(0)} (${range(r, 'rssMiB', 0)}) | ${
          sizeOf(r) === LARGE ? Math.round(rps(r)).toLocaleString('en') : ''
        } | ${sizeOf(r) === LARGE ? mbps(r).toFixed(1) : ''} |`,
    ),
  ].join('\n');
/** Rows/s and MiB/s are computed for the large pull only (its CSV was measured). */
const sizeOf = (r: Row) =>
  r === small || r === sizes[MEDIUM] || r === capped[SMALL] || r === capped[MEDIUM] ? 0 : LARGE;
const check = (ok: boolean) => (ok ? 'met' : '**not met**');
const rssRatio = med(large, 'rssMiB') / med(small, 'rssMiB');
const cappedRatio = med(capped[LARGE] as Row, 'rssMiB') / med(capped[SMALL] as Row, 'rssMiB');
const steadyRatio = med(large, 'rssMiB') / med(sizes[MEDIUM] as Row, 'rssMiB');
const floorRatio = med(large, 'seconds') / med(floor, 'seconds');
const s3Budget = 100 + 5 * (2 + 1);
const md = `# Benchmark results

${quick ? '**Quick mode (smoke run): sizes are small and runs = 1; not the published numbers.**\n\n' : ''}Produced by \`npm run bench${quick ? ' -- --quick' : ''}\` (bench/run.ts). Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; Node ${node}; commit ${commit}; ${new Date().toISOString().slice(0, 10)}.
This file is rewritten whole by each run; comparisons of one build against another, run by hand, are in [HISTORY.md](HISTORY.md).
Each scenario ran ${RUNS}× as its own process; peak RSS is that process's own high-water mark (VmHWM). The emulator runs in another process with every page rendered ahead; S3 is s3rver on loopback (writing to disk). CSV at ${LARGE.toLocaleString('en')} albums: ${csvRows.toLocaleString('en')} rows, ${(csvBytes / MiB).toFixed(1)} MiB.

${footprintMd}
## Memory and throughput (emulator source)

${table([small, sizes[MEDIUM] as Row, large, capped[SMALL] as Row, capped[MEDIUM] as Row, capped[LARGE] as Row, floor, naive, s3Row, s3Capped, naiveS3])}

| target | measured | |
| --- | --- | --- |
| peak RSS at ${LARGE.toLocaleString('en')} albums ≤ 1.2 × at ${SMALL.toLocaleString('en')} | ${rssRatio.toFixed(2)}× (${med(large, 'rssMiB').toFixed(0)} / ${med(small, 'rssMiB').toFixed(0)} MiB); without the shebang's flag ${cappedRatio.toFixed(2)}× | ${check(rssRatio <= 1.2)} |
| peak RSS flat once steady: ${LARGE.toLocaleString('en')} vs ${MEDIUM.toLocaleString('en')} albums | ${steadyRatio.toFixed(2)}× (${med(large, 'rssMiB').toFixed(0)} / ${med(sizes[MEDIUM] as Row, 'rssMiB').toFixed(0)} MiB) | ${check(steadyRatio <= 1.2)} |
| ≤ 100 MiB to /dev/null | ${med(large, 'rssMiB').toFixed(0)} MiB; without the shebang's flag ${med(capped[LARGE] as Row, 'rssMiB').toFixed(0)} MiB; the floor itself ${med(floor, 'rssMiB').toFixed(0)} MiB | ${check(med(large, 'rssMiB') <= 100)} |
| ≤ 100 MiB + 5 MiB × (2 + 1) to S3 | ${med(s3Row, 'rssMiB').toFixed(0)} MiB; without the shebang's flag ${med(s3Capped, 'rssMiB').toFixed(0)} MiB (budget ${s3Budget}) | ${check(med(s3Row, 'rssMiB') <= s3Budget)} |
| end-to-end within 1.3 × the floor | ${floorRatio.toFixed(2)}× (${med(large, 'seconds').toFixed(2)} s / ${med(floor, 'seconds').toFixed(2)} s) | ${check(floorRatio <= 1.3)} |
| faster than the naive baseline | ${(med(naive, 'seconds') / med(large, 'seconds')).toFixed(2)}× faster, ${(med(naive, 'rssMiB') / med(large, 'rssMiB')).toFixed(1)}× less memory (to /dev/null); to S3 ${(med(naiveS3, 'seconds') / med(s3Row, 'seconds')).toFixed(2)}× faster, ${(med(naiveS3, 'rssMiB') / med(s3Row, 'rssMiB')).toFixed(1)}× less memory | ${check(med(naive, 'seconds') > med(large, 'seconds'))} |

## Latency hiding (emulator answers each page after 100 ms; ${LATENCY_PAGES} pages)

| concurrency | ideal = pages × 0.1 s / concurrency | run time s (report), median (min–max) | ratio | process wall s, median | ratio | target ≤ 1.25 (run time) |
| --- | --- | --- | --- | --- | --- | --- |
${latencyRows
  .map(({ concurrency, row, ideal }) => {
    const ratio = med(row, 'runSeconds') / ideal;
    return `| ${concurrency} | ${ideal.toFixed(2)} | ${med(row, 'runSeconds').toFixed(2)} (${range(row, 'runSeconds', 2)}) | ${ratio.toFixed(2)} | ${med(row, 'seconds').toFixed(2)} | ${(med(row, 'seconds') / ideal).toFixed(2)} | ${check(ratio <= 1.25)} |`;
  })
  .join('\n')}

"Run time" is the run's own \`seconds\` from its JSON report: from the start of the run to the output in place, including the token request and the first page, which must arrive alone (it carries \`total\`). "Process wall" adds Node's start-up and module loading.

${pacingSection}
## The commit barrier (bench/commit.ts, ${commitRuns} runs after a warm-up, in-process, loopback S3)

Every output is staged first and published only when all are (README, "All or nothing"). The cost is the time from the last byte of the last output to every output published, the manifest included: for S3 the held PutObject/CompleteMultipartUpload requests go out then (in parallel), for files the renames.

| case | outputs | last byte → all published, median s (min–max) | whole run, median s |
| --- | --- | --- | --- |
${commitCases.map((c) => `| ${c.case} | ${c.outputs} | ${c.commitSeconds.toFixed(3)} (${c.commitMin.toFixed(3)}–${c.commitMax.toFixed(3)}) | ${c.runSeconds.toFixed(3)} |`).join('\n')}

## The incremental state (bench/state.ts, ${stateBench.ids.toLocaleString('en')} ids)

A state of ${stateBench.ids.toLocaleString('en')} album ids (90 days of first-seen dates over 10 markets) is ${(stateBench.fileBytes / MiB).toFixed(1)} MiB on disk (${stateBench.bytesPerIdOnDisk.toFixed(0)} bytes per id), loads in ${stateBench.loadSeconds.toFixed(2)} s, and keeps ${stateBench.retainedMiB} MiB in memory (${stateBench.bytesPerIdInMemory} bytes per id) for the run. A daily pull of every market keeps far fewer: Spotify lists about 100 albums per market, new for about two weeks, so 90 days of \`--market all\` is on the order of 100,000 ids (under 10 MiB).

## Memory of --dedupe (bench/dedupe.ts, ${dedupe.albums.toLocaleString('en')} distinct albums)

The filter keeps one id per distinct album: ${(dedupe.retainedBytes / MiB).toFixed(1)} MiB retained, ${dedupe.bytesPerAlbum.toFixed(0)} bytes per distinct album (${dedupe.bytesPerRow.toFixed(0)} per row). Spotify lists about 100 albums per market, so even \`--market all\` (185 markets) stays under 20,000 distinct albums, about 1.2 MiB.

## Formats (${FORMAT_ALBUMS.toLocaleString('en')} albums, ${((csvRows * FORMAT_ALBUMS) / LARGE).toLocaleString('en', { maximumFractionDigits: 0 })} rows, to a file)

| format | wall s, median (min–max) | peak RSS MiB, median | bytes | bytes per row |
| --- | --- | --- | --- | --- |
${formatRows
  .map(
    ({ format, row, bytes }) =>
      `| ${format} | ${med(row, 'seconds').toFixed(2)} (${range(row, 'seconds', 2)}) | ${med(row, 'rssMiB').toFixed(0)} | ${bytes.toLocaleString('en')} | ${(bytes / ((csvRows * FORMAT_ALBUMS) / LARGE)).toFixed(1)} |`,
  )
  .join('\n')}
${
  parquetLibraries.length === 0
    ? ''
    : `
Parquet writer choice (\`bench/parquet.ts\`: 300,000 rows, 7 string columns, 50,000-row groups, SNAPPY, each library in its own process):

| library | wall s (3 runs) | peak RSS MiB (3 runs) | bytes |
| --- | --- | --- | --- |
${['hyparquet-writer', '@dsnp/parquetjs']
  .map((lib) => {
    const runs = parquetLibraries.filter((r) => r.library === lib);
    return `| ${lib} | ${runs.map((r) => r.seconds.toFixed(2)).join(', ')} | ${runs.map((r) => r.rssMiB).join(', ')} | ${runs[0]?.bytes.toLocaleString('en')} |`;
  })
  .join('\n')}
`
}
${reportMd}
## Where the CPU goes (one --cpu-prof run, ${profileAlbums.toLocaleString('en')} albums → /dev/null, concurrency 8)

| stage | share of samples |
| --- | --- |
${profile.map(([k, v]) => `| ${k} | ${v.toFixed(1)} % |`).join('\n')}
`;

await mkdir(outDir, { recursive: true });
const target = quick ? join(outDir, 'RESULTS-quick.md') : join(root, 'bench/RESULTS.md');
await writeFile(target, md);
await rm(tmp, { recursive: true, force: true });
process.stdout.write(md);
process.stderr.write(`written to ${target}\n`);
