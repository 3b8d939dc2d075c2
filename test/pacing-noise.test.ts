/**
 * The pacer under noise (issue 24's rolling-window rows on a loaded machine): the rules that
 * keep the learned window from ratcheting, each on the virtual clock with exact counts, and the
 * whole pacer through test/helpers/pacing-sim.ts (the Throttle's gate, the emulator's window,
 * seeded jitter, late timers and stalls).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateWindow } from '../src/emulator/faults.ts';
import { Pacer, type Ticket } from '../src/sources/throttle.ts';
import { WINDOW_ROWS } from './helpers/pacing-rows.ts';
import { LOADED, QUIET, simulate } from './helpers/pacing-sim.ts';

/**
 * A pacer that found 10 per 1 s, serially, each answered at once: learned from two bursts, then
 * shrunk until the 33rd was refused at its edge (test/pacing.test.ts); the time its pause ends,
 * when Spotify's window is empty.
 */
function learned(): { pacer: Pacer; now: number } {
  const pacer = new Pacer();
  const window = new RateWindow([{ count: 10, windowSeconds: 1 }]);
  let now = 0;
  for (let refused = 0; refused < 3; ) {
    now += pacer.delay(now);
    const ticket = pacer.send(now);
    const retryAfter = window.admit(now);
    if (retryAfter === undefined) pacer.succeeded(ticket, now);
    else {
      pacer.refused(ticket, now, retryAfter * 1000);
      now += retryAfter * 1000;
      refused++;
    }
  }
  return { pacer, now };
}

test('pacer: a request answered late counts from then: the one `count` after it waits for it', () => {
  const { pacer, now } = learned();
  assert.deepEqual(pacer.window, { count: 10, ms: 1000 });
  // Into the empty window: the first request answered after 100 ms (it may have reached Spotify
  // that late, stalled), the nine others sent 200 ms later, each answered at once.
  const first = pacer.send(now);
  pacer.succeeded(first, now + 100);
  for (let i = 0; i < 9; i++) pacer.succeeded(pacer.send(now + 200), now + 200);
  // Spotify's window holds all ten until the first leaves it, up to 100 ms after it was sent
  // plus a window: the eleventh waits for that. Counted from its sending, it would go 1 ms
  // after `now + 1000` (a delay of 2), and be refused if the first did arrive late.
  // (Its lateness: its round trip less the shortest lately seen, 0 ms, risen 1.6 ms by it.)
  assert.equal(Math.round(pacer.delay(now + 999)), 100);
});

test('pacer: a 429 at the window edge, answered a few ms later, lengthens the window', () => {
  const { pacer, now } = learned();
  // Ten sent 1 ms apart into an empty window, then the eleventh at their edge, refused; its 429
  // comes 3 ms later, when the first three have left our window. Counted from the 429, six were
  // in it ("room left": the window explains nothing, forgotten); from its sending, all ten.
  const t0 = now;
  for (let i = 0; i < 10; i++) {
    const t = pacer.send(t0 + i);
    pacer.succeeded(t, t0 + i);
  }
  assert.equal(pacer.delay(t0 + 999), 2);
  const edge = pacer.send(t0 + 1001);
  assert.equal(edge.held, true);
  assert.equal(pacer.refused(edge, t0 + 1004, 1000), true);
  assert.ok((pacer.window?.ms ?? 0) > 1000, JSON.stringify(pacer.window));
});

test("pacer: a 429 at the window's edge does not count its in-flight requests against the learning", () => {
  const { pacer, now } = learned();
  // Four at the window's edge: the first refused, the three sent with it taken. They were sent
  // before its 429 came, but after the learning event's: counting them as "taken after that
  // 429" (a full window would have refused them) made it a stray and forgot the window.
  const t0 = now;
  for (let i = 0; i < 10; i++) pacer.succeeded(pacer.send(t0), t0);
  assert.equal(pacer.delay(t0 + 999), 2);
  const edge = Array.from({ length: 4 }, () => pacer.send(t0 + 1001));
  assert.ok(edge.every((t) => t.held));
  pacer.refused(edge[0] as Ticket, t0 + 1002, 1000);
  for (const t of edge.slice(1)) pacer.succeeded(t, t0 + 1002);
  assert.ok(pacer.window !== undefined, 'still learned');
});

