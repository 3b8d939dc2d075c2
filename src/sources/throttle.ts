import { setTimeout as sleep } from 'node:timers/promises';
import { SpotifyBatchError } from '../core/errors.ts';
import type { RunStats } from '../core/stats.ts';

/** One request as the pacer counts it. */
export interface Ticket {
  readonly id: number;
  /** When it was sent, in ms. */
  readonly at: number;
  /**
   * Sent at the learned window's edge: held back by it, or sent less than EDGE windows after the
   * request `count` before it (a held one whose timer fired while another took the turn).
   */
  readonly held: boolean;
  /** A refused request (429) does not count in Spotify's window; any other one may. */
  state: 'pending' | 'ok' | 'refused' | 'failed';
  /**
   * How long after `at` Spotify may have counted it: its round trip beyond the shortest lately
   * seen (set when it ends). A request that arrived late, stalled on the way or behind one that
   * did, leaves Spotify's window late too; counted from when it was sent, the request after it
   * would be refused.
   */
  late: number;
}

/** What the pacer has learned of Spotify's window: `count` requests per `ms`. */
export interface LearnedWindow {
  count: number;
  ms: number;
}

/** What one congestion event (a 429 and the others in flight with it) showed. */
export interface CongestionEvent {
  /** Requests Spotify took in the window before the 429 (since the previous event). */
  accepted: number;
  /** When the first of them was sent. */
  start: number;
  /** From the first of them to the end of the Retry-After: the window, if this burst filled it. */
  ms: number;
  /** Requests in flight with the refused one, sent after it, that Spotify took nonetheless. */
  after: number;
}

/** How far back a burst is looked for when no window is known: Spotify's documented window. */
const HORIZON_MS = 30_000;
/**
 * A 429 after at most this many accepted requests says "wait Retry-After", nothing of a limit:
 * Spotify sends such 429s at the start of a run, in backend hiccups and in storms that refuse
 * everything, and a limit learned from them would hold a whole pull to a crawl (issue 24).
 */
const LEAST_EVIDENCE = 4;
/** Two events show the same limit when their accepted counts are within this fraction. */
const SIMILAR = 0.2;
/** Without a Retry-After (or with 0), Spotify's smallest usual answer is assumed for the window. */
const DEFAULT_RETRY_AFTER_MS = 1000;
/**
 * How the learned window follows Spotify's once it holds requests back (issue 24's noise rows).
 * Every 429 costs a Retry-After pause of whole seconds (at 10 per 1 s, a window's worth of
 * requests), so the window must meet few; it is set from evidence, not stretched by a factor at
 * each refusal (which compounded with every jittery one while 3 % probes every 8 s won it back
 * too slowly):
 *
 * - each request counts from when Spotify may have counted it (`Ticket.late`), so the noise
 *   between our clock and Spotify's (one-way delays, stalls) refuses nothing: no margin for it
 *   is needed, and what our late timers cost is only their lateness;
 * - each held request Spotify took shortens a newly learned window by SHRINK ÷ count (SHRINK
 *   per window's worth): a window learned too long (the time between two bursts' starts carries
 *   the 429's round trip and whole-second Retry-Afters, 20–40 % on a loaded machine) comes down
 *   within a few windows, where 3 % probes every 8 s took longer than a pull;
 * - until a request held to the window's edge is refused: Spotify's window is longer than ours,
 *   which becomes the **floor**, and the window goes to the shortest gap a held request was
 *   taken at, or a step above the floor (a SHRINK step and the mean lateness), whichever is
 *   longer. There it stays: no probes, each of which would cost a pause, and no stretch by a
 *   factor that compounds; a later 429 at the edge (noise the lateness did not cover) adds one
 *   step. The window is relearned (and shrinks again) when the limit changes, and forgotten as
 *   before.
 */
