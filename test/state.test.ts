/**
 * Incremental pulls: the state is read at the start, written as one more output of the commit,
 * never moved by a failed run, held by one run at a time, bounded by a TTL — on files and S3.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator, tempDir } from './helpers/servers.ts';
import { untilExit } from './helpers/wait.ts';

/** A broken lease or commit shows as a hung run: fail fast instead. */
const T = { timeout: 60_000 };
const HEADER = '# spotify-batch state v1: album_id\tfirst_seen\tmarket';

const emulator = startedEmulator({ seed: 5, albums: 300 });
const slow = startedEmulator({ seed: 5, albums: 1_000, latencyMs: 40 });
const s3 = localS3('state');
const dir = tempDir('spotify-batch-state-');

const today = new Date().toISOString().slice(0, 10);
/** CSV records (the header left out); a record starts with a 22-character album id. */
const lines = (csv: string | Buffer) =>
  csv
    .toString()
    .split(/\n(?=[0-9A-Za-z]{22},)/)
    .slice(1)
    .map((l) => l.replace(/\n$/, ''))
    .filter(Boolean);
const albumIds = (csv: string | Buffer) => new Set(lines(csv).map((l) => l.slice(0, 22)));

test(
  'day one writes every album; day two, over an overlapping list, exactly the new ones',
  T,
  async () => {
    const state = join(dir, 'daily.state');
    const day1 = await runCli(
      [
        'new-releases',
        '--market',
        'SE',
        '--state',
        state,
        '--new-only',
        '--out',
        join(dir, 'd1.csv'),
      ],
      { env: emulatorEnv(emulator) },
    );
    assert.equal(day1.status, 0, day1.stderr);
    assert.match(day1.stderr, /state: 300 new, 0 seen before/);
    const full1 = await runCli(['new-releases', '--market', 'SE', '--out', '-'], {
      env: emulatorEnv(emulator),
    });
    assert.deepEqual(await readFile(join(dir, 'd1.csv')), full1.stdout, 'day one: everything');
    const written = (await readFile(state, 'utf8')).split('\n');
    assert.equal(written[0], HEADER);
    assert.equal(written.filter(Boolean).length, 301);
    assert.match(written[1] ?? '', new RegExp(`^[0-9A-Za-z]{22}\\t${today}\\tSE$`));

    // Day two: another market, whose list overlaps SE's in part.
    const day2 = await runCli(
      [
        'new-releases',
        '--market',
        'US',
        '--state',
        state,
        '--new-only',
        '--out',
        join(dir, 'd2.csv'),
      ],
      { env: emulatorEnv(emulator) },
    );
    assert.equal(day2.status, 0, day2.stderr);
    const full2 = (
      await runCli(['new-releases', '--market', 'US', '--out', '-'], { env: emulatorEnv(emulator) })
    ).stdout;
    const seen = albumIds(full1.stdout);
    const expected = lines(full2).filter((l) => !seen.has(l.slice(0, 22)));
    const got = lines(await readFile(join(dir, 'd2.csv')));
    assert.ok(expected.length > 0 && expected.length < lines(full2).length, 'the lists overlap');
    assert.deepEqual(got, expected, "day two: the full day-two output's rows for the new albums");
    // Counted per album, including albums without artists (no rows, but listed and new).
    const counted = /state: (\d+) new, (\d+) seen before/.exec(day2.stderr);
    const newAlbums = Number(counted?.[1]);
    assert.equal(newAlbums + Number(counted?.[2]), 300);
    assert.ok(newAlbums >= new Set(expected.map((l) => l.slice(0, 22))).size);
    assert.equal(
      (await readFile(state, 'utf8')).split('\n').filter(Boolean).length,
      301 + newAlbums,
    );
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes('lease')),
      [],
      'lease released',
    );
  },
);

