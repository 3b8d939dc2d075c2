import { type Column, resolveColumns } from './columns.ts';
import { usageError } from './errors.ts';
import { parseMarkets } from './markets.ts';
import { didYouMean } from './suggest.ts';

export type Via = 'new-releases' | 'search';
export type Format = 'csv' | 'ndjson' | 'parquet';

/** The format and compression an output name implies: `x.csv`, `x.ndjson.gz`, `x.jsonl`… */
export function formatFromName(out: string): { format: Format | undefined; gzip: boolean } {
  const name = out.toLowerCase();
  const gzip = name.endsWith('.gz');
  const base = gzip ? name.slice(0, -3) : name;
  const format = /\.(ndjson|jsonl)$/.test(base)
    ? 'ndjson'
    : base.endsWith('.csv')
      ? 'csv'
      : base.endsWith('.parquet')
        ? 'parquet'
        : undefined;
  return { format, gzip };
}

/** Where the serialized rows go. */
export type Destination =
  | { kind: 'stdout' }
  | { kind: 'file'; path: string }
  | { kind: 's3'; bucket: string; key: string };

/** Options for one run. Every field is optional; see {@link normalizeOptions} for defaults. */
export interface Options {
  /** `-` (stdout), a file path, or `s3://bucket/key`. @default '-' */
  out?: string;
  /**
   * Which endpoint lists the albums: `new-releases`, or `search` (the path for Development Mode
   * apps, which get 403 on new-releases since February 2026). @default 'new-releases'
   */
  via?: Via;
  /** Search query for `via: 'search'`. @default 'tag:new' (albums released in the past two weeks) */
  query?: string;
  /** Stop after this many albums; the output is complete and valid. @default unlimited */
  maxItems?: number;
  /**
   * The run's date, YYYY-MM-DD: `{date}` in every location and the first-seen date the state
   * records, for backfills and re-runs of a past day. A real calendar day, not after today (UTC);
   * `{run_id}` still comes from the real start. @default today (UTC)
   */
  date?: string;
  /**
   * Markets to pull (new-releases' `country`, search's `market`): ISO codes, or `all`. With more
   * than one, a `market` column follows the seven contract columns. @default none (Spotify's default list)
   */
  markets?: string[];
  /** Keep only the first row per (album, artist). @default true with several markets in one object */
  dedupe?: boolean;
  /** With several markets: `fail` the whole run on any market's failure, or `skip` that market. @default 'fail' */
  onMarketError?: 'fail' | 'skip';
  /** Write `_manifest.json` beside the data, last. @default true when `out` has `{market}` */
  manifest?: boolean;
  /** Albums per page, 1..50. @default 50 */
  limit?: number;
  /** Pages in flight at once, 1..64. @default 4 */
  concurrency?: number;
  /** Spotify client id. @default env SPOTIFY_CLIENT_ID, then CLIENT_ID */
  clientId?: string;
  /** Spotify client secret. @default env SPOTIFY_CLIENT_SECRET, then CLIENT_SECRET */
  clientSecret?: string;
  /** Web API base URL; `/v1/...` is appended. @default env SPOTIFY_API_URL, then https://api.spotify.com */
  apiUrl?: string;
  /** Accounts base URL; `/api/token` is appended. @default env SPOTIFY_ACCOUNTS_URL, then https://accounts.spotify.com */
  accountsUrl?: string;
  /** Retries per page for network errors, 5xx and 429 without a usable Retry-After. @default 6 */
  maxRetries?: number;
  /** First retry delay in ms; it doubles per retry (with jitter) up to 30 s. @default 500 */
  retryDelay?: number;
  /** Longest single Retry-After (seconds) the run will wait; longer fails at once. @default 60 */
  maxRetryAfter?: number;
  /** Total seconds the run may spend paused by rate limits. @default 900 */
  maxRateLimitWait?: number;
  /**
   * Spotify requests per second never to exceed, for a known budget or an app shared with other
   * jobs. Without it the client learns the limit from Spotify's 429s. @default no cap (learned)
   */
  maxRate?: number;
  /** Connect, headers and body timeout for each Spotify request, in milliseconds. @default 30000 */
  requestTimeout?: number;
  /** Escape cells starting with = + - @ tab or CR (spreadsheet formula injection). @default false */
  csvEscapeFormulas?: boolean;
  /**
   * Columns and their order, from the seven contract columns and album_type, total_tracks,
   * release_date_precision, album_uri, artist_uri, artist_position, market, fetched_at.
   * @default the seven (and `market` when several markets go into one output)
   */
  columns?: string[];
  /**
   * `flat`: one table, one row per album × artist. `star`: dim_album, dim_artist and
   * bridge_album_artist as three outputs under `out`, which must then end in `/`. @default 'flat'
   */
  model?: 'flat' | 'star';
  /**
   * Output format: `csv` (the tutorial's bytes) or `ndjson` (one JSON object per row, the same
   * keys). @default from the output name (`.ndjson`/`.jsonl`, optionally `.gz`), else `csv`
   */
  format?: Format;
  /** Compress the output with gzip. @default true when the output name ends in `.gz` */
  gzip?: boolean;
  /**
   * Write even when the output's name says another format or compression than `format`/`gzip`
   * (`--format ndjson --out x.csv`), or has an extension of no known format. @default false
   */
  force?: boolean;
  /**
   * The most rows per Parquet row group. A group is also written once it holds 8 MiB of row data
   * (about 45,000 rows of the contract's columns), which bounds the writer's memory (about 20×
   * that); this cap decides only for smaller rows or when set lower. @default 1000000
   */
  parquetRowGroupRows?: number;
  /**
   * Incremental state: a file or `s3://` key recording, per album id, the date it was first
   * emitted and the market. Read at the start, written as one more output of the run's commit.
   */
  state?: string;
  /**
   * Raw landing: every page body as received, one line per page with its URL, market, offset,
   * status and fetch time, published with the data (gzip unless the name ends in .ndjson/.jsonl).
   */
  raw?: string;
  /**
   * Replay: read albums from these saved files (raw landing files, a JSON array of albums, a
   * saved paging response, NDJSON of albums; local or S3, gzipped or not) instead of Spotify.
   */
  from?: string[];
  /** With `state`: write only albums not in the state. @default false */
  newOnly?: boolean;
  /** With `state`: ids first seen more than this many days ago are dropped from it. @default 90 */
  stateTtlDays?: number;
  /** NDJSON file that receives records that fail validation, instead of failing the run. */
  rejects?: string;
  /** With `rejects`: fail the run once more than this many records were rejected. @default Infinity */
  maxRejects?: number;
  /**
   * A self-contained HTML page about the run (its numbers, the data's distributions, the run over
   * time), a file path or `s3://` key ending in `.html`, `{date}` and `{run_id}` allowed; staged
   * and published with the data, also for runs to stdout. @default none
   */
  report?: string;
  /**
   * S3 part size in bytes, at least 5 MiB (S3's minimum). The upload holds about part size ×
   * (queue size + 1); 5 MiB × 2 keeps a million-album pull inside a 128 MiB container
   * (bench/RESULTS.md), and Spotify delivers far less than even one part per second.
   * @default 5 MiB
   */
  s3PartSize?: number;
  /** S3 parts uploaded concurrently. @default 2 */
  s3QueueSize?: number;
  /** S3 endpoint URL (S3-compatible stores). @default env AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL */
  s3Endpoint?: string;
  /** Path-style addressing. @default true when an endpoint is set, else false */
  s3ForcePathStyle?: boolean;
  /** S3 region. @default the SDK's chain (AWS_REGION, profile), then us-east-1 */
  s3Region?: string;
  /** Server-side encryption. */
  s3Sse?: 'AES256' | 'aws:kms';
  /** KMS key id for `s3Sse: 'aws:kms'`. */
  s3SseKmsKeyId?: string;
  /** Storage class, e.g. STANDARD_IA. */
  s3StorageClass?: string;
  /** Object tags. */
  s3Tags?: Record<string, string>;
}