const SHRINK = 0.1;
/** The round trip counted as no lateness follows the shortest seen, and rises this slowly. */
const RTT_RISE = 1 / 64;
/**
 * A learned window is forgotten once it held nothing back for this many windows (the pull
 * slowed down by itself: the window costs nothing to relearn), or drew no 429 for
 * FORGET_WINDOWS and HORIZON_MS (whatever taught it may be over).
 */
const IDLE_WINDOWS = 2;
const FORGET_WINDOWS = 8;
/**
 * A request sent no later than this many windows after the one `count` before it was sent at the
 * window's edge (its timer may have fired late): the window is what set its time.
 */
const EDGE = 1.1;
/** After a 429 the requests in flight grow from one by one per success: doubling per round trip. */
const RAMP_DONE = 64;

/** Whether two accepted counts are the same limit seen twice. */
export function similar(a: number, b: number): boolean {
  return Math.abs(a - b) <= SIMILAR * Math.max(a, b);
}

/**
 * What a congestion event teaches, with no window learned yet: nothing from a handful of
 * accepted requests or a first sighting; a window once a second event agrees with the first.
 * The window is the longer of the two estimates: the time between the two bursts' starts (a
 * steady limit lets the next burst in once the first left the window), and this burst to the
 * end of its Retry-After (a Retry-After that tells the time until the window has room). The
 * count is the larger: requests sent together reach Spotify in another order now and then, and
 * a 429 that overtook one it counted shows one accepted request too few (at --concurrency 16,
 * 9 per window for Spotify's 10, a window that the pacer then could never match). A window
 * that was forgotten (the previous event is its stand-in, with no start) comes back as it was.
 */
export function learn(
  event: CongestionEvent,
  previous: CongestionEvent | undefined,
): LearnedWindow | undefined {
  if (event.accepted <= LEAST_EVIDENCE || previous === undefined) return undefined;
  if (contradicted(previous) || !similar(event.accepted, previous.accepted)) return undefined;
  // A window forgotten (no 429 for a while: it worked) comes back at its own length: this
  // burst's period and Retry-After measure our pause, not Spotify's window (a 1 s window came
  // back as 2 s and stayed).
  if (!Number.isFinite(previous.start)) {
    return { count: Math.max(event.accepted, previous.accepted), ms: previous.ms };
  }
  const period = event.start - previous.start;
  return {
    count: Math.max(event.accepted, previous.accepted),
    ms: Math.max(1, period, event.ms),
  };
}

/**
 * Whether Spotify's own answers show an event was no window filling up: a full window refuses
 * every request after the first refused one until an old one leaves, so more than a few (the
 * 20 % of noise allowed) taken right after it mean the 429 came from something else.
 * Scattered one-off 429s a few requests apart look like a small limit until these are counted.
 */
export function contradicted(event: CongestionEvent): boolean {
  return event.after > SIMILAR * event.accepted;
}

/**
 * What a congestion event does to a learned window. Spotify took our whole window and still
 * refused: its window is longer. It took fewer: the window explains nothing
 * (a limit that fell, or a 429 that was no limit), so it is forgotten; the event stays as the
 * last one, so if the limit fell, the next 429 at the same count learns the new one.
 */
export function correct(window: LearnedWindow, event: CongestionEvent): LearnedWindow | undefined {
  if (event.accepted < window.count - 1) return undefined;
  return { count: window.count, ms: Math.max(lengthened(window), event.ms) };
}

/** A window after a 429 that shows it is too short and nothing of how long: one SHRINK step. */
export function lengthened(window: LearnedWindow): number {
  return window.ms * (1 + SHRINK / window.count);
}

/** When Spotify may have counted a request: when it was sent, plus its lateness. */
const counted = (t: Ticket) => t.at + t.late;

