import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { RunEvent, RunStats } from '../core/stats.ts';

/** Buckets kept for the run over time: past this, neighbours merge and each spans twice as long. */
export const TIMELINE_BUCKETS = 600;
/** Pauses kept apart; past this, the two closest merge. */
export const TIMELINE_PAUSES = 200;
/** The first bucket width and the sampling period of the row counter, in ms. */
const FIRST_WIDTH_MS = 100;

/** One interval of the run, `at` seconds after it started, `seconds` long. */
export interface TimelineBucket {
  at: number;
  seconds: number;
  /** Spotify API requests sent in it (retries included, token requests not). */
  requests: number;
  /** Of which answered 429. */
  rateLimited: number;
  /** The most requests in flight at once during it. */
  inFlight: number;
  /** Rows produced in it (all outputs together). */
  rows: number;
}

export interface TimelineSnapshot {
  /** Seconds from the start to the end of the observation. */
  seconds: number;
  bucketSeconds: number;
  buckets: TimelineBucket[];
  /** Rate-limit pauses (Retry-After), seconds after the start; merged where they overlap. */
  pauses: { from: number; to: number }[];
  /** 429s answered without a usable Retry-After (a backoff of unknown length), in seconds. */
  backoffs: number[];
  requests: number;
}

interface UndiciRequest {
  origin?: unknown;
  path?: unknown;
}

/**
 * The run over time, in bounded memory: requests sent and in flight (from undici's diagnostics
 * channels, for the run's API only), 429 pauses (from the run's events) and rows (sampled from
 * the run's counters). Buckets start at 100 ms and double in width whenever there would be more
 * than {@link TIMELINE_BUCKETS}, so any run length costs the same.
 *
 * The channels are process-wide: a second run in the same process against the same API would
 * show in these request counts too (the CLI runs one).
 */