test(
  'without --new-only the state records what was seen, and first_seen_at gives its date',
  T,
  async () => {
    const state = join(dir, 'seen.state');
    const old = `${HEADER}\n`;
    await writeFile(state, old);
    const result = await runCli(
      ['new-releases', '--state', state, '--columns', 'album_id,first_seen_at', '--out', '-'],
      { env: emulatorEnv(emulator) },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.ok(lines(result.stdout).every((l) => l.endsWith(`,${today}`)));
    assert.equal((await readFile(state, 'utf8')).split('\n').filter(Boolean).length, 301);
  },
);

test('a failed run leaves the state byte-identical, and its lease is released', T, async () => {
  const state = join(dir, 'fail.state');
  const ok = await runCli(['new-releases', '--state', state, '--out', join(dir, 'f.csv')], {
    env: emulatorEnv(emulator),
  });
  assert.equal(ok.status, 0, ok.stderr);
  const before = await readFile(state);
  const failing = await startEmulator({
    seed: 6,
    albums: 300,
    faults: [{ kind: '500', offset: 250 }],
  });
  try {
    const result = await runCli(
      [
        'new-releases',
        '--state',
        state,
        '--new-only',
        '--max-retries',
        '0',
        '--out',
        join(dir, 'f2.csv'),
      ],
      { env: emulatorEnv(failing) },
    );
    assert.equal(result.status, 4, result.stderr);
  } finally {
    await failing.stop();
  }
  assert.deepEqual(await readFile(state), before);
  assert.ok(!(await readdir(dir)).includes('fail.state.lease'));
});

test(
  'two runs at once: the second fails at once naming the first, and writes nothing',
  T,
  async () => {
    const state = join(dir, 'busy.state');
    let first: ChildProcess | undefined;
    // The first run's pages are held until the second has ended: it holds the lease meanwhile,
    // however long the second takes to start.
    const hold = slow.hold();
    const running = runCli(
      ['new-releases', '-c', '1', '--state', state, '--out', join(dir, 'busy1.csv')],
      { env: emulatorEnv(slow), onSpawn: (c) => (first = c) },
    );
    let second: Awaited<ReturnType<typeof runCli>>;
    let lease: { runId: string; startedAt: string };
    try {
      // The lease is taken (and written) before the first page is asked for.
      await slow.waitFor(() => hold.held >= 1, {
        signal: untilExit(first, 'the first run asked for a page'),
      });
      lease = JSON.parse(await readFile(join(dir, 'busy.state.lease'), 'utf8'));
      second = await runCli(['new-releases', '--state', state, '--out', join(dir, 'busy2.csv')], {
        env: emulatorEnv(emulator),
      });
    } finally {
      hold.release();
    }
    assert.equal(second.status, 8, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(
        `is in use by run ${lease.runId}, started ${lease.startedAt.replace(/\./g, '\\.')} on .* \\(pid ${first?.pid}\\)`,
      ),
    );
    assert.ok(!(await readdir(dir)).some((f) => f.startsWith('busy2') || f.startsWith('.busy2')));
    const result = await running;
    assert.equal(result.status, 0, result.stderr);
    assert.ok((await readdir(dir)).includes('busy.state'));
  },
);

test('a lease older than its expiry is taken over', T, async () => {
  const state = join(dir, 'stale.state');
  await writeFile(
    `${state}.lease`,
    JSON.stringify({
      runId: 'dead-run',
      startedAt: '2020-01-01T00:00:00.000Z',
      host: 'gone',
      pid: 1,
    }),
  );
  const result = await runCli(['new-releases', '--state', state, '--out', join(dir, 'stale.csv')], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 0, result.stderr);
  assert.match(
    result.stderr,
    /took over the lease .* of run dead-run, .*: the lease had expired\n/,
  );
  assert.ok(!(await readdir(dir)).includes('stale.state.lease'));
});

test('--state-ttl drops ids first seen longer ago, and says how many', T, async () => {
  const state = join(dir, 'ttl.state');
  const old = ['0000000000000000000001', '0000000000000000000002'].map(
    (id) => `${id}\t2020-01-01\tSE`,
  );
  const recent = `0000000000000000000003\t${today}\tSE`;
  await writeFile(state, `${[HEADER, ...old, recent].join('\n')}\n`);
  const result = await runCli(
    [
      'new-releases',
      '--state',
      state,
      '--state-ttl',
      '30',
      '--new-only',
      '--out',
      join(dir, 'ttl.csv'),
    ],
    { env: emulatorEnv(emulator) },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /state: 300 new, 0 seen before, 2 expired/);
  const kept = await readFile(state, 'utf8');
  assert.ok(!kept.includes('2020-01-01'));
  assert.ok(kept.includes(recent));
});

test(
  'a corrupt or foreign state fails with one line naming it (exit 2), nothing written',
  T,
  async () => {
    for (const [name, text, why] of [
      ['foreign.state', 'album_id,album_name\n1,x\n', /line 1: expected the header/],
      [
        'corrupt.state',
        `${HEADER}\nnot a line\n`,
        /line 2: expected album_id<TAB>YYYY-MM-DD<TAB>market/,
      ],
    ] as const) {
      const state = join(dir, name);
      await writeFile(state, text);
      const out = join(dir, `${name}.csv`);
      const result = await runCli(['new-releases', '--state', state, '--out', out], {
        env: emulatorEnv(emulator),
      });
      assert.equal(result.status, 2, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `^spotify-batch: error: option --state: ${state.replace(/\./g, '\\.')} is not a usable spotify-batch state`,
        ),
      );
      assert.match(result.stderr, why);
      assert.equal(await readFile(state, 'utf8'), text);
      assert.ok(!(await readdir(dir)).includes(`${name}.csv`));
      assert.ok(!(await readdir(dir)).includes(`${name}.lease`));
    }
  },
);

