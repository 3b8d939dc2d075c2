/**
 * What the card's libraries cost, from a profile: one `--cpu-prof` pull of ALBUMS albums (nginx
 * source) to /dev/null and one to S3 (s3rver on loopback, default parts), through the bin with
 * the shebang's V8 flag, as bench/static-floor.ts profiles the pipeline. Reports, per run, the share of
 * samples whose own function lives in csv-stringify, in @aws-sdk/lib-storage and in the rest of
 * the AWS SDK (self time), and the share with such a function anywhere on the stack (inclusive:
 * what runs under the library, including Node streams and buffers it calls; for csv-stringify it
 * also counts the next stream's write when a push() reaches it synchronously, so it is an upper
 * bound). The other stages are bench/harness.ts's `stage`.
 *
 * BUILD (default: this checkout) profiles another build's bin, e.g. a worktree of an older commit,
 * with this file's classification.
 *
 *   npx node bench/profile.ts [albums=100000] [build dir]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  binOf,
  type CpuProfile,
  ensureNginx,
  profiled,
  pullArgs,
  root,
  stage,
  startBucket,
  startStaticSource,
} from './harness.ts';

const albums = Number(process.argv[2] ?? 100_000);
const build = process.argv[3] ?? root;
const bin = binOf(build);
const { nginx, reason } = ensureNginx();
if (nginx === undefined) throw new Error(`no static source: ${reason}`);
const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-profile-'));
const source = await startStaticSource(nginx, join(tmp, 'static'), albums);
const s3 = await startBucket();

const libraries: [string, (url: string) => boolean][] = [
  ['csv-stringify', (url) => url.includes('/node_modules/csv-stringify/')],
  ['@aws-sdk/lib-storage', (url) => url.includes('/node_modules/@aws-sdk/lib-storage/')],
  [
    'the rest of the AWS SDK (client-s3, @aws-sdk/*, @smithy/*)',
    (url) =>
      !url.includes('/@aws-sdk/lib-storage/') &&
      (url.includes('/node_modules/@aws-sdk/') || url.includes('/node_modules/@smithy/')),
  ],
];

/** Self-time stages (harness.ts's, with the libraries split out) and inclusive library shares. */
function shares(p: CpuProfile) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let all = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    all += dt;
    const { url, functionName } = byId.get(id)?.callFrame ?? { url: '', functionName: '' };
    const own = libraries.find(([, is]) => is(url))?.[0] ?? stage(url, functionName);
    self.set(own, (self.get(own) ?? 0) + dt);
    const onStack = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frameUrl = byId.get(at)?.callFrame.url ?? '';
      for (const [name, is] of libraries) if (is(frameUrl)) onStack.add(name);
    }
    for (const name of onStack) inclusive.set(name, (inclusive.get(name) ?? 0) + dt);
  });
  const pct = (v = 0) => (100 * v) / all;
  return {
    stages: [...self.entries()].map(([k, v]) => [k, pct(v)] as const).sort((a, b) => b[1] - a[1]),
    libraries: libraries.map(([name]) => [name, pct(self.get(name)), pct(inclusive.get(name))]),
    seconds: all / 1e6,
  };
}

async function profile(name: string, out: string) {
  const { measured, profile } = await profiled(pullArgs(out), { ...source.env, ...s3.env }, build);
  return { name, m: measured, ...shares(profile) };
}

try {
  const runs = [
    await profile('/dev/null', '/dev/null'),
    await profile('S3', 's3://bench/albums.csv'),
  ];
  const en = albums.toLocaleString('en');
  console.log(`${bin}\n`);
  console.log(
    `| library | ${runs.map((r) => `${en} albums → ${r.name}: self | inclusive`).join(' | ')} |`,
  );
  console.log(`| --- |${' --- | --- |'.repeat(runs.length)}`);
  for (const [i, [name]] of libraries.entries()) {
    const cells = runs.map((r) => {
      const [, s, inc] = r.libraries[i] as [string, number, number];
      return `${s.toFixed(1)} % | ${inc.toFixed(1)} %`;
    });
    console.log(`| ${name} | ${cells.join(' | ')} |`);
  }
  for (const r of runs) {
    console.log(
      `\n${en} albums → ${r.name}: CPU ${r.m.cpuSeconds.toFixed(2)} s, wall ${r.m.seconds.toFixed(2)} s, profiled ${r.seconds.toFixed(2)} s; self time by stage:\n`,
    );
    console.log('| stage | share of samples |\n| --- | --- |');
    for (const [k, v] of r.stages) console.log(`| ${k} | ${v.toFixed(1)} % |`);
  }
} finally {
  await Promise.all([source.stop(), s3.stop()]);
  await rm(tmp, { recursive: true, force: true });
}
