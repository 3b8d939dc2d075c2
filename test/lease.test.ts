/**
 * The state's lease recovers from a killed run: a lease naming this host and a pid that is no
 * longer a process is taken over at once (said in one line, also under --quiet); anything else
 * is refused naming `spotify-batch unlock`, which releases a dead run's lease (any with --force).
 * Files and S3, with real CLI children SIGKILLed while they hold the lease.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { normalizeS3Options } from '../src/core/options/s3.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { Destinations } from '../src/sinks/open.ts';
import { acquireLease, type Here, holderStatus, LEASE_EXPIRY_HOURS } from '../src/state/state.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator, tempDir } from './helpers/servers.ts';
import { untilExit } from './helpers/wait.ts';

/** A broken lease shows as a hung run: fail fast instead. */
const T = { timeout: 60_000 };
const BUCKET = 'leases';

const emulator = startedEmulator({ seed: 5, albums: 300 });
const s3 = localS3(BUCKET);
const dir = tempDir('spotify-batch-lease-');

const pidns = (() => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
})();

/** The pid of a process that has exited (and was reaped): no process has it now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('close', resolve));
  assert.ok(child.pid);
  return child.pid;
}

interface Lease {
  runId: string;
  startedAt: string;
  host: string;
  pid: number;
  pidns?: string;
}

/**
 * A CLI pull against an emulator that holds every page: it has taken the lease and waits for
 * Spotify, for as long as the test likes. `read` gives the lease as stored.
 */
async function holdingRun(
  args: string[],
  env: NodeJS.ProcessEnv,
  read: () => Promise<string | undefined>,
) {
  const stuck = await startEmulator({ seed: 5, albums: 300 });
  const hold = stuck.hold();
  let child: ChildProcess | undefined;
  const result = runCli(['new-releases', '-c', '1', ...args], {
    env: { ...env, ...emulatorEnv(stuck) },
    onSpawn: (c) => (child = c),
  });
  // The lease is taken before anything is fetched: a held page means the lease is there.
  await stuck.waitFor(() => hold.held >= 1, {
    signal: untilExit(child, 'the run asked for its first page'),
  });
  const text = await read();
  assert.ok(text, 'the lease is there while the run waits');
  const lease = JSON.parse(text) as Lease;
  assert.ok(child?.pid);
  assert.equal(lease.pid, child.pid);
  assert.equal(lease.host, hostname());
  return {
    child,
    lease,
    text,
    result,
    /** Lets the held pages go (a run still alive then finishes), and stops the emulator. */
    async finish() {
      hold.release();
      const ended = await result;
      await stuck.stop();
      return ended;
    },
  };
}

const fileLease = (state: string) => () =>
  readFile(`${state}.lease`, 'utf8').catch(() => undefined);
const s3Lease = (key: string) => async () =>
  (await s3.getObject(BUCKET, `${key}.lease`))?.body.toString();

