import { usageError } from '../errors.ts';
import { DEFAULTS, nonEmpty, type Options, parseDestination, type Via } from '../options.ts';
import { baseUrl, choice, integer, refuseEmpty, unbounded } from './checks.ts';

/** Where the albums come from: Spotify (which list, how far, as whom) or saved files. */
export interface SourceConfig {
  via: Via;
  query: string;
  limit: number;
  /** Stop after this many albums; `Infinity` for all. */
  maxItems: number;
  /** Replay inputs; empty for a live pull. */
  from: string[];
  spotify: SpotifyAccess;
}

/** Spotify's endpoints and the app's credentials (empty for a replay, which calls no API). */
export interface SpotifyAccess {
  apiUrl: string;
  accountsUrl: string;
  clientId: string;
  clientSecret: string;
}

export function normalizeSource(
  options: Pick<
    Options,
    | 'via'
    | 'query'
    | 'limit'
    | 'maxItems'
    | 'from'
    | 'apiUrl'
    | 'accountsUrl'
    | 'clientId'
    | 'clientSecret'
  >,
  env: NodeJS.ProcessEnv,
): SourceConfig {
  refuseEmpty([
    ['--query', options.query],
    ['--api-url', options.apiUrl],
    ['--accounts-url', options.accountsUrl],
  ]);
  const from = options.from ?? [];
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
  const via = choice('--via', options.via, ['new-releases', 'search'] as const) ?? DEFAULTS.via;
  if (options.query !== undefined && via !== 'search') {
    throw usageError('option --query needs --via search');
  }
  return {
    via,
    query: nonEmpty(options.query) ?? DEFAULTS.query,
    limit: integer('limit', options.limit, DEFAULTS.limit, 1, 50),
    maxItems: unbounded('max-items', options.maxItems, 1),
    from,
    spotify: {
      apiUrl: baseUrl('api-url', nonEmpty(options.apiUrl, env.SPOTIFY_API_URL) ?? DEFAULTS.apiUrl),
      accountsUrl: baseUrl(
        'accounts-url',
        nonEmpty(options.accountsUrl, env.SPOTIFY_ACCOUNTS_URL) ?? DEFAULTS.accountsUrl,
      ),
      clientId: nonEmpty(options.clientId, env.SPOTIFY_CLIENT_ID, env.CLIENT_ID) ?? '',
      clientSecret:
        nonEmpty(options.clientSecret, env.SPOTIFY_CLIENT_SECRET, env.CLIENT_SECRET) ?? '',
    },
  };
}

/** A live pull needs both credentials; a replay calls no API. */
export function requireCredentials({ from, spotify }: SourceConfig): void {
  if (from.length > 0 || (spotify.clientId && spotify.clientSecret)) return;
  const missing = [
    ...(spotify.clientId ? [] : ['SPOTIFY_CLIENT_ID']),
    ...(spotify.clientSecret ? [] : ['SPOTIFY_CLIENT_SECRET']),
  ];
  throw usageError(
    `missing Spotify credentials: set ${missing.join(' and ')} (or pass --env-file FILE)`,
  );
}
