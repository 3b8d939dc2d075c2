#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { abandonActive, discardActive } from '../src/commit.ts';
import {
  ExitStatus,
  SpotifyBatchError,
  toSpotifyBatchError,
  usageError,
} from '../src/core/errors.ts';
import { MiB, type Options } from '../src/core/options.ts';
import { createStats, type RunEvent, type RunStats } from '../src/core/stats.ts';
import { parseFault } from '../src/emulator/faults.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { type RunReport, run } from '../src/pipeline.ts';

const NAME = 'spotify-batch';

/**
 * stderr may go away (`2>&1 | head -1`, a log shipper that died): a lost log line is not a lost
 * output, so write errors on it (EPIPE, EBADF) are ignored instead of crashing the run.
 */
process.stderr.on('error', () => {});
function log(line: string): void {
  if (!process.stderr.destroyed) process.stderr.write(line);
}

/** Writes one line to stderr and sets the exit status; never a stack trace unless --debug. */
function fail(error: unknown, debug: boolean): never {
  const err = toSpotifyBatchError(error);
  log(`${NAME}: error: ${err.message}\n`);
  if (debug) {
    let cause: unknown = err;
    while (cause) {
      log(`${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`);
      if (cause instanceof SpotifyBatchError && Object.keys(cause.context).length > 0) {
        log(`context: ${JSON.stringify(cause.context)}\n`);
      }
      cause = cause instanceof Error ? cause.cause : undefined;
      if (cause) log('caused by: ');
    }
  }
  process.exit(err.exitStatus);
}

const isCi = (env: NodeJS.ProcessEnv) =>
  env.CI !== undefined && env.CI !== '' && env.CI !== 'false';

function loadEnvFile(path: string | undefined): NodeJS.ProcessEnv {
  if (path === undefined) return process.env;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw usageError(
      `option --env-file: cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? cause}`,
    );
  }
  // As with `node --env-file`, variables already set in the environment win.
  return { ...parseEnv(text), ...process.env };
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < MiB) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / MiB).toFixed(1)} MiB`;
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function summary(r: RunReport): string {
  const parts = [
    plural(r.pages, 'page'),
    plural(r.albums, 'album'),
    plural(r.rows, 'row'),
    humanBytes(r.bytes),
  ];
  const target =
    r.outputs.length > 1
      ? `${r.outputs.length} outputs`
      : r.location === '-'
        ? 'stdout'
        : r.location;
  const where = `→ ${target} in ${r.seconds.toFixed(2)} s`;
  const extra = [];
  if (r.parts !== undefined) extra.push(`${r.parts} part${r.parts === 1 ? '' : 's'}`);
  if (r.etag !== undefined) extra.push(`ETag ${r.etag}`);
  if (r.retries) extra.push(`${r.retries} retries`);
  if (r.rateLimited)
    extra.push(`${r.rateLimited}× 429, waited ${(r.rateLimitWaitMs / 1000).toFixed(1)} s`);
  if (r.rejected) extra.push(`${r.rejected} rejected`);
  if (r.searchCapped) extra.push("stopped at Spotify's search cap of 1000");
  if (r.searchLimit !== null) extra.push(`search limit stepped down to ${r.searchLimit}`);
  if (r.outputClosed) extra.push('reader closed the output early');
  if (r.manifest !== null) extra.push(`manifest ${r.manifest}`);
  return `${NAME}: ${parts.join(', ')} ${where}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

function describeEvent(e: RunEvent): string {
  switch (e.event) {
    case 'retry':
      return `${NAME}: retrying: ${e.reason} (attempt ${e.attempt}, next in ${(e.delayMs / 1000).toFixed(1)} s)`;
    case 'market-failed':
      return `${NAME}: market ${e.market} failed and is skipped: ${e.reason}`;
    case 'rate-limited':
      return e.retryAfter === null || e.retryAfter === 0
        ? `${NAME}: rate limited (429, no Retry-After): backing off, concurrency now ${e.concurrency}`
        : `${NAME}: rate limited (429): all requests pause ${e.retryAfter} s, concurrency now ${e.concurrency}`;
  }
}

const CLEAR_LINE = '\r\u001b[2K';

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60
    ? `${m} min ${Math.round(seconds % 60)} s`
    : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * A live progress line on stderr (a terminal only: never mixed into piped stdout data, and off
 * in CI logs and with --quiet or JSON logs). Returns the function that erases it.
 */