export interface NormalizedOptions {
  /** `out` as given: may hold `{date}`, `{run_id}`, `{market}` (see {@link expandOut}). */
  out: string;
  /** `out` has `{market}`: one object per market. */
  perMarket: boolean;
  markets: string[];
  dedupe: boolean;
  onMarketError: 'fail' | 'skip';
  manifest: boolean;
  via: Via;
  query: string;
  maxItems: number;
  /** `date` as given (checked); undefined: the run's start, UTC. */
  date: string | undefined;
  limit: number;
  concurrency: number;
  clientId: string;
  clientSecret: string;
  apiUrl: string;
  accountsUrl: string;
  maxRetries: number;
  retryDelay: number;
  maxRetryAfter: number;
  maxRateLimitWait: number;
  /** Requests per second; `Infinity` for no cap. */
  maxRate: number;
  requestTimeout: number;
  csvEscapeFormulas: boolean;
  format: Format;
  gzip: boolean;
  parquetRowGroupRows: number;
  columns: Column[];
  model: 'flat' | 'star';
  rejects: string | undefined;
  maxRejects: number;
  /** Where the run's HTML report goes (templates not yet filled in). */
  report: string | undefined;
  state: string | undefined;
  raw: string | undefined;
  /** Replay inputs; empty for a live pull. */
  from: string[];
  newOnly: boolean;
  stateTtlDays: number;
  s3: S3Options;
}

