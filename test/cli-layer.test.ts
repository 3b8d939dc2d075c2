/**
 * The CLI layer: the dry run, the market list, the emulator's own flags, JSON-only logs, honest
 * messages (retries, the daily quota, what an interrupt left), the terminal (binary output,
 * the progress line's width), the Node version check, and --env-file reaching the AWS SDK.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { SPOTIFY_MARKETS } from '../src/core/markets.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { CLI, emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator, tempDir } from './helpers/servers.ts';
import { untilExit } from './helpers/wait.ts';

const emulator = startedEmulator({ seed: 42, albums: 230 });
const slow = startedEmulator({ seed: 3, albums: 3_000, latencyMs: 30 });
const s3 = localS3('layer');
const dir = tempDir('spotify-batch-layer-');

test('check: token, one page of limit 1, the S3 key proven writable by an aborted upload, the plan', async () => {
  const mark = s3.calls.length;
  const api = emulator.stats.log.length;
  const result = await runCli(
    ['check', '--market', 'SE,US', '--out', 's3://layer/dt={date}/market={market}/albums.csv'],
    { env: { ...emulatorEnv(emulator), ...s3.env } },
  );
  assert.equal(result.status, 0, result.stderr);
  const out = result.stdout.toString();
  const today = new Date().toISOString().slice(0, 10);
  assert.match(
    out,
    /^Spotify: token ok; .*limit=1&offset=0&country=SE answered \(total 230 albums\)$/m,
  );
  assert.match(out, new RegExp(`^writable: s3://layer/dt=${today}/market=SE/albums\\.csv$`, 'm'));
  assert.match(out, /^plan: new-releases, 2 market\(s\): SE, US$/m);
  assert.match(
    out,
    new RegExp(
      `outputs \\(2, csv\\): s3://layer/dt=${today}/market=SE/albums\\.csv s3://layer/dt=${today}/market=US/albums\\.csv`,
    ),
  );
  assert.match(out, new RegExp(`manifest: s3://layer/dt=${today}/_manifest\\.json`));
  assert.match(out, /^ok: ready to run$/m);
  // One page of one album, and no object written: every upload created was aborted.
  const requests = emulator.stats.log.slice(api);
  assert.equal(requests.length, 1);
  assert.match(requests[0]?.query ?? '', /limit=1/);
  assert.ok(s3.count('create', mark) >= 1);
  assert.equal(s3.count('abort', mark), s3.count('create', mark));
  assert.equal(s3.count('put', mark) + s3.count('complete', mark), 0);
  assert.deepEqual(await s3.listKeys('layer'), []);
  assert.deepEqual(await s3.openUploads('layer'), []);
});

test('check fails with the status of the first failure: a missing bucket (5), bad credentials (3)', async () => {
  const bucket = await runCli(['check', '--out', 's3://no-such-bucket/x.csv'], {
    env: { ...emulatorEnv(emulator), ...s3.env },
  });
  assert.equal(bucket.status, 5, bucket.stderr);
  assert.match(bucket.stderr, /^spotify-batch: error: S3 bucket no-such-bucket does not exist/);
  const creds = await runCli(['check'], {
    env: { ...emulatorEnv(emulator), SPOTIFY_CLIENT_SECRET: 'wrong' },
  });
  assert.equal(creds.status, 3, creds.stderr);
  const missingDir = await runCli(['check', '--out', '/proc/no-such-dir/x.csv'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(missingDir.status, 2, missingDir.stderr);
  assert.match(missingDir.stderr, /option --out: directory \/proc\/no-such-dir does not exist/);
});

test('markets prints the embedded list, one code a line', async () => {
  const result = await runCli(['markets']);
  assert.equal(result.status, 0);
  assert.deepEqual(result.stdout.toString().trim().split('\n'), [...SPOTIFY_MARKETS]);
});

test('the emulator command validates its numbers', async () => {
  for (const [args, message] of [
    [['--albums', '-5'], /option --albums must be a whole number, got "-5"/],
    [['--albums', 'abc'], /option --albums must be a whole number, got "abc"/],
    [['--latency', '-1'], /option --latency must be a whole number, got "-1"/],
    [['--port', '70000'], /option --port must be 0\.\.65535, got 70000/],
    [['--malformed', '5', '--albums', '3'], /option --malformed must be 0\.\.3, got 5/],
    [['--empty-market', 'XX'], /option --empty-market: XX is not a Spotify market/],
  ] as const) {
    const result = await runCli(['emulator', ...args]);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

test('emulator --malformed N serves N bad albums, so --rejects can be tried offline', async () => {
  const child = execFile(process.execPath, [
    CLI,
    'emulator',
    '--albums',
    '200',
    '--malformed',
    '3',
  ]);
  try {
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString()));
      child.once('exit', (code) => reject(new Error(`the emulator exited with ${code}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    const rejects = join(dir, 'rejects.ndjson');
    const result = await runCli(
      ['new-releases', '--out', join(dir, 'm.csv'), '--rejects', rejects],
      {
        env: {
          SPOTIFY_API_URL: url,
          SPOTIFY_ACCOUNTS_URL: url,
          SPOTIFY_CLIENT_ID: 'emulator-id',
          SPOTIFY_CLIENT_SECRET: 'emulator-secret',
        },
      },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /3 rejected/);
  } finally {
    child.kill();
  }
});

test('--log-format json: every stderr line is JSON with a time and an event, the report last', async () => {
  const flaky = await startEmulator({
    seed: 42,
    albums: 230,
    faults: [{ kind: '500', offset: 100, times: 1 }],
  });
  try {
    const ok = await runCli(['new-releases', '--log-format', 'json', '--retry-delay', '1'], {
      env: emulatorEnv(flaky),
    });
    assert.equal(ok.status, 0, ok.stderr);
    const lines = ok.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      // A progress event every 10 s, should the machine be that slow.
      .filter((l) => l.event !== 'progress');
    assert.deepEqual(
      lines.map((l) => l.event),
      ['retry', 'report'],
    );
    for (const line of lines) assert.ok(!Number.isNaN(Date.parse(line.time)), line.time);
    assert.equal(lines[1].ok, true);
    assert.equal(typeof lines[1].serializedBytes, 'number');
    assert.equal(typeof lines[1].storedBytes, 'number');
    const failed = await runCli(['new-releases', '--log-format', 'json', '--limit', '0'], {
      env: emulatorEnv(flaky),
    });
    assert.equal(failed.status, 2);
    const only = failed.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(only.length, 1, 'no text error line besides the JSON');
    assert.equal(only[0].event, 'report');
    assert.equal(only[0].ok, false);
    assert.equal(only[0].code, 'ERR_USAGE');
  } finally {
    await flaky.stop();
  }
});

test('retry lines name the attempt; only the final error says the retries are spent', async () => {
  const failing = await startEmulator({
    seed: 1,
    albums: 120,
    faults: [{ kind: '503', offset: 50 }],
  });
  try {
    const result = await runCli(['new-releases', '--max-retries', '2', '--retry-delay', '1'], {
      env: emulatorEnv(failing),
    });
    assert.equal(result.status, 4);
    const lines = result.stderr.trim().split('\n');
    assert.match(
      lines[0] ?? '',
      /^spotify-batch: retrying: attempt 1 failed: Spotify answered HTTP 503 for \/v1\/browse\/new-releases \(offset 50\): Service unavailable \(next try in \d\.\d s\)$/,
    );
    assert.match(lines[1] ?? '', /retrying: attempt 2 failed/);
    assert.doesNotMatch(lines.slice(0, -1).join('\n'), /gave up/);
    // With a market, the line names it.
    const se = await runCli(
      ['new-releases', '--market', 'SE', '--max-retries', '1', '--retry-delay', '1'],
      { env: emulatorEnv(failing) },
    );
    assert.match(se.stderr, /^spotify-batch: retrying market SE: attempt 1 failed: /);
    assert.match(
      lines.at(-1) ?? '',
      /^spotify-batch: error: .*Service unavailable \(gave up after 3 attempts\)$/,
    );
  } finally {
    await failing.stop();
  }
});

test('the daily quota (429 QUOTA_EXCEEDED): exit 4 at once, naming the quota, the hours and the way out', async () => {
  const spent = await startEmulator({ seed: 1, albums: 120, faults: [{ kind: 'quota' }] });
  try {
    const result = await runCli(['new-releases'], { env: emulatorEnv(spent) });
    assert.equal(result.status, 4);
    assert.equal(
      result.stderr,
      "spotify-batch: error: Spotify's daily request quota is used up (429 QUOTA_EXCEEDED): it resets in about 13.6 hours (Retry-After 48925 s). The quota is per developer account, shared by all its Development Mode apps; wait, or use an app with Extended Quota\n",
    );
    assert.equal(spent.stats.apiRequests, 1, 'no retry, no sleeping through it');
  } finally {
    await spent.stop();
  }
});

test('an interrupted run to stdout says how much stdout had received', async () => {
  let child: import('node:child_process').ChildProcess | undefined;
  // Twelve pages answered, the rest held: enough that the 64 KiB coalescing has passed bytes on
  // to stdout, and the run is still pulling when the signal comes.
  const hold = slow.hold((r) => r.offset >= 600);
  const running = runCli(['new-releases', '-c', '1'], {
    env: emulatorEnv(slow),
    onSpawn: (c) => (child = c),
  });
  try {
    await slow.waitFor(() => hold.held >= 1, {
      signal: untilExit(child, 'the run asked for its 13th page'),
    });
    child?.kill('SIGINT');
  } finally {
    hold.release();
  }
  const result = await running;
  assert.equal(result.status, 130);
  assert.ok(result.stdout.length > 0);
  assert.match(result.stderr, /interrupted by SIGINT; stdout had already received \d+(\.\d)? KiB/);
  assert.doesNotMatch(result.stderr, /nothing was/);
});

const execFileP = promisify(execFile);

/** Runs the CLI on a pseudo-terminal `cols` wide (util-linux `script`), returning what it drew. */
async function onTerminal(args: string[], cols: number, env: NodeJS.ProcessEnv) {
  const command = `stty cols ${cols}; ${[process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ')}; echo "exit=$?"`;
  const { stdout } = await execFileP('script', ['-qec', command, '/dev/null'], {
    env: { PATH: process.env.PATH, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

test('binary output to a terminal is refused unless --force', async () => {
  const out = await onTerminal(['new-releases', '--format', 'parquet'], 80, emulatorEnv(emulator));
  assert.match(out, /Parquet is binary: redirect stdout to a file or a pipe, or pass --force/);
  assert.match(out, /exit=2/);
});

test('the progress line fits the terminal and is erased before other lines', async () => {
  const out = await onTerminal(
    ['new-releases', '--out', join(dir, 'progress.csv'), '--progress', '-c', '1'],
    40,
    emulatorEnv(slow),
  );
  assert.match(out, /exit=0/);
  // Each redraw starts with \r and the erase-line sequence; what follows must fit in 39 columns.
  const draws = out
    .split('\r\u001b[2K')
    .map((d) => d.split(/[\r\n]/)[0] ?? '')
    .filter((d) => d.includes(' · '));
  assert.ok(draws.length > 0, 'progress was drawn');
  for (const draw of draws) assert.ok(draw.length <= 39, `${draw.length} columns: ${draw}`);
  assert.ok(out.includes('\r\u001b[2Kspotify-batch: 60 pages'), 'erased before the summary');
});

test('an old Node gets one line naming the version found and needed, before any import', async () => {
  const fake = join(dir, 'old-node.mjs');
  await writeFile(fake, "Object.defineProperty(process.versions, 'node', { value: '20.1.0' });\n");
  const result = await runCli(['--version'], { env: { NODE_OPTIONS: `--import ${fake}` } });
  assert.equal(result.status, 2);
  assert.equal(
    result.stderr,
    'spotify-batch: error: Node 20.1.0 is too old: it needs Node 22.19 or newer (22 LTS, or 24)\n',
  );
});

test('--env-file values reach the AWS SDK: credentials and endpoint from the file, no region set', async () => {
  const envFile = join(dir, '.env');
  const { AWS_REGION: _, ...s3Env } = s3.env;
  await writeFile(
    envFile,
    Object.entries({ ...s3Env, ...emulatorEnv(emulator) })
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
  );
  const result = await runCli([
    'new-releases',
    '--env-file',
    envFile,
    '--out',
    's3://layer/env-file.csv',
  ]);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(await s3.getObject('layer', 'env-file.csv'));
});

test('--help is the text rendered at build time, byte for byte what yargs prints, without loading yargs', async () => {
  const { helpSources } = await import('../src/cli/main.ts');
  const { readFile } = await import('node:fs/promises');
  const cli = new URL('../dist/src/cli/', import.meta.url);
  const built = JSON.parse(await readFile(new URL('help.json', cli), 'utf8')) as {
    sources: string;
    help: Record<string, string>;
  };
  assert.equal(built.sources, helpSources(cli), 'help.json names the modules it came from');
  // Stale or wrong pre-rendered help fails here: it must be what yargs renders now, and in
  // English whatever the locale (yargs would otherwise translate its own words).
  // The German locale is set in a process of its own: this one's environment stays as it is.
  const rendered = await execFileP(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { renderHelp } = await import(${JSON.stringify(new URL('../src/cli/main.ts', import.meta.url).href)});
process.stdout.write(JSON.stringify(await renderHelp()));`,
    ],
    { env: { PATH: process.env.PATH, LC_ALL: 'de_DE.UTF-8' }, maxBuffer: 16 * 1024 * 1024 },
  );
  assert.deepEqual(built.help, JSON.parse(rendered.stdout));
  // A resolve hook in the CLI's process names every yargs module it loads.
  const hook = `data:text/javascript,${encodeURIComponent(
    "import { registerHooks } from 'node:module';" +
      'registerHooks({ resolve(s, c, next) { if (/^yargs/.test(s)) process.stderr.write("LOADED " + s + "\\n"); return next(s, c); } });',
  )}`;
  for (const args of [['--help'], ['new-releases', '--help'], ['emulator', '-h']]) {
    const result = await runCli(args, { env: { NODE_OPTIONS: `--import ${hook}` } });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(
      String(result.stdout),
      built.help[`100 ${args.join(' ').replace(/ -h$/, ' --help')}`],
      args.join(' '),
    );
    assert.equal(result.stderr, '', `${args.join(' ')} loaded nothing of yargs`);
  }
  // Anything else on the line is yargs' to read (here: a usage error, exit 2).
  const mixed = await runCli(['new-releases', '--help', '--limit', 'x'], {
    env: { NODE_OPTIONS: `--import ${hook}` },
  });
  assert.match(mixed.stderr, /LOADED yargs/);
});

test('pre-rendered help is not used once a module it came from changed (a build without scripts/help.ts)', async () => {
  const { cp, writeFile: write, appendFile } = await import('node:fs/promises');
  const { pathToFileURL } = await import('node:url');
  const { helpSources, prerenderedHelp } = await import('../src/cli/main.ts');
  const copy = join(dir, 'stale-dist');
  await cp(new URL('../dist/src', import.meta.url), copy, { recursive: true });
  const cli = pathToFileURL(join(copy, 'cli/'));
  await write(
    join(copy, 'cli/help.json'),
    JSON.stringify({ sources: helpSources(cli), help: { '100 --help': 'old\n' } }),
  );
  assert.deepEqual(prerenderedHelp(cli), { '100 --help': 'old\n' });
  await appendFile(join(copy, 'core/options.js'), '\n// a default changed\n');
  assert.equal(prerenderedHelp(cli), undefined);
});

test('--help, --version and markets into a closed pipe end quietly with 0', async () => {
  const { spawn } = await import('node:child_process');
  for (const args of [['--help'], ['--version'], ['check', '--help'], ['markets']]) {
    const status = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy(); // the reader is gone before anything is written
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.on('close', (code) => {
        assert.equal(stderr, '', args.join(' '));
        resolve(code);
      });
    });
    assert.equal(status, 0, args.join(' '));
  }
});

test("the bin's shebang fits the 127 bytes older Linux kernels read of it", async () => {
  const { readFile } = await import('node:fs/promises');
  const first = (await readFile(CLI, 'utf8')).split('\n')[0] as string;
  assert.match(first, /^#!\/usr\/bin\/env -S .*node --max-semi-space-size=8$/);
  assert.ok(Buffer.byteLength(first) <= 127, `${Buffer.byteLength(first)} bytes: ${first}`);
});

test('-v and --version print the package version, alone and after other flags', async () => {
  const { version } = JSON.parse(
    await readFile(new URL('../package.json', import.meta.url), 'utf8'),
  );
  for (const args of [['--version'], ['-v'], ['--quiet', '-v']]) {
    const result = await runCli(args);
    assert.equal(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stdout.toString(), `${version}\n`, args.join(' '));
  }
});

test('the progress line counts toward what the run will take: Spotify’s total, or --max-items if fewer', async () => {
  const { progressLine } = await import('../src/cli/output.ts');
  const { createStats } = await import('../src/core/stats.ts');
  const stats = createStats();
  stats.albums = 40;
  assert.doesNotMatch(progressLine(stats, 2), / of /);
  assert.match(progressLine(stats, 2, 100), /40 of 100 albums .* ETA 3 s$/);
  stats.totalAlbums = 1_000;
  assert.match(progressLine(stats, 2), /40 of 1,000 albums/);
  assert.match(progressLine(stats, 2, 100), /40 of 100 albums/);
  stats.totalAlbums = 50;
  assert.match(progressLine(stats, 2, 100), /40 of 50 albums/);
});

test('no AWS credentials: exit 2 with one line, naming AWS_PROFILE when it is the profile that gave none', async () => {
  const { AWS_ACCESS_KEY_ID: _, AWS_SECRET_ACCESS_KEY: __, ...noKeys } = s3.env;
  // A HOME without ~/.aws, and no instance metadata: the SDK's chain finds nothing.
  const env = { ...noKeys, ...emulatorEnv(emulator), HOME: dir, AWS_EC2_METADATA_DISABLED: 'true' };
  const args = ['new-releases', '--out', 's3://layer/no-credentials.csv'];
  const without = await runCli(args, { env });
  assert.equal(without.status, 2, without.stderr);
  assert.equal(
    without.stderr,
    'spotify-batch: error: no AWS credentials found for s3://layer/no-credentials.csv: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role\n',
  );
  const profile = await runCli(args, { env: { ...env, AWS_PROFILE: 'nope' } });
  assert.equal(profile.status, 2, profile.stderr);
  assert.match(
    profile.stderr,
    /^spotify-batch: error: no AWS credentials found for s3:\/\/layer\/no-credentials\.csv through profile nope \(AWS_PROFILE\): check that ~\/\.aws\/config or ~\/\.aws\/credentials has it .*, or unset AWS_PROFILE\n$/,
  );
  assert.equal(await s3.getObject('layer', 'no-credentials.csv'), undefined);
});

test('help examples fit an 80-column terminal, long ones continued with a backslash', async () => {
  const help = JSON.parse(
    await readFile(new URL('../dist/src/cli/help.json', import.meta.url), 'utf8'),
  ) as { help: Record<string, string> };
  let lines = 0;
  for (const [key, text] of Object.entries(help.help)) {
    const block = /Examples:\n([\s\S]*?)(?:\n\n|$)/.exec(text)?.[1];
    if (block === undefined) continue;
    for (const line of block.trimEnd().split('\n')) {
      lines++;
      assert.ok(line.length <= 78, `${key}: ${line.length} columns: ${line}`);
      assert.match(line, /^ {2}(# |spotify-batch )| {4}--/, `${key}: ${line}`);
    }
  }
  assert.ok(lines >= 20, `${lines} example lines`);
});