test(
  'S3: day one and two, a concurrent run refused by the conditional lease, the state versioned in the manifest',
  T,
  async () => {
    const env = { ...emulatorEnv(emulator), ...s3.env };
    const state = 's3://state/spotify/state.tsv';
    const out = (day: string) => `s3://state/spotify/dt=${day}/{market}.csv`;
    const day1 = await runCli(
      ['new-releases', '--market', 'SE', '--state', state, '--new-only', '--out', out('1')],
      { env },
    );
    assert.equal(day1.status, 0, day1.stderr);
    const day2 = await runCli(
      ['new-releases', '--market', 'SE,US', '--state', state, '--new-only', '--out', out('2')],
      { env },
    );
    assert.equal(day2.status, 0, day2.stderr);
    const se2 = (await s3.getObject('state', 'spotify/dt=2/SE.csv'))?.body.toString() ?? '';
    assert.equal(lines(se2).length, 0, 'SE had nothing new on day two');
    const manifest = JSON.parse(
      (await s3.getObject('state', 'spotify/dt=2/_manifest.json'))?.body.toString() ?? '{}',
    );
    assert.equal(manifest.state.location, state);
    assert.match(manifest.state.version, /^"[0-9a-f]+"$/);
    assert.ok(!(await s3.listKeys('state')).includes('spotify/state.tsv.lease'));

    // Someone else's lease on S3: refused by If-None-Match, nothing written.
    await s3.client.send(
      new PutObjectCommand({
        Bucket: 'state',
        Key: 'spotify/state.tsv.lease',
        Body: JSON.stringify({
          runId: 'other-run',
          startedAt: new Date().toISOString(),
          host: 'h',
          pid: 7,
        }),
      }),
    );
    const before = (await s3.getObject('state', 'spotify/state.tsv'))?.body;
    const busy = await runCli(
      ['new-releases', '--market', 'SE', '--state', state, '--out', out('3')],
      { env },
    );
    assert.equal(busy.status, 8, busy.stderr);
    assert.match(busy.stderr, /in use by run other-run/);
    assert.deepEqual((await s3.getObject('state', 'spotify/state.tsv'))?.body, before);
    assert.ok(!(await s3.listKeys('state')).some((k) => k.startsWith('spotify/dt=3')));
  },
);

test(
  'S3: a state changed under the run fails it before anything is published (exit 8)',
  T,
  async () => {
    const env = { ...emulatorEnv(slow), ...s3.env };
    const state = 's3://state/changed/state.tsv';
    await s3.client.send(
      new PutObjectCommand({ Bucket: 'state', Key: 'changed/state.tsv', Body: `${HEADER}\n` }),
    );
    let child: ChildProcess | undefined;
    const hold = slow.hold((r) => r.offset >= 150);
    const running = runCli(
      ['new-releases', '-c', '1', '--state', state, '--out', 's3://state/changed/out.csv'],
      {
        env,
        onSpawn: (c) => (child = c),
      },
    );
    // Three pages answered, the fourth held: the run is mid-pull while the state changes.
    try {
      await slow.waitFor(() => hold.held >= 1, {
        signal: untilExit(child, 'the run asked for its fourth page'),
      });
      // Another writer, not this tool (which the lease would have kept out).
      await s3.client.send(
        new PutObjectCommand({
          Bucket: 'state',
          Key: 'changed/state.tsv',
          Body: `${HEADER}\n0000000000000000000009\t${today}\tSE\n`,
        }),
      );
    } finally {
      hold.release();
    }
    const result = await running;
    assert.ok(child);
    assert.equal(result.status, 8, result.stderr);
    assert.match(result.stderr, /changed while this run was going; nothing was published/);
    assert.ok(!(await s3.listKeys('state')).includes('changed/out.csv'));
    assert.deepEqual(await s3.openUploads('state'), []);
  },
);

