/**
 * Pacing to Spotify's rate limit (issue 17): pulls of 200–300 pages against an emulator that
 * enforces a rolling window, timed, with the 429s counted at the emulator.
 *
 *   npx node bench/pacing.ts [--cli PATH] [--runs N] [--quick] [--only TEXT]
 *                            [--save FILE.json] [--baseline FILE.json] [--label TEXT]
 *                            [--from FILE.json]
 *
 * The emulator runs in this process (this tree's, whatever the CLI measured); each pull is the
 * CLI (`--cli`, default this tree's dist/bin/spotify-batch.js) as its own process, `--out
 * /dev/null --log-format json`, and its time is the run's own `seconds` from its JSON report.
 * Pulls are bound by the emulated limit (time ≈ pages ÷ rate), so CPU noise matters little.
 * `--save` keeps the samples (e.g. of the code before a change, `--cli` pointing at a worktree's
 * build); `--baseline` puts such a file's medians beside this run's in the table printed on
 * stdout (markdown).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { FaultRule, RateLimit } from '../src/emulator/faults.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { WINDOW_ROWS } from '../test/helpers/pacing-rows.ts';
import { bin, gitCommit, measure as measureProcess, median, spotifyEnv } from './harness.ts';

const { values: args } = parseArgs({
  options: {
    cli: { type: 'string', default: bin },
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    save: { type: 'string' },
    baseline: { type: 'string' },
    label: { type: 'string', default: 'this run' },
    from: { type: 'string' },
  },
});

interface Scenario {
  name: string;
  limits: RateLimit[];
  pages: number;
  concurrency: number;
  latencyMs?: number;
  /** Injected 429s (issue 24): one-off refusals, not a window. */
  faults?: FaultRule[];
  /** The Retry-After waits those faults ask for, in seconds, at least. */
  waits?: number;
}

const { tenC4, tenC16, fiftyC4, hundredC4, halvingTenC4, halvingFiftyC4 } = WINDOW_ROWS;
const scenarios: Scenario[] = [
  tenC4,
  tenC16,
  fiftyC4,
  { ...fiftyC4, name: '50 per 5 s, c4, 100 ms/page', latencyMs: 100 },
  hundredC4,
  halvingTenC4,
  halvingFiftyC4,
  {
    name: '50 per 5 s, Retry-After always 1 s, c4',
    limits: [{ count: 50, windowSeconds: 5, retryAfter: 1 }],
    pages: 300,
    concurrency: 4,
  },
  {
    name: '100 per 30 s, Retry-After always 1 s, c4',
    limits: [{ count: 100, windowSeconds: 30, retryAfter: 1 }],
    pages: 300,
    concurrency: 4,
  },
  { name: 'no limit, 100 ms/page, c8', limits: [], pages: 200, concurrency: 8, latencyMs: 100 },
  // Issue 24: 429s that are no steady limit. Each row also runs once per sample without its
  // faults; its target is 1.5× that time plus the waits asked for.
  {
    name: 'one 429 on the first request, Retry-After 1, 20 ms/page, c4',
    limits: [],
    pages: 30,
    concurrency: 4,
    latencyMs: 20,
    faults: [{ kind: '429', offset: 0, times: 1, retryAfter: '1' }],
    waits: 1,
  },
  {
    name: 'four scattered one-off 429s, Retry-After 1, 20 ms/page, c4',
    limits: [],
    pages: 30,
    concurrency: 4,
    latencyMs: 20,
    faults: [250, 700, 1100, 1350].map((offset) => ({
      kind: '429' as const,
      offset,
      times: 1,
      retryAfter: '1',
    })),
    waits: 4,
  },
  {
    name: 'a storm: the first 30 requests 429, Retry-After 1, c4',
    limits: [],
    pages: 200,
    concurrency: 4,
    faults: [{ kind: '429', every: 1, times: 30, retryAfter: '1' }],
    waits: 30,
  },
  {
    name: '12 answers of 429 with Retry-After: 0, c4',
    limits: [],
    pages: 200,
    concurrency: 4,
    faults: [{ kind: '429', every: 15, times: 12, retryAfter: '0' }],
    waits: 0,
  },
];
const isFault = (s: Scenario) => s.faults !== undefined;
const QUICK = [
  '10 per 1 s, c4',
  '10 → 5 per 1 s after 100 requests, c4',
  'no limit, 100 ms/page, c8',
];
const selected = scenarios.filter(
  (s) =>
    (!args.quick || QUICK.includes(s.name)) &&
    (args.only === undefined || s.name.includes(args.only)),
);
const runs = Number(args.runs ?? (args.quick ? 1 : 3));