export interface S3Options {
  partSize: number;
  queueSize: number;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  region: string | undefined;
  sse: 'AES256' | 'aws:kms' | undefined;
  sseKmsKeyId: string | undefined;
  storageClass: string | undefined;
  tags: Record<string, string>;
}

export const MiB = 1024 * 1024;

/**
 * A whole number as typed (a flag, an environment variable): digits only. `1e1`, `0x10`, `1.5`,
 * `-3` and `abc` are refused with the input echoed; `what` names the source, e.g. `option --limit`.
 */
export function wholeNumber(what: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim())) {
    throw usageError(
      `${what} must be a whole number, got ${raw === '' ? 'nothing' : JSON.stringify(raw)}`,
    );
  }
  return Number(raw);
}

/** A number as typed: digits, optionally with a decimal part (seconds). */
export function decimalNumber(what: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(raw.trim())) {
    throw usageError(
      `${what} must be a number, got ${raw === '' ? 'nothing' : JSON.stringify(raw)}`,
    );
  }
  return Number(raw);
}

/** The options that have a fixed default (the others default from the environment or the run). */
type Defaulted =
  | 'out'
  | 'via'
  | 'query'
  | 'onMarketError'
  | 'model'
  | 'limit'
  | 'concurrency'
  | 'apiUrl'
  | 'accountsUrl'
  | 'maxRetries'
  | 'retryDelay'
  | 'maxRetryAfter'
  | 'maxRateLimitWait'
  | 'requestTimeout'
  | 'csvEscapeFormulas'
  | 'parquetRowGroupRows'
  | 's3PartSize'
  | 's3QueueSize'
  | 'stateTtlDays';

/**
 * Every fixed default, in one place: the library's normalizer and the CLI's help text both read
 * it. Typed so that a missing or misspelt key fails to compile.
 */
export const DEFAULTS = {
  out: '-',
  via: 'new-releases',
  query: 'tag:new',
  onMarketError: 'fail',
  model: 'flat',
  limit: 50,
  concurrency: 4,
  apiUrl: 'https://api.spotify.com',
  accountsUrl: 'https://accounts.spotify.com',
  maxRetries: 6,
  retryDelay: 500,
  maxRetryAfter: 60,
  maxRateLimitWait: 900,
  requestTimeout: 30_000,
  csvEscapeFormulas: false,
  parquetRowGroupRows: 1_000_000,
  s3PartSize: 5 * MiB,
  s3QueueSize: 2,
  stateTtlDays: 90,
} as const satisfies Required<Pick<Options, Defaulted>>;

const S3_MIN_PART = 5 * MiB;
const S3_MAX_PART = 5 * 1024 * MiB;

export interface OutVars {
  /** UTC run date, YYYY-MM-DD. */
  date: string;
  runId: string;
  market?: string | undefined;
}

const TEMPLATE = /\{(date|run_id|market)\}/g;

/** Fills `{date}`, `{run_id}` and `{market}` in an `--out` template. */
export function expandOut(out: string, vars: OutVars): string {
  return out.replace(TEMPLATE, (_, name: string) =>
    name === 'date' ? vars.date : name === 'run_id' ? vars.runId : (vars.market ?? ''),
  );
}

const STDOUT_PATHS = new Set(['/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']);