function startProgress(stats: RunStats, enabled: boolean): () => void {
  if (!enabled) return () => {};
  const started = performance.now();
  const draw = () => {
    const seconds = (performance.now() - started) / 1000;
    const rate = stats.albums / seconds;
    const total = stats.totalAlbums;
    const of = total === undefined ? '' : ` of ${total.toLocaleString('en')}`;
    const eta =
      total !== undefined && rate > 0 ? ` · ETA ${duration((total - stats.albums) / rate)}` : '';
    log(
      `${CLEAR_LINE}${NAME}: ${stats.albums.toLocaleString('en')}${of} albums · ${stats.rows.toLocaleString('en')} rows · ${humanBytes(stats.bytes)} · ${Math.round(rate).toLocaleString('en')} albums/s${eta}`,
    );
  };
  const timer = setInterval(draw, 250);
  timer.unref();
  return () => {
    clearInterval(timer);
    log(CLEAR_LINE);
  };
}

const SIGNAL_STATUS = {
  SIGINT: ExitStatus.sigint,
  SIGTERM: ExitStatus.sigterm,
  SIGHUP: ExitStatus.sighup,
} as const;

/** How long a second signal waits for the aborts already under way before exiting. */
const SECOND_SIGNAL_GRACE_MS = 2_000;

/**
 * SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped ssh session) stop the run: requests
 * are cancelled and every staged output is discarded before the exit status says which signal.
 * A second signal exits at once, after giving the discards already started (the S3 aborts) a
 * moment to go out. An uncaught error discards the staged outputs too, then exits 1.
 */
