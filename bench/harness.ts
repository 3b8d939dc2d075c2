/**
 * The one harness the benchmarks share: where the build is, the servers a measured run talks to
 * (the emulator in its own process, nginx serving pages rendered ahead, the local S3), one
 * measured process (wall time, peak RSS and CPU from bench/rss.mjs; or alone in a memory cgroup:
 * its peak charge and OOM kills), CPU profiles by stage, and the statistics the tables print.
 *
 * Every measured command runs as its own process with the Node running the bench first on PATH,
 * so the bin's shebang (`#!/usr/bin/env -S node …`) finds the pinned Node.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import { type CgroupRun, type Cgroups, detectCgroups } from './cgroup.ts';
import { ensureNginx, spotifyEnv } from './static.ts';

export { type CgroupRun, type Cgroups, detectCgroups } from './cgroup.ts';
export { ensureNginx, type StaticSource, spotifyEnv, startStaticSource } from './static.ts';

export const MiB = 1024 * 1024;
/** This checkout. */
export const root = fileURLToPath(new URL('..', import.meta.url));
/** The bin of a build directory (this checkout's, or e.g. a worktree of an older commit). */
export const binOf = (build: string) => join(build, 'dist/bin/spotify-batch.js');
/** This checkout's bin, run as installed: executed, so its shebang's V8 flags apply. */
export const bin = binOf(root);
/** The bin's shebang runs `node` from PATH: the Node running the bench comes first. */
export const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
const rssHook = join(root, 'bench/rss.mjs');

// --- statistics ----------------------------------------------------------------------------------