/** Parses `-`, a path, or `s3://bucket/key` into a {@link Destination}. */
export function parseDestination(out: string, flag = '--out'): Destination {
  // The process's own stdout under its other names: opening them fails on a socket (ENXIO).
  if (out === '-' || out === '' || STDOUT_PATHS.has(out)) return { kind: 'stdout' };
  if (/^s3:\/\//i.test(out)) {
    const match = /^s3:\/\/([^/]+)\/(.+)$/i.exec(out);
    if (!match?.[1] || !match[2] || match[2].endsWith('/')) {
      throw usageError(`option ${flag} must be s3://bucket/key with a key, got ${out}`);
    }
    // S3's naming rules, checked here so a typo is a usage error, not "does not exist" from S3.
    const bucket = match[1];
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
      throw usageError(
        `option ${flag}: ${bucket} is not a valid S3 bucket name (3-63 characters: lowercase letters, digits, dots and hyphens), in ${out}`,
      );
    }
    return { kind: 's3', bucket, key: match[2] };
  }
  if (/^s3:\/?[^/]/i.test(out)) {
    throw usageError(`option ${flag} must be s3://bucket/key (two slashes), got ${out}`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(out)) {
    throw usageError(`option ${flag} must be -, a file path or s3://bucket/key, got ${out}`);
  }
  return { kind: 'file', path: out };
}

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    // No upper bound worth naming: say what is wanted, not 9007199254740991.
    const range =
      max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `an integer ${min}..${max}`;
    throw usageError(`option --${name} must be ${range}, got ${String(value)}`);
  }
  return v;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
    throw usageError(`option --${name} must be a number >= 0, got ${String(value)}`);
  }
  return v;
}

function aboveZero(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw usageError(`option --${name} must be a number > 0, got ${String(value)}`);
  }
  return value;
}

function baseUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`option --${name} must be an http(s) URL, got ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`option --${name} must be an http(s) URL, got ${value}`);
  }
  return url.href.replace(/\/+$/, '');
}

/**
 * `--date`: a real calendar day (2026-02-30 is refused, not rolled over to March), not after
 * `now`'s UTC day — a backfill names a day that happened.
 */
export function runDate(value: string | undefined, now = new Date()): string | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim());
  const day = match && new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  if (!match || !day || day.toISOString().slice(0, 10) !== match[0]) {
    throw usageError(
      `option --date must be a calendar day YYYY-MM-DD, got ${value === '' ? 'nothing' : JSON.stringify(value)}`,
    );
  }
  const today = now.toISOString().slice(0, 10);
  if (match[0] > today) {
    throw usageError(`option --date ${match[0]} is in the future (today is ${today}, UTC)`);
  }
  return match[0];
}

/** The first value that is set and not empty (flags, then environment variables). */
export const nonEmpty = (...values: (string | undefined)[]): string | undefined =>
  values.find((v) => v !== undefined && v !== '');

const PLACEHOLDERS = ['date', 'run_id', 'market'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** The flags that name a place the run writes. */
export type LocationFlag = '--out' | '--rejects' | '--raw' | '--report' | '--state';

/**
 * The one rule for templates: which placeholders each location may use, and why the others do
 * not apply. `{market}` names one object per market, so only `--out` takes it; the state is one
 * file kept across runs, so it takes none. The plan lists these per output.
 */
export const LOCATION_PLACEHOLDERS: Record<
  LocationFlag,
  { allowed: readonly Placeholder[]; one: string }
> = {
  '--out': { allowed: PLACEHOLDERS, one: '' },
  '--rejects': { allowed: ['date', 'run_id'], one: 'one rejects file per run' },
  '--raw': { allowed: ['date', 'run_id'], one: 'one raw landing per run' },
  '--report': { allowed: ['date', 'run_id'], one: 'one report per run' },
  '--state': { allowed: [], one: 'the state is one file kept across runs' },
};

/**
 * `{bogus}` in a location would be written literally, and a known placeholder where it cannot
 * apply would expand to something surprising (`raw/{market}.ndjson` → `raw/.ndjson`): both are
 * refused, naming what the location may use.
 */
function checkPlaceholders(flag: LocationFlag, location: string): void {
  const { allowed, one } = LOCATION_PLACEHOLDERS[flag];
  for (const [, name = ''] of location.matchAll(/\{([^}]*)\}/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw usageError(
        `option ${flag}: unknown placeholder {${name}}${didYouMean(name, PLACEHOLDERS)}; the known ones are {date}, {run_id} and {market}`,
      );
    }
    if (!(allowed as readonly string[]).includes(name)) {
      const may =
        allowed.length === 0 ? '' : ` (it may use ${allowed.map((a) => `{${a}}`).join(' and ')})`;
      throw usageError(`option ${flag}: {${name}} does not apply: ${one}${may}`);
    }
  }
}

/** A choice option's value, checked against its choices (with a "did you mean"). */
function choice<T extends string>(
  flag: string,
  value: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw usageError(
    `option ${flag} must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, got ${value === '' ? 'nothing' : value}${didYouMean(value, choices)}`,
  );
}

/**
 * The format and compression, from `--format`/`--gzip` and the output's name. A name that says
 * one thing while the flags say another (`--format parquet --out f.csv`, `--gzip` without `.gz`)
 * is a mistake someone finds a week later in a data lake, so it is refused unless `force`.
 * Names with an extension of no known format (`f.json`, `f.txt`) are refused too; names without
 * one (`/dev/null`, `-`) are CSV.
 */
function outputFormat(
  out: string,
  model: 'flat' | 'star',
  format: Format | undefined,
  gzip: boolean | undefined,
  force = false,
): { format: Format; gzip: boolean } {
  const inferred = model === 'star' ? { format: undefined, gzip: false } : formatFromName(out);
  const named = model === 'flat' && out !== '-' && !out.endsWith('/');
  const base = out.split('/').at(-1) ?? '';
  const extension = /\.([A-Za-z0-9]+)(\.gz)?$/i.exec(base)?.[1]?.toLowerCase();
  if (named && inferred.format === undefined && extension !== undefined && !force) {
    throw usageError(
      `option --out: cannot tell the format from .${extension}: name the output .csv, .ndjson (or .jsonl) or .parquet, with .gz to compress, or pass --format with --force`,
    );
  }
  if (named && !force) {
    if (format !== undefined && inferred.format !== undefined && format !== inferred.format) {
      throw usageError(
        `option --format ${format} but --out ends in .${inferred.format}: rename the output, or pass --force to write ${format} under that name`,
      );
    }
    if (gzip === true && !inferred.gzip) {
      throw usageError(
        'option --gzip but --out does not end in .gz: add .gz to the name, or pass --force',
      );
    }
    if (gzip === false && inferred.gzip) {
      throw usageError('option --no-gzip but --out ends in .gz: drop the .gz, or pass --force');
    }
  }
  const result = { format: format ?? inferred.format ?? 'csv', gzip: gzip ?? inferred.gzip };
  if (result.format === 'parquet' && result.gzip) {
    throw usageError('Parquet compresses its own pages (SNAPPY): drop --gzip / .gz');
  }
  return result;
}

/**
 * Validates options and fills every default, once. Environment variables are read from `env`
 * (not `process.env` directly) so tests and the library API can pass their own. A replay with
 * no --market takes `inputMarkets`, the markets its raw input lists (src/plan/plan.ts
 * `resolveOptions` reads them), as if they had been typed: the live run's outputs, market
 * column and dedupe follow from them.
 */
export function normalizeOptions(
  options: Options,
  env: NodeJS.ProcessEnv = process.env,
  inputMarkets: string[] = [],
): NormalizedOptions {
  // A flag given with an empty value is a mistake (an unset variable in a script), never "the default".
  for (const [name, value] of [
    ['--query', options.query],
    ['--api-url', options.apiUrl],
    ['--accounts-url', options.accountsUrl],
    ['--s3-endpoint', options.s3Endpoint],
    ['--s3-region', options.s3Region],
    ['--s3-storage-class', options.s3StorageClass],
    ['--s3-sse-kms-key-id', options.s3SseKmsKeyId],
  ] as const) {
    if (value !== undefined && value.trim() === '') throw usageError(`option ${name} is empty`);
  }
  const out = options.out ?? DEFAULTS.out;
  if (out.trim() === '') {
    throw usageError('option --out is empty: give - (stdout), a file path or s3://bucket/key');
  }
  checkPlaceholders('--out', out);
  const rejects = options.rejects;
  if (rejects !== undefined) {
    if (rejects.trim() === '')
      throw usageError('option --rejects is empty: give a file path or s3:// key');
    checkPlaceholders('--rejects', rejects);
    if (parseDestination(rejects, '--rejects').kind === 'stdout') {
      throw usageError('option --rejects needs a file path or s3:// key, got -');
    }
  }
  const report = options.report;
  if (report !== undefined) {
    if (report.trim() === '')
      throw usageError('option --report is empty: give a file path or s3:// key ending in .html');
    checkPlaceholders('--report', report);
    if (parseDestination(report, '--report').kind === 'stdout') {
      throw usageError('option --report needs a file path or s3:// key, got -');
    }
    if (!/\.html?$/i.test(report)) {
      throw usageError(`option --report: the page is HTML, name it .html, got ${report}`);
    }
  }
  const raw = options.raw;
  const from = options.from ?? [];
  if (raw !== undefined) {
    if (raw.trim() === '') throw usageError('option --raw is empty: give a file path or s3:// key');
    checkPlaceholders('--raw', raw);
    if (parseDestination(raw, '--raw').kind === 'stdout') {
      throw usageError('option --raw needs a file path or s3:// key, got -');
    }
    if (options.from !== undefined) {
      throw usageError('option --raw keeps what Spotify sent: it needs a live pull, not a replay');
    }
  }
  if (raw !== undefined) checkRawName(raw, options.force);
  if (options.from !== undefined && from.length === 0) {
    throw usageError('option --from needs at least one file or s3:// key');
  }
  for (const input of from) {
    if (input.trim() === '' || parseDestination(input, '--from').kind === 'stdout') {
      throw usageError(
        `option --from needs file paths or s3:// keys, got ${input === '' ? 'nothing' : input}`,
      );
    }
  }
  const state = options.state;
  if (state !== undefined) {
    if (state.trim() === '')
      throw usageError('option --state is empty: give a file path or s3:// key');
    checkPlaceholders('--state', state);
    if (parseDestination(state, '--state').kind === 'stdout') {
      throw usageError('option --state needs a file path or s3:// key, got -');
    }
  }
  if (options.newOnly && state === undefined) {
    throw usageError(
      'option --new-only needs --state LOCATION (where the albums already written are kept)',
    );
  }
  if (options.stateTtlDays !== undefined && state === undefined) {
    throw usageError('option --state-ttl needs --state LOCATION');
  }
  if (options.maxRejects !== undefined && rejects === undefined) {
    throw usageError('option --max-rejects needs --rejects FILE');
  }
  if (options.s3SseKmsKeyId && options.s3Sse !== 'aws:kms') {
    throw usageError('option --s3-sse-kms-key-id needs --s3-sse aws:kms');
  }
  refuseS3OnlyFlags(options);
  const typed = options.markets ?? [];
  const markets = parseMarkets(typed.length === 0 && from.length > 0 ? inputMarkets : typed);
  const perMarket = out.includes('{market}');
  if (perMarket && markets.length === 0) {
    throw usageError(
      from.length > 0
        ? 'option --out has {market}: the --from input does not list its markets (plain JSON, or a raw landing written before raw lines listed them); name them with --market'
        : 'option --out has {market}: name markets with --market',
    );
  }
  if (perMarket && out !== '-' && parseDestination(out).kind === 'stdout') {
    throw usageError('option --out: {market} needs a file path or s3:// key');
  }
  const model = choice('--model', options.model, ['flat', 'star'] as const) ?? DEFAULTS.model;
  if (model === 'star') {
    if (!out.endsWith('/')) {
      throw usageError(
        `option --model star writes three tables: --out must be a folder or prefix ending in /, got ${out}`,
      );
    }
    if (perMarket) throw usageError('option --model star: {market} in --out is not supported');
    if (options.columns !== undefined)
      throw usageError('option --columns does not apply to --model star');
  } else if (out.endsWith('/')) {
    throw usageError(
      `option --out: ${out} names a folder; name a file (e.g. ${out === 's3://' ? 's3://my-bucket/' : out}albums.csv), or use --model star for tables in a folder`,
    );
  }
  // Validate the shape now, with sample values, so a bad --out fails before any request.
  const sample = expandOut(out, { date: '2026-01-01', runId: 'run', market: 'SE' });
  parseDestination(model === 'star' ? `${sample}dim_album.csv` : sample);
  const onMarketError =
    choice('--on-market-error', options.onMarketError, ['fail', 'skip'] as const) ??
    DEFAULTS.onMarketError;
  if (onMarketError === 'skip' && !perMarket) {
    throw usageError(
      'option --on-market-error skip needs one object per market: put {market} in --out',
    );
  }
  const explicitFormat = choice('--format', options.format, ['csv', 'ndjson', 'parquet'] as const);
  const { format, gzip } = outputFormat(out, model, explicitFormat, options.gzip, options.force);
  if (options.csvEscapeFormulas && format !== 'csv') {
    throw usageError('option --csv-escape-formulas applies to CSV output only');
  }
  const via = choice('--via', options.via, ['new-releases', 'search'] as const) ?? DEFAULTS.via;
  if (options.query !== undefined && via !== 'search') {
    throw usageError('option --query needs --via search');
  }
  if (options.manifest && parseDestination(sample).kind === 'stdout') {
    throw usageError('option --manifest needs a file or s3:// output to sit beside');
  }
  // Credentials after the --out/--format/--model checks: a mistyped flag is worth reporting
  // before missing secrets (numeric ranges are checked below, with the defaults).
  const clientId = nonEmpty(options.clientId, env.SPOTIFY_CLIENT_ID, env.CLIENT_ID) ?? '';
  const clientSecret =
    nonEmpty(options.clientSecret, env.SPOTIFY_CLIENT_SECRET, env.CLIENT_SECRET) ?? '';
  // A replay calls no API: no credentials needed.
  if (from.length === 0 && (!clientId || !clientSecret)) {
    const missing = [
      ...(clientId ? [] : ['SPOTIFY_CLIENT_ID']),
      ...(clientSecret ? [] : ['SPOTIFY_CLIENT_SECRET']),
    ];
    throw usageError(
      `missing Spotify credentials: set ${missing.join(' and ')} (or pass --env-file FILE)`,
    );
  }
  return {
    out,
    raw,
    from,
    perMarket,
    markets,
    dedupe: options.dedupe ?? (markets.length > 1 && !perMarket),
    onMarketError,
    manifest: options.manifest ?? (perMarket || model === 'star'),
    model,
    via,
    query: nonEmpty(options.query) ?? DEFAULTS.query,
    maxItems:
      options.maxItems === undefined
        ? Number.POSITIVE_INFINITY
        : integer('max-items', options.maxItems, 0, 1, Number.MAX_SAFE_INTEGER),
    date: runDate(options.date),
    limit: integer('limit', options.limit, DEFAULTS.limit, 1, 50),
    concurrency: integer('concurrency', options.concurrency, DEFAULTS.concurrency, 1, 64),
    clientId,
    clientSecret,
    apiUrl: baseUrl('api-url', nonEmpty(options.apiUrl, env.SPOTIFY_API_URL) ?? DEFAULTS.apiUrl),
    accountsUrl: baseUrl(
      'accounts-url',
      nonEmpty(options.accountsUrl, env.SPOTIFY_ACCOUNTS_URL) ?? DEFAULTS.accountsUrl,
    ),
    maxRetries: integer('max-retries', options.maxRetries, DEFAULTS.maxRetries, 0, 100),
    retryDelay: integer('retry-delay', options.retryDelay, DEFAULTS.retryDelay, 0, 60_000),
    maxRetryAfter: positive('max-retry-after', options.maxRetryAfter, DEFAULTS.maxRetryAfter),
    maxRateLimitWait: positive(
      'max-rate-limit-wait',
      options.maxRateLimitWait,
      DEFAULTS.maxRateLimitWait,
    ),
    maxRate:
      options.maxRate === undefined
        ? Number.POSITIVE_INFINITY
        : aboveZero('max-rate', options.maxRate),
    requestTimeout: integer(
      'request-timeout',
      options.requestTimeout,
      DEFAULTS.requestTimeout,
      1,
      3_600_000,
    ),
    csvEscapeFormulas: options.csvEscapeFormulas ?? DEFAULTS.csvEscapeFormulas,
    columns: resolveColumns(
      options.columns,
      markets.length > 1 && !perMarket,
      markets.length > 0,
      state !== undefined,
    ),
    format,
    parquetRowGroupRows: integer(
      'parquet-row-group',
      options.parquetRowGroupRows,
      DEFAULTS.parquetRowGroupRows,
      1_000,
      10_000_000,
    ),
    gzip,
    rejects,
    report,
    state,
    newOnly: options.newOnly ?? false,
    stateTtlDays: integer('state-ttl', options.stateTtlDays, DEFAULTS.stateTtlDays, 1, 36_500),
    maxRejects:
      options.maxRejects === undefined
        ? Number.POSITIVE_INFINITY
        : integer('max-rejects', options.maxRejects, 0, 0, Number.MAX_SAFE_INTEGER),
    s3: normalizeS3Options(options, env),
  };
}