function installExitHandlers(controller: AbortController): void {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (interrupted) {
        const grace = new Promise((resolve) => setTimeout(resolve, SECOND_SIGNAL_GRACE_MS));
        void Promise.race([abandonActive(), grace]).then(() => process.exit(SIGNAL_STATUS[signal]));
        return;
      }
      interrupted = true;
      log(
        `${NAME}: ${signal}: stopping, discarding what this run staged (again to exit at once)\n`,
      );
      controller.abort(
        new SpotifyBatchError('ERR_INTERRUPTED', `interrupted by ${signal}`, {
          context: { signal },
        }),
      );
    });
  }
  const crash = (error: unknown) => {
    void discardActive(error)
      .catch(() => {})
      .then(() => fail(error, true));
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

const pullOptions = (y: Argv) =>
  y
    .option('out', {
      alias: 'o',
      type: 'string',
      default: '-',
      describe:
        'Destination: - (stdout), a file path, or s3://bucket/key. Files and S3 objects appear only when the run succeeds.',
    })
    .option('limit', { type: 'number', default: 50, describe: 'Albums per page (1..50)' })
    .option('concurrency', {
      alias: 'c',
      type: 'number',
      default: 4,
      describe: 'Pages in flight at once (1..64); output order is kept',
    })
    .option('via', {
      choices: ['new-releases', 'search'] as const,
      default: 'new-releases' as const,
      describe:
        'Endpoint: new-releases, or search (for Development Mode apps, which get 403 on new-releases)',
    })
    .option('query', {
      type: 'string',
      describe: 'Search query with --via search [default: tag:new]',
    })
    .option('model', {
      choices: ['flat', 'star'] as const,
      default: 'flat' as const,
      describe:
        'flat: one row per album × artist; star: dim_album, dim_artist, bridge_album_artist under --out (a folder/prefix ending in /)',
    })
    .option('columns', {
      type: 'string',
      array: true,
      describe:
        'Columns and order (comma list): the seven, album_type, total_tracks, release_date_precision, album_uri, artist_uri, artist_position, market, fetched_at',
    })
    .option('format', {
      choices: ['csv', 'ndjson', 'parquet'] as const,
      describe:
        'Output format [default: from the --out name (.csv, .ndjson, .jsonl, .parquet), else csv]',
    })
    .option('parquet-row-group', {
      type: 'number',
      default: 20_000,
      describe: 'Rows per Parquet row group (memory holds one: about 60 MiB more per 10,000 rows)',
    })
    .option('gzip', {
      type: 'boolean',
      describe: 'Compress with gzip [default: on when the --out name ends in .gz]',
    })
    .option('market', {
      alias: 'm',
      type: 'string',
      array: true,
      describe:
        'Markets (ISO codes, repeat or comma list, or all). Several into one output add a market column',
    })
    .option('dedupe', {
      type: 'boolean',
      describe:
        'Keep the first row per (album, artist) [default: on with several markets in one output]',
    })
    .option('on-market-error', {
      choices: ['fail', 'skip'] as const,
      default: 'fail' as const,
      describe: 'With {market} in --out: fail the run (nothing left), or skip the market (exit 7)',
    })
    .option('manifest', {
      type: 'boolean',
      describe: 'Write _manifest.json beside the data, last [default: on with {market} in --out]',
    })
    .option('max-items', {
      type: 'number',
      describe: 'Stop after N albums (the output is complete and valid)',
    })
    .option('env-file', {
      type: 'string',
      describe: 'Read SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET (and others) from a .env file',
    })
    .option('api-url', {
      type: 'string',
      describe: 'Web API base URL [env SPOTIFY_API_URL, default https://api.spotify.com]',
    })
    .option('accounts-url', {
      type: 'string',
      describe:
        'Accounts base URL [env SPOTIFY_ACCOUNTS_URL, default https://accounts.spotify.com]',
    })
    .option('max-retries', {
      type: 'number',
      default: 6,
      describe: 'Retries per page for network errors, 5xx and 429',
    })
    .option('retry-delay', {
      type: 'number',
      default: 500,
      describe: 'First retry delay (ms); doubles per retry, with jitter',
    })
    .option('max-retry-after', {
      type: 'number',
      default: 60,
      describe: 'Fail when Spotify asks to wait longer than this (seconds)',
    })
    .option('max-rate-limit-wait', {
      type: 'number',
      default: 900,
      describe: 'Fail when rate-limit pauses add up to more than this (seconds)',
    })
    .option('request-timeout', {
      type: 'number',
      default: 30_000,
      describe: 'Connect/headers/body timeout per request (ms)',
    })
    .option('rejects', {
      type: 'string',
      describe:
        'Write albums that fail validation to this NDJSON file and go on (default: fail the run)',
    })
    .option('max-rejects', {
      type: 'number',
      describe: 'With --rejects: fail once more than N albums were rejected',
    })
    .option('csv-escape-formulas', {
      type: 'boolean',
      default: false,
      describe: "Prefix cells starting with = + - @ with ' (for spreadsheets; changes the bytes)",
    })
    .option('s3-part-size', {
      type: 'number',
      default: 8,
      describe: 'S3 part size in MiB (min 5). S3 memory ≈ part size × (queue size + 1)',
    })
    .option('s3-queue-size', {
      type: 'number',
      default: 4,
      describe: 'S3 parts uploaded in parallel',
    })
    .option('s3-endpoint', {
      type: 'string',
      describe: 'S3-compatible endpoint [env AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL]',
    })
    .option('s3-force-path-style', {
      type: 'boolean',
      describe: 'Path-style addressing [default: on with a custom endpoint]',
    })
    .option('s3-region', {
      type: 'string',
      describe: "S3 region [default: the AWS SDK's chain, e.g. AWS_REGION]",
    })
    .option('s3-sse', {
      choices: ['AES256', 'aws:kms'] as const,
      describe: 'Server-side encryption',
    })
    .option('s3-sse-kms-key-id', { type: 'string', describe: 'KMS key for --s3-sse aws:kms' })
    .option('s3-storage-class', { type: 'string', describe: 'Storage class, e.g. STANDARD_IA' })
    .option('s3-tag', {
      type: 'string',
      array: true,
      describe: 'Object tag KEY=VALUE (repeatable)',
    })
    .option('log-format', {
      choices: ['text', 'json'] as const,
      default: 'text' as const,
      describe: 'Summary as a line of text or a JSON report on stderr',
    })
    .option('quiet', {
      alias: 'q',
      type: 'boolean',
      default: false,
      describe: 'No summary on success',
    })
    .option('progress', {
      type: 'boolean',
      describe:
        'Live progress line on stderr [default: on when stderr is a terminal, off in CI, with --quiet or JSON logs]',
    })
    .option('debug', {
      type: 'boolean',
      default: false,
      describe: 'Show stack traces and causes on errors',
    });

type PullArgs = Awaited<ReturnType<typeof pullOptions>['argv']>;

function toOptions(args: PullArgs): Options {
  const tags: Record<string, string> = {};
  for (const tag of args['s3-tag'] ?? []) {
    const eq = String(tag).indexOf('=');
    if (eq < 1) throw usageError(`option --s3-tag must be KEY=VALUE, got ${tag}`);
    tags[String(tag).slice(0, eq)] = String(tag).slice(eq + 1);
  }
  const opts: Options = {
    out: args.out,
    limit: args.limit,
    concurrency: args.concurrency,
    via: args.via,
    model: args.model,
    onMarketError: args['on-market-error'],
    maxRetries: args['max-retries'],
    retryDelay: args['retry-delay'],
    maxRetryAfter: args['max-retry-after'],
    maxRateLimitWait: args['max-rate-limit-wait'],
    requestTimeout: args['request-timeout'],
    csvEscapeFormulas: args['csv-escape-formulas'],
    s3PartSize: Math.round(args['s3-part-size'] * MiB),
    s3QueueSize: args['s3-queue-size'],
    s3Tags: tags,
  };
  // Flags without a default are left out when absent (exactOptionalPropertyTypes).
  const optional = {
    query: args.query,
    maxItems: args['max-items'],
    markets: args.market?.map(String),
    format: args.format,
    parquetRowGroupRows: args['parquet-row-group'],
    columns: args.columns?.map(String),
    gzip: args.gzip,
    dedupe: args.dedupe,
    manifest: args.manifest,
    apiUrl: args['api-url'],
    accountsUrl: args['accounts-url'],
    rejects: args.rejects,
    maxRejects: args['max-rejects'],
    s3Endpoint: args['s3-endpoint'],
    s3ForcePathStyle: args['s3-force-path-style'],
    s3Region: args['s3-region'],
    s3Sse: args['s3-sse'],
    s3SseKmsKeyId: args['s3-sse-kms-key-id'],
    s3StorageClass: args['s3-storage-class'],
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (opts as Record<string, unknown>)[key] = value;
  }
  if (args['s3-part-size'] < 5)
    throw usageError(`option --s3-part-size must be at least 5 (MiB), got ${args['s3-part-size']}`);
  return opts;
}

async function newReleases(args: PullArgs): Promise<void> {
  const controller = new AbortController();
  installExitHandlers(controller);
  const stats = createStats();
  try {
    const env = loadEnvFile(args['env-file']);
    const json = args['log-format'] === 'json';
    const progress =
      args.progress ??
      (process.stderr.isTTY === true && !args.quiet && !json && !isCi(process.env));
    const onEvent = (event: RunEvent) => {
      if (json) log(`${JSON.stringify(event)}\n`);
      else if (!args.quiet) log(`${progress ? CLEAR_LINE : ''}${describeEvent(event)}\n`);
    };
    const stopProgress = startProgress(stats, progress);
    const report = await run(toOptions(args), {
      signal: controller.signal,
      env,
      onEvent,
      stats,
    }).finally(stopProgress);
    if (args['log-format'] === 'json') {
      log(`${JSON.stringify({ event: 'report', ok: true, ...report })}\n`);
    } else if (!args.quiet) {
      log(`${summary(report)}\n`);
    }
    if (report.marketsFailed.length > 0) {
      log(
        `${NAME}: error: ${report.marketsFailed.length} market(s) failed and were skipped: ${report.marketsFailed.map((f) => f.market).join(', ')}\n`,
      );
      process.exitCode = ExitStatus.partial;
    }
  } catch (error) {
    const err = toSpotifyBatchError(error);
    if (err.code === 'ERR_INTERRUPTED') {
      // Say what the stop left behind: staged outputs are gone, stdout cannot take bytes back.
      const toStdout = args.out === '-' && args.model !== 'star';
      err.message += !toStdout
        ? '; nothing was published'
        : stats.bytes > 0
          ? `; stdout had already received ${humanBytes(stats.bytes)}`
          : '; nothing was written';
    }
    if (args['log-format'] === 'json') {
      log(
        `${JSON.stringify({ event: 'report', ok: false, code: err.code, exitStatus: err.exitStatus, message: err.message, context: err.context })}\n`,
      );
    }
    fail(error, args.debug);
  }
}

async function emulator(args: {
  port: number;
  host: string;
  albums: number;
  seed: number;
  'token-ttl': number;
  latency: number;
  jitter: number;
  'dev-mode': boolean;
  'omit-total': boolean;
  prerender: boolean;
  fault: string[] | undefined;
}): Promise<void> {
  let faults: ReturnType<typeof parseFault>[] = [];
  try {
    faults = (args.fault ?? []).map(parseFault);
  } catch (error) {
    fail(usageError(`option --fault: ${(error as Error).message}`), false);
  }
  const server = await startEmulator({
    port: args.port,
    host: args.host,
    albums: args.albums,
    seed: args.seed,
    tokenTtl: args['token-ttl'],
    latencyMs: args.latency,
    latencyJitterMs: args.jitter,
    devMode: args['dev-mode'],
    omitTotal: args['omit-total'],
    cachePages: true,
    faults,
    prerender: args.prerender,
  }).catch((error: unknown) =>
    fail(new SpotifyBatchError('ERR_CONFIG', `emulator: ${(error as Error).message}`), false),
  );
  process.stdout.write(
    `${JSON.stringify({ url: server.url, clientId: server.clientId, clientSecret: server.clientSecret, albums: args.albums })}\n`,
  );
  log(
    `${NAME} emulator: listening on ${server.url}\n` +
      `  SPOTIFY_API_URL=${server.url} SPOTIFY_ACCOUNTS_URL=${server.url} ` +
      `SPOTIFY_CLIENT_ID=${server.clientId} SPOTIFY_CLIENT_SECRET=${server.clientSecret}\n`,
  );
  const stop = () => server.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/**
 * yargs reads a lone `-` after a flag as an unknown argument, not as the flag's value: `--out -`
 * (the documented way to say stdout) becomes `--out=-`, which it reads right.
 */
function dashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (const arg of argv) {
    const previous = out.at(-1);
    if (arg === '-' && previous?.startsWith('-') && previous !== '--' && !previous.includes('=')) {
      out[out.length - 1] = `${previous}=-`;
    } else {
      out.push(arg);
    }
  }
  return out;
}

await yargs(dashValues(hideBin(process.argv)))
  .scriptName(NAME)
  .usage(
    `$0 <command> [options]\n\nStream Spotify albums as one CSV row per (album, artist) to stdout, a file or S3.\nCredentials: SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (or CLIENT_ID / CLIENT_SECRET, or --env-file).`,
  )
  .command(
    'new-releases',
    'Pull the new-releases list (or a search) and write the CSV',
    (y) =>
      pullOptions(y)
        .example('$0 new-releases > albums.csv', 'CSV on stdout')
        .example('$0 new-releases --out albums.csv', 'atomic file: appears only when complete')
        .example(
          '$0 new-releases --out s3://my-bucket/spotify/album_details.csv',
          'multipart upload to S3',
        )
        .example(
          '$0 new-releases --via search --limit 10',
          'Development Mode apps (no new-releases since Feb 2026)',
        )
        .epilog(
          'Exit statuses: 0 ok, 1 internal error, 2 usage/configuration, 3 Spotify rejected the credentials, 4 Spotify API error, 5 destination (S3/file) error, 6 bad record, 7 some markets skipped (--on-market-error skip), 130 SIGINT, 143 SIGTERM.',
        ),
    (args) => newReleases(args as PullArgs),
  )
  .command(
    'emulator',
    'Run the local Spotify-compatible API (for offline runs and tests)',
    (y) =>
      y
        .option('port', { type: 'number', default: 0, describe: 'Port (0 = any free port)' })
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
        .option('albums', { type: 'number', default: 100, describe: 'Albums in the catalogue' })
        .option('seed', { type: 'number', default: 1, describe: 'Catalogue seed' })
        .option('token-ttl', {
          type: 'number',
          default: 3600,
          describe: 'Token lifetime (seconds)',
        })
        .option('latency', { type: 'number', default: 0, describe: 'Delay per API answer (ms)' })
        .option('jitter', { type: 'number', default: 0, describe: 'Extra random delay up to N ms' })
        .option('dev-mode', {
          type: 'boolean',
          default: false,
          describe: 'Act as a Development Mode app: 403 on new-releases, search limit 10',
        })
        .option('prerender', {
          type: 'boolean',
          default: false,
          describe: 'Render all new-releases pages (limit 50) before listening (benchmarks)',
        })
        .option('omit-total', {
          type: 'boolean',
          default: false,
          describe: 'Leave total out of pages',
        })
        .option('fault', {
          type: 'string',
          array: true,
          describe:
            'Inject faults: KIND[:every=N,offset=O,times=T,retryAfter=S|none,emptyBody] with KIND 429, 500, 502, 503, 504, 400, 403, 404, reset, truncate, expire-token',
        })
        .example(
          '$0 emulator --port 8080 --albums 1000 --fault 429:every=7 --fault reset:every=11',
          '',
        ),
    (args) => emulator(args as Parameters<typeof emulator>[0]),
  )
  .completion(
    'completion',
    'Print a bash/zsh completion script (spotify-batch completion >> ~/.bashrc)',
  )
  .demandCommand(1, 'name a command: new-releases or emulator')
  .strict()
  .help()
  .alias('help', 'h')
  .version()
  .wrap(Math.min(110, process.stdout.columns || 100))
  .fail((message, error, y) => {
    if (error) fail(error, process.argv.includes('--debug'));
    log(`${NAME}: error: ${message}\n${NAME}: run '${NAME} --help' for usage\n`);
    void y;
    process.exit(ExitStatus.usage);
  })
  .parseAsync();
