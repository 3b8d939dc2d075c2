import type { Argv } from 'yargs';
import { usageError } from '../core/errors.ts';
import { parseMarkets } from '../core/markets.ts';
import { wholeNumber } from '../core/options.ts';
import { parseFault, parseRateLimit } from '../emulator/faults.ts';
import { startEmulator } from '../emulator/server.ts';
import { examples, NAME } from './output.ts';

/** Read as typed (number parsing is off in src/cli/main.ts): see src/cli/flags.ts. */
const number = (describe: string) => ({ requiresArg: true, describe }) as const;

export const emulatorOptions = (y: Argv) =>
  y
    .option('port', number('Port, 0..65535 (0 = any free port) [default: 0]'))
    .option('host', {
      type: 'string',
      requiresArg: true,
      describe: 'Address to listen on [default: 127.0.0.1]',
    })
    .option('albums', number('Albums in the catalogue (0 for an empty list) [default: 100]'))
    .option('seed', number('Catalogue seed [default: 1]'))
    .option('token-ttl', number('Token lifetime in seconds [default: 3600]'))
    .option('latency', number('Delay per API answer in ms [default: 0]'))
    .option('jitter', number('Extra random delay up to N ms [default: 0]'))
    .option(
      'malformed',
      number(
        'Serve N albums without a name, spread over the catalogue (to try --rejects) [default: 0]',
      ),
    )
    .option('empty-market', {
      type: 'string',
      array: true,
      describe: 'Markets whose list is empty (repeat or comma list)',
    })
    .option('empty-query', {
      type: 'string',
      array: true,
      describe: 'Search queries (q) that match nothing',
    })
    .option('dev-mode', {
      type: 'boolean',
      describe: 'Act as a Development Mode app: 403 on new-releases, search limit 10',
    })
    .option('prerender', {
      type: 'boolean',
      describe: 'Render all new-releases pages (limit 50) before listening (benchmarks)',
    })
    .option('omit-total', { type: 'boolean', describe: 'Leave total out of pages' })
    .option('fault', {
      type: 'string',
      array: true,
      describe:
        'Inject faults: KIND[:every=N,offset=O,market=M,times=T,retryAfter=S|none,emptyBody] with KIND 429, quota, 500, 502, 503, 504, 400, 403, 404, reset, truncate, expire-token',
    })
    .option('rate-limit', {
      type: 'string',
      array: true,
      describe:
        "Spotify's rate limit as a rolling window: COUNT/SECONDS[:after=N,retryAfter=S] answers at most COUNT requests in any SECONDS, the rest 429 with Retry-After (default: seconds until the window has room); repeat with after=N (requests arrived) to change it mid-run",
    })
    .epilog(
      examples([
        [
          ['$0 emulator --port 8080 --albums 1000', '--fault 429:every=7 --fault reset:every=11'],
          'a flaky API on a fixed port',
        ],
        ['$0 emulator --malformed 3', 'three bad albums, for --rejects'],
        [
          '$0 emulator --rate-limit 100/30 --rate-limit 50/30:after=300',
          '100 requests per rolling 30 s, halved after 300 requests',
        ],
      ]),
    );

export type EmulatorArgs = Awaited<ReturnType<typeof emulatorOptions>['argv']>;

function inRange(flag: string, raw: unknown, min: number, max: number) {
  const n = wholeNumber(`option --${flag}`, raw === undefined ? undefined : String(raw));
  if (n !== undefined && (n < min || n > max)) {
    throw usageError(`option --${flag} must be ${min}..${max}, got ${n}`);
  }
  return n;
}

/** Starts the emulator and keeps it up until SIGINT/SIGTERM; prints its URL and credentials. */
export async function runEmulator(args: EmulatorArgs): Promise<void> {
  const albums = inRange('albums', args.albums, 0, 10_000_000) ?? 100;
  const malformed = inRange('malformed', args.malformed, 0, albums) ?? 0;
  let faults: ReturnType<typeof parseFault>[];
  try {
    faults = (args.fault ?? []).map(parseFault);
  } catch (error) {
    throw usageError(`option --fault: ${(error as Error).message}`);
  }
  let rateLimit: ReturnType<typeof parseRateLimit>[];
  try {
    rateLimit = (args['rate-limit'] ?? []).map(parseRateLimit);
  } catch (error) {
    throw usageError(`option --rate-limit: ${(error as Error).message}`);
  }
  const server = await startEmulator({
    port: inRange('port', args.port, 0, 65_535) ?? 0,
    host: args.host ?? '127.0.0.1',
    albums,
    seed:
      wholeNumber('option --seed', args.seed === undefined ? undefined : String(args.seed)) ?? 1,
    tokenTtl: inRange('token-ttl', args['token-ttl'], 1, 86_400) ?? 3600,
    latencyMs: inRange('latency', args.latency, 0, 600_000) ?? 0,
    latencyJitterMs: inRange('jitter', args.jitter, 0, 600_000) ?? 0,
    devMode: args['dev-mode'] ?? false,
    omitTotal: args['omit-total'] ?? false,
    cachePages: true,
    faults,
    rateLimit,
    prerender: args.prerender ?? false,
    // Spread evenly, so the bad albums land on several pages.
    malformed: Array.from({ length: malformed }, (_, i) => Math.floor((i * albums) / malformed)),
    emptyMarkets: parseMarkets(args['empty-market'] ?? [], '--empty-market'),
    emptyQueries: (args['empty-query'] ?? []).map(String),
  }).catch((error: unknown) => {
    throw usageError(`emulator: ${(error as Error).message}`);
  });
  process.stdout.write(
    `${JSON.stringify({ url: server.url, clientId: server.clientId, clientSecret: server.clientSecret, albums })}\n`,
  );
  process.stderr.write(
    `${NAME} emulator: listening on ${server.url}\n` +
      `  SPOTIFY_API_URL=${server.url} SPOTIFY_ACCOUNTS_URL=${server.url} ` +
      `SPOTIFY_CLIENT_ID=${server.clientId} SPOTIFY_CLIENT_SECRET=${server.clientSecret}\n`,
  );
  const stop = () => server.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
