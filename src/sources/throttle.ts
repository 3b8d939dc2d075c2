import { setTimeout as sleep } from 'node:timers/promises';
import { SpotifyBatchError } from '../core/errors.ts';
import type { RunStats } from '../core/stats.ts';

/** One request as the pacer counts it. */
export interface Ticket {
  readonly id: number;
  /** When it was sent, in ms. */
  readonly at: number;
  /** A refused request (429) does not count in Spotify's window; any other one may. */
  state: 'pending' | 'ok' | 'refused' | 'failed';
}

/** What the pacer has learned of Spotify's window: `count` requests per `ms`. */
export interface LearnedWindow {
  count: number;
  ms: number;
}

/** How far back the first estimate looks: Spotify's documented window is 30 s. */
const HORIZON_MS = 30_000;
/** A probe shortens the learned window by this fraction (the rate rises by about as much). */
const PROBE_STEP = 0.03;
/**
 * Clean running before a probe: this many windows, and at least PROBE_MIN_MS, as a failed probe
 * costs a Retry-After pause (a second or more), a whole window when windows are short. Doubles
 * after each failed probe.
 */
const FIRST_PROBE_WINDOWS = 2;
const MAX_PROBE_WINDOWS = 64;
const PROBE_MIN_MS = 8_000;
/**
 * Retry-After is whole seconds, so the first estimate errs long by up to this much; by about the
 * burst's duration when Spotify's window is whole seconds. Until their first failure the probes
 * search that second in steps of half the burst (a whole window's rate is at stake when windows
 * are a second long).
 */
const RETRY_AFTER_GRAIN_MS = 1000;
/** The least a window that proved too short grows by. */
const STRETCH = 1.05;

/**
 * A learned copy of Spotify's rate-limit window, kept on our side so that requests wait here
 * instead of being refused there. Spotify allows each app some number of requests in a rolling
 * window (30 s; the numbers are unpublished); its 429 says the window is full, its Retry-After
 * when it will have room. The pacer lets everything through until the first 429, then:
 *
 * - **learns** the window from it: `count` = the requests Spotify took before it, `ms` = from
 *   the oldest of them to the end of the Retry-After; exact when the 429 ended a burst into an
 *   empty window, the usual start of a run (Retry-After is whole seconds: `ms` errs long by
 *   less than one);
 * - **keeps** every later request inside it (at most `count` sent in any `ms`), so a run goes at
 *   the limit's rate, in the bursts the window allows, instead of bouncing off it;
 * - **corrects** it on each later 429, once per congestion event (429s for requests sent before
 *   the last one arrived belong to it). If our window had room and Spotify took fewer since the
 *   last 429, never more, the limit fell: `count` becomes what it took, halving at most per
 *   429. If our window was full, Spotify's is longer: when nothing got through since the last
 *   429 (a Retry-After too short to empty it, e.g. always 1 s), long enough to hold our last
 *   `count` requests until after this Retry-After; otherwise 5 % longer. Refused twice running
 *   as the last request the window allows means one request fewer, not a longer window;
 * - **probes** upwards while requests succeed and the window is what holds them back: after two
 *   windows (and at least 8 s) of clean running it shortens `ms` by 3 %, remembering the window
 *   that worked; a 429 during a probe goes back to it and doubles the wait before the next
 *   probe (AIMD's additive increase, with the memory of the last good point TCP CUBIC keeps).
 *   When the first 429 ended a slow burst, the first probes search the second that rounding the
 *   Retry-After may have added, in steps of half the burst every two windows, until one fails;
 * - after each 429, sends **one** request to test the water and the others only once it got
 *   through, so a Retry-After too short costs one more 429, not one per request in flight.
 *
 * `maxRate` caps the rate from the first request on (evenly spaced sends). The pacer is pure and
 * driven by the clock it is given, so tests and simulations run it without waiting.
 */
