import yargs, { type Argv } from 'yargs';
import { usageError } from '../core/errors.ts';
import { DEFAULTS, decimalNumber, MiB, type Options, wholeNumber } from '../core/options.ts';
import { didYouMean } from '../core/suggest.ts';

/** A list flag given with no value (`--market` at the end of a line) is a mistake, not "none". */
function list(flag: string, values: (string | number)[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const strings = values.map(String);
  if (strings.length === 0 || strings.every((v) => v.trim() === '')) {
    throw usageError(`option --${flag} needs a value`);
  }
  return strings;
}

const S3_PART_MIB = { min: 5, max: 5 * 1024 };

const text = (describe: string) => ({ type: 'string', requiresArg: true, describe }) as const;
/**
 * Numbers are read as typed (no yargs type, and number parsing off in src/cli/main.ts), so that
 * {@link wholeNumber} sees `1e1` or `0x10` rather than what JavaScript would make of them.
 */
const number = (describe: string) => ({ requiresArg: true, describe }) as const;

/** Where S3 is: the pulls and `unlock` take the same three flags. */
const S3_ENDPOINT = text('S3-compatible endpoint [env AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL]');
const S3_PATH_STYLE = {
  type: 'boolean',
  describe: 'Path-style addressing [default: on with a custom endpoint]',
} as const;
const S3_REGION = text(
  "S3 region [default: the AWS SDK's chain (AWS_REGION, profile); us-east-1 with a custom endpoint]",
);

/** A numeric flag's raw text, if given. */
const raw = (value: unknown): string | undefined =>
  value === undefined ? undefined : String(value);

/**
 * The options of every command that pulls (new-releases, check). Defaults are shown from
 * {@link DEFAULTS}, never given to yargs: the library's normalizer applies them, once.
 */
export const pullOptions = (y: Argv) =>
  y
    .option('out', {
      alias: 'o',
      ...text(
        `Destination: - (stdout), a file path, or s3://bucket/key. Templates {date} (UTC), {run_id}, {market} (one output per market). With --model star, a folder or prefix ending in /. Files and S3 objects appear only when the whole run succeeded [default: ${DEFAULTS.out}]`,
      ),
    })
    .option('limit', number(`Albums per page, 1..50 [default: ${DEFAULTS.limit}]`))
    .option('concurrency', {
      alias: 'c',
      ...number(
        `Pages in flight at once, 1..64; output order is kept [default: ${DEFAULTS.concurrency}]`,
      ),
    })
    .option(
      'via',
      text(
        `Endpoint: new-releases, or search (for Development Mode apps, which get 403 on new-releases) [default: ${DEFAULTS.via}]`,
      ),
    )
    .option('query', text(`Search query with --via search [default: ${DEFAULTS.query}]`))
    .option(
      'model',
      text(
        `flat: one row per album × artist; star: dim_album, dim_artist, bridge_album_artist under --out (a folder/prefix ending in /) [default: ${DEFAULTS.model}]`,
      ),
    )
    .option('columns', {
      type: 'string',
      array: true,
      describe:
        'Columns and order (comma list): the seven, album_type, total_tracks, release_date_precision, album_uri, artist_uri, artist_position, market, fetched_at, first_seen_at (with --state)',
    })
    .option(
      'format',
      text(
        'Output format: csv, ndjson or parquet [default: from the --out name (.csv, .ndjson, .jsonl, .parquet), else csv]',
      ),
    )
    .option('force', {
      type: 'boolean',
      describe:
        "Write even when --format/--gzip disagree with the output's name, or binary output to a terminal",
    })
    .option(
      'parquet-row-group',
      number(
        `Most rows per Parquet row group; a group also closes at 8 MiB of row data (about 44,000 rows of the default columns), which bounds memory [default: ${DEFAULTS.parquetRowGroupRows}]`,
      ),
    )
    .option('gzip', {
      type: 'boolean',
      describe:
        'Compress with gzip; --no-gzip to refuse [default: on when the --out name ends in .gz]',
    })
    .option('market', {
      alias: 'm',
      type: 'string',
      array: true,
      describe:
        'Markets (ISO codes, repeat or comma list, or all; `spotify-batch markets` lists them). Several into one output add a market column',
    })
    .option('dedupe', {
      type: 'boolean',
      describe:
        'Keep the first row per (album, artist); --no-dedupe keeps all [default: on with several markets in one output]',
    })
    .option(
      'on-market-error',
      text(
        `With {market} in --out: fail (nothing is published) or skip (the other markets are published, exit 7) [default: ${DEFAULTS.onMarketError}]`,
      ),
    )
    .option('manifest', {
      type: 'boolean',
      describe:
        'Write _manifest.json beside the data, last; --no-manifest to leave it out [default: on with {market} in --out or --model star]',
    })
    .option('max-items', number('Stop after N albums (the output is complete and valid)'))
    .option(
      'date',
      text(
        "The run's date YYYY-MM-DD, for a backfill or a re-run of a past day: {date} and the state's first-seen date ({run_id} keeps the real start) [default: today, UTC]",
      ),
    )
    .option(
      'env-file',
      text(
        'Read variables from a .env file (SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET, AWS_*, …): they count for everything the tool and the AWS SDK read; variables already set win',
      ),
    )
    .option('api-url', text(`Web API base URL [env SPOTIFY_API_URL, default ${DEFAULTS.apiUrl}]`))
    .option(
      'accounts-url',
      text(`Accounts base URL [env SPOTIFY_ACCOUNTS_URL, default ${DEFAULTS.accountsUrl}]`),
    )
    .option(
      'max-retries',
      number(`Retries per page for network errors, 5xx and 429 [default: ${DEFAULTS.maxRetries}]`),
    )
    .option(
      'retry-delay',
      number(
        `First retry delay (ms); doubles per retry, with jitter [default: ${DEFAULTS.retryDelay}]`,
      ),
    )
    .option(
      'max-retry-after',
      number(
        `Fail when Spotify asks to wait longer than this (seconds) [default: ${DEFAULTS.maxRetryAfter}]`,
      ),
    )
    .option(
      'max-rate-limit-wait',
      number(
        `Fail when rate-limit pauses add up to more than this (seconds) [default: ${DEFAULTS.maxRateLimitWait}]`,
      ),
    )
    .option(
      'max-rate',
      number(
        'Spotify requests per second never to exceed, e.g. 2.5 (a known budget, an app shared with other jobs) [default: no cap; the limit is learned from 429s]',
      ),
    )
    .option(
      'request-timeout',
      number(`Connect/headers/body timeout per request (ms) [default: ${DEFAULTS.requestTimeout}]`),
    )
    .option(
      'rejects',
      text(
        'Write albums that fail validation to this NDJSON file or s3:// key and go on (default: fail the run); published with the data',
      ),
    )
    .option('max-rejects', number('With --rejects: fail once more than N albums were rejected'))
    .option(
      'report',
      text(
        'Write a self-contained HTML page about the run (its numbers, the data, the run over time) to this .html file or s3:// key; published with the data, also for runs to stdout',
      ),
    )
    .option(
      'raw',
      text(
        'Raw landing: every page body as Spotify sent it, one line per page with its URL, market, offset, status and fetch time; a file or s3:// key, gzipped unless it ends in .ndjson/.jsonl; published with the data. `spotify-batch replay --from` reads it back',
      ),
    )
    .option(
      'state',
      text(
        'Incremental state: a file or s3:// key recording each album id with the date it was first written; read at the start, published with the data. One run at a time (a lease beside it)',
      ),
    )
    .option('new-only', {
      type: 'boolean',
      describe:
        'With --state: write only albums not in the state (an album new in several markets once)',
    })
    .option(
      'state-ttl',
      number(
        `With --state: forget ids first seen more than this many days ago, so the state stays bounded [default: ${DEFAULTS.stateTtlDays}]`,
      ),
    )
    .option('csv-escape-formulas', {
      type: 'boolean',
      describe:
        "Prefix cells starting with = + - @, a tab or a CR with ' (for spreadsheets; changes the bytes)",
    })
    .option(
      's3-part-size',
      number(
        `S3 part size in MiB, ${S3_PART_MIB.min}..${S3_PART_MIB.max}. S3 memory ≈ part size × (queue size + 1) [default: ${DEFAULTS.s3PartSize / MiB}]`,
      ),
    )
    .option(
      's3-queue-size',
      number(`S3 parts uploaded in parallel, 1..64 [default: ${DEFAULTS.s3QueueSize}]`),
    )
    .option('s3-endpoint', S3_ENDPOINT)
    .option('s3-force-path-style', S3_PATH_STYLE)
    .option('s3-region', S3_REGION)
    .option('s3-sse', text('Server-side encryption: AES256 or aws:kms'))
    .option('s3-sse-kms-key-id', text('KMS key for --s3-sse aws:kms'))
    .option('s3-storage-class', text('Storage class, e.g. STANDARD_IA'))
    .option('s3-tag', {
      type: 'string',
      array: true,
      describe: 'Object tag KEY=VALUE (repeatable)',
    })
    .option(
      'log-format',
      text('Log lines as text, or json (one JSON object per line) [default: text]'),
    )
    .option('quiet', {
      alias: 'q',
      type: 'boolean',
      describe: 'No summary on success',
    })
    .option('progress', {
      type: 'boolean',
      describe:
        'Progress on stderr: a live line on a terminal, or with --log-format json a progress event (pages, albums, rows, bytes, rate, ETA) every --progress-interval; --no-progress to turn it off [default: on for a terminal (not in CI) and for JSON logs, off with --quiet]',
    })
    .option(
      'progress-interval',
      number('Seconds between JSON progress events, e.g. 60 [default: 10]'),
    )
    .option('debug', {
      type: 'boolean',
      describe: 'Show stack traces and causes on errors',
    });

export type PullArgs = Awaited<ReturnType<typeof pullOptions>['argv']>;

/** The flags that pace and retry requests to Spotify: a help group, and live-only for replay. */
const RETRIES_AND_PACING = [
  'max-retries',
  'retry-delay',
  'max-retry-after',
  'max-rate-limit-wait',
  'max-rate',
  'request-timeout',
] as const;

/** The pull's flags by task, in the order `--help` lists them. */
const GROUPS: [heading: string, flags: string[]][] = [
  [
    'Output:',
    [
      'out',
      'format',
      'gzip',
      'force',
      'model',
      'columns',
      'manifest',
      'rejects',
      'max-rejects',
      'parquet-row-group',
      'csv-escape-formulas',
    ],
  ],
  [
    'Source and markets:',
    [
      'market',
      'via',
      'query',
      'max-items',
      'dedupe',
      'on-market-error',
      'limit',
      'concurrency',
      'env-file',
      'api-url',
      'accounts-url',
    ],
  ],
  ['Incremental:', ['state', 'new-only', 'state-ttl', 'date']],
  ['Raw and report:', ['raw', 'report']],
  [
    'S3:',
    [
      's3-endpoint',
      's3-region',
      's3-force-path-style',
      's3-sse',
      's3-sse-kms-key-id',
      's3-storage-class',
      's3-tag',
      's3-part-size',
      's3-queue-size',
    ],
  ],
  ['Retries and pacing:', [...RETRIES_AND_PACING]],
  ['Logging:', ['log-format', 'quiet', 'progress', 'progress-interval', 'debug']],
];

/**
 * The pull's flags grouped by task for `--help` (a flat list of 50 is hard to find one in);
 * `omit`: flags the command hides, so a group of only those is not printed empty.
 */
export function grouped<T>(y: Argv<T>, omit: readonly string[] = []): Argv<T> {
  let built = y;
  for (const [heading, flags] of GROUPS) {
    const shown = flags.filter((flag) => !omit.includes(flag));
    if (shown.length > 0) built = built.group(shown, heading);
  }
  return built;
}

/** `spotify-batch unlock`: the state, and only what reaching it takes. */
export const unlockOptions = (y: Argv) =>
  y
    .option('state', {
      ...text('The --state of the runs whose lease to release: a file path or s3:// key'),
      demandOption: 'name the state: --state LOCATION (as given to the runs)',
    })
    .option('force', {
      type: 'boolean',
      describe:
        'Remove the lease whoever holds it: a run still going, or on another host (a pod that is gone)',
    })
    .option(
      'env-file',
      text('Read variables from a .env file (AWS_*, …); variables already set win'),
    )
    .option('s3-endpoint', S3_ENDPOINT)
    .option('s3-force-path-style', S3_PATH_STYLE)
    .option('s3-region', S3_REGION)
    .option(
      'log-format',
      text('Log lines as text, or json (one JSON object per line) [default: text]'),
    )
    .option('debug', {
      type: 'boolean',
      describe: 'Show stack traces and causes on errors',
    });

export type UnlockArgs = Awaited<ReturnType<typeof unlockOptions>['argv']>;

/** Flags of a live pull that mean nothing to `replay` (it fetches nothing): hidden there, refused. */
export const LIVE_ONLY = [
  'limit',
  'via',
  'query',
  'api-url',
  'accounts-url',
  ...RETRIES_AND_PACING,
] as const;

/** `replay`'s flags: --from first (the one thing it needs), then the pull's without the live-only. */
export const replayOptions = (y: Argv) => {
  let built = pullOptions(
    y
      .option('from', {
        type: 'string',
        array: true,
        demandOption: 'name what to replay: --from LOCATION (repeatable)',
        describe:
          'Raw landing files (--raw), a JSON array of albums, a saved paging response, or NDJSON of albums; files or s3:// keys, gzipped or not (repeatable)',
      })
      .group(['from'], 'Input:'),
  );
  for (const flag of LIVE_ONLY) built = built.hide(flag);
  return grouped(built, LIVE_ONLY);
};

/** A live-only flag given to `replay` is a usage error, not silently ignored. */
export function refuseLiveOnly(args: Record<string, unknown>): void {
  const given = LIVE_ONLY.find((flag) => args[flag] !== undefined);
  if (given !== undefined) {
    throw usageError(
      `option --${given} is for a live pull; replay fetches nothing from Spotify (it reads --from)`,
    );
  }
}

/** `--progress-interval`: seconds, more than 0 (a fraction is fine). */
export function progressInterval(value: unknown): number | undefined {
  const seconds = decimalNumber('option --progress-interval', raw(value));
  if (seconds !== undefined && !(seconds > 0)) {
    throw usageError(`option --progress-interval must be a number > 0, got ${seconds}`);
  }
  return seconds;
}

/** The flags as library options: numbers parsed strictly, sizes from MiB, nothing defaulted. */
export function toOptions(args: PullArgs): Options {
  const tags: Record<string, string> = {};
  for (const tag of list('s3-tag', args['s3-tag']) ?? []) {
    const eq = tag.indexOf('=');
    if (eq < 1) throw usageError(`option --s3-tag must be KEY=VALUE, got ${tag}`);
    tags[tag.slice(0, eq)] = tag.slice(eq + 1);
  }
  const partMiB = wholeNumber('option --s3-part-size', raw(args['s3-part-size']));
  if (partMiB !== undefined && (partMiB < S3_PART_MIB.min || partMiB > S3_PART_MIB.max)) {
    throw usageError(
      `option --s3-part-size must be ${S3_PART_MIB.min}..${S3_PART_MIB.max} (MiB), got ${partMiB}`,
    );
  }
  const options = {
    out: args.out,
    limit: wholeNumber('option --limit', raw(args.limit)),
    concurrency: wholeNumber('option --concurrency', raw(args.concurrency)),
    via: args.via,
    query: args.query,
    model: args.model,
    columns: list('columns', args.columns),
    format: args.format,
    force: args.force,
    parquetRowGroupRows: wholeNumber('option --parquet-row-group', raw(args['parquet-row-group'])),
    gzip: args.gzip,
    markets: list('market', args.market),
    dedupe: args.dedupe,
    onMarketError: args['on-market-error'],
    manifest: args.manifest,
    maxItems: wholeNumber('option --max-items', raw(args['max-items'])),
    date: args.date,
    apiUrl: args['api-url'],
    accountsUrl: args['accounts-url'],
    maxRetries: wholeNumber('option --max-retries', raw(args['max-retries'])),
    retryDelay: wholeNumber('option --retry-delay', raw(args['retry-delay'])),
    maxRetryAfter: decimalNumber('option --max-retry-after', raw(args['max-retry-after'])),
    maxRateLimitWait: decimalNumber(
      'option --max-rate-limit-wait',
      raw(args['max-rate-limit-wait']),
    ),
    maxRate: decimalNumber('option --max-rate', raw(args['max-rate'])),
    requestTimeout: wholeNumber('option --request-timeout', raw(args['request-timeout'])),
    rejects: args.rejects,
    maxRejects: wholeNumber('option --max-rejects', raw(args['max-rejects'])),
    report: args.report,
    from: list('from', (args as { from?: (string | number)[] }).from),
    raw: args.raw,
    state: args.state,
    newOnly: args['new-only'],
    stateTtlDays: wholeNumber('option --state-ttl', raw(args['state-ttl'])),
    csvEscapeFormulas: args['csv-escape-formulas'],
    s3PartSize: partMiB === undefined ? undefined : partMiB * MiB,
    s3QueueSize: wholeNumber('option --s3-queue-size', raw(args['s3-queue-size'])),
    s3Endpoint: args['s3-endpoint'],
    s3ForcePathStyle: args['s3-force-path-style'],
    s3Region: args['s3-region'],
    s3Sse: args['s3-sse'],
    s3SseKmsKeyId: args['s3-sse-kms-key-id'],
    s3StorageClass: args['s3-storage-class'],
    s3Tags: tags,
  };
  // Flags not given stay absent (exactOptionalPropertyTypes): the normalizer defaults them.
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Options;
}

/**
 * A flag that takes one value, given twice (`--out a --out b`) or as `--no-out`, reaches the
 * options as an array or a boolean: refused here, with one line, rather than failing inside.
 */
export function checkScalars(args: Record<string, unknown>): void {
  const { boolean, array } = (
    pullOptions(yargs([])) as unknown as { getOptions(): { boolean: string[]; array: string[] } }
  ).getOptions();
  for (const [key, value] of Object.entries(args)) {
    if (key.length < 2 || (key.includes('-') === false && /[A-Z]/.test(key))) continue;
    if (boolean.includes(key) || array.includes(key) || ['_', '$0', 'from'].includes(key)) continue;
    if (Array.isArray(value)) throw usageError(`option --${key} is given more than once`);
    if (typeof value === 'boolean') {
      throw usageError(`option --${key} takes a value (there is no --no-${key})`);
    }
  }
}

/** What yargs knows of the pull's flags (getOptions is public, though not in its types). */
function known(): { key: Record<string, unknown>; alias: Record<string, string[]> } {
  return (
    pullOptions(yargs([])) as unknown as {
      getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]> };
    }
  ).getOptions();
}