/**
 * `--raw` is gzipped unless its name ends in .ndjson or .jsonl. A name with another extension
 * and no .gz (`raw.json`) would hold gzip bytes under a name that says otherwise, the trap
 * `--out` refuses too: refused unless `force`. Names without an extension (`raw`) are gzip.
 */
function checkRawName(raw: string, force = false): void {
  const name = raw.split('/').at(-1) ?? '';
  const extension = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  if (force || extension === undefined || ['gz', 'ndjson', 'jsonl'].includes(extension)) return;
  const stem = name.slice(0, -extension.length - 1);
  throw usageError(
    `option --raw: the raw landing is NDJSON, gzipped unless named .ndjson or .jsonl: name it ${stem}.ndjson.gz (or ${stem}.ndjson, plain), or pass --force`,
  );
}

/** The flags that set how S3 objects are uploaded and stored: they do nothing elsewhere. */
const S3_OBJECT_FLAGS = [
  ['s3Tags', '--s3-tag'],
  ['s3Sse', '--s3-sse'],
  ['s3SseKmsKeyId', '--s3-sse-kms-key-id'],
  ['s3StorageClass', '--s3-storage-class'],
  ['s3PartSize', '--s3-part-size'],
  ['s3QueueSize', '--s3-queue-size'],
] as const;