export class Pacer {
  readonly #maxRate: number;
  readonly #sent: Ticket[] = [];
  #head = 0;
  #id = 0;
  #nextByCap = 0;
  #count = 0;
  #ms = 0;
  /** The window before the current probe; 0 when not probing. */
  #goodMs = 0;
  #probeWindows = FIRST_PROBE_WINDOWS;
  #probeMinMs = PROBE_MIN_MS;
  /** While > 0, the probes search the Retry-After's grain in steps of this many ms. */
  #searchStepMs = 0;
  #searchHalved = false;
  #changedAt = 0;
  /** The learned window held a request back since the last change: probing has a point. */
  #held = false;
  /** The last request sent before the last 429 arrived: 429s up to it belong to that event. */
  #eventId = 0;
  /** Requests sent before this id were counted into `count` at the last estimate. */
  #estimatedBefore = 0;
  #acceptedSinceEvent = 0;
  /** The last 429 came as the last request our window allowed. */
  #refusedAtEdge = false;
  /** After a 429, until a request sent after it succeeds, only one request goes out. */
  #testing = false;
  #tester: Ticket | undefined;

  /** @param maxRate requests per second never to exceed; `Infinity` for no cap. */
  constructor(maxRate = Number.POSITIVE_INFINITY) {
    this.#maxRate = maxRate;
  }

  /** The window learned so far, if any. */
  get window(): LearnedWindow | undefined {
    return this.#count === 0 ? undefined : { count: this.#count, ms: this.#ms };
  }

