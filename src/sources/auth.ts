import { type Dispatcher, request } from 'undici';
import { SpotifyBatchError } from '../core/errors.ts';
import type { RunStats } from '../core/stats.ts';
import { oneLine } from '../core/text.ts';

export interface TokenProviderOptions {
  accountsUrl: string;
  clientId: string;
  clientSecret: string;
  dispatcher: Dispatcher;
  stats: RunStats;
  signal: AbortSignal;
}

interface Token {
  value: string;
  /** Epoch ms after which the token is not used any more (expiry minus a safety margin). */
  refreshAt: number;
}

/**
 * Client-credentials token cache. One refresh at a time: concurrent callers share the promise
 * of the refresh in progress, so a burst of 401s costs one token request, not one each.
 */
export class TokenProvider {
  readonly #options: TokenProviderOptions;
  #token: Token | undefined;
  #refreshing: Promise<Token> | undefined;

  constructor(options: TokenProviderOptions) {
    this.#options = options;
  }

  /** A token valid for at least the margin; fetched if none is cached or it is about to expire. */
  async get(): Promise<string> {
    const token = this.#token;
    if (token && Date.now() < token.refreshAt) return token.value;
    return (await this.#refresh()).value;
  }

  /** Called on a 401: drops `rejected` unless a newer token already replaced it. */
  invalidate(rejected: string): void {
    if (this.#token?.value === rejected) this.#token = undefined;
  }

  #refresh(): Promise<Token> {
    this.#refreshing ??= this.#fetch().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #fetch(): Promise<Token> {
    const { accountsUrl, clientId, clientSecret, dispatcher, stats, signal } = this.#options;
    const url = `${accountsUrl}/api/token`;
    const basic = Buffer.from(`${clientId}:${clientSecret}`).toString('base64');
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        dispatcher,
        method: 'POST',
        signal,
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
    } catch (cause) {
      if (signal.aborted) throw cause;
      throw new SpotifyBatchError(
        'ERR_NETWORK',
        `cannot reach Spotify accounts at ${url}: ${describe(cause)}`,
        {
          cause,
          context: { url },
          retryable: true,
        },
      );
    }
    const text = await response.body.text();
    const status = response.statusCode;
    const body = parseJson(text);
    if (status === 200 && typeof body?.access_token === 'string') {
      stats.tokens++;
      const ttlMs = (typeof body.expires_in === 'number' ? body.expires_in : 3600) * 1000;
      // Refresh ahead of expiry: a minute for real tokens, a tenth of the TTL for short ones
      // (tests and emulators hand out tokens that live for seconds).
      const margin = Math.min(60_000, ttlMs / 10);
      const token = { value: body.access_token, refreshAt: Date.now() + ttlMs - margin };
      this.#token = token;
      return token;
    }
    const detail = oneLine(
      [body?.error, body?.error_description].filter((v) => typeof v === 'string').join(': '),
    );
    if (status === 400 || status === 401) {
      throw new SpotifyBatchError(
        'ERR_AUTH',
        `Spotify rejected the client id/secret (${detail || `HTTP ${status}`}): check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET`,
        { context: { url, status } },
      );
    }
    throw new SpotifyBatchError(
      'ERR_SPOTIFY_HTTP',
      `Spotify accounts answered HTTP ${status} for ${url}${detail ? `: ${detail}` : ''}`,
      {
        context: { url, status },
        retryable: status === 429 || status >= 500,
      },
    );
  }
}

// biome-ignore lint/suspicious/noExplicitAny: an OAuth body is checked field by field above.
function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
