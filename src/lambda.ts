/**
 * AWS Lambda handler (`spotify-batch/lambda`): one pull per invocation, returning the run report.
 * It stops itself a few seconds before Lambda's deadline so every staged output is discarded
 * cleanly rather than frozen mid-way.
 *
 * Configuration: the event's `options` (the library's {@link Options}) alone suffice; the
 * function's environment can set the options a scheduled pull needs, and the event overrides it:
 *
 * | variable | option |
 * | --- | --- |
 * | SPOTIFY_BATCH_OUT | out (e.g. s3://bucket/dt={date}/market={market}/albums.csv) |
 * | SPOTIFY_BATCH_MARKET | markets (comma list, or all) |
 * | SPOTIFY_BATCH_FORMAT, SPOTIFY_BATCH_GZIP (true/false) | format, gzip |
 * | SPOTIFY_BATCH_MODEL | model (flat or star) |
 * | SPOTIFY_BATCH_COLUMNS | columns (comma list) |
 * | SPOTIFY_BATCH_VIA, SPOTIFY_BATCH_QUERY | via, query |
 * | SPOTIFY_BATCH_LIMIT, SPOTIFY_BATCH_CONCURRENCY, SPOTIFY_BATCH_MAX_ITEMS | limit, concurrency, maxItems |
 * | SPOTIFY_BATCH_DEDUPE, SPOTIFY_BATCH_MANIFEST (true/false) | dedupe, manifest |
 * | SPOTIFY_BATCH_REJECTS, SPOTIFY_BATCH_MAX_REJECTS, SPOTIFY_BATCH_ON_MARKET_ERROR | rejects, maxRejects, onMarketError |
 * | SPOTIFY_BATCH_DATE | date (YYYY-MM-DD: a backfill's `{date}`) |
 * | SPOTIFY_BATCH_STATE, SPOTIFY_BATCH_NEW_ONLY (true/false), SPOTIFY_BATCH_STATE_TTL | state, newOnly, stateTtlDays |
 * | SPOTIFY_BATCH_RAW, SPOTIFY_BATCH_REPORT | raw, report |
 * | SPOTIFY_BATCH_MAX_RATE, SPOTIFY_BATCH_MAX_RETRIES, SPOTIFY_BATCH_MAX_RETRY_AFTER, SPOTIFY_BATCH_MAX_RATE_LIMIT_WAIT | maxRate, maxRetries, maxRetryAfter, maxRateLimitWait |
 * | SPOTIFY_BATCH_S3_SSE, SPOTIFY_BATCH_S3_SSE_KMS_KEY_ID, SPOTIFY_BATCH_S3_STORAGE_CLASS | s3Sse, s3SseKmsKeyId, s3StorageClass |
 * | SPOTIFY_BATCH_S3_TAG | s3Tags (comma list of KEY=VALUE) |
 *
 * plus what the CLI reads (SPOTIFY_CLIENT_ID/SECRET, SPOTIFY_API_URL, AWS_REGION,
 * AWS_ENDPOINT_URL_S3, …). Every value is validated as the CLI's flags are, and the event's
 * options must have their types (a boolean is true or false, not "false").
 */
import { SpotifyBatchError, usageError } from './core/errors.ts';
import {
  decimalNumber,
  OPTION_TYPES,
  type Options,
  type OptionType,
  wholeNumber,
} from './core/options.ts';
import type { RunEvent } from './core/stats.ts';
import { didYouMean } from './core/suggest.ts';
import { type RunReport, resolveOptions, run } from './pipeline.ts';

export interface LambdaEvent {
  options?: Options;
}

/** The part of Lambda's context object the handler uses. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/**
 * Retries, rate limits, skipped markets, an upload S3 would not abort: one JSON line each on
 * stderr, which Lambda sends to CloudWatch Logs, as the CLI's `--log-format json` writes them.
 */
function logEvent(e: RunEvent): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
}

/** Time kept back from Lambda's deadline for discarding the staged outputs. */
const ABORT_MARGIN_MS = 10_000;