test('pacer: after one event, the request after as many as it took goes alone', () => {
  const pacer = new Pacer();
  // Fourteen in flight at once (--concurrency 16): ten taken, the 11th–14th refused.
  const burst = Array.from({ length: 14 }, () => pacer.send(0));
  for (const t of burst.slice(0, 10)) pacer.succeeded(t, 5);
  pacer.refused(burst[10] as Ticket, 5, 1000);
  for (const t of burst.slice(11)) pacer.refused(t, 5, 1000);
  assert.equal(pacer.window, undefined, 'one event teaches nothing');
  // After the pause, slow start doubles the requests in flight each round trip, until ten were
  // sent: the 11th goes alone (if Spotify's window is full again, one 429, not a dozen).
  let now = 1005;
  const allowed: number[] = [];
  for (let round = 0; round < 6; round++) {
    const inFlight: Ticket[] = [];
    while (pacer.delay(now) === 0 && inFlight.length < 100) inFlight.push(pacer.send(now));
    allowed.push(inFlight.length);
    now += 5;
    for (const t of inFlight) pacer.succeeded(t, now);
  }
  assert.deepEqual(allowed, [1, 2, 4, 3, 1, 2]);
});

// --- the whole pacer under noise -------------------------------------------------------------

const { tenC4, tenC16, fiftyC4, hundredC16, halvingTenC4 } = WINDOW_ROWS;
const rows = [tenC4, tenC16, fiftyC4, hundredC16, halvingTenC4];

/**
 * Per row and noise, seeds 1–3: [time ÷ ideal in hundredths, 429s, 429s outside learning (not in
 * the first window, nor the two after the limit changed)]. Under the loaded noise (0–30 ms each
 * way, timers up to 10 ms late, 2 % stalls of 100 ms on each) the 10-per-1-s rows run 10–18 %
 * over the ideal and the halving 17–24 %: learning from two bursts 20–40 % long on this noise,
 * and a whole-second pause per 429 where the window is one second (before this rule: 1.16× and
 * 1.21× medians of 20 seeds, and up to 9 % of the requests refused outside learning at
 * --concurrency 16; bench/pacing-sim.ts).
 */
const expected: Record<string, Record<'quiet' | 'loaded', [number, number, number][]>> = {
  '10 per 1 s, c4': {
    quiet: [
      [101, 6, 2],
      [101, 6, 2],
      [101, 6, 2],
    ],
    loaded: [
      [110, 6, 2],
      [118, 11, 7],
      [112, 6, 3],
    ],
  },
  '10 per 1 s, c16': {
    quiet: [
      [100, 18, 2],
      [100, 15, 2],
      [101, 10, 2],
    ],
    loaded: [
      [111, 10, 3],
      [110, 18, 5],
      [113, 10, 4],
    ],
  },
  '50 per 5 s, c4': {
    quiet: [
      [86, 6, 2],
      [86, 6, 2],
      [86, 6, 2],
    ],
    loaded: [
      [97, 8, 4],
      [95, 6, 2],
      [95, 5, 2],
    ],
  },
  '100 per 30 s, c16': {
    quiet: [
      [67, 15, 1],
      [67, 14, 1],
      [67, 15, 1],
    ],
    loaded: [
      [69, 16, 1],
      [69, 15, 1],
      [69, 10, 1],
    ],
  },
  '10 → 5 per 1 s after 100 requests, c4': {
    quiet: [
      [108, 13, 4],
      [108, 14, 4],
      [108, 12, 5],
    ],
    loaded: [
      [122, 22, 10],
      [124, 17, 8],
      [117, 15, 6],
    ],
  },
};

test('the pacer under seeded noise: time × ideal and 429s per row, exactly', () => {
  for (const row of rows) {
    for (const [label, noise] of [
      ['quiet', QUIET],
      ['loaded', LOADED],
    ] as const) {
      const runs = [1, 2, 3].map((seed) => simulate({ ...row, noise, seed }));
      const got = runs.map((r) => [
        Math.round((100 * r.seconds) / r.ideal),
        r.refused,
        r.lateRefused,
      ]);
      assert.deepEqual(got, expected[row.name]?.[label], `${row.name}, ${label}`);
      // Issue 17's targets where this noise lets them be met: 429s outside learning at most
      // 5 % of the requests everywhere; time at most 1.10× the ideal when quiet, and on the
      // longer windows under load.
      for (const r of runs) {
        assert.ok(r.lateRefused <= 0.05 * r.requests, `${row.name}, ${label}: ${r.lateRefused}`);
        if (label === 'quiet' || !row.name.startsWith('10 ')) {
          assert.ok(r.seconds <= 1.1 * r.ideal, `${row.name}, ${label}: ${r.seconds} s`);
        }
      }
    }
  }
});

