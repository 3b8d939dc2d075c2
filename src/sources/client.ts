import pRetry from 'p-retry';
import { Agent, type Dispatcher, request } from 'undici';
import { SpotifyBatchError } from '../core/errors.ts';
import type { EventListener, RunStats } from '../core/stats.ts';
import { oneLine } from '../core/text.ts';
import { describe, TokenProvider } from './auth.ts';
import { parseJsonBody } from './parse.ts';
import { parseRetryAfter, Throttle, type Ticket } from './throttle.ts';

export interface ClientOptions {
  apiUrl: string;
  accountsUrl: string;
  clientId: string;
  clientSecret: string;
  concurrency: number;
  /** Requests per second never to exceed. @default Infinity (no cap: the limit is learned) */
  maxRate?: number | undefined;
  maxRetries: number;
  retryDelay: number;
  maxRetryAfter: number;
  maxRateLimitWait: number;
  requestTimeout: number;
  stats: RunStats;
  signal: AbortSignal;
  onEvent?: EventListener | undefined;
}

/**
 * Every Spotify request of a run goes through one client: one keep-alive connection pool, one
 * token, one rate-limit gate. `getJson` returns a fully parsed body or throws; transient failures
 * (network, truncated body, 429, 5xx, an expired token) are retried here, whole.
 */
export class SpotifyClient {
  readonly #options: ClientOptions;
  readonly #dispatcher: Agent;
  readonly #tokens: TokenProvider;
  readonly #throttle: Throttle;

