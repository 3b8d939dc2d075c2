import { DEFAULTS, type Options } from '../options.ts';
import { aboveZero, integer, positive } from './checks.ts';

/** How hard the run asks Spotify: requests in flight, retries, waits and the rate cap. */
export interface PacingConfig {
  concurrency: number;
  maxRetries: number;
  retryDelay: number;
  maxRetryAfter: number;
  maxRateLimitWait: number;
  /** Requests per second; `Infinity` for no cap. */
  maxRate: number;
  requestTimeout: number;
}

export function normalizePacing(options: Pick<Options, keyof PacingConfig>): PacingConfig {
  return {
    concurrency: integer('concurrency', options.concurrency, DEFAULTS.concurrency, 1, 64),
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
  };
}
