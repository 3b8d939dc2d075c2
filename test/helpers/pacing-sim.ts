/**
 * A pull through the real {@link Pacer} against the emulator's own rolling window
 * ({@link RateWindow}), on a virtual clock with seeded noise: the gate around the pacer is
 * src/sources/throttle.ts's `Throttle` step for step (one shared Retry-After pause, `concurrency`
 * slots, a pacer delay slept out, every waiter woken by each release), and the noise is what a
 * loaded machine adds between the pacer's clock and Spotify's:
 *
 * - a one-way delay on the way out and on the way back (`jitterMs`, uniform), now and then a
 *   stall (`stallMs` with probability `stallP`): the window counts arrivals, the pacer sends.
 *   Each way is first in, first out, as one event loop reads its sockets: a stalled request
 *   holds back the ones sent after it (the emulator stamps them together), none overtakes it;
 * - timers that fire late (`lateMs`, uniform; stalls too): a held request leaves after its time.
 *
 * Nothing here waits: a 20 s pull is simulated in milliseconds, so tests can pin exact counts
 * and bench-like tables can run hundreds of seeds.
 */
import { type RateLimit, RateWindow } from '../../src/emulator/faults.ts';
import { Pacer, type Ticket } from '../../src/sources/throttle.ts';

export interface Noise {
  /** One-way delay each way, uniform in [0, jitterMs]. */
  jitterMs: number;
  /** Timer lateness, uniform in [0, lateMs]. */
  lateMs: number;
  /** A delay (either way) or a timer stalls this much more… */
  stallMs: number;
  /** …with this probability. */
  stallP: number;
}

export const QUIET: Noise = { jitterMs: 2, lateMs: 1, stallMs: 0, stallP: 0 };
/** The brief's loaded box: 0–30 ms jitter, timers up to 10 ms late, 2 % stalls of 100 ms. */
export const LOADED: Noise = { jitterMs: 30, lateMs: 10, stallMs: 100, stallP: 0.02 };

export interface SimOptions {
  limits: RateLimit[];
  pages: number;
  concurrency: number;
  /** The server's own time per answer. */
  latencyMs?: number;
  noise?: Noise;
  seed?: number;
}

export interface SimResult {
  /** From the first send to the last answer. */
  seconds: number;
  /** Pages ÷ the allowed rate, phase by phase (bench/pacing.ts's ideal). */
  ideal: number;
  requests: number;
  refused: number;
  /** 429s outside learning: not in the first window, nor in the two windows after a change. */
  lateRefused: number;
  /** Send times and outcomes, in send order. */
  log: { at: number; arrived: number; refused: boolean }[];
  pacer: Pacer;
}

/** mulberry32: a small seeded PRNG, so every run of a seed is the same run. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function ideal(limits: RateLimit[], pages: number): number {
  let seconds = 0;
  limits.forEach((limit, i) => {
    const from = limit.after ?? 0;
    const to = Math.min(pages, limits[i + 1]?.after ?? pages);
    seconds += (Math.max(0, to - from) * limit.windowSeconds) / limit.count;
  });
  return seconds;
}

type Event = { at: number; seq: number; run: () => void };

export function simulate(options: SimOptions): SimResult {
  const { limits, pages, concurrency, latencyMs = 0, noise = QUIET, seed = 1 } = options;
  const rand = random(seed);
  const stall = () => (rand() < noise.stallP ? noise.stallMs : 0);
  const oneWay = () => rand() * noise.jitterMs + stall();
  const late = () => rand() * noise.lateMs + stall();

  const events: Event[] = [];
  let seq = 0;
  let now = 0;
  const at = (time: number, run: () => void) => {
    const e = { at: Math.max(time, now), seq: ++seq, run };
    // Few events are pending at once (one per worker, a few answers): a sorted insert will do.
    let i = events.length;
    while (
      i > 0 &&
      ((events[i - 1] as Event).at > e.at ||
        ((events[i - 1] as Event).at === e.at && (events[i - 1] as Event).seq > e.seq))
    )
      i--;
    events.splice(i, 0, e);
  };

  const pacer = new Pacer();
  const window = new RateWindow(limits);
  const log: SimResult['log'] = [];
  let pausedUntil = 0;
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  let left = pages;
  let end = 0;
  // The last arrival each way: first in, first out.
  let lastIn = 0;
  let lastOut = 0;
  const inbound = () => (lastIn = Math.max(lastIn, now + oneWay()));
  const outbound = (after: number) => (lastOut = Math.max(lastOut, after + oneWay()));

  // Throttle.acquire, one pass: returns when the request is sent or the worker waits.
  const acquire = (worker: () => void) => {
    if (pausedUntil > now) return at(pausedUntil + late(), () => acquire(worker));
    const wait = inFlight < concurrency ? pacer.delay(now) : -1;
    if (wait === 0) return send(worker);
    if (wait > 0 && Number.isFinite(wait)) return at(now + wait + late(), () => acquire(worker));
    waiters.push(() => acquire(worker));
  };
  const release = () => {
    inFlight--;
    const woken = waiters;
    waiters = [];
    for (const wake of woken) at(now, wake);
  };
  const send = (worker: () => void) => {
    inFlight++;
    const ticket: Ticket = pacer.send(now);
    const entry = { at: now, arrived: 0, refused: false };
    log.push(entry);
    at(inbound(), () => {
      entry.arrived = now;
      const retryAfter = window.admit(now);
      entry.refused = retryAfter !== undefined;
      at(outbound(now + latencyMs), () => {
        if (retryAfter === undefined) {
          pacer.succeeded(ticket, now);
          left--;
          end = now;
          release();
          at(now, worker);
          return;
        }
        pacer.refused(ticket, now, retryAfter * 1000);
        if (retryAfter > 0) pausedUntil = Math.max(pausedUntil, now + retryAfter * 1000);
        release();
        acquire(worker); // the same page again (p-retry: at once; the gate paces it)
      });
    });
  };

  // A worker takes the next page while pages are left to be taken.
  let taken = 0;
  const worker = () => {
    if (taken >= pages) return;
    taken++;
    acquire(worker);
  };
  for (let i = 0; i < concurrency; i++) at(0, worker);
  while (events.length > 0) {
    const e = events.shift() as Event;
    now = e.at;
    e.run();
  }
  if (left !== 0) throw new Error(`simulation ended with ${left} pages left`);

  const t0 = log[0]?.arrived ?? 0;
  const learning: [number, number][] = [[t0, t0 + (limits[0]?.windowSeconds ?? 0) * 1000]];
  const byArrival = [...log].sort((a, b) => a.arrived - b.arrived);
  for (const limit of limits.slice(1)) {
    const changed = byArrival[limit.after ?? 0]?.arrived;
    if (changed !== undefined) learning.push([changed, changed + 2 * limit.windowSeconds * 1000]);
  }
  const refused = log.filter((r) => r.refused);
  return {
    seconds: (end - (log[0]?.at ?? 0)) / 1000,
    ideal: ideal(limits, pages),
    requests: log.length,
    refused: refused.length,
    lateRefused: refused.filter((r) => !learning.some(([a, b]) => r.arrived >= a && r.arrived < b))
      .length,
    log,
    pacer,
  };
}
