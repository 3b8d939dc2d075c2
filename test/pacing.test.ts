/**
 * Pacing to Spotify's rate limit (issue 17). The pacer is pure and driven by a virtual clock, so
 * its tests count requests against the emulator's own rolling window without waiting; the
 * end-to-end tests run the CLI against an emulator that enforces a window and count 429s, never
 * times.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { parseRateLimit, type RateLimit, RateWindow } from '../src/emulator/faults.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { Pacer, type Ticket } from '../src/sources/throttle.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { runToBuffer } from './helpers/run.ts';

interface Sent {
  at: number;
  refused: boolean;
  /** After a refusal: the learned count. */
  count?: number | undefined;
}

/**
 * A client sending `total` requests one after the other through `pacer`, on a virtual clock,
 * to a server enforcing `limits`; answers are instant and a 429's Retry-After is waited out.
 * Until the first 429, requests go `firstGapMs` apart.
 */
function drive(pacer: Pacer, limits: RateLimit[], total: number, firstGapMs = 0): Sent[] {
  const server = new RateWindow(limits);
  const log: Sent[] = [];
  let now = 0;
  for (let done = 0; done < total; now += pacer.window === undefined ? firstGapMs : 0) {
    const wait = pacer.delay(now);
    assert.ok(Number.isFinite(wait), 'a lone client never waits for news');
    now += wait;
    const ticket = pacer.send(now);
    const retryAfter = server.admit(now);
    log.push({ at: now, refused: retryAfter !== undefined });
    if (retryAfter === undefined) {
      pacer.succeeded(ticket, now);
      done++;
    } else {
      pacer.refused(ticket, now, retryAfter * 1000);
      (log.at(-1) as Sent).count = pacer.window?.count;
      now += retryAfter * 1000;
    }
  }
  return log;
}

