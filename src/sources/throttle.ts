import { setTimeout as sleep } from 'node:timers/promises';
import { SpotifyBatchError } from '../core/errors.ts';
import type { RunStats } from '../core/stats.ts';

export interface ThrottleOptions {
  /** Upper bound of requests in flight; the adaptive limit never exceeds it. */
  concurrency: number;
  /** Longest single Retry-After honoured, in seconds. */
  maxRetryAfter: number;
  /** Total seconds the run may be paused by rate limits. */
  maxRateLimitWait: number;
  stats: RunStats;
  signal: AbortSignal;
}

/**
 * The one gate every Spotify request passes. Spotify rate-limits per app, so a 429 is about all
 * of our requests, not the one that got it: a Retry-After pauses everybody, and the in-flight
 * limit adapts (AIMD: halve on 429, +1 per window of successes, never above `concurrency`).
 */
export class Throttle {
  readonly #options: ThrottleOptions;
  #limit: number;
  #inFlight = 0;
  #pausedUntil = 0;
  #lastDecrease = 0;
  #waiters: (() => void)[] = [];

  constructor(options: ThrottleOptions) {
    this.#options = options;
    this.#limit = options.concurrency;
  }

  /** Current adaptive in-flight limit (for reports and tests). */
  get limit(): number {
    return Math.floor(this.#limit);
  }

  /**
   * Waits for the pause to pass and a free slot; the caller must `release()` afterwards.
   * `signal` (the run's, or one caller's) ends the wait.
   */
  async acquire(signal: AbortSignal = this.#options.signal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const pause = this.#pausedUntil - Date.now();
      if (pause > 0) {
        await sleep(pause, undefined, { signal });
        continue;
      }
      if (this.#inFlight < Math.floor(this.#limit)) {
        this.#inFlight++;
        return;
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        // An aborted waiter leaves the queue, so a later release() wakes someone still waiting.
        const onAbort = () => {
          this.#waiters = this.#waiters.filter((w) => w !== wake);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.#waiters.push(wake);
      });
    }
  }

  release(): void {
    this.#inFlight--;
    this.#waiters.shift()?.();
  }

  succeeded(): void {
    const before = Math.floor(this.#limit);
    this.#limit = Math.min(this.#options.concurrency, this.#limit + 1 / this.#limit);
    if (Math.floor(this.#limit) > before) this.#waiters.shift()?.();
  }

  /**
   * Records a 429. With a positive Retry-After every request waits that long; without one (or 0)
   * the caller falls back to its own backoff. Throws when Spotify asks for more than we allow.
   */
  rateLimited(retryAfterSeconds: number | undefined, url: string): void {
    const { stats, maxRetryAfter, maxRateLimitWait } = this.#options;
    stats.rateLimited++;
    const now = Date.now();
    // Concurrent requests often get 429 from the same window: halve once per second, not per answer.
    if (now - this.#lastDecrease > 1000) {
      this.#limit = Math.max(1, this.#limit / 2);
      this.#lastDecrease = now;
    }
    if (retryAfterSeconds === undefined || retryAfterSeconds <= 0) return;
    if (retryAfterSeconds > maxRetryAfter) {
      throw new SpotifyBatchError(
        'ERR_RATE_LIMIT',
        `Spotify rate limit: asked to wait ${retryAfterSeconds} s (Retry-After), more than --max-retry-after ${maxRetryAfter} s`,
        { context: { url, status: 429, retryAfter: retryAfterSeconds } },
      );
    }
    const until = now + retryAfterSeconds * 1000;
    const added = until - Math.max(now, this.#pausedUntil);
    if (added <= 0) return;
    if (stats.rateLimitWaitMs + added > maxRateLimitWait * 1000) {
      throw new SpotifyBatchError(
        'ERR_RATE_LIMIT',
        `Spotify rate limit: waiting ${retryAfterSeconds} s more would exceed --max-rate-limit-wait ${maxRateLimitWait} s in total`,
        { context: { url, status: 429, retryAfter: retryAfterSeconds } },
      );
    }
    stats.rateLimitWaitMs += added;
    this.#pausedUntil = until;
  }
}

/** Retry-After in seconds (delta-seconds or an HTTP date), or undefined when absent/unusable. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now = Date.now(),
): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(raw)) return Number(raw);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}