/**
 * A learned copy of Spotify's rate-limit window, kept on our side so that requests wait here
 * instead of being refused there. Spotify allows each app some number of requests in a rolling
 * window (30 s; the numbers are unpublished); its 429 says the window is full, its Retry-After
 * when it will have room. But Spotify also refuses requests for other reasons (a burst at the
 * start, a backend hiccup, a storm that refuses everything for a while), so the pacer:
 *
 * - **learns** a window only from evidence: two congestion events (429s for requests sent
 *   before the last one arrived belong to one event) after similar accepted counts, each more
 *   than a handful ({@link learn}); any other 429, and any `Retry-After: 0`, only pauses;
 * - **keeps** every later request inside it (at most `count` sent in any `ms`), so a run goes at
 *   the limit's rate instead of bouncing off it; a 429 with the window full lengthens it, one
 *   with room left shows it explains nothing and forgets it ({@link correct});
 * - after every 429 **ramps** back like TCP's slow start: one request tests the water, and each
 *   success lets one more be in flight (doubling per round trip) up to what the window allows,
 *   so a storm that ends is at full speed a few round trips after its last 429;
 * - **finds** Spotify's window while it is what holds requests back: a new window shrinks with
 *   each held request taken until one is refused, then goes back to the shortest gap that was
 *   taken and stays (see SHRINK); each request counts from when Spotify may have counted it, so
 *   jitter and stalls between the two clocks refuse nothing;
 * - **forgets** the window when it held nothing back for two windows, or drew no 429 for eight
 *   windows and 30 s, keeping its count as the last event, so one 429 at it learns it again.
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
  #window: LearnedWindow | undefined;
  /** The last event that showed more than a handful of accepted requests. */
  #previous: CongestionEvent | undefined;
  /** The refused request that started it, and the last request sent before its 429 came. */
  #refusedId = 0;
  #previousUpTo = 0;
  /** The event the window was learned (or last corrected) at. */
  #learnedBy: CongestionEvent | undefined;
  #changedAt = 0;
  #refusedAt = 0;
  /** When the learned window last held a request back. */
  #heldAt = 0;
  /** The last request sent before the last 429 arrived: 429s up to it belong to that event. */
  #eventId = 0;
  #pending = 0;
  /** The last delay() held a request back for the window: the next one sent is at its edge. */
  #holding = false;
  /** Requests allowed in flight while ramping back after a 429. */
  #ramp = Number.POSITIVE_INFINITY;
  /** The request after this one goes alone: as many were sent as the last event accepted (-1: none). */
  #alone = -1;
  /**
   * The window at the last 429 on a held request (Spotify's is longer), and the shortest gap a
   * held request was taken at since the window was learned (Spotify's is no longer): see SHRINK.
   */
  #floor = 0;
  #proven = Number.POSITIVE_INFINITY;
  /** The round trip counted as no lateness (see RTT_RISE), and the most lateness seen. */
  #rtt = Number.POSITIVE_INFINITY;
  #lateMost = 0;
  /** Lateness, smoothed: the noise a window a step above the floor must still clear. */
  #lateMean = 0;

  /** @param maxRate requests per second never to exceed; `Infinity` for no cap. */
  constructor(maxRate = Number.POSITIVE_INFINITY) {
    this.#maxRate = maxRate;
  }

  /** The window learned so far, if any. */
  get window(): LearnedWindow | undefined {
    return this.#window === undefined ? undefined : { ...this.#window };
  }

  /** Requests per second the pacer allows: the learned window's rate, capped by `maxRate`. */
  get rate(): number {
    const w = this.#window;
    return Math.min(
      w === undefined ? Number.POSITIVE_INFINITY : (w.count * 1000) / w.ms,
      this.#maxRate,
    );
  }

  /** Ms to wait before sending a request at `now`: 0 to send now, `Infinity` to wait for news. */
  delay(now: number): number {
    if (this.#pending >= this.#ramp) return Number.POSITIVE_INFINITY;
    if (this.#id === this.#alone && this.#pending > 0) return Number.POSITIVE_INFINITY;
    let wait = Math.max(0, this.#nextByCap - now);
    const w = this.#window;
    if (w !== undefined && this.#stale(w, now)) {
      this.#previous = { accepted: w.count, start: Number.NEGATIVE_INFINITY, ms: w.ms, after: 0 };
      this.#window = undefined;
    } else if (w !== undefined) {
      const inWindow = this.#inWindow(now, Number.POSITIVE_INFINITY, w.ms);
      if (inWindow.length >= w.count) {
        const leaving = inWindow[inWindow.length - w.count] as Ticket;
        wait = Math.max(wait, counted(leaving) + w.ms - now + 1);
        this.#heldAt = now;
        this.#holding = true;
      }
    }
    return wait;
  }

  /** Records a request sent at `now`; pass its ticket back with the outcome. */
  send(now: number): Ticket {
    const w = this.#window;
    const held =
      this.#holding ||
      (w !== undefined &&
        this.#inWindow(now, Number.POSITIVE_INFINITY, w.ms * EDGE).length >= w.count);
    const ticket: Ticket = { id: ++this.#id, at: now, held, state: 'pending', late: 0 };
    this.#holding = false;
    // One congestion event seen, no window yet: if Spotify's window is full again after as many
    // as it took then, one request finds out, not all in flight (at --concurrency 16, a dozen).
    if (ticket.id === this.#alone + 1) this.#ramp = 1;
    this.#sent.push(ticket);
    this.#pending++;
    this.#trim(now);
    if (Number.isFinite(this.#maxRate)) {
      this.#nextByCap = Math.max(now, this.#nextByCap) + 1000 / this.#maxRate;
    }
    return ticket;
  }

  succeeded(ticket: Ticket, now: number): void {
    this.#settle(ticket, 'ok', now);
    const last = this.#previous;
    // Of that event only: a later one that taught nothing (Retry-After 0, a 429 at the window's
    // edge) must not count its requests as taken after this one's 429.
    if (last !== undefined && ticket.id > this.#refusedId && ticket.id <= this.#previousUpTo) {
      // Taken, though sent after the refused one and before its 429 came back.
      last.after++;
      if (contradicted(last)) {
        if (this.#learnedBy === last) this.#window = undefined;
        this.#previous = undefined;
      }
    }
    if (ticket.id > this.#eventId && Number.isFinite(this.#ramp)) {
      // Slow start: each answer after the 429 lets one more request be in flight.
      this.#ramp = this.#ramp + 1 >= RAMP_DONE ? Number.POSITIVE_INFINITY : this.#ramp + 1;
    }
    const w = this.#window;
    if (w !== undefined && ticket.held) {
      this.#proven = Math.min(this.#proven, this.#gap(ticket, w));
      // Held back to the window's edge and taken: until a 429 shows where Spotify's window
      // is, it may be a little shorter.
      if (this.#floor === 0) w.ms = Math.max(w.ms * (1 - SHRINK / w.count), 1);
    }
  }

  /** A request that ended otherwise (network error, 5xx): Spotify may have counted it. */
  failed(ticket: Ticket, now?: number): void {
    this.#settle(ticket, 'failed', now);
  }

  /**
   * Records a 429 for `ticket` at `now`, with its Retry-After in ms (undefined when absent).
   * Returns whether it started a new congestion event.
   */
  refused(ticket: Ticket, now: number, retryAfterMs: number | undefined): boolean {
    this.#settle(ticket, 'refused');
    if (ticket.id <= this.#eventId) return false;
    const previousEventId = this.#eventId;
    this.#eventId = this.#id;
    this.#ramp = 1;
    this.#refusedAt = now;
    // The pause is no idle time of the window's: one longer than two windows (Retry-After 3 s
    // on a 1 s window) would otherwise forget it the moment the pause ends.
    this.#changedAt = now + (retryAfterMs ?? 0);
    const w = this.#window;
    // What Spotify had counted when the refused request came: those sent before it, over the
    // window as far as known (the learned one, else the last event's estimate: a burst to the
    // end of its Retry-After, else Spotify's documented 30 s). Counted back from when it was
    // sent, not from when its 429 came: a round trip later the oldest of a bunch sent together
    // have left the window, and a full window would look like room left (the window forgotten).
    const windowMs = w?.ms ?? this.#previous?.ms ?? HORIZON_MS;
    // Answered ones only: one still in flight may be refused yet, and a count one too high is a
    // window refused at every edge (learn takes the larger of two events' counts).
    const accepted = this.#inWindow(ticket.at, ticket.id, windowMs).filter(
      (t) => t.id > previousEventId && t.state !== 'pending',
    );
    const start = accepted[0]?.at ?? ticket.at;
    const event: CongestionEvent = {
      accepted: accepted.length,
      start,
      ms: now + (retryAfterMs || DEFAULT_RETRY_AFTER_MS) - start,
      after: 0,
    };
    // `Retry-After: 0` is "retry now": no limit behind it.
    if (retryAfterMs === 0) return true;
    // Since the last event, counted a little wider than our window: with ours a little too
    // short, the oldest of Spotify's window already left ours.
    const taken =
      w === undefined
        ? 0
        : this.#inWindow(ticket.at, ticket.id, w.ms * EDGE).filter((t) => t.id > previousEventId)
            .length;
    if (w !== undefined && ticket.held && (taken <= LEAST_EVIDENCE || taken >= w.count - 1)) {
      // Refused at our window's edge with it full, or as the first our window let through
      // after a pause: Spotify's window is longer than ours.
      this.#floor = w.ms;
      w.ms = Math.max(w.ms + this.#step(w), Number.isFinite(this.#proven) ? this.#proven : 0);
      return true;
    }
    if (event.accepted <= LEAST_EVIDENCE) return true;
    this.#window = w === undefined ? learn(event, this.#previous) : correct(w, event);
    if (this.#window !== w) {
      // A new window shrinks until a 429 shows where Spotify's is; one that comes back, after
      // it was forgotten, was kept where it was by evidence then.
      const back = this.#previous?.start === Number.NEGATIVE_INFINITY;
      this.#floor = back && this.#window !== undefined ? this.#window.ms : 0;
      this.#proven = Number.POSITIVE_INFINITY;
    }
    this.#learnedBy = this.#window === undefined ? undefined : event;
    if (this.#window === undefined) this.#alone = this.#eventId + event.accepted;
    this.#previous = event;
    this.#refusedId = ticket.id;
    this.#previousUpTo = this.#eventId;
    return true;
  }

  /** From when Spotify may have counted the request `count` before `ticket` to its sending. */
  #gap(ticket: Ticket, w: LearnedWindow): number {
    const before = this.#inWindow(ticket.at, ticket.id, HORIZON_MS);
    const edge = before[before.length - w.count];
    return edge === undefined ? Number.POSITIVE_INFINITY : ticket.at - counted(edge);
  }

  /** What the window goes up by after a 429 at its edge: a SHRINK step and the mean lateness. */
  #step(w: LearnedWindow): number {
    return (w.ms * SHRINK) / w.count + this.#lateMean;
  }

  /** Forget a window that no longer holds anything back, or that nothing confirmed for long. */
  #stale(w: LearnedWindow, now: number): boolean {
    const since = Math.max(this.#heldAt, this.#changedAt);
    if (now - since >= IDLE_WINDOWS * w.ms) return true;
    return now - this.#refusedAt >= Math.max(FORGET_WINDOWS * w.ms, HORIZON_MS);
  }

  #settle(ticket: Ticket, state: 'ok' | 'refused' | 'failed', now?: number): void {
    if (ticket.state !== 'pending') return;
    ticket.state = state;
    this.#pending--;
    // From answers only: a failure may have waited out a whole timeout (30 s), which is no
    // lateness of Spotify's counting; it counts from when it was sent.
    if (now === undefined || state !== 'ok') return;
    const rtt = now - ticket.at;
    this.#rtt = rtt < this.#rtt ? rtt : this.#rtt + (rtt - this.#rtt) * RTT_RISE;
    ticket.late = Math.max(0, rtt - this.#rtt);
    this.#lateMost = Math.max(this.#lateMost, ticket.late);
    this.#lateMean += (ticket.late - this.#lateMean) / 8;
  }

  /**
   * Requests not refused, with id < `below`, that Spotify may have counted in the last `windowMs`
   * before `now` ({@link counted}), oldest first.
   */
  #inWindow(now: number, below: number, windowMs: number): Ticket[] {
    const out: Ticket[] = [];
    for (let i = this.#sent.length - 1; i >= this.#head; i--) {
      const t = this.#sent[i] as Ticket;
      if (t.at <= now - windowMs - this.#lateMost) break;
      if (t.state !== 'refused' && t.id < below && counted(t) > now - windowMs) out.push(t);
    }
    return out.sort((a, b) => counted(a) - counted(b));
  }

  #trim(now: number): void {
    const keep = now - Math.max(this.#window?.ms ?? 0, HORIZON_MS);
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
  #firstSentAt: number | undefined;

  constructor(options: ThrottleOptions) {
    this.#options = options;
    this.#pacer = new Pacer(options.maxRate);
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
      const now = performance.now();
      const pause = this.#pausedUntil - now;
      if (pause > 0) {
        await sleep(pause, undefined, { signal });
        continue;
      }
      const wait = this.#inFlight < this.#options.concurrency ? this.#pacer.delay(now) : -1;
      if (wait === 0) {
        this.#inFlight++;
        this.#record(now);
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
    this.#pacer.failed(ticket, performance.now());
    // Every waiter re-checks: a slot is free, and the pacer may have news.
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  succeeded(ticket: Ticket): void {
    this.#pacer.succeeded(ticket, performance.now());
  }

  /**
   * Records a 429. With a positive Retry-After every request waits that long; with 0 nobody
   * waits (the pacer lets one request retry first); without one the caller backs off. Throws
   * when Spotify asks for more than we allow.
   */
  rateLimited(ticket: Ticket, retryAfterSeconds: number | undefined, url: string): void {
    const { stats, maxRetryAfter, maxRateLimitWait } = this.#options;
    stats.rateLimited++;
    const now = performance.now();
    this.#pacer.refused(
      ticket,
      now,
      retryAfterSeconds === undefined ? undefined : retryAfterSeconds * 1000,
    );
    if (retryAfterSeconds === undefined || retryAfterSeconds <= 0) return;
    if (retryAfterSeconds > maxRetryAfter) {
      throw new SpotifyBatchError(
        'ERR_RATE_LIMIT',
        `Spotify rate limit: asked to wait ${retryAfterSeconds} s (Retry-After), more than --max-retry-after ${maxRetryAfter} s`,
        { context: { url, status: 429, retryAfter: retryAfterSeconds } },
      );
    }
    const until = now + retryAfterSeconds * 1000;
    // Whole ms: on the monotonic clock (fractional ms) `now + 1000 - now` is 1000.0000000000001.
    const added = Math.round(until - Math.max(now, this.#pausedUntil));
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

  /**
   * Counts a request sent at `now`, and the rate held so far: requests per second from the
   * first request to this one, once anything paced them (a 429 or `maxRate`). Measured, not the
   * pacer's allowance, which is a limit and says nothing of what a run reached.
   */
  #record(now: number): void {
    const { stats, maxRate } = this.#options;
    stats.requests++;
    this.#firstSentAt ??= now;
    const span = now - this.#firstSentAt;
    if ((stats.rateLimited > 0 || Number.isFinite(maxRate)) && span > 0) {
      stats.rate = Math.round(((stats.requests - 1) * 100_000) / span) / 100;
    }
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