export interface Sample {
  scenario: string;
  /** The run's own seconds (JSON report). */
  seconds: number;
  /** What the limit allows at best: pages ÷ rate, phase by phase (latency-bound without a limit). */
  ideal: number;
  requests: number;
  rateLimited: number;
  /** 429s outside the learning windows: the first window, and after a change the next two. */
  lateRateLimited: number;
  /** The most requests (refused ones too) that arrived within one window, outside the learning windows. */
  mostInWindow: number;
  /** `rate` from the report (requests/s paced at), when the CLI reports one. */
  rate: number | null;
  /** Fault rows: the same pull without its faults, seconds (the "no-429 time"). */
  clean?: number;
  /**
   * Fault rows: seconds from the end of the last 429's Retry-After to the last request, less
   * what the requests after it take at the no-429 speed: how long the pull ran slow.
   */
  afterLast429?: number;
}

function ideal(s: Scenario, clean?: number): number {
  if (isFault(s)) return (clean ?? 0) + (s.waits ?? 0);
  if (s.limits.length === 0) return (s.pages * (s.latencyMs ?? 0)) / 1000 / s.concurrency;
  let seconds = 0;
  s.limits.forEach((limit, i) => {
    const from = limit.after ?? 0;
    const to = Math.min(s.pages, s.limits[i + 1]?.after ?? s.pages);
    seconds += (Math.max(0, to - from) * limit.windowSeconds) / limit.count;
  });
  return seconds;
}

async function measure(s: Scenario): Promise<Sample> {
  const { faults: _, ...withoutFaults } = s;
  const clean = isFault(s) ? (await measure(withoutFaults)).seconds : 0;
  const emulator = await startEmulator({
    albums: s.pages * 50,
    seed: 3,
    cachePages: true,
    latencyMs: s.latencyMs ?? 0,
    ...(s.limits.length ? { rateLimit: s.limits } : {}),
    ...(s.faults ? { faults: s.faults } : {}),
  });
  try {
    // The harness's measured process (exit 0 or it throws); the run's time is its own report's.
    const { stderr } = await measureProcess(
      process.execPath,
      [
        args.cli,
        'new-releases',
        '--out',
        '/dev/null',
        '--log-format',
        'json',
        '--concurrency',
        String(s.concurrency),
      ],
      spotifyEnv(emulator.url),
    );
    const line = stderr
      .trim()
      .split('\n')
      .findLast((l) => l.includes('"event":"report"'));
    const report = JSON.parse(line ?? '{}') as { ok?: boolean; seconds: number; rate?: number };
    if (!report.ok) throw new Error(`${s.name}: no ok report\n${stderr}`);
    const log = emulator.stats.log;
    if (isFault(s)) {
      const last = log.findLastIndex((r) => r.status === 429);
      const resumed = (log[last]?.at ?? 0) + 1000 * Number(s.faults?.[0]?.retryAfter ?? 0);
      const rest = log.length - 1 - last;
      const atCleanSpeed = (clean * rest) / emulator.stats.apiRequests;
      return {
        scenario: s.name,
        seconds: report.seconds,
        ideal: ideal(s, clean),
        requests: emulator.stats.apiRequests,
        rateLimited: emulator.stats.faultsFired,
        lateRateLimited: 0,
        mostInWindow: 0,
        rate: typeof report.rate === 'number' ? report.rate : null,
        clean,
        afterLast429: Math.max(0, ((log.at(-1)?.at ?? 0) - resumed) / 1000 - atCleanSpeed),
      };
    }
    const t0 = log[0]?.at ?? 0;
    const learning: [number, number][] = [[t0, t0 + (s.limits[0]?.windowSeconds ?? 0) * 1000]];
    for (const limit of s.limits.slice(1)) {
      const at = log[limit.after ?? 0]?.at;
      if (at !== undefined) learning.push([at, at + 2 * limit.windowSeconds * 1000]);
    }
    const outside = log.filter((r) => !learning.some(([from, to]) => r.at >= from && r.at < to));
    let most = 0;
    for (let end = 0, start = 0; s.limits.length > 0 && end < outside.length; end++) {
      const at = (outside[end] as (typeof outside)[number]).at;
      const windowMs =
        1000 * (limitAt(s, log.indexOf(outside[end] as (typeof log)[number]))?.windowSeconds ?? 0);
      while ((outside[start] as (typeof outside)[number]).at <= at - windowMs) start++;
      most = Math.max(most, end - start + 1);
    }
    return {
      scenario: s.name,
      seconds: report.seconds,
      ideal: ideal(s),
      requests: emulator.stats.apiRequests,
      rateLimited: emulator.stats.rateLimited,
      lateRateLimited: outside.filter((r) => r.status === 429).length,
      mostInWindow: s.limits.length ? most : 0,
      rate: typeof report.rate === 'number' ? report.rate : null,
    };
  } finally {
    await emulator.stop();
  }
}