  /** Requests per second the pacer allows: the learned window's rate, capped by `maxRate`. */
  get rate(): number {
    const learned = this.#count === 0 ? Number.POSITIVE_INFINITY : (this.#count * 1000) / this.#ms;
    return Math.min(learned, this.#maxRate);
  }

  /** Ms to wait before sending a request at `now`: 0 to send now, `Infinity` to wait for news. */
  delay(now: number): number {
    if (this.#testing && this.#tester !== undefined) return Number.POSITIVE_INFINITY;
    let wait = Math.max(0, this.#nextByCap - now);
    if (this.#count > 0) {
      const inWindow = this.#inWindow(now, Number.POSITIVE_INFINITY);
      if (inWindow.length >= this.#count) {
        const leaving = inWindow[inWindow.length - this.#count] as Ticket;
        wait = Math.max(wait, leaving.at + this.#ms - now + 1);
        this.#held = true;
      }
    }
    return wait;
  }

  /** Records a request sent at `now`; pass its ticket back with the outcome. */
  send(now: number): Ticket {
    const ticket: Ticket = { id: ++this.#id, at: now, state: 'pending' };
    this.#sent.push(ticket);
    this.#trim(now);
    if (Number.isFinite(this.#maxRate)) {
      this.#nextByCap = Math.max(now, this.#nextByCap) + 1000 / this.#maxRate;
    }
    if (this.#testing && this.#tester === undefined) this.#tester = ticket;
    return ticket;
  }

  succeeded(ticket: Ticket, now: number): void {
    ticket.state = 'ok';
    if (ticket.id <= this.#eventId && ticket.id > this.#estimatedBefore && this.#estimatedBefore) {
      // Sent after the refused request yet accepted: the window had room for one more than
      // the last estimate counted.
      this.#count++;
    }
    if (ticket.id > this.#eventId) {
      this.#acceptedSinceEvent++;
      this.#testing = false;
      this.#tester = undefined;
    }
    if (this.#count === 0 || !this.#held) return;
    const searching = this.#searchStepMs > 0;
    const clean = Math.max(this.#probeWindows * this.#ms, searching ? 0 : this.#probeMinMs);
    if (now - this.#changedAt >= clean) {
      // The window held requests back for a while without a 429: try a little more.
      this.#goodMs = this.#ms;
      this.#ms -= Math.max(this.#ms * PROBE_STEP, this.#searchStepMs);
      this.#changedAt = now;
      this.#held = false;
    }
  }

  /** A request that ended otherwise (network error, 5xx): Spotify may have counted it. */
  failed(ticket: Ticket): void {
    if (ticket.state === 'pending') ticket.state = 'failed';
    if (this.#tester === ticket) this.#tester = undefined;
  }

  /**
   * Records a 429 for `ticket` at `now`, with its Retry-After in ms (undefined when absent).
   * Returns whether it started a new congestion event (the window was changed).
   */
  refused(ticket: Ticket, now: number, retryAfterMs: number | undefined): boolean {
    ticket.state = 'refused';
    if (this.#tester === ticket) this.#tester = undefined;
    if (ticket.id <= this.#eventId) {
      // Counted as accepted by the last estimate, but Spotify refused it: take it back out.
      if (ticket.id < this.#estimatedBefore) this.#count = Math.max(1, this.#count - 1);
      return false;
    }
    const previousEventId = this.#eventId;
    const accepted = this.#acceptedSinceEvent;
    this.#eventId = this.#id;
    this.#estimatedBefore = 0;
    this.#acceptedSinceEvent = 0;
    this.#testing = true;
    this.#changedAt = now;
    this.#held = false;
    if (this.#count === 0) {
      // The first 429: usually the end of a burst into an empty window, which has room again
      // after the Retry-After. Without one (or 0), assume a second, Spotify's smallest usual
      // answer: a window learned too short grows on the next 429s.
      const retryAfter = retryAfterMs || 1000;
      const before = this.#inWindow(now, ticket.id, HORIZON_MS);
      this.#count = Math.max(1, before.length);
      const burst = now - (before[0]?.at ?? ticket.at);
      this.#ms = Math.max(1, burst + retryAfter);
      // A quick burst leaves little to search: the usual slow probes will do.
      const step = Math.min(burst, RETRY_AFTER_GRAIN_MS) / 2;
      this.#searchStepMs = step > this.#ms * PROBE_STEP ? step : 0;
      this.#estimatedBefore = ticket.id;
      return true;
    }
    if (this.#goodMs > 0) {
      // A probe went too far: back to the window that worked. A search tries once more with
      // half the step; otherwise probe less often.
      this.#ms = this.#goodMs;
      this.#goodMs = 0;
      this.#searchStepMs = this.#searchHalved ? 0 : this.#searchStepMs / 2;
      this.#searchHalved = true;
      if (this.#searchStepMs <= this.#ms * PROBE_STEP) {
        this.#searchStepMs = 0;
        this.#probeWindows = Math.min(MAX_PROBE_WINDOWS, this.#probeWindows * 2);
        this.#probeMinMs *= 2;
      }
      return true;
    }
    const inWindow = this.#inWindow(now, ticket.id);
    const since = inWindow.filter((t) => t.id > previousEventId);
    const consistent = accepted > 0 && this.#mostAcceptedInAWindow(previousEventId) <= since.length;
    // Refused as the last request our window allows: Spotify's window is longer, or holds one
    // request fewer. Once is noise; twice running, after Spotify took the same again, it is
    // the count.
    const atEdge = consistent && inWindow.length === this.#count - 1;
    const edgeAgain = atEdge && this.#refusedAtEdge;
    this.#refusedAtEdge = atEdge;
    if (consistent && (inWindow.length < this.#count - 1 || edgeAgain)) {
      // Our window had room, and since the last 429 Spotify took fewer than it allows, never
      // more: the limit fell to what it took, or by half at most (one 429 is thin evidence).
      this.#count = Math.max(1, since.length, Math.ceil(this.#count / 2));
      this.#estimatedBefore = ticket.id;
      this.#refusedAtEdge = false;
    } else {
      // Our window was full and Spotify still refused: its window is longer than learned. When
      // nothing got through since the last 429 (its Retry-After was too short to empty the
      // window: the usual first window with a Retry-After that says nothing of it), Spotify's
      // window holds our last `count` requests and has room after the Retry-After at most.
      // Otherwise it is a little longer (or a request shorter: see `atEdge`).
      const last = this.#lastSent(ticket.id, this.#count);
      this.#ms = Math.max(
        this.#ms * STRETCH,
        accepted === 0 ? now - (last?.at ?? ticket.at) + (retryAfterMs || 1000) : 0,
      );
    }
    return true;
  }

  /** Counted requests (not refused) sent in the last `windowMs` before `now`, with id < `below`, oldest first. */
  #inWindow(now: number, below: number, windowMs = this.#ms): Ticket[] {
    const out: Ticket[] = [];
    for (let i = this.#sent.length - 1; i >= this.#head; i--) {
      const t = this.#sent[i] as Ticket;
      if (t.at <= now - windowMs) break;
      if (t.state !== 'refused' && t.id < below) out.push(t);
    }
    return out.reverse();
  }

  /** The `n`-th most recent counted request with id < `below`. */
  #lastSent(below: number, n: number): Ticket | undefined {
    let seen = 0;
    let last: Ticket | undefined;
    for (let i = this.#sent.length - 1; i >= this.#head && seen < n; i--) {
      const t = this.#sent[i] as Ticket;
      if (t.state === 'refused' || t.id >= below) continue;
      last = t;
      seen++;
    }
    return last;
  }

  /** The most requests Spotify accepted within one learned window, among those after `afterId`. */
  #mostAcceptedInAWindow(afterId: number): number {
    let most = 0;
    let from = -1;
    const ok: number[] = [];
    for (let i = this.#head; i < this.#sent.length; i++) {
      const t = this.#sent[i] as Ticket;
      if (t.state === 'ok' && t.id > afterId) ok.push(t.at);
    }
    for (let to = 0; to < ok.length; to++) {
      while ((ok[from + 1] as number) <= (ok[to] as number) - this.#ms) from++;
      most = Math.max(most, to - from);
    }
    return most;
  }

  #trim(now: number): void {
    const keep = now - Math.max(this.#ms, HORIZON_MS);
    while (this.#head < this.#sent.length && (this.#sent[this.#head] as Ticket).at <= keep) {
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#sent.length) {
      this.#sent.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

export interface ThrottleOptions {
  /** Requests in flight at once. */
  concurrency: number;
  /** Requests per second never to exceed; `Infinity` for no cap (the pacer learns the limit). */
  maxRate: number;
  /** Longest single Retry-After honoured, in seconds. */
  maxRetryAfter: number;
  /** Total seconds the run may be paused by rate limits. */
  maxRateLimitWait: number;
  stats: RunStats;
  signal: AbortSignal;
}

/**
 * The one gate every Spotify request passes. Spotify rate-limits per app, so a 429 is about all
 * of our requests, not the one that got it: a Retry-After pauses everybody, and one {@link Pacer}
 * shared by every market and page keeps the requests inside the window it learned.
 */
export class Throttle {
  readonly #options: ThrottleOptions;
  readonly #pacer: Pacer;
  #inFlight = 0;
  #pausedUntil = 0;
  #waiters: (() => void)[] = [];

  constructor(options: ThrottleOptions) {
    this.#options = options;
    this.#pacer = new Pacer(options.maxRate);
    this.#record();
  }

  /** Requests per second the gate allows now (`Infinity` until a limit is learned or set). */
  get rate(): number {
    return this.#pacer.rate;
  }

  /**
   * Waits for the pause to pass, a free slot and the pacer; returns the request's ticket, to be
   * passed to `succeeded` / `rateLimited` and then `release`. `signal` (the run's, or one
   * caller's) ends the wait.
   */
  async acquire(signal: AbortSignal = this.#options.signal): Promise<Ticket> {
    for (;;) {
      signal.throwIfAborted();
      const now = Date.now();
      const pause = this.#pausedUntil - now;
      if (pause > 0) {
        await sleep(pause, undefined, { signal });
        continue;
      }
      const wait = this.#inFlight < this.#options.concurrency ? this.#pacer.delay(now) : -1;
      if (wait === 0) {
        this.#inFlight++;
        this.#options.stats.requests++;
        return this.#pacer.send(now);
      }
      if (wait > 0 && Number.isFinite(wait)) {
        await sleep(wait, undefined, { signal });
        continue;
      }
      // No free slot, or the pacer waits for the request testing the water: a release() wakes us.
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

  release(ticket: Ticket): void {
    this.#inFlight--;
    this.#pacer.failed(ticket);
    // Every waiter re-checks: a slot is free, and the pacer may have news.
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  succeeded(ticket: Ticket): void {
    this.#pacer.succeeded(ticket, Date.now());
    this.#record();
  }

  /**
   * Records a 429. With a positive Retry-After every request waits that long; without one (or 0)
   * the caller falls back to its own backoff. Throws when Spotify asks for more than we allow.
   */
  rateLimited(ticket: Ticket, retryAfterSeconds: number | undefined, url: string): void {
    const { stats, maxRetryAfter, maxRateLimitWait } = this.#options;
    stats.rateLimited++;
    const now = Date.now();
    this.#pacer.refused(
      ticket,
      now,
      retryAfterSeconds === undefined ? undefined : retryAfterSeconds * 1000,
    );
    this.#record();
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

  #record(): void {
    const rate = this.#pacer.rate;
    this.#options.stats.rate = Number.isFinite(rate) ? Math.round(rate * 100) / 100 : null;
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