/** The options the environment sets (see the table above); unset variables set nothing. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): Options {
  const get = (name: string) => {
    const value = env[`SPOTIFY_BATCH_${name}`];
    return value === undefined || value === '' ? undefined : value;
  };
  const list = (name: string) => get(name)?.split(',');
  const number = (name: string) => wholeNumber(`SPOTIFY_BATCH_${name}`, get(name));
  const decimal = (name: string) => decimalNumber(`SPOTIFY_BATCH_${name}`, get(name));
  const boolean = (name: string) => {
    const value = get(name);
    if (value !== undefined && value !== 'true' && value !== 'false') {
      throw usageError(`SPOTIFY_BATCH_${name} must be true or false, got ${value}`);
    }
    return value === undefined ? undefined : value === 'true';
  };
  const options = {
    out: get('OUT'),
    markets: list('MARKET'),
    format: get('FORMAT'),
    gzip: boolean('GZIP'),
    model: get('MODEL'),
    columns: list('COLUMNS'),
    via: get('VIA'),
    query: get('QUERY'),
    limit: number('LIMIT'),
    concurrency: number('CONCURRENCY'),
    maxItems: number('MAX_ITEMS'),
    dedupe: boolean('DEDUPE'),
    manifest: boolean('MANIFEST'),
    rejects: get('REJECTS'),
    maxRejects: number('MAX_REJECTS'),
    onMarketError: get('ON_MARKET_ERROR'),
    date: get('DATE'),
    state: get('STATE'),
    newOnly: boolean('NEW_ONLY'),
    stateTtlDays: number('STATE_TTL'),
    raw: get('RAW'),
    report: get('REPORT'),
    maxRate: decimal('MAX_RATE'),
    maxRetries: number('MAX_RETRIES'),
    maxRetryAfter: decimal('MAX_RETRY_AFTER'),
    maxRateLimitWait: decimal('MAX_RATE_LIMIT_WAIT'),
    s3Sse: get('S3_SSE'),
    s3SseKmsKeyId: get('S3_SSE_KMS_KEY_ID'),
    s3StorageClass: get('S3_STORAGE_CLASS'),
    s3Tags: tags(list('S3_TAG')),
  };
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Options;
}

/** `SPOTIFY_BATCH_S3_TAG=team=data,env=prod`: KEY=VALUE pairs, as --s3-tag takes them. */
function tags(pairs: string[] | undefined): Record<string, string> | undefined {
  if (pairs === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw usageError(`SPOTIFY_BATCH_S3_TAG must be KEY=VALUE pairs, got ${pair}`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' &&
  value !== null &&
  [Object.prototype, null].includes(Object.getPrototypeOf(value));

/** Whether `value` has the JSON type `type` ({@link OPTION_TYPES}). */
function hasType(value: unknown, type: OptionType): boolean {
  switch (type) {
    case 'string[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'record':
      return isPlainObject(value) && Object.values(value).every((v) => typeof v === 'string');
    default:
      return typeof value === type;
  }
}

const TYPE_NAMES: Record<OptionType, string> = {
  boolean: 'a boolean',
  number: 'a number',
  string: 'a string',
  'string[]': 'a list of strings',
  record: 'an object of strings',
};

/**
 * An event's options that are not an object (a string would spread into characters), or an
 * option of the wrong type (`"newOnly": "false"`, which is truthy), are refused.
 */
export function checkEventOptions(options: unknown): void {
  if (!isPlainObject(options)) {
    throw usageError(`the event's options must be an object, got ${JSON.stringify(options)}`);
  }
  for (const [key, value] of Object.entries(options)) {
    // Own keys only (`constructor` is not an option); an unknown one is a mistyped option.
    if (!Object.hasOwn(OPTION_TYPES, key)) {
      throw usageError(
        `the event's options.${key} is not an option${didYouMean(key, Object.keys(OPTION_TYPES))}`,
      );
    }
    const type = OPTION_TYPES[key as keyof Options];
    if (!hasType(value, type)) {
      throw usageError(
        `the event's options.${key} must be ${TYPE_NAMES[type]}, got ${JSON.stringify(value)}`,
      );
    }
  }
}

export async function handler(
  event: LambdaEvent = {},
  context?: LambdaContext,
): Promise<RunReport> {
  if (event.options !== undefined) checkEventOptions(event.options);
  const merged = { ...optionsFromEnv(process.env), ...event.options };
  // A function writes somewhere: stdout would go to its log.
  if (merged.out === undefined || merged.out === '-') {
    throw new SpotifyBatchError(
      'ERR_CONFIG',
      "name the destination: SPOTIFY_BATCH_OUT or the event's options.out, e.g. s3://bucket/albums.csv",
    );
  }
  const options = await resolveOptions(merged, process.env);
  const remaining = context?.getRemainingTimeInMillis();
  if (remaining === undefined) return run(options, { onEvent: logEvent });
  const controller = new AbortController();
  const timer = setTimeout(
    () => {
      controller.abort(
        new SpotifyBatchError(
          'ERR_INTERRUPTED',
          'stopped before the Lambda deadline; nothing was published',
        ),
      );
    },
    Math.max(1_000, remaining - ABORT_MARGIN_MS),
  );
  try {
    return await run(options, { signal: controller.signal, onEvent: logEvent });
  } finally {
    clearTimeout(timer);
  }
}