  constructor(options: ClientOptions) {
    this.#options = options;
    const timeout = options.requestTimeout;
    this.#dispatcher = new Agent({
      connections: options.concurrency + 1,
      keepAliveTimeout: 30_000,
      connectTimeout: timeout,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    this.#tokens = new TokenProvider({ ...options, dispatcher: this.#dispatcher });
    this.#throttle = new Throttle({
      ...options,
      maxRate: options.maxRate ?? Number.POSITIVE_INFINITY,
    });
  }

  get apiUrl(): string {
    return this.#options.apiUrl;
  }

  /**
   * GET a JSON body. `caller` lets one consumer (a source that is destroyed early, e.g. after
   * `maxItems`) cancel its own requests while the client goes on serving others.
   */
  async getJson(
    url: string,
    offset?: number,
    caller?: AbortSignal,
    /** Given the text of the body that was returned (not of failed attempts). */
    onText?: (text: string) => void,
  ): Promise<unknown> {
    const { maxRetries, retryDelay, stats } = this.#options;
    const signal = caller ? AbortSignal.any([this.#options.signal, caller]) : this.#options.signal;
    let unauthorized = 0;
    let attempts = 0;
    let retryNow = 0;
    return pRetry(
      async () => {
        attempts++;
        // The token first (cached but for the first request and refreshes): the pacer times
        // a request from when it takes its ticket, so that is when it should go out.
        await this.#tokens.get();
        const ticket = await this.#throttle.acquire(signal);
        try {
          const body = await this.#attempt(
            url,
            offset,
            signal,
            ticket,
            () => ++unauthorized,
            onText,
          );
          this.#throttle.succeeded(ticket);
          return body;
        } finally {
          this.#throttle.release(ticket);
        }
      },
      {
        retries: maxRetries,
        minTimeout: retryDelay,
        maxTimeout: 30_000,
        factor: 2,
        randomize: true,
        signal,
        // A 429 with Retry-After already waits at the shared gate, and a 401 already got a new
        // token: neither should also back off or use up the retries meant for real failures.
        // `Retry-After: 0` says "now": one retry at once (the gate paces it); a second 0 for the
        // same request backs off like a missing header, so a server that always says 0 is not
        // hammered.
        shouldConsumeRetry: ({ error }) => {
          if (!(error instanceof SpotifyBatchError)) return true;
          const { retryAfter, status } = error.context;
          if (status === 401) return false;
          if (retryAfter === 0) return ++retryNow > 1;
          return !(retryAfter !== undefined && retryAfter > 0);
        },
        shouldRetry: ({ error, attemptNumber, retryDelay }) => {
          const retry = error instanceof SpotifyBatchError && error.retryable && !signal.aborted;
          if (retry) {
            stats.retries++;
            this.#options.onEvent?.({
              event: 'retry',
              url,
              offset: offset ?? null,
              attempt: attemptNumber,
              reason: error.message,
              delayMs: retryDelay,
            });
          }
          return retry;
        },
      },
    ).catch((error: unknown) => {
      // Only the final error says the retries are spent; retry lines name each attempt.
      // A new error: one failure can reach several requests (a token refresh they shared).
      if (error instanceof SpotifyBatchError && error.retryable && attempts > 1) {
        throw new SpotifyBatchError(
          error.code,
          `${error.message} (gave up after ${attempts} attempts)`,
          { cause: error, context: { ...error.context }, retryable: true },
        );
      }
      throw error;
    });
  }

  async #attempt(
    url: string,
    offset: number | undefined,
    signal: AbortSignal,
    ticket: Ticket,
    count401: () => number,
    onText?: (text: string) => void,
  ): Promise<unknown> {
    const token = await this.#tokens.get();
    const context = offset === undefined ? { url } : { url, offset };
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        dispatcher: this.#dispatcher,
        signal,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
    } catch (cause) {
      throw networkError(cause, url, context, signal);
    }
    const { statusCode: status, body } = response;
    if (status === 200) {
      try {
        return await parseJsonBody(body, onText);
      } catch (cause) {
        body.destroy();
        if (signal.aborted) throw cause;
        throw new SpotifyBatchError(
          'ERR_BAD_PAGE',
          `incomplete or invalid JSON from ${url}: ${describe(cause)}`,
          {
            cause,
            context: { ...context, status },
            retryable: true,
          },
        );
      }
    }
    // Always read error bodies: an unread body holds its connection (undici README).
    const text = await body.text().catch(() => '');
    const message = spotifyMessage(text);
    const where = `${new URL(url).pathname}${offset === undefined ? '' : ` (offset ${offset})`}`;
    if (status === 401) {
      this.#tokens.invalidate(token);
      throw new SpotifyBatchError(
        'ERR_AUTH',
        `Spotify answered 401 for ${where}: ${message ?? 'Unauthorized'}`,
        {
          context: { ...context, status },
          // A token can expire while requests are in flight, even twice in a long retry chain;
          // a third 401 for one request means fresh tokens are not accepted at all.
          retryable: count401() <= 2,
        },
      );
    }
    if (status === 429) {
      const retryAfter = parseRetryAfter(response.headers['retry-after']);
      if (spotifyReason(text) === 'QUOTA_EXCEEDED') throw quotaError(retryAfter, context);
      this.#throttle.rateLimited(ticket, retryAfter, url);
      const rate = this.#throttle.rate;
      this.#options.onEvent?.({
        event: 'rate-limited',
        url,
        retryAfter: retryAfter ?? null,
        concurrency: this.#options.concurrency,
        rate: Number.isFinite(rate) ? Math.round(rate * 100) / 100 : null,
      });
      throw new SpotifyBatchError('ERR_RATE_LIMIT', `Spotify rate limit (429) for ${where}`, {
        context:
          retryAfter === undefined ? { ...context, status } : { ...context, status, retryAfter },
        retryable: true,
      });
    }
    if (status === 403) {
      throw new SpotifyBatchError('ERR_SPOTIFY_FORBIDDEN', forbiddenMessage(where, message), {
        context: { ...context, status },
      });
    }
    const retryable = status >= 500 || status === 408;
    throw new SpotifyBatchError(
      'ERR_SPOTIFY_HTTP',
      isSpotifyError(text)
        ? `Spotify answered HTTP ${status} for ${where}${message ? `: ${message}` : ''}`
        : foreignAnswer(status, url, offset, text),
      { context: { ...context, status }, retryable },
    );
  }

  async close(): Promise<void> {
    await this.#dispatcher.destroy();
  }
}

