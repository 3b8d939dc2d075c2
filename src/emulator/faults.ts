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