/**
 * An S3 object setting given to a run that writes no S3 object (tags on a file) would be
 * silently ignored: the run was meant to go elsewhere, or the flag is a leftover. Refused.
 */
function refuseS3OnlyFlags(options: Options): void {
  const places = [options.out, options.rejects, options.raw, options.report, options.state];
  if (places.some((place) => place !== undefined && /^s3:\/\//i.test(place))) return;
  for (const [key, flag] of S3_OBJECT_FLAGS) {
    const value = options[key];
    if (value === undefined || (key === 's3Tags' && Object.keys(value).length === 0)) continue;
    throw usageError(
      `option ${flag} applies to S3 objects, and no output of this run goes to s3://`,
    );
  }
}

/**
 * The S3 settings alone, defaults filled: a command that only reads and writes one small object
 * (`unlock`), or a replay reading its inputs' first lines for their markets, needs no Spotify
 * credentials or outputs to get them.
 */
export function normalizeS3Options(
  options: Pick<
    Options,
    | 's3PartSize'
    | 's3QueueSize'
    | 's3Endpoint'
    | 's3ForcePathStyle'
    | 's3Region'
    | 's3Sse'
    | 's3SseKmsKeyId'
    | 's3StorageClass'
    | 's3Tags'
  >,
  env: NodeJS.ProcessEnv = process.env,
): S3Options {
  for (const [name, value] of [
    ['--s3-endpoint', options.s3Endpoint],
    ['--s3-region', options.s3Region],
  ] as const) {
    if (value !== undefined && value.trim() === '') throw usageError(`option ${name} is empty`);
  }
  const endpoint = nonEmpty(options.s3Endpoint, env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL);
  if (options.s3SseKmsKeyId && options.s3Sse !== 'aws:kms') {
    throw usageError('option --s3-sse-kms-key-id needs --s3-sse aws:kms');
  }
  return {
    partSize: integer(
      's3-part-size',
      options.s3PartSize,
      DEFAULTS.s3PartSize,
      S3_MIN_PART,
      S3_MAX_PART,
    ),
    queueSize: integer('s3-queue-size', options.s3QueueSize, DEFAULTS.s3QueueSize, 1, 64),
    endpoint: endpoint === undefined ? undefined : baseUrl('s3-endpoint', endpoint),
    forcePathStyle: options.s3ForcePathStyle ?? endpoint !== undefined,
    region: nonEmpty(options.s3Region),
    sse: choice('--s3-sse', options.s3Sse, ['AES256', 'aws:kms'] as const),
    sseKmsKeyId: nonEmpty(options.s3SseKmsKeyId),
    storageClass: nonEmpty(options.s3StorageClass),
    tags: options.s3Tags ?? {},
  };
}