test('a long pull keeps the window it found: 1,500 pages stay near the ideal past the 30 s forget timer', () => {
  // A window that holds requests back draws no 429, so after 30 s it is forgotten and relearned
  // from the next burst. Relearned from that burst's period plus its Retry-After, a 1 s window
  // came back as 2 s and a 5 s one as 7–9 s, and stayed (1.4× and 1.8× the ideal at 1,500
  // pages); it comes back at its own length.
  for (const row of [WINDOW_ROWS.tenC4, WINDOW_ROWS.fiftyC4]) {
    for (const seed of [1, 2, 3]) {
      const r = simulate({ ...row, pages: 1500, noise: QUIET, seed });
      const name = `${row.name}, 1500 pages, seed ${seed}`;
      assert.ok(r.seconds <= 1.1 * r.ideal, `${name}: ${r.seconds.toFixed(1)} s, ideal ${r.ideal}`);
      assert.ok(r.lateRefused <= 0.05 * r.requests, `${name}: ${r.lateRefused} 429s`);
    }
  }
});

test('a request that failed after a long wait does not teach lateness: the next edge 429 adds one step', () => {
  // The lateness a window must clear comes from answers: a failure may have waited out a whole
  // timeout (30 s), and counted as lateness it lengthened a 1 s window to 3.9 s for good.
  const windowAfter = (hangMs: number) => {
    const pacer = new Pacer();
    const spotify = new RateWindow([{ count: 10, windowSeconds: 1 }]);
    let now = 0;
    for (let refused = 0; refused < 3; ) {
      now += pacer.delay(now);
      const ticket = pacer.send(now);
      const retryAfter = spotify.admit(now);
      if (retryAfter === undefined) pacer.succeeded(ticket, now);
      else {
        pacer.refused(ticket, now, retryAfter * 1000);
        now += retryAfter * 1000;
        refused++;
      }
    }
    const learnedAt = now;
    const answer = (late: number) => {
      now += pacer.delay(now);
      const ticket = pacer.send(now);
      const retryAfter = spotify.admit(now);
      if (retryAfter === undefined) pacer.succeeded(ticket, now + late);
      else {
        pacer.refused(ticket, now + late, retryAfter * 1000);
        now += retryAfter * 1000;
      }
    };
    for (let i = 0; i < 80; i++) answer(20);
    // One request hangs, then fails; the others go on meanwhile.
    const slow = pacer.send(now);
    spotify.admit(now);
    let failed = false;
    while (now < learnedAt + hangMs + 50) {
      if (!failed && now >= learnedAt + hangMs) {
        pacer.failed(slow, now);
        failed = true;
      }
      answer(20);
    }
    if (!failed) pacer.failed(slow, now);
    // A request held to the window's edge, refused: Spotify's window is a little longer.
    now += pacer.delay(now);
    const edge = pacer.send(now);
    assert.equal(edge.held, true);
    pacer.refused(edge, now + 3, 1000);
    return pacer.window?.ms ?? 0;
  };
  for (const hangMs of [0, 30_000]) {
    const ms = windowAfter(hangMs);
    assert.ok(ms > 1000 && ms < 1100, `after a ${hangMs} ms failure: ${ms} ms`);
  }
});

test('a Retry-After longer than two windows does not forget the window it paused', () => {
  // Spotify may ask for more than its window (3 s on a 1 s window). The pause is no idle time
  // of the window's: counted as idle, the window was forgotten when the pause ended and
  // relearned from more 429s, 3 s each (2.2× the ideal; now 1.7×: the two 429s that teach it
  // cost 6 s of a 20 s pull).
  for (const seed of [1, 2, 3]) {
    const row = { ...WINDOW_ROWS.tenC4, limits: [{ count: 10, windowSeconds: 1, retryAfter: 3 }] };
    const r = simulate({ ...row, seed });
    assert.ok(r.seconds <= 1.8 * r.ideal, `seed ${seed}: ${r.seconds.toFixed(1)} s`);
  }
});