test(
  'file: a run SIGKILLed while it holds the lease; the retry takes it over at once and says so under --quiet',
  T,
  async () => {
    const state = join(dir, 'killed.state');
    const out = join(dir, 'killed.csv');
    const run = await holdingRun(['--state', state, '--out', out], {}, fileLease(state));
    run.child.kill('SIGKILL');
    const killed = await run.finish();
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(await fileLease(state)(), run.text, 'the killed run left its lease behind');

    const retry = await runCli(['new-releases', '--quiet', '--state', state, '--out', out], {
      env: emulatorEnv(emulator),
    });
    assert.equal(retry.status, 0, retry.stderr);
    assert.equal(
      retry.stderr,
      `spotify-batch: took over the lease ${state}.lease of run ${run.lease.runId}, started ${run.lease.startedAt} on ${run.lease.host} (pid ${run.lease.pid}): that process is gone (killed, or out of memory)\n`,
    );
    assert.ok(!(await readdir(dir)).includes('killed.state.lease'), 'released at the end');
    assert.match(await readFile(state, 'utf8'), /^# spotify-batch state v1/);
    assert.ok((await readFile(out, 'utf8')).length > 0);
  },
);

test(
  'S3: a run SIGKILLed while it holds the lease; the retry takes it over (a JSON event) and the next run finds no lease',
  T,
  async () => {
    const key = 'killed/state.tsv';
    const state = `s3://${BUCKET}/${key}`;
    const out = `s3://${BUCKET}/killed/{run_id}.csv`;
    const run = await holdingRun(['--state', state, '--out', out], s3.env, s3Lease(key));
    run.child.kill('SIGKILL');
    assert.equal((await run.finish()).signal, 'SIGKILL');
    assert.equal(await s3Lease(key)(), run.text);

    const retry = await runCli(
      ['new-releases', '--log-format', 'json', '--state', state, '--out', out],
      { env: { ...emulatorEnv(emulator), ...s3.env } },
    );
    assert.equal(retry.status, 0, retry.stderr);
    const events = retry.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const taken = events.filter((e) => e.event === 'lease-taken-over');
    assert.equal(taken.length, 1, retry.stderr);
    assert.deepEqual(
      { ...taken[0], time: undefined },
      {
        time: undefined,
        event: 'lease-taken-over',
        location: `${state}.lease`,
        reason: 'holder-gone',
        runId: run.lease.runId,
        host: run.lease.host,
        pid: run.lease.pid,
        startedAt: run.lease.startedAt,
      },
    );
    assert.ok(!(await s3.listKeys(BUCKET)).includes(`${key}.lease`), 'released at the end');
    const next = await runCli(['new-releases', '--state', state, '--out', out], {
      env: { ...emulatorEnv(emulator), ...s3.env },
    });
    assert.equal(next.status, 0, next.stderr);
    assert.doesNotMatch(next.stderr, /took over/);
  },
);

test(
  'a lease held by a live run is refused naming unlock; unlock refuses it without --force, removes it with --force',
  T,
  async () => {
    const state = join(dir, 'live.state');
    const run = await holdingRun(
      ['--state', state, '--out', join(dir, 'live1.csv')],
      {},
      fileLease(state),
    );
    try {
      const second = await runCli(
        ['new-releases', '--state', state, '--out', join(dir, 'live2.csv')],
        { env: emulatorEnv(emulator) },
      );
      assert.equal(second.status, 8, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(
          `is in use by run ${run.lease.runId}, .* \\(pid ${run.lease.pid}\\), which is still running; .*spotify-batch unlock --state ${state.replace(/\./g, '\\.')} --force\\n$`,
        ),
      );
      assert.ok(!(await readdir(dir)).includes('live2.csv'));

      const refused = await runCli(['unlock', '--state', state]);
      assert.equal(refused.status, 8, refused.stderr);
      assert.match(
        refused.stderr,
        /^spotify-batch: error: option --state: the lease .*live\.state\.lease is held by run .*, which is still running; nothing was removed\. .*--force\n$/,
      );
      assert.equal(await fileLease(state)(), run.text, 'the lease is untouched');

      const forced = await runCli(['unlock', '--state', state, '--force']);
      assert.equal(forced.status, 0, forced.stderr);
      assert.match(
        forced.stdout.toString(),
        new RegExp(
          `^spotify-batch: removed the lease ${state.replace(/\./g, '\\.')}\\.lease of run ${run.lease.runId}, started .* on ${hostname()} \\(pid ${run.lease.pid}\\), \\d+ s old: --force\\n$`,
        ),
      );
      assert.equal(await fileLease(state)(), undefined);
    } finally {
      // The run goes on to the end: it releases only its own lease (none is there now).
      const ended = await run.finish();
      assert.equal(ended.status, 0, ended.stderr);
    }
  },
);

test(
  'unlock: a dead run’s lease on this host is removed (file and S3); no lease says so',
  T,
  async () => {
    const pid = await deadPid();
    const lease = JSON.stringify({
      runId: 'dead-run',
      startedAt: new Date().toISOString(),
      host: hostname(),
      pid,
      ...(pidns === undefined ? {} : { pidns }),
    });
    const state = join(dir, 'dead.state');
    await writeFile(`${state}.lease`, lease);
    const removed = await runCli(['unlock', '--state', state]);
    assert.equal(removed.status, 0, removed.stderr);
    assert.match(
      removed.stdout.toString(),
      new RegExp(
        `^spotify-batch: removed the lease .*dead\\.state\\.lease of run dead-run, started .* \\(pid ${pid}\\), \\d+ s old: its process is gone\\n$`,
      ),
    );
    assert.ok(!(await readdir(dir)).some((f) => f.startsWith('dead.state')), 'nothing left aside');
    const none = await runCli(['unlock', '--state', state]);
    assert.equal(none.status, 0, none.stderr);
    assert.equal(
      none.stdout.toString(),
      `spotify-batch: no lease at ${state}.lease: nothing to remove\n`,
    );

    const key = 'dead/state.tsv';
    await s3.client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${key}.lease`, Body: lease }),
    );
    const onS3 = await runCli(['unlock', '--state', `s3://${BUCKET}/${key}`], { env: s3.env });
    assert.equal(onS3.status, 0, onS3.stderr);
    assert.match(onS3.stdout.toString(), /removed the lease s3:\/\/.* its process is gone\n$/);
    assert.ok(!(await s3.listKeys(BUCKET)).includes(`${key}.lease`));
    assert.ok(
      s3.calls.some((c) => c.kind === 'delete' && c.key === `${key}.lease`),
      'removed by a DeleteObject',
    );
  },
);

test(
  'a lease naming another host (a pod that is gone) is refused by the run and by unlock; --force removes it',
  T,
  async () => {
    const key = 'elsewhere/state.tsv';
    const state = `s3://${BUCKET}/${key}`;
    const env = { ...emulatorEnv(emulator), ...s3.env };
    const lease = JSON.stringify({
      runId: 'pod-run',
      startedAt: new Date().toISOString(),
      host: 'spotify-new-releases-29391234-x7k2p',
      pid: await deadPid(), // dead here, which says nothing of a pid on another host
    });
    await s3.client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${key}.lease`, Body: lease }),
    );
    const run = await runCli(
      ['new-releases', '--state', state, '--out', `s3://${BUCKET}/elsewhere/a.csv`],
      { env },
    );
    assert.equal(run.status, 8, run.stderr);
    assert.match(
      run.stderr,
      /in use by run pod-run, .* on spotify-new-releases-29391234-x7k2p \(pid \d+\), another host than this one \(.*\), so whether it still runs cannot be checked here; .* if that run is gone, release the lease: spotify-batch unlock --state s3:\/\/leases\/elsewhere\/state\.tsv --force\n$/,
    );
    assert.ok(!(await s3.listKeys(BUCKET)).includes('elsewhere/a.csv'));
    const refused = await runCli(['unlock', '--state', state], { env: s3.env });
    assert.equal(refused.status, 8, refused.stderr);
    assert.match(refused.stderr, /another host than this one/);
    assert.equal(await s3Lease(key)(), lease);
    const forced = await runCli(['unlock', '--state', state, '--force'], { env: s3.env });
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout.toString(), /of run pod-run, .*: --force\n$/);
    const after = await runCli(
      ['new-releases', '--state', state, '--out', `s3://${BUCKET}/elsewhere/a.csv`],
      { env },
    );
    assert.equal(after.status, 0, after.stderr);
  },
);