/** The median of the finite values (the mean of the middle two for an even count); NaN if none. */
export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
/** `min–max` with `digits` decimals. */
export const range = (xs: number[], digits: number) =>
  `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
/** A target's verdict cell. */
export const check = (ok: boolean) => (ok ? 'met' : '**not met**');
/** 1,000,000. */
export const en = (n: number) => n.toLocaleString('en');

/** This checkout's commit, short, and whether the tree has uncommitted changes: what was measured. */
export function gitCommit(): string {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { cwd: root, encoding: 'utf8' }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain') ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** The measured pull: `new-releases --out OUT --quiet --concurrency 8`, plus `extra`. */
export const pullArgs = (out: string, extra: string[] = []) => [
  'new-releases',
  '--out',
  out,
  '--quiet',
  '--concurrency',
  '8',
  ...extra,
];

// --- servers -------------------------------------------------------------------------------------

export interface Server {
  url: string;
  /** Environment that points the CLI at it. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The emulator as its own process (`spotify-batch emulator --prerender`: every page rendered
 * ahead, so the emulator is not what is measured), answering each page after `latency` ms.
 */
export async function startEmulatorProcess(albums: number, latency = 0): Promise<Server> {
  const child = spawn(
    process.execPath,
    [bin, 'emulator', '--albums', String(albums), '--latency', String(latency), '--prerender'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
  });
  const { url } = JSON.parse(line) as { url: string };
  return {
    url,
    env: spotifyEnv(url),
    stop: async () => {
      // Gone already (stopped before, or exited on its own): its 'exit' will not come again.
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The local S3 (s3rver on loopback, in this process) with `bucket` made. */
export async function startBucket(bucket = 'bench'): Promise<LocalS3> {
  const s3 = await startS3();
  await s3.createBucket(bucket);
  return s3;
}

/** SHA-256 (hex) of an object in the local S3, to compare two runs' outputs. */
export async function objectDigest(s3: LocalS3, bucket: string, key: string): Promise<string> {
  const object = await s3.getObject(bucket, key);
  if (object === undefined) return `missing ${key}`;
  return createHash('sha256').update(object.body).digest('hex');
}

/**
 * A memory cgroup and nginx, which the container benchmarks need, or why this machine has not
 * both (they then print "not measured here").
 */
export function cgroupAndNginx():
  | { cgroups: Cgroups; nginx: string; reason?: undefined }
  | { reason: string; cgroups?: undefined; nginx?: undefined } {
  const { cgroups, reason } = detectCgroups();
  const { nginx, reason: noNginx } = ensureNginx();
  if (cgroups === undefined || nginx === undefined) {
    return { reason: reason ?? noNginx ?? 'no cgroup or no nginx' };
  }
  return { cgroups, nginx };
}

// --- measured processes --------------------------------------------------------------------------

export interface Measured {
  /** Spawn to exit. */
  seconds: number;
  /** The process's own peak RSS (VmHWM). */
  rssMiB: number;
  /** User + system CPU of the process (all its threads). */
  cpuSeconds: number;
  /** Node's own bundled undici was loaded (something touched fetch, Headers, …). */
  internalUndici: boolean;
  /** The run's own `seconds` from its JSON report (`--log-format json`), when it printed one. */
  runSeconds?: number;
  stderr: string;
}

let rssFiles = 0;

/**
 * Runs `command ...args` once as its own process (the bin, or `process.execPath` with a script
 * or flags), with bench/rss.mjs preloaded; fails unless it exits 0.
 */
export async function measure(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<Measured> {
  const rssFile = join(tmpdir(), `spotify-batch-rss-${process.pid}-${++rssFiles}`);
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
  // bench/rss.mjs writes `KiB cpuSeconds internalUndici`.
  const [kib = 'NaN', cpu = 'NaN', internal = '0'] = (await readFile(rssFile, 'utf8')).split(' ');
  await rm(rssFile, { force: true });
  const runSeconds = reportSeconds(stderr);
  return {
    seconds,
    rssMiB: Number(kib) / 1024,
    cpuSeconds: Number(cpu),
    internalUndici: internal === '1',
    ...(runSeconds === undefined ? {} : { runSeconds }),
    stderr,
  };
}

/** The `seconds` of the `report` line a run with `--log-format json` writes last. */
function reportSeconds(stderr: string): number | undefined {
  for (const line of stderr.split('\n')) {
    try {
      const event = JSON.parse(line) as { event?: string; seconds?: number };
      if (event.event === 'report') return event.seconds;
    } catch {}
  }
  return undefined;
}

/** Whether a cgroup run completed: exit 0 and no OOM kill. */
export const completed = (r: CgroupRun) => r.code === 0 && !r.oomKilled;

/**
 * Runs `command ...args` alone in its own memory cgroup (bench/cgroup.ts) with `limitMiB`, or
 * none; the environment is the bench's plus `env`. Anything but success or an OOM kill is a
 * broken run, not a result: it throws.
 */
export async function inCgroup(
  cgroups: Cgroups,
  limitMiB: number | undefined,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CgroupRun> {
  const r = await cgroups.run(limitMiB === undefined ? undefined : limitMiB * MiB, command, args, {
    ...process.env,
    ...env,
    PATH,
  });
  if (r.code !== 0 && !r.oomKilled) {
    throw new Error(
      `${command} ${args.join(' ')} (limit ${limitMiB ?? 'none'}) exited with ${r.code ?? r.signal}:\n${r.stderr}`,
    );
  }
  return r;
}

// --- CPU profiles --------------------------------------------------------------------------------

export interface Frame {
  functionName: string;
  url: string;
}
export interface CpuProfile {
  nodes: { id: number; callFrame: Frame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * One measured run of `node [nodeFlags] bin ...args` under `--cpu-prof`, with the bin's young
 * generation (`--max-semi-space-size=8`, what its shebang sets): the measurement and the profile.
 */
export async function profiled(
  args: string[],
  env: NodeJS.ProcessEnv,
  build = root,
): Promise<{ measured: Measured; profile: CpuProfile }> {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-cpu-prof-'));
  try {
    const measured = await measure(
      process.execPath,
      ['--max-semi-space-size=8', '--cpu-prof', '--cpu-prof-dir', dir, binOf(build), ...args],
      env,
    );
    const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile')) as string;
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    return { measured, profile };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Self time per {@link stage}, in % of the samples, largest first. */
export function selfTimeByStage(p: CpuProfile): [string, number][] {
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

/** The stage of the pipeline a sampled function belongs to, by where it lives. */
export function stage(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle (waiting for the network)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'V8/native (program)';
  // JSON.parse is inlined into parseJsonBody: its self time is the parse.
  if (url.includes('/dist/src/sources/parse.js')) return 'JSON.parse of pages (parseJsonBody)';
  if (fn === 'utf8Slice' || fn === 'toString' || fn === 'isUtf8' || fn === 'decodeUTF8')
    return 'UTF-8 validation and decoding of pages';
  if (url.includes('/undici/')) return 'HTTP client (undici)';
  if (url.includes('/csv-stringify/')) return 'CSV (csv-stringify)';
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