export class Timeline {
  readonly #api: string;
  readonly #stats: RunStats;
  readonly #t0: number;
  #width = FIRST_WIDTH_MS;
  readonly #requests: number[] = [];
  readonly #limited: number[] = [];
  readonly #inFlightMax: number[] = [];
  /** Rows produced by the end of each bucket (cumulative; -1 where not sampled). */
  readonly #rows: number[] = [];
  readonly #pauses: { from: number; to: number }[] = [];
  readonly #backoffs: number[] = [];
  readonly #open = new Set<object>();
  #total = 0;
  #end: number | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #onCreate = (message: unknown) => {
    const { request } = message as { request: UndiciRequest };
    if (!this.#mine(request)) return;
    this.#open.add(request);
    this.#total++;
    const i = this.#bucket();
    this.#requests[i] = (this.#requests[i] ?? 0) + 1;
    this.#inFlightMax[i] = Math.max(this.#inFlightMax[i] ?? 0, this.#open.size);
  };
  readonly #onHeaders = (message: unknown) => {
    const { request, response } = message as {
      request: object;
      response: { statusCode: number };
    };
    if (response.statusCode !== 429 || !this.#open.has(request)) return;
    const i = this.#bucket();
    this.#limited[i] = (this.#limited[i] ?? 0) + 1;
  };
  readonly #onDone = (message: unknown) => {
    this.#open.delete((message as { request: object }).request);
  };

  /** @param apiUrl the run's Web API base: only requests under `${apiUrl}/v1/` are counted. */
  constructor(apiUrl: string, stats: RunStats, now = performance.now()) {
    this.#api = `${apiUrl.replace(/\/+$/, '')}/v1/`;
    this.#stats = stats;
    this.#t0 = now;
    subscribe('undici:request:create', this.#onCreate);
    subscribe('undici:request:headers', this.#onHeaders);
    subscribe('undici:request:trailers', this.#onDone);
    subscribe('undici:request:error', this.#onDone);
    this.#timer = setInterval(() => this.#sample(), FIRST_WIDTH_MS).unref();
  }

  #mine(request: UndiciRequest): boolean {
    const origin = String(request.origin ?? '').replace(/\/+$/, '');
    return `${origin}${String(request.path ?? '')}`.startsWith(this.#api);
  }

  /** The bucket for now, merging neighbours first when the run outgrew the buckets. */
  #bucket(now = performance.now()): number {
    let i = Math.floor((now - this.#t0) / this.#width);
    while (i >= TIMELINE_BUCKETS) {
      this.#merge();
      i = Math.floor((now - this.#t0) / this.#width);
    }
    return Math.max(0, i);
  }

  #merge(): void {
    const halve = (list: number[], join: (a: number, b: number) => number, missing = 0) => {
      const merged: number[] = [];
      for (let i = 0; i < list.length; i += 2) {
        merged.push(join(list[i] ?? missing, list[i + 1] ?? missing));
      }
      list.length = 0;
      list.push(...merged);
    };
    halve(this.#requests, (a, b) => a + b);
    halve(this.#limited, (a, b) => a + b);
    halve(this.#inFlightMax, Math.max);
    // Cumulative: a merged bucket ends where its second half ended.
    halve(this.#rows, (a, b) => (b < 0 ? a : b), -1);
    this.#width *= 2;
  }

  #sample(now = performance.now()): void {
    const i = this.#bucket(now);
    this.#rows[i] = this.#stats.rows;
    this.#inFlightMax[i] = Math.max(this.#inFlightMax[i] ?? 0, this.#open.size);
  }

  /** Takes the run's events: a 429's Retry-After is a pause of every request. */
  event(e: RunEvent, now = performance.now()): void {
    if (e.event !== 'rate-limited') return;
    const at = (now - this.#t0) / 1000;
    if (e.retryAfter === null || e.retryAfter <= 0) {
      if (this.#backoffs.length < TIMELINE_PAUSES) this.#backoffs.push(at);
      return;
    }
    this.#addPause(at, at + e.retryAfter);
  }

  #addPause(from: number, to: number): void {
    const last = this.#pauses.at(-1);
    if (last !== undefined && from <= last.to) {
      last.to = Math.max(last.to, to);
      return;
    }
    this.#pauses.push({ from, to });
    if (this.#pauses.length > TIMELINE_PAUSES) {
      let closest = 0;
      for (let i = 1; i < this.#pauses.length - 1; i++) {
        const gap = (p: number) =>
          (this.#pauses[p + 1] as { from: number }).from - (this.#pauses[p] as { to: number }).to;
        if (gap(i) < gap(closest)) closest = i;
      }
      const [a, b] = this.#pauses.slice(closest, closest + 2) as [
        { from: number; to: number },
        { from: number; to: number },
      ];
      this.#pauses.splice(closest, 2, { from: a.from, to: Math.max(a.to, b.to) });
    }
  }

  /** Stops observing (idempotent); the snapshot covers the run up to now. */
  stop(now = performance.now()): void {
    if (this.#end !== undefined) return;
    this.#sample(now);
    this.#end = now;
    clearInterval(this.#timer);
    unsubscribe('undici:request:create', this.#onCreate);
    unsubscribe('undici:request:headers', this.#onHeaders);
    unsubscribe('undici:request:trailers', this.#onDone);
    unsubscribe('undici:request:error', this.#onDone);
    this.#open.clear();
  }

  snapshot(): TimelineSnapshot {
    const end = this.#end ?? performance.now();
    const count = Math.min(this.#bucket(end) + 1, TIMELINE_BUCKETS);
    const buckets: TimelineBucket[] = [];
    let rows = 0;
    const seconds = this.#width / 1000;
    for (let i = 0; i < count; i++) {
      const sampled = this.#rows[i];
      const upTo = sampled === undefined || sampled < 0 ? rows : sampled;
      buckets.push({
        at: Math.round(i * seconds * 1000) / 1000,
        seconds,
        requests: this.#requests[i] ?? 0,
        rateLimited: this.#limited[i] ?? 0,
        inFlight: this.#inFlightMax[i] ?? 0,
        rows: upTo - rows,
      });
      rows = upTo;
    }
    return {
      seconds: Math.round(end - this.#t0) / 1000,
      bucketSeconds: seconds,
      buckets,
      pauses: this.#pauses.map((p) => ({ ...p })),
      backoffs: [...this.#backoffs],
      requests: this.#total,
    };
  }
}