test(
  'two retries taking over a dead run’s lease at once: one wins, the other is refused (file and S3)',
  T,
  async () => {
    const pid = await deadPid();
    const dead = `${JSON.stringify({
      runId: 'dead-run',
      startedAt: new Date().toISOString(),
      host: hostname(),
      pid,
      ...(pidns === undefined ? {} : { pidns }),
    })}\n`;
    const destinations = new Destinations(normalizeS3Options({}, s3.env), s3.env, process.stdout);
    try {
      for (const state of [join(dir, 'race.state'), `s3://${BUCKET}/race/state.tsv`]) {
        if (state.startsWith('s3://')) {
          await s3.client.send(
            new PutObjectCommand({ Bucket: BUCKET, Key: 'race/state.tsv.lease', Body: dead }),
          );
        } else {
          await writeFile(`${state}.lease`, dead);
        }
        const events: unknown[] = [];
        const now = new Date();
        const tries = await Promise.allSettled(
          ['run-a', 'run-b', 'run-c'].map((runId) =>
            acquireLease(destinations, state, runId, now, (e) => events.push(e)),
          ),
        );
        const won = tries.filter((t) => t.status === 'fulfilled');
        const lost = tries.filter((t) => t.status === 'rejected');
        assert.equal(won.length, 1, `${state}: ${JSON.stringify(lost)}`);
        assert.equal(events.length, 1, 'the winner said it took the lease over');
        for (const l of lost) {
          assert.match(
            String(l.reason),
            /is in use by run run-[abc], .*which is still running|kept changing while this run tried/,
          );
        }
        await (won[0] as PromiseFulfilledResult<AsyncDisposable>).value[Symbol.asyncDispose]();
        if (!state.startsWith('s3://')) {
          assert.deepEqual(
            (await readdir(dir)).filter((f) => f.startsWith('race.state')),
            [],
            'released, and nothing left aside',
          );
        }
      }
    } finally {
      await destinations.close();
    }
  },
);