function limitAt(s: Scenario, index: number): RateLimit | undefined {
  let current: RateLimit | undefined;
  for (const limit of s.limits) if ((limit.after ?? 0) <= index) current = limit;
  return current;
}

interface Summary {
  seconds: number;
  min: number;
  max: number;
  ratio: number;
  requests: number;
  rateLimited: number;
  late: number;
  latePct: number;
  rate: number | null;
  clean: number;
  afterLast429: number;
}

function summarize(samples: Sample[], scenario: string): Summary | undefined {
  const mine = samples.filter((x) => x.scenario === scenario);
  if (mine.length === 0) return undefined;
  const m = (f: (x: Sample) => number) => median(mine.map(f));
  const rates = mine.flatMap((x) => (x.rate === null ? [] : [x.rate]));
  return {
    seconds: m((x) => x.seconds),
    min: Math.min(...mine.map((x) => x.seconds)),
    max: Math.max(...mine.map((x) => x.seconds)),
    ratio: m((x) => x.seconds / x.ideal),
    requests: m((x) => x.requests),
    rateLimited: m((x) => x.rateLimited),
    late: m((x) => x.lateRateLimited),
    latePct: m((x) => (100 * x.lateRateLimited) / x.requests),
    rate: rates.length ? median(rates) : null,
    clean: m((x) => x.clean ?? 0),
    afterLast429: m((x) => x.afterLast429 ?? 0),
  };
}