/** The most requests sent (refused or not) within any `windowMs`, from the `from`-th on. */
function mostInAWindow(log: Sent[], windowMs: number, from = 0): number {
  let most = 0;
  let start = from;
  for (let end = from; end < log.length; end++) {
    while ((log[start] as Sent).at <= (log[end] as Sent).at - windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

const refusedAfter = (log: Sent[], from: number) => log.slice(from).filter((s) => s.refused).length;

test('emulator rate window: COUNT per rolling window, the rest 429 with the seconds until room', () => {
  const window = new RateWindow([{ count: 3, windowSeconds: 10 }]);
  assert.deepEqual(
    [0, 1000, 2000, 2500].map((t) => window.admit(t)),
    [undefined, undefined, undefined, 8],
  );
  assert.equal(window.admit(9999), 1, 'a refused request took no room');
  assert.equal(window.admit(10_000), undefined, 'the first one left the window');
  assert.equal(window.admit(10_500), 1);
  const fixed = new RateWindow([{ count: 1, windowSeconds: 30, retryAfter: 1 }]);
  assert.deepEqual([fixed.admit(0), fixed.admit(1)], [undefined, 1]);
  // A limit that halves after 4 requests: room comes when enough of the old ones left.
  const halving = new RateWindow([
    { count: 4, windowSeconds: 1 },
    { count: 2, windowSeconds: 1, after: 4 },
  ]);
  assert.deepEqual(
    [0, 100, 200, 300, 400].map((t) => halving.admit(t)),
    [undefined, undefined, undefined, undefined, 1],
  );
  assert.equal(halving.admit(1150), 1, '0 and 100 left, 200 and 300 still fill the new limit');
  assert.equal(halving.admit(1250), undefined, '200 left too');
  assert.equal(halving.admit(1260), 1);
});

test('emulator --rate-limit specs parse, and bad ones say what is expected', () => {
  assert.deepEqual(parseRateLimit('100/30'), { count: 100, windowSeconds: 30 });
  assert.deepEqual(parseRateLimit('5/1:after=120,retryAfter=1'), {
    count: 5,
    windowSeconds: 1,
    after: 120,
    retryAfter: 1,
  });
  assert.throws(() => parseRateLimit('100'), /expected COUNT\/SECONDS/);
  assert.throws(() => parseRateLimit('0/30'), /COUNT >= 1/);
  assert.throws(() => parseRateLimit('10/1:every=2'), /unknown parameter every/);
});

test('pacer: nothing is held back before the first 429', () => {
  const pacer = new Pacer();
  for (let i = 0; i < 1000; i++) {
    assert.equal(pacer.delay(i), 0);
    pacer.succeeded(pacer.send(i), i);
  }
  assert.equal(pacer.window, undefined);
  assert.equal(pacer.rate, Number.POSITIVE_INFINITY);
});

test('pacer: learns the window from the first 429 and keeps inside it (10 per 1 s)', () => {
  const pacer = new Pacer();
  const log = drive(pacer, [{ count: 10, windowSeconds: 1 }], 300);
  assert.equal(
    log.findIndex((s) => s.refused),
    10,
    'the first 429 ends the first burst',
  );
  assert.equal(log.length, 303);
  // 30 windows: past the first 429 only probes are refused (the first after 8 s of clean
  // running, the next 16 s later), each one request over, each followed by the window that
  // worked.
  assert.equal(refusedAfter(log, 11), 2);
  assert.equal(mostInAWindow(log, 1000, 11), 11);
  assert.deepEqual(pacer.window, { count: 10, ms: 1000 }, 'learned exactly');
});

test('pacer: a Retry-After that says nothing of the window (always 1 s, 50 per 5 s) is learned within the window', () => {
  const pacer = new Pacer();
  const log = drive(pacer, [{ count: 50, windowSeconds: 5, retryAfter: 1 }], 400);
  assert.deepEqual(pacer.window, { count: 50, ms: 5000 });
  // While the first burst fills Spotify's window, one request per Retry-After tests it, and
  // each refusal stretches the learned window (to the Retry-After's upper bound).
  const firstWindow = log.filter((s) => s.at < 5000);
  assert.equal(refusedAfter(firstWindow, 0), 5);
  // Then 35 s at the limit: one failed probe.
  const after = log.findIndex((s) => s.at >= 5000);
  assert.equal(refusedAfter(log, after), 1);
  assert.equal(mostInAWindow(log, 5000, after), 51);
});

test('pacer: when the limit halves it learns the new count within two 429s', () => {
  const pacer = new Pacer();
  const log = drive(
    pacer,
    [
      { count: 10, windowSeconds: 1 },
      { count: 5, windowSeconds: 1, after: 100 },
    ],
    300,
  );
  assert.deepEqual(pacer.window, { count: 5, ms: 1000 });
  // The 101st request is the first under the new limit; re-learning takes two 429s (a cut to
  // what got through before the change, then to what got through after it).
  const changed = log.findIndex((s, i) => i >= 100 && s.refused);
  const relearned = log.findIndex((s) => s.at >= (log[changed] as Sent).at + 2000);
  assert.equal(refusedAfter(log, changed) - refusedAfter(log, relearned), 2);
  // 40 windows at the new limit: one failed probe.
  assert.equal(refusedAfter(log, relearned), 1);
  assert.equal(mostInAWindow(log, 1000, relearned), 6);
});

test('pacer: one 429 at most halves the count (10 to 2: 8, 4, 2)', () => {
  const pacer = new Pacer();
  const log = drive(
    pacer,
    [
      { count: 10, windowSeconds: 1 },
      { count: 2, windowSeconds: 1, after: 100 },
    ],
    200,
  );
  const counts = log.slice(100).flatMap((s) => (s.refused ? [s.count] : []));
  assert.deepEqual(counts.slice(0, 3), [8, 4, 2]);
});

test('pacer: a limit one request lower is learned at the second 429 on the same edge', () => {
  const pacer = new Pacer();
  const log = drive(
    pacer,
    [
      { count: 10, windowSeconds: 1 },
      { count: 9, windowSeconds: 1, after: 100 },
    ],
    300,
  );
  assert.equal(pacer.window?.count, 9);
  const changed = log.findIndex((s, i) => i >= 100 && s.refused);
  assert.equal(refusedAfter(log, changed), 2, 'refused at the edge twice, then no more');
});

test('pacer: the first estimate counts what Spotify took, in whatever order the answers come', () => {
  const pacer = new Pacer();
  const sent = Array.from({ length: 12 }, () => pacer.send(0));
  const [t9, t10, t11, t12] = sent.slice(8) as [Ticket, Ticket, Ticket, Ticket];
  // Spotify refused the 11th: the ten sent before it count.
  assert.equal(pacer.refused(t11, 5, 1000), true);
  assert.equal(pacer.window?.count, 10);
  // The 9th arrived late and was refused too: it did not count.
  assert.equal(pacer.refused(t9, 6, 1000), false);
  assert.equal(pacer.window?.count, 9);
  // The 12th, sent after the 11th, was refused: never counted. The 10th was taken.
  pacer.refused(t12, 6, 1000);
  pacer.succeeded(t10, 7);
  assert.equal(pacer.window?.count, 9);
  // Another run: the 10th is refused first, then the 11th (sent after it) is taken.
  const other = new Pacer();
  const again = Array.from({ length: 12 }, () => other.send(0));
  other.refused(again[9] as Ticket, 5, 1000);
  assert.equal(other.window?.count, 9);
  other.succeeded(again[10] as Ticket, 6);
  assert.equal(other.window?.count, 10, 'the window had room for one more');
});

test('pacer: a failed probe returns to the window that worked, and the next probe waits twice as long', () => {
  const pacer = new Pacer();
  const log = drive(pacer, [{ count: 10, windowSeconds: 1 }], 3000);
  assert.deepEqual(pacer.window, { count: 10, ms: 1000 });
  // 300 windows: probes fail after 8, 16, 32, 64 and 128 s of clean running (8 s is the floor
  // while 2, 4 and 8 windows are shorter).
  const refused = log.flatMap((s, i) => (s.refused && i > 10 ? [Math.round(s.at / 1000)] : []));
  assert.equal(refused.length, 5, `refused at ${refused.join(', ')} s`);
});

test("pacer: after a slow first burst, the first probes search the Retry-After's second", () => {
  // Ten requests 30 ms apart, the 11th refused at 300 ms with Retry-After 1: the pacer learns
  // 10 per 1.3 s, while Spotify allows 10 per 1 s (Retry-After is whole seconds).
  const pacer = new Pacer();
  const log = drive(pacer, [{ count: 10, windowSeconds: 1 }], 300, 30);
  assert.equal(
    log.findIndex((s) => s.refused),
    10,
  );
  assert.equal((log[10] as Sent).count, 10);
  // Steps of half the burst after two windows each: 1.15 s, 1 s, then 0.85 s is refused and the
  // window goes back to 1 s; once more with half the step (0.925 s, refused); later only the
  // usual slow probes (one refused, 17 s later).
  assert.deepEqual(pacer.window, { count: 10, ms: 1000 });
  const at = log.flatMap((s, i) => (s.refused && i > 10 ? [Math.round(s.at / 1000)] : []));
  assert.deepEqual(at, [9, 12, 29]);
});

test('pacer: probing from a window learned too long finds the real one', () => {
  // The first 429 comes after 0.5 s of requests every 50 ms with a Retry-After of 2 s: the pacer
  // learns 10 per 2.45 s while Spotify allows 10 per 1 s.
  const pacer = new Pacer();
  for (let t = 0; t < 500; t += 50) pacer.succeeded(pacer.send(t), t);
  pacer.refused(pacer.send(450), 450, 2000);
  assert.deepEqual(pacer.window, { count: 10, ms: 2450 - 0 });
  const log = drive(pacer, [{ count: 10, windowSeconds: 1 }], 3000);
  const learned = pacer.window;
  assert.ok(learned && learned.ms < 1200, `still ${JSON.stringify(learned)}`);
  assert.ok(refusedAfter(log, 0) <= 6, `${refusedAfter(log, 0)} refused`);
});

test('pacer: --max-rate spaces requests from the first one on', () => {
  const pacer = new Pacer(4);
  const log = drive(pacer, [{ count: 5, windowSeconds: 1 }], 400);
  assert.equal(refusedAfter(log, 0), 0, 'a cap under the limit never meets a 429');
  assert.equal(mostInAWindow(log, 1000), 4);
  assert.equal(pacer.rate, 4);
});

test('pacer: after a 429 one request tests the water, the others wait for its answer', () => {
  const pacer = new Pacer();
  const first = pacer.send(0);
  const inFlight = pacer.send(0);
  pacer.refused(first, 10, 1000);
  assert.equal(pacer.refused(inFlight, 11, 1000), false, 'the same congestion event');
  assert.equal(pacer.window?.count, 1, 'no second cut, and only what was sent before counted');
  assert.equal(pacer.delay(2000), 0);
  const tester = pacer.send(2000);
  assert.equal(pacer.delay(2001), Number.POSITIVE_INFINITY);
  pacer.succeeded(tester, 2010);
  assert.notEqual(pacer.delay(3500), Number.POSITIVE_INFINITY);
});

// --- end to end: the CLI and the library against an emulator enforcing a window -------------

const emulators: Emulator[] = [];
async function emulator(options: Parameters<typeof startEmulator>[0]): Promise<Emulator> {
  const e = await startEmulator({ seed: 17, ...options });
  emulators.push(e);
  return e;
}
after(() => Promise.all(emulators.map((e) => e.stop())));

test('a run against a rolling window: 429s end with the first burst, the output is complete', async () => {
  const clean = (await runToBuffer(await emulator({ albums: 3000 }))).bytes;
  const e = await emulator({ albums: 3000, rateLimit: { count: 20, windowSeconds: 2 } });
  const { bytes, report } = await runToBuffer(e, { concurrency: 4 });
  assert.ok(bytes.equals(clean), 'output differs from the unlimited run');
  assert.equal(report.pages, 60);
  // The first burst fills the window: the 21st request is refused, and at most the other three
  // in flight with it. After that the client keeps inside the window it learned.
  const log = e.stats.log;
  const first = log.findIndex((r) => r.status === 429);
  assert.ok(first >= 20, `the first 429 came at request ${first + 1}`);
  const learned = log.findIndex((r, i) => i > first && r.status === 200);
  const refusedLater = log.slice(learned).filter((r) => r.status === 429).length;
  assert.ok(refusedLater <= 1, `${refusedLater} requests refused after learning`);
  assert.equal(report.rateLimited, e.stats.rateLimited);
  assert.equal(report.requests, e.stats.apiRequests);
  assert.ok(report.rate !== null && report.rate > 0 && report.rate <= 10, `rate ${report.rate}`);
});

test('--max-rate keeps under a limit from the first request: no 429 at all', async () => {
  const e = await emulator({ albums: 600, rateLimit: { count: 5, windowSeconds: 1 } });
  const result = await runCli(['new-releases', '--max-rate', '4', '--log-format', 'json'], {
    env: emulatorEnv(e),
  });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(e.stats.apiRequests, 12);
  assert.equal(e.stats.rateLimited, 0);
  const report = JSON.parse(result.stderr.trim().split('\n').at(-1) ?? '{}');
  assert.equal(report.rate, 4);
  assert.equal(report.requests, 12);
  assert.equal(report.rateLimited, 0);
});

test('the summary states the 429s and the rate paced at', async () => {
  const e = await emulator({ albums: 1000, rateLimit: { count: 8, windowSeconds: 1 } });
  const result = await runCli(['new-releases', '--out', '/dev/null'], { env: emulatorEnv(e) });
  assert.equal(result.status, 0, result.stderr);
  const summary = result.stderr.trim().split('\n').at(-1) ?? '';
  assert.match(summary, new RegExp(`${e.stats.rateLimited}× 429, waited \\d+\\.\\d s`));
  assert.match(summary, /paced at \d+(\.\d+)? requests\/s/);
  assert.match(result.stderr, /rate limited \(429\): all requests pause 1 s, then pace at /);
});

test('--max-rate must be a number above 0', async () => {
  for (const [value, message] of [
    ['0', /option --max-rate must be a number > 0, got 0/],
    ['fast', /option --max-rate must be a number, got "fast"/],
  ] as const) {
    const result = await runCli(['new-releases', '--max-rate', value], {
      env: { SPOTIFY_CLIENT_ID: 'x', SPOTIFY_CLIENT_SECRET: 'y' },
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, message);
  }
});

test('emulator --rate-limit: a bad spec is a usage error', async () => {
  const result = await runCli(['emulator', '--rate-limit', '10']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /option --rate-limit: rate limit "10": expected COUNT\/SECONDS/);
});
