/**
 * Fault injection for the emulator, deterministic so tests can count on it. A rule fires on
 * API requests (not token requests) that match it: every `every`-th request, only at `offset`
 * if given, at most `times` times.
 */

export const FAULT_KINDS = [
  '429',
  'quota',
  '500',
  '502',
  '503',
  '504',
  '400',
  '403',
  '404',
  'reset',
  'truncate',
  'expire-token',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRule {
  kind: FaultKind;
  /** Fire on every n-th matching request (1 = all of them). @default 1 */
  every?: number;
  /** Only requests for this page offset. */
  offset?: number;
  /** Only requests for this market (new-releases' `country`, search's `market`). */
  market?: string;
  /** Fire at most this many times. @default unlimited */
  times?: number;
  /** 429 and quota: the Retry-After header value; `null` sends none. @default '1' (quota: '48925') */
  retryAfter?: string | null;
  /** 429 only: answer with an empty body instead of Spotify's JSON error. */
  emptyBody?: boolean;
}

/** Parses `kind[:key=value,...]`, e.g. `429:every=5,retryAfter=0`, `500:offset=100,market=SE`. */
export function parseFault(spec: string): FaultRule {
  const [kind, params = ''] = spec.split(':', 2) as [string, string?];
  if (!(FAULT_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`unknown fault kind ${JSON.stringify(kind)}; one of ${FAULT_KINDS.join(', ')}`);
  }
  const rule: FaultRule = { kind: kind as FaultKind };
  for (const pair of params.split(',').filter(Boolean)) {
    const [key, value = ''] = pair.split('=', 2) as [string, string?];
    switch (key) {
      case 'every':
      case 'offset':
      case 'times': {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0)
          throw new Error(`fault ${spec}: ${key} must be an integer >= 0`);
        rule[key] = n;
        break;
      }
      case 'market':
        rule.market = value.toUpperCase();
        break;
      case 'retryAfter':
        rule.retryAfter = value === 'none' ? null : value;
        break;
      case 'emptyBody':
        rule.emptyBody = value !== 'false';
        break;
      default:
        throw new Error(`fault ${spec}: unknown parameter ${key}`);
    }
  }
  return rule;
}

/** Tracks how often each rule matched and fired; `pick` returns the rule to apply, if any. */
export class FaultPlan {
  readonly #rules: FaultRule[];
  readonly #matched: number[];
  readonly #fired: number[];

  constructor(rules: FaultRule[]) {
    this.#rules = rules;
    this.#matched = rules.map(() => 0);
    this.#fired = rules.map(() => 0);
  }

  pick(offset: number, market?: string): FaultRule | undefined {
    let chosen: FaultRule | undefined;
    this.#rules.forEach((rule, i) => {
      if (rule.offset !== undefined && rule.offset !== offset) return;
      if (rule.market !== undefined && rule.market !== market) return;
      const matched = ++(this.#matched[i] as number);
      if (chosen || matched % (rule.every ?? 1) !== 0) return;
      if (rule.times !== undefined && (this.#fired[i] as number) >= rule.times) return;
      (this.#fired[i] as number)++;
      chosen = rule;
    });
    return chosen;
  }

  get fired(): number {
    return this.#fired.reduce((a, b) => a + b, 0);
  }
}

/**
 * Spotify's rate limit as the emulator enforces it: at most `count` API requests answered in any
 * rolling window of `windowSeconds`; the requests beyond get 429 and do not count. Spotify's own
 * numbers are unpublished (per app, rolling 30 s window).
 */
export interface RateLimit {
  /** Requests answered per window. */
  count: number;
  /** The window's length in seconds. @default 30 */
  windowSeconds: number;
  /**
   * Retry-After sent with the 429, in seconds. @default the whole seconds until the window has
   * room again (at least 1), as a limiter that knows its window would answer
   */
  retryAfter?: number;
  /**
   * Takes over from the previous limit once this many API requests have arrived (so a limit can
   * change mid-run, e.g. halve). @default 0
   */
  after?: number;
}

/** Parses `COUNT/SECONDS[:after=N,retryAfter=S]`, e.g. `100/30`, `5/1:after=120`, `10/1:retryAfter=1`. */
export function parseRateLimit(spec: string): RateLimit {
  const [limit = '', params = ''] = spec.split(':', 2) as [string, string?];
  const match = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(limit.trim());
  const count = Number(match?.[1]);
  const windowSeconds = Number(match?.[2]);
  if (!match || count < 1 || windowSeconds <= 0) {
    throw new Error(
      `rate limit ${JSON.stringify(spec)}: expected COUNT/SECONDS with COUNT >= 1 and SECONDS > 0, e.g. 100/30`,
    );
  }
  const rule: RateLimit = { count, windowSeconds };
  for (const pair of params.split(',').filter(Boolean)) {
    const [key, value = ''] = pair.split('=', 2) as [string, string?];
    const n = Number(value);
    if (key === 'after' && /^\d+$/.test(value)) rule.after = n;
    else if (key === 'retryAfter' && /^\d+$/.test(value)) rule.retryAfter = n;
    else if (key === 'after' || key === 'retryAfter') {
      throw new Error(
        `rate limit ${spec}: ${key} must be an integer >= 0, got ${JSON.stringify(value)}`,
      );
    } else throw new Error(`rate limit ${spec}: unknown parameter ${key}`);
  }
  return rule;
}

/**
 * A rolling-window limiter (a sliding log of the answered requests' arrival times). Limits apply
 * in the order given, each from its `after`-th request on; a request it refuses is not counted.
 */
export class RateWindow {
  readonly #limits: RateLimit[];
  /** Arrival times (ms) of the requests let through, oldest first. */
  readonly #log: number[] = [];
  #head = 0;
  #arrived = 0;

  constructor(limits: RateLimit[]) {
    for (const limit of limits) {
      if (!Number.isInteger(limit.count) || limit.count < 1 || !(limit.windowSeconds > 0)) {
        throw new RangeError(
          `emulator rate limit must have count >= 1 and windowSeconds > 0, got ${limit.count}/${limit.windowSeconds}`,
        );
      }
    }
    this.#limits = [...limits].sort((a, b) => (a.after ?? 0) - (b.after ?? 0));
  }

  /** The limit in force for the next request, if any. */
  get current(): RateLimit | undefined {
    let current: RateLimit | undefined;
    for (const limit of this.#limits) if ((limit.after ?? 0) <= this.#arrived) current = limit;
    return current;
  }

  /**
   * Counts an arriving request at `now` (ms); returns undefined to let it through, or the
   * Retry-After (seconds) to refuse it with.
   */
  admit(now: number): number | undefined {
    const limit = this.current;
    this.#arrived++;
    if (limit === undefined) return undefined;
    const windowMs = limit.windowSeconds * 1000;
    while (this.#head < this.#log.length && (this.#log[this.#head] as number) <= now - windowMs) {
      this.#head++;
    }
    if (this.#head > 4096) {
      this.#log.splice(0, this.#head);
      this.#head = 0;
    }
    const inWindow = this.#log.length - this.#head;
    if (inWindow < limit.count) {
      this.#log.push(now);
      return undefined;
    }
    if (limit.retryAfter !== undefined) return limit.retryAfter;
    // Room comes when enough of the oldest requests leave (after a limit halved, more than one).
    const leaving = this.#log[this.#head + inWindow - limit.count] as number;
    return Math.max(1, Math.ceil((leaving + windowMs - now) / 1000));
  }
}