/** Issue 24's rows: one-off 429s, against the same pull without them. */
export function faultTable(after: Sample[], before: Sample[] | undefined, names: string[]): string {
  const run = (x: Summary | undefined) =>
    x === undefined
      ? ['', '', '']
      : [
          `${x.seconds.toFixed(1)} (${x.min.toFixed(1)}–${x.max.toFixed(1)}), ${x.ratio.toFixed(2)}×`,
          String(x.rateLimited),
          x.afterLast429.toFixed(1),
        ];
  const head = [
    'faults, pages',
    'without the 429s s',
    'waits asked s',
    ...(before
      ? ['before: run s (min–max), × (no-429 + waits)', '429s', 'slow s after last 429']
      : []),
    `${before ? 'after: ' : ''}run s (min–max), × (no-429 + waits)`,
    '429s',
    'slow s after last 429',
    'rate held, req/s',
    'target: ≤ 1.5 × no-429 + waits (storm: ≤ 2 s after last 429)',
  ];
  const rows = names.map((name) => {
    const s = scenarios.find((x) => x.name === name) as Scenario;
    const a = summarize(after, name);
    const limit = a === undefined ? 0 : 1.5 * a.clean + (s.waits ?? 0);
    const storm = s.name.includes('storm');
    const met =
      a === undefined
        ? ''
        : `time ${a.seconds <= limit ? 'met' : '**not met**'} (≤ ${limit.toFixed(1)} s)${storm ? `, recovery ${a.afterLast429 <= 2 ? 'met' : '**not met**'}` : ''}`;
    return [
      `${name}, ${s.pages}`,
      a === undefined ? '' : a.clean.toFixed(2),
      String(s.waits ?? 0),
      ...(before ? run(summarize(before, name)) : []),
      ...run(a),
      a?.rate === null || a === undefined ? '–' : String(a.rate),
      met,
    ];
  });
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function table(after: Sample[], before: Sample[] | undefined, names: string[]): string {
  const run = (x: Summary | undefined) =>
    x === undefined
      ? ['', '', '']
      : [
          `${x.seconds.toFixed(1)} (${x.min.toFixed(1)}–${x.max.toFixed(1)}), ${x.ratio.toFixed(2)}×`,
          String(x.rateLimited),
          `${x.late} (${x.latePct.toFixed(1)} %)`,
        ];
  const head = [
    'limit, pages',
    'ideal s',
    ...(before ? ['before: run s (min–max), × ideal', '429s', '429s outside learning'] : []),
    `${before ? 'after: ' : ''}run s (min–max), × ideal`,
    '429s',
    '429s outside learning',
    'rate reached, req/s',
    'targets',
  ];
  const rows = names.map((name) => {
    const s = scenarios.find((x) => x.name === name) as Scenario;
    const a = summarize(after, name);
    const met =
      a === undefined
        ? ''
        : s.limits.length > 0
          ? `time ${a.ratio <= 1.15 ? 'met' : '**not met**'}, 429s ${a.latePct <= 5 ? 'met' : '**not met**'}`
          : `${a.ratio <= 1.25 ? 'met' : '**not met**'} (≤ 1.25×)`;
    return [
      `${name}, ${s.pages}`,
      ideal(s).toFixed(1),
      ...(before ? run(summarize(before, name)) : []),
      ...run(a),
      a?.rate === null || a === undefined ? '–' : String(a.rate),
      met,
    ];
  });
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

// `--from FILE.json`: the table of samples saved earlier, without measuring again.
interface Saved {
  label: string;
  /** Where and when: commit, Node, date. */
  measured: string;
  runs: number;
  samples: Sample[];
}
const saved = args.from ? (JSON.parse(await readFile(args.from, 'utf8')) as Saved) : undefined;
const measured =
  saved?.measured ??
  `commit ${gitCommit()}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
const samples: Sample[] = saved?.samples ?? [];
for (const s of saved ? [] : selected) {
  for (let i = 0; i < runs; i++) {
    const sample = await measure(s);
    samples.push(sample);
    process.stderr.write(
      `${args.label}: ${s.name}: ${sample.seconds.toFixed(2)} s (ideal ${sample.ideal.toFixed(1)}), ${sample.requests} requests, ${sample.rateLimited}× 429 (${sample.lateRateLimited} outside learning), rate ${sample.rate}\n`,
    );
  }
}
if (args.save) {
  await writeFile(
    args.save,
    `${JSON.stringify({ label: args.label, measured, cli: args.cli, runs, samples }, null, 2)}\n`,
  );
}
const baseline = args.baseline
  ? (JSON.parse(await readFile(args.baseline, 'utf8')) as Saved)
  : undefined;
const shown = saved?.runs ?? runs;
process.stdout.write(`## Pacing to a rate limit (bench/pacing.ts, ${shown} run${shown === 1 ? '' : 's'} each)

Measured: ${measured}${baseline ? `; before: ${baseline.measured}` : ''}. Each pull is the CLI as its own process (\`--out /dev/null --concurrency N\`) against the emulator enforcing a rolling window (\`--rate-limit COUNT/SECONDS\`; its Retry-After is the whole seconds until the window has room, unless the row says otherwise); the time is the run's own \`seconds\` (JSON report), the 429s are counted by the emulator. Ideal = pages ÷ the allowed rate, phase by phase (without a limit: pages × latency ÷ concurrency). "Outside learning" leaves out the first window and, after the limit changed, the two windows after it. Targets (issue 17): at most 1.15× the ideal and at most 5 % of requests answered 429 outside learning; without a limit, at most 1.25× (latency hiding).${baseline ? ` "Before" is ${baseline.label} (bench/${basename(args.baseline as string)}).` : ''}

${table(
  samples,
  baseline?.samples,
  selected.filter((s) => !isFault(s)).map((s) => s.name),
)}

One-off 429s (issue 24): the emulator answers 429 as the row says (\`--fault 429:...\`), with no window behind it; each sample also runs the same pull without the faults, and the time is held against 1.5× that plus the Retry-After waits asked for. "Slow s after last 429": from the end of the last 429's Retry-After to the last request the emulator got, less what those requests take at the no-429 speed (the recovery's cost).

${faultTable(
  samples,
  baseline?.samples,
  selected.filter(isFault).map((s) => s.name),
)}

Reading it: a client that bounces off the limit runs at its rate (its 429s are the price); with the window learned from the first 429 the client sends no more than the window allows, and its 429s outside learning are failed probes and the odd scheduling hiccup. Bursts into an empty window beat the ideal on long windows (100 per 30 s: 300 pages in three bursts, about 61 s), with or without pacing. Without a limit the pacer does nothing (no 429, nothing learned): that row is latency hiding in this harness, where the bench process renders each page on its first request, so it reads higher than the latency table of \`npm run bench\` (pages rendered ahead, in another process).
`);