/** `reason` of Spotify's error body (`QUOTA_EXCEEDED` since July 2026), if any. */
function spotifyReason(text: string): string | undefined {
  try {
    const reason = (JSON.parse(text) as { error?: { reason?: unknown } }).error?.reason;
    return typeof reason === 'string' ? reason : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Spotify's daily quota (Development Mode, per developer account and shared by all its apps) is
 * spent: waiting is hours, not a retry. Say so, and what to do.
 */
function quotaError(retryAfter: number | undefined, context: { url: string }): SpotifyBatchError {
  const hours = retryAfter === undefined ? undefined : retryAfter / 3600;
  const when =
    hours === undefined
      ? 'Spotify did not say when it resets'
      : `it resets in about ${hours < 1 ? `${Math.ceil((retryAfter as number) / 60)} minutes` : `${hours.toFixed(1)} hours`} (Retry-After ${retryAfter} s)`;
  return new SpotifyBatchError(
    'ERR_RATE_LIMIT',
    `Spotify's daily request quota is used up (429 QUOTA_EXCEEDED): ${when}. The quota is per developer account, shared by all its Development Mode apps; wait, or use an app with Extended Quota`,
    {
      context: {
        ...context,
        status: 429,
        ...(retryAfter === undefined ? {} : { retryAfter }),
      },
    },
  );
}

function networkError(
  cause: unknown,
  url: string,
  context: { url: string },
  signal: AbortSignal,
): unknown {
  if (signal.aborted) return cause;
  const code = (cause as { code?: unknown }).code;
  // A host that does not resolve will not start resolving within our retries, and a closed
  // client will not reopen.
  const retryable =
    code !== 'ENOTFOUND' && code !== 'ERR_INVALID_URL' && code !== 'UND_ERR_DESTROYED';
  return new SpotifyBatchError('ERR_NETWORK', `request to ${url} failed: ${describe(cause)}`, {
    cause,
    context,
    retryable,
  });
}

/**
 * Spotify's `{"error":{"status":..,"message":..}}`, an OAuth-style body, or the body's text, as
 * one short line ({@link oneLine}: whatever branch, a server's text reaches stderr cleaned).
 */
export function spotifyMessage(text: string): string | undefined {
  return oneLine(jsonMessage(text) ?? text) || undefined;
}

function jsonMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as {
      error?: unknown;
      error_description?: unknown;
      message?: unknown;
    };
    const error = body.error;
    if (
      error &&
      typeof error === 'object' &&
      typeof (error as { message?: unknown }).message === 'string'
    ) {
      return (error as { message: string }).message;
    }
    if (typeof body.error_description === 'string') return body.error_description;
    if (typeof error === 'string') return error;
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON: the text itself
  }
  return undefined;
}

/** A body in Spotify's JSON error shape (or any JSON): what the Web API answers with. */
function isSpotifyError(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return text.trim() === '';
  }
}

/**
 * An error answer that is not the Web API's JSON (an XML or HTML page: a proxy, a bucket, a
 * wrong --api-url): one line with the status, the URL and a short excerpt of the body's text.
 */
function foreignAnswer(status: number, url: string, offset: number | undefined, text: string) {
  const excerpt = oneLine(text.replace(/<[^>]*>/g, ' '), 80);
  // A 5xx page may come from Spotify's own front servers; a 4xx page is not Spotify's.
  const hint = status < 500 ? ', not a Spotify API answer (is --api-url right?)' : '';
  return `HTTP ${status} from ${url}${offset === undefined ? '' : ` (offset ${offset})`}${hint}${excerpt ? `: "${excerpt}"` : ''}`;
}

function forbiddenMessage(where: string, message: string | undefined): string {
  const said = `Spotify answered 403 for ${where}: ${message ?? 'Forbidden'}.`;
  if (where.startsWith('/v1/browse/new-releases')) {
    return `${said} Since February 2026 Spotify apps in Development Mode cannot call new-releases (and need an owner with Premium); use an app with Extended Quota Mode, or pull from search with --via search.`;
  }
  return `${said} Check that the app may call this endpoint.`;
}