/** The long name of a flag typed as an alias (`c` → `concurrency`), else the name itself. */
function longName(name: string): string {
  const { alias } = known();
  return Object.keys(alias).find((flag) => flag.length > 1 && alias[flag]?.includes(name)) ?? name;
}

/**
 * yargs' own usage messages, in the project's words: `-x` is an unknown option (suggesting
 * only real long flags, never an alias such as `--o`), `--out` with nothing after it needs a
 * value. Undefined for the messages that need no rewording.
 */
export function usageMessage(message: string, args: string[]): string | undefined {
  const missing = /^Not enough arguments following: (\S+)$/.exec(message)?.[1];
  if (missing !== undefined) return `option --${longName(missing)} needs a value`;
  const unknown = /^Unknown arguments?: (.+)$/.exec(message)?.[1];
  if (unknown === undefined) return undefined;
  const flagNames = Object.keys(known().key).filter((k) => k.length > 1 && !/[A-Z]/.test(k));
  const words = unknown.split(', ').map((name) => {
    const typed = args.find(
      (a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `--no-${name}`,
    );
    if (typed !== undefined) {
      return `unknown option --${name}${didYouMean(name, flagNames).replace('mean ', 'mean --')}`;
    }
    // A one-letter flag (`-x`, or inside `-xq`): a suggestion from one letter is a guess.
    if (name.length === 1 && args.some((a) => /^-[^-]/.test(a) && a.includes(name))) {
      return `unknown option -${name}`;
    }
    return `unexpected argument ${name}`;
  });
  return words.join('; ');
}

/** yargs' completions without the one-letter aliases it also offers as long flags (`--o`). */
export function realCompletions(offered: string[]): string[] {
  return offered.filter((word) => !/^--[^-]$/.test(word));
}