test('holderStatus: which leases may be taken, from what is known of their holder', () => {
  const at: Here = {
    host: 'vm',
    pidns: 'pid:[4026531836]',
    pid: 100,
    alive: (pid) => pid === 200,
    holds: (runId) => runId === 'mine',
  };
  const fresh = 60_000;
  const old = (LEASE_EXPIRY_HOURS + 1) * 3_600_000;
  const holder = { runId: 'r', startedAt: 'x', host: 'vm', pidns: 'pid:[4026531836]' };
  const cases: [string, object, number, string][] = [
    ['this host, a dead pid', { ...holder, pid: 300 }, fresh, 'gone'],
    [
      'this host, a dead pid, no pidns (an older lease): not checkable',
      { host: 'vm', pid: 300 },
      fresh,
      'unverifiable',
    ],
    ['this host, a live pid', { ...holder, pid: 200 }, fresh, 'running'],
    ['this host, a live pid, expired', { ...holder, pid: 200 }, old, 'expired'],
    [
      'our own pid, a run of this process',
      { ...holder, runId: 'mine', pid: 100 },
      fresh,
      'running',
    ],
    ['our own pid, not ours (a restarted container)', { ...holder, pid: 100 }, fresh, 'gone'],
    ['another host', { ...holder, host: 'pod-1', pid: 300 }, fresh, 'unverifiable'],
    ['another host, expired', { ...holder, host: 'pod-1', pid: 300 }, old, 'expired'],
    ['another PID namespace', { ...holder, pidns: 'pid:[1]', pid: 300 }, fresh, 'unverifiable'],
    ['pid 0 (a process group)', { ...holder, pid: 0 }, fresh, 'unverifiable'],
    ['no pid', { ...holder }, fresh, 'unverifiable'],
    ['unreadable, age unknown', {}, Number.NaN, 'unverifiable'],
  ];
  for (const [what, h, age, expected] of cases) {
    assert.equal(holderStatus(h, age, at), expected, what);
  }
});

test(
  'deleteIf removes only the version read: a lease a run took meanwhile stays (file and S3)',
  T,
  async () => {
    const destinations = new Destinations(normalizeS3Options({}, s3.env), s3.env, process.stdout);
    try {
      for (const location of [join(dir, 'cas.lease'), `s3://${BUCKET}/cas.lease`]) {
        assert.notEqual(await destinations.writeIf(location, '{"runId":"old"}\n', null), false);
        const old = (await destinations.read(location))?.version;
        assert.ok(old);
        // Another run took the lease over in the meantime.
        assert.notEqual(
          await destinations.writeIf(location, '{"runId":"newer run"}\n', old),
          false,
        );
        assert.equal(await destinations.deleteIf(location, old), false, location);
        const kept = await destinations.read(location);
        assert.ok(kept, `${location} is still there`);
        let text = '';
        for await (const chunk of kept.body) text += chunk.toString();
        assert.equal(text, '{"runId":"newer run"}\n');
        assert.equal(await destinations.deleteIf(location, kept.version), true);
        assert.equal(await destinations.read(location), undefined);
        assert.equal(
          await destinations.deleteIf(location, kept.version),
          false,
          'gone: nothing to do',
        );
      }
      assert.deepEqual(
        (await readdir(dir)).filter((f) => f.startsWith('cas.lease')),
        [],
        'nothing left aside',
      );
    } finally {
      await destinations.close();
    }
  },
);
