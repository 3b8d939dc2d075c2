/**
 * What a run can be told: {@link Options}, their {@link DEFAULTS}, and how a location reads.
 * src/core/options/ turns them, per concern, into the config each stage takes.
 */
import { usageError } from './errors.ts';

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

/** Options for one run. Every field is optional; each `@default` is applied by `normalizeOptions`. */
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
   * (bench/HISTORY.md, issue 21), and Spotify delivers far less than even one part per second.
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

/** The JSON type of an option's value: what a Lambda event's options are checked against. */
export type OptionType = 'boolean' | 'number' | 'string' | 'string[]' | 'record';

/**
 * Every option's type, one entry per key of {@link Options} (a new option without one does not
 * compile): a Lambda event cannot say `"gzip": "false"` (truthy) or `"markets": "SE"`.
 */
export const OPTION_TYPES: Record<keyof Options, OptionType> = {
  out: 'string',
  via: 'string',
  query: 'string',
  maxItems: 'number',
  date: 'string',
  markets: 'string[]',
  dedupe: 'boolean',
  onMarketError: 'string',
  manifest: 'boolean',
  limit: 'number',
  concurrency: 'number',
  clientId: 'string',
  clientSecret: 'string',
  apiUrl: 'string',
  accountsUrl: 'string',
  maxRetries: 'number',
  retryDelay: 'number',
  maxRetryAfter: 'number',
  maxRateLimitWait: 'number',
  maxRate: 'number',
  requestTimeout: 'number',
  csvEscapeFormulas: 'boolean',
  columns: 'string[]',
  model: 'string',
  format: 'string',
  gzip: 'boolean',
  force: 'boolean',
  parquetRowGroupRows: 'number',
  state: 'string',
  raw: 'string',
  from: 'string[]',
  newOnly: 'boolean',
  stateTtlDays: 'number',
  rejects: 'string',
  maxRejects: 'number',
  report: 'string',
  s3PartSize: 'number',
  s3QueueSize: 'number',
  s3Endpoint: 'string',
  s3ForcePathStyle: 'boolean',
  s3Region: 'string',
  s3Sse: 'string',
  s3SseKmsKeyId: 'string',
  s3StorageClass: 'string',
  s3Tags: 'record',
};

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

/** The first value that is set and not empty (flags, then environment variables). */
export const nonEmpty = (...values: (string | undefined)[]): string | undefined =>
  values.find((v) => v !== undefined && v !== '');