test(
  'a market skipped under --on-market-error skip leaves its albums out of the state',
  T,
  async () => {
    const state = join(dir, 'skip.state');
    const failingDe = await startEmulator({
      seed: 5,
      albums: 300,
      faults: [{ kind: '404', market: 'DE', offset: 100 }],
    });
    try {
      const out = join(dir, 'skip', '{market}.csv');
      const first = await runCli(
        [
          'new-releases',
          '--market',
          'SE,DE',
          '-c',
          '1',
          '--on-market-error',
          'skip',
          '--state',
          state,
          '--new-only',
          '--out',
          out,
        ],
        { env: emulatorEnv(failingDe) },
      );
      assert.equal(first.status, 7, first.stderr);
      assert.match(first.stderr, /state: 300 new, 0 seen before/, 'only SE counted');
      const ids = (await readFile(state, 'utf8')).split('\n').slice(1).filter(Boolean);
      assert.equal(ids.length, 300);
      assert.ok(
        ids.every((line) => line.endsWith('\tSE')),
        'no DE album recorded',
      );
    } finally {
      await failingDe.stop();
    }
    // DE, healthy again, still has its albums to write: none was lost.
    const second = await runCli(
      [
        'new-releases',
        '--market',
        'DE',
        '--state',
        state,
        '--new-only',
        '--out',
        join(dir, 'skip2', '{market}.csv'),
      ],
      { env: emulatorEnv(emulator) },
    );
    assert.equal(second.status, 0, second.stderr);
    const counted = /state: (\d+) new/.exec(second.stderr);
    assert.ok(Number(counted?.[1]) > 0, second.stderr);
  },
);

test(
  'a --new-only re-run over existing outputs is refused, and they stay as they were',
  T,
  async () => {
    const state = join(dir, 'rerun.state');
    const out = join(dir, 'rerun', 'dt=X', '{market}.csv');
    const first = await runCli(
      ['new-releases', '--market', 'SE', '--state', state, '--new-only', '--out', out],
      {
        env: emulatorEnv(emulator),
      },
    );
    assert.equal(first.status, 0, first.stderr);
    const before = await readFile(join(dir, 'rerun', 'dt=X', 'SE.csv'));
    const again = await runCli(
      ['new-releases', '--market', 'SE', '--state', state, '--new-only', '--out', out],
      {
        env: emulatorEnv(emulator),
      },
    );
    assert.equal(again.status, 10, again.stderr);
    assert.match(again.stderr, /option --new-only: .*SE\.csv already exists/);
    assert.deepEqual(await readFile(join(dir, 'rerun', 'dt=X', 'SE.csv')), before);
  },
);

test('an unreadable lease (a run killed while writing it) expires by its age', T, async () => {
  const state = join(dir, 'garbled.state');
  const lease = `${state}.lease`;
  await writeFile(lease, '');
  const old = new Date('2020-01-01T00:00:00Z');
  await utimes(lease, old, old);
  const result = await runCli(
    ['new-releases', '--state', state, '--out', join(dir, 'garbled.csv')],
    {
      env: emulatorEnv(emulator),
    },
  );
  assert.equal(result.status, 0, result.stderr);
  await writeFile(lease, '');
  const fresh = await runCli(
    ['new-releases', '--state', state, '--out', join(dir, 'garbled2.csv')],
    {
      env: emulatorEnv(emulator),
    },
  );
  assert.equal(fresh.status, 8, 'a fresh unreadable lease still holds');
  assert.match(
    fresh.stderr,
    /the lease is unreadable; .*if that run is gone, release the lease: spotify-batch unlock --state \S+ --force\n$/,
  );
});
