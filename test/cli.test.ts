import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../src/emulator/server.ts';
import { CLI, emulatorEnv, runCli } from './helpers/cli.ts';
import { emulator as startedEmulator } from './helpers/servers.ts';
import { stderrMatches } from './helpers/wait.ts';

const emulator = startedEmulator({ seed: 11, albums: 5000 });

const usage: [string, string[], RegExp][] = [
  [
    'an unknown flag',
    ['new-releases', '--bogus'],
    /^spotify-batch: error: unknown option --bogus \(see spotify-batch --help\)\n$/,
  ],
  [
    'an unknown short flag: no suggestion of an alias as a flag (--o)',
    ['new-releases', '-x'],
    /^spotify-batch: error: unknown option -x \(see spotify-batch --help\)\n$/,
  ],
  [
    'a stray word',
    ['new-releases', 'albums.csv'],
    /^spotify-batch: error: unexpected argument albums\.csv \(see spotify-batch --help\)\n$/,
  ],
  [
    '--s3-tag with no output on S3',
    ['new-releases', '--out', 'x.csv', '--s3-tag', 'team=data'],
    /^spotify-batch: error: option --s3-tag applies to S3 objects, and no output of this run goes to s3:\/\/\n$/,
  ],
  [
    '--s3-sse to stdout',
    ['new-releases', '--s3-sse', 'AES256'],
    /^spotify-batch: error: option --s3-sse applies to S3 objects, and no output of this run goes to s3:\/\/\n$/,
  ],
  [
    '--s3-part-size with only file outputs',
    ['new-releases', '--out', 'x.csv', '--raw', 'r.ndjson.gz', '--s3-part-size', '8'],
    /^spotify-batch: error: option --s3-part-size applies to S3 objects, and no output of this run goes to s3:\/\/\n$/,
  ],
  [
    '--raw raw.json (gzip bytes under a .json name)',
    ['new-releases', '--raw', 'raw.json'],
    /^spotify-batch: error: option --raw: the raw landing is NDJSON, gzipped unless named \.ndjson or \.jsonl: name it raw\.ndjson\.gz \(or raw\.ndjson, plain\), or pass --force\n$/,
  ],
  [
    '--out under a path that is a file',
    ['new-releases', '--out', `${fileURLToPath(import.meta.url)}/x.csv`],
    /^spotify-batch: error: option --out: \/\S+\/cli\.test\.ts is not a directory\n$/,
  ],
  [
    'an unknown command, with the flags of a pull after it',
    ['albums', '--query', 'x', '--out', '-'],
    /^spotify-batch: error: unknown command albums \(see spotify-batch --help\)\n$/,
  ],
  [
    'a misspelled command',
    ['new-release', '--out', '-'],
    /^spotify-batch: error: unknown command new-release \(did you mean new-releases\?\) \(see spotify-batch --help\)\n$/,
  ],
  [
    '--max-items 0',
    ['new-releases', '--max-items', '0'],
    /option --max-items must be a whole number ≥ 1, got 0$/m,
  ],
  [
    'a live-only flag given to replay',
    ['replay', '--from', 'raw.ndjson.gz', '--max-retries', '3'],
    /option --max-retries is for a live pull; replay fetches nothing from Spotify/,
  ],
  [
    'an invalid S3 bucket name',
    ['new-releases', '--out', 's3://Bad_Bucket/x.csv'],
    /option --out: Bad_Bucket is not a valid S3 bucket name/,
  ],
  [
    'a bucket name too short, for --raw',
    ['new-releases', '--raw', 's3://ab/raw.ndjson.gz'],
    /option --raw: ab is not a valid S3 bucket name/,
  ],
  [
    's3:/ with one slash',
    ['new-releases', '--out', 's3:/lake/a.csv'],
    /option --out must be s3:\/\/bucket\/key \(two slashes\), got s3:\/lake\/a\.csv/,
  ],
  [
    '--rejects to stdout',
    ['new-releases', '--rejects', '-'],
    /option --rejects needs a file path or s3:\/\/ key, got -/,
  ],
  [
    '--rejects where --out writes',
    ['new-releases', '--out', 'same.csv', '--rejects', 'same.csv'],
    /option --out and option --rejects name the same output: same\.csv/,
  ],
  ['no command', [], /name a command/],
  [
    '--limit 0',
    ['new-releases', '--limit', '0'],
    /option --limit must be an integer 1\.\.50, got 0/,
  ],
  [
    '--limit 51',
    ['new-releases', '--limit', '51'],
    /option --limit must be an integer 1\.\.50, got 51/,
  ],
  [
    '--limit abc',
    ['new-releases', '--limit', 'abc'],
    /option --limit must be a whole number, got "abc"/,
  ],
  [
    '--limit 1e1',
    ['new-releases', '--limit', '1e1'],
    /option --limit must be a whole number, got "1e1"/,
  ],
  [
    '-c 0x10',
    ['new-releases', '-c', '0x10'],
    /option --concurrency must be a whole number, got "0x10"/,
  ],
  [
    'a bare --out',
    ['new-releases', '--out'],
    /^spotify-batch: error: option --out needs a value \(see spotify-batch --help\)\n$/,
  ],
  [
    'a bare -c',
    ['new-releases', '-c'],
    /^spotify-batch: error: option --concurrency needs a value/,
  ],
  ["--out ''", ['new-releases', '--out', ''], /option --out is empty/],
  ['a bare --market', ['new-releases', '--market'], /option --market needs a value/],
  ["--market ''", ['new-releases', '--market', ''], /option --market needs a value/],
  ["--columns ''", ['new-releases', '--columns', ''], /option --columns needs a value/],
  ["--columns ','", ['new-releases', '--columns', ','], /option --columns is empty/],
  [
    'an unknown placeholder',
    ['new-releases', '--out', 'tpl/{bogus}.csv'],
    /option --out: unknown placeholder \{bogus\}; the known ones are \{date\}, \{run_id\} and \{market\}/,
  ],
  [
    'a mistyped placeholder',
    ['new-releases', '--out', 'tpl/{dat}.csv'],
    /unknown placeholder \{dat\} \(did you mean date\?\)/,
  ],
  [
    '--format parquet --out f.csv',
    ['new-releases', '--format', 'parquet', '--out', 'f.csv'],
    /option --format parquet but --out ends in \.csv: rename the output, or pass --force/,
  ],
  ['--out f.json', ['new-releases', '--out', 'f.json'], /cannot tell the format from \.json/],
  [
    '--gzip without .gz',
    ['new-releases', '--out', 'f.csv', '--gzip'],
    /option --gzip but --out does not end in \.gz/,
  ],
  [
    '--rejects in a missing directory names --rejects',
    ['new-releases', '--out', '-', '--rejects', '/proc/no-such-dir/r.ndjson'],
    /^spotify-batch: error: option --rejects: directory \/proc\/no-such-dir does not exist\n$/,
  ],
  ['a mistyped command', ['new-release'], /did you mean new-releases\?/i],
  [
    'a flag given twice',
    ['new-releases', '--out', 'a.csv', '--out', 'b.csv'],
    /option --out is given more than once/,
  ],
  [
    '--no- on a flag with a value',
    ['new-releases', '--no-via'],
    /option --via takes a value \(there is no --no-via\)/,
  ],
  [
    'one S3 object named two ways',
    ['new-releases', '--out', 's3://lake/x.csv', '--rejects', 'S3://lake/x.csv'],
    /option --out and option --rejects name the same output/,
  ],
  [
    'a flat --out that names a folder',
    ['new-releases', '--out', 'newdir/'],
    /option --out: newdir\/ names a folder/,
  ],
  ["--query ''", ['new-releases', '--via', 'search', '--query', ''], /option --query is empty/],
  [
    'a per-run template in --state',
    ['new-releases', '--state', 's/{date}.tsv'],
    /option --state: \{date\} does not apply/,
  ],
  [
    'a {market} in --raw, one landing per run',
    [
      'new-releases',
      '--market',
      'SE,DE',
      '--out',
      'o/{market}.csv',
      '--raw',
      'raw/{market}.ndjson',
    ],
    /option --raw: \{market\} does not apply: one raw landing per run \(it may use \{date\} and \{run_id\}\)/,
  ],
  [
    'a {market} in --report, one report per run',
    ['new-releases', '--market', 'SE,DE', '--out', 'o/{market}.csv', '--report', 'r/{market}.html'],
    /option --report: \{market\} does not apply: one report per run \(it may use \{date\} and \{run_id\}\)/,
  ],
  [
    'a mistyped flag',
    ['new-releases', '--markets', 'SE'],
    /unknown option --markets \(did you mean --market\?\)/,
  ],
  [
    'a mistyped choice',
    ['new-releases', '--via', 'serch'],
    /option --via must be new-releases or search, got serch \(did you mean search\?\)/,
  ],
  [
    '--log-format jsn',
    ['new-releases', '--log-format', 'jsn'],
    /option --log-format must be text or json, got jsn \(did you mean json\?\)/,
  ],
  [
    '--concurrency 0',
    ['new-releases', '--concurrency', '0'],
    /option --concurrency must be an integer 1\.\.64/,
  ],
  [
    '--out s3 without key',
    ['new-releases', '--out', 's3://bucket'],
    /option --out must be s3:\/\/bucket\/key/,
  ],
  [
    '--out other scheme',
    ['new-releases', '--out', 'gs://bucket/key'],
    /option --out must be -, a file path or s3:\/\/bucket\/key/,
  ],
  [
    '--out missing directory',
    ['new-releases', '--out', '/nonexistent-dir/x.csv'],
    /directory \/nonexistent-dir does not exist/,
  ],
  [
    '--s3-part-size below 5',
    ['new-releases', '--s3-part-size', '4'],
    /option --s3-part-size must be 5\.\.5120 \(MiB\), got 4/,
  ],
  [
    '--via other',
    ['new-releases', '--via', 'browse'],
    /option --via must be new-releases or search, got browse/,
  ],
  ['--query without search', ['new-releases', '--query', 'x'], /option --query needs --via search/],
  [
    '--manifest with stdout',
    ['new-releases', '--manifest'],
    /option --manifest needs a file or s3:\/\/ output/,
  ],
  [
    '--api-url not a URL',
    ['new-releases', '--api-url', 'nope'],
    /option --api-url must be an http\(s\) URL, got nope/,
  ],
  [
    '--out s3:// with no bucket',
    ['new-releases', '--out', 's3://'],
    /s3:\/\/ names a folder; name a file \(e\.g\. s3:\/\/my-bucket\/albums\.csv\)/,
  ],
];
for (const [name, args, message] of usage) {
  test(`usage error, exit 2, one line: ${name}`, async () => {
    // In an empty directory: a rule that fails to refuse writes nothing into the repository.
    const cwd = await mkdtemp(join(tmpdir(), 'spotify-batch-usage-'));
    const result = await runCli(args, { env: emulatorEnv(emulator), cwd });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, message);
    assert.match(result.stderr, /^spotify-batch: error: [^\n]+\n$/, 'one line');
    assert.equal(result.stdout.length, 0);
  });
}

test('missing credentials: exit 2 naming the variables that are missing', async () => {
  const result = await runCli(['new-releases'], { env: { SPOTIFY_API_URL: emulator.url } });
  assert.equal(result.status, 2);
  assert.equal(
    result.stderr,
    'spotify-batch: error: missing Spotify credentials: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (or pass --env-file FILE)\n',
  );
  const noSecret = await runCli(['new-releases'], {
    env: { SPOTIFY_API_URL: emulator.url, SPOTIFY_CLIENT_ID: 'id' },
  });
  assert.equal(noSecret.status, 2);
  assert.equal(
    noSecret.stderr,
    'spotify-batch: error: missing Spotify credentials: set SPOTIFY_CLIENT_SECRET (or pass --env-file FILE)\n',
  );
});

test("the tutorial's CLIENT_ID / CLIENT_SECRET and --env-file both work", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const envFile = join(dir, '.env');
  await writeFile(
    envFile,
    `CLIENT_ID=${emulator.clientId}\nCLIENT_SECRET="${emulator.clientSecret}"\n`,
  );
  const env = { SPOTIFY_API_URL: emulator.url, SPOTIFY_ACCOUNTS_URL: emulator.url };
  const result = await runCli(['new-releases', '--env-file', envFile, '--max-items', '10'], {
    env,
  });
  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.toString().startsWith('album_id,'));
});

test('rejected client secret: exit 3 with a clear line and no secret in it', async () => {
  const env = { ...emulatorEnv(emulator), SPOTIFY_CLIENT_SECRET: 'wrong-secret-value' };
  const result = await runCli(['new-releases'], { env });
  assert.equal(result.status, 3);
  assert.match(
    result.stderr,
    /Spotify rejected the client id\/secret \(invalid_client: Invalid client secret\)/,
  );
  assert.doesNotMatch(result.stderr, /wrong-secret-value/);
});

test('--help teaches: commands, examples, exit statuses', async () => {
  const result = await runCli(['new-releases', '--help']);
  assert.equal(result.status, 0);
  const help = result.stdout.toString();
  for (const needle of [
    '--out',
    '--limit',
    '--concurrency',
    's3://',
    'Exit statuses',
    '--via',
    'Examples:',
  ]) {
    assert.ok(help.includes(needle), `help lacks ${needle}`);
  }
});

/** `spotify-batch new-releases …args` to stdout, read by a reader that leaves after one chunk. */
async function pullIntoClosingReader(
  args: string[],
): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'new-releases', '--concurrency', '2', ...args], {
    env: { PATH: process.env.PATH, ...emulatorEnv(emulator) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout.once('data', () => child.stdout.destroy());
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stderr };
}

test('a reader that goes away (| head) ends the run quietly with status 0', async () => {
  const requestsBefore = emulator.stats.apiRequests;
  const { status, stderr } = await pullIntoClosingReader([]);
  assert.equal(status, 0, stderr);
  assert.doesNotMatch(stderr, /error|\n\s+at /i);
  assert.match(stderr, /reader closed the output early/);
  // Requests still in flight were cancelled, not retried against a closed connection pool.
  assert.doesNotMatch(stderr, /retrying/);
  // It stopped early instead of pulling all 100 pages.
  const requests = emulator.stats.apiRequests - requestsBefore;
  assert.ok(requests < 100, `${requests} requests`);
});

test('a reader that goes away: rejects, raw landing, report and state are not written, and the summary says so', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-closed-'));
  const rejects = join(dir, 'rejects.ndjson');
  const raw = join(dir, 'raw.ndjson.gz');
  const report = join(dir, 'report.html');
  const state = join(dir, 'state.json');
  const { status, stderr } = await pullIntoClosingReader([
    '--rejects',
    rejects,
    '--raw',
    raw,
    '--report',
    report,
    '--state',
    state,
  ]);
  assert.equal(status, 0, stderr);
  assert.ok(
    stderr.includes(
      `reader closed the output early, so not written: ${rejects}, ${raw}, ${report}, ${state})`,
    ),
    stderr,
  );
  assert.doesNotMatch(stderr, /state: \d+ new/);
  assert.deepEqual(await readdir(dir), []);
});

test('a failed run leaves no file and no temporary file behind', async () => {
  const failing = await startEmulator({
    seed: 11,
    albums: 1000,
    faults: [{ kind: '500', offset: 500 }],
  });
  try {
    const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
    const out = join(dir, 'albums.csv');
    const result = await runCli(['new-releases', '--out', out, '--max-retries', '1'], {
      env: emulatorEnv(failing),
    });
    assert.equal(result.status, 4, result.stderr);
    assert.match(
      result.stderr,
      /Spotify answered HTTP 500 for \/v1\/browse\/new-releases \(offset 500\): Server error \(gave up after 2 attempts\)/,
    );
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await failing.stop();
  }
});

test('--log-format json writes one JSON report on stderr', async () => {
  const result = await runCli(['new-releases', '--max-items', '60', '--log-format', 'json'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 0);
  // Progress events come every 10 s: a machine that slow would show some before the report.
  const lines = result.stderr.trim().split('\n');
  assert.ok(
    lines.slice(0, -1).every((l) => JSON.parse(l).event === 'progress'),
    result.stderr,
  );
  const report = JSON.parse(lines.at(-1) ?? '');
  assert.equal(report.event, 'report');
  assert.equal(report.ok, true);
  assert.equal(report.albums, 60);
  assert.equal(report.serializedBytes, result.stdout.length);
});

test('--out to a named pipe (or a device such as /dev/null) writes in place and keeps it what it is', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const reader = readFile(fifo);
  const result = await runCli(['new-releases', '--out', fifo, '--max-items', '100'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 0, result.stderr);
  const bytes = await reader;
  assert.ok(bytes.toString().startsWith('album_id,'));
  assert.ok((await stat(fifo)).isFIFO(), 'the pipe is still a pipe');
  assert.deepEqual(await readdir(dir), ['pipe']);
});

test('the progress line goes to stderr only, never into the data on stdout', async () => {
  // Slow enough (40 pages × 30 ms, one at a time) for the line to be drawn a few times.
  // Kept on latency: the line is drawn by a 250 ms timer in the CLI; holding the pages until
  // stderr showed it hung under node --test (not understood yet, see the branch report).
  const slow = await startEmulator({ seed: 11, albums: 2000, latencyMs: 30 });
  const result = await runCli(['new-releases', '--progress', '--concurrency', '1'], {
    env: emulatorEnv(slow),
  });
  await slow.stop();
  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.toString().startsWith('album_id,'));
  const ESC = '\u001b';
  assert.ok(
    !result.stdout.includes(ESC) && !result.stdout.includes('albums/s'),
    'progress leaked into stdout',
  );
  const line = new RegExp(
    `\r${ESC}\\[2Kspotify-batch: [\\d,]+ of 2,000 albums · [\\d,]+ rows · .* albums/s · ETA`,
  );
  assert.match(result.stderr, line);
});

test('shell completion script is printed', async () => {
  const result = await runCli(['completion']);
  assert.equal(result.status, 0);
  assert.match(result.stdout.toString(), /spotify-batch/);
  assert.match(result.stdout.toString(), /complete/);
});

test('--out -, -o - and --out=- all mean stdout (the contract)', async () => {
  const expected = (
    await runCli(['new-releases', '--max-items', '60'], { env: emulatorEnv(emulator) })
  ).stdout;
  assert.ok(expected.length > 0);
  for (const form of [['--out', '-'], ['-o', '-'], ['--out=-']]) {
    const result = await runCli(['new-releases', ...form, '--max-items', '60'], {
      env: emulatorEnv(emulator),
    });
    assert.equal(result.status, 0, `${form.join(' ')}: ${result.stderr}`);
    assert.ok(result.stdout.equals(expected), form.join(' '));
  }
});

test('replay --help: --from first, and no flag that only a live pull uses', async () => {
  const help = (await runCli(['replay', '--help'])).stdout.toString();
  assert.ok(help.indexOf('--from') < help.indexOf('--out'), help);
  for (const flag of ['--via', '--api-url', '--max-retries', '--request-timeout', '--limit ']) {
    assert.ok(!help.includes(flag), `${flag} listed in replay --help`);
  }
  assert.ok(help.includes('--concurrency'), 'replay still takes --concurrency (markets at once)');
});

test('completion --help says what the command does (not the script)', async () => {
  const result = await runCli(['completion', '--help']);
  assert.equal(result.status, 0, result.stderr);
  const text = result.stdout.toString();
  assert.match(text, /Print a bash\/zsh completion script/);
  assert.doesNotMatch(text, /_spotify_batch|complete -o|compdef/);
});

test('completion offers the real flags, never an alias as a long flag (--o)', async () => {
  const result = await runCli(['--get-yargs-completions', 'spotify-batch', 'new-releases', '--']);
  assert.equal(result.status, 0, result.stderr);
  const offered = result.stdout.toString().trim().split('\n');
  assert.ok(offered.includes('--out') && offered.includes('--market'), offered.join(' '));
  assert.deepEqual(
    offered.filter((o) => /^--[^-]$/.test(o)),
    [],
  );
});

test('an --api-url that is not the Web API: one line with the status, the URL and a short excerpt', async () => {
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>NoSuchKey</Code>\n  <Message>The specified key does not exist.</Message>\n  <RequestId>' +
    'x'.repeat(400) +
    '</RequestId>\n</Error>\n';
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/xml' });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const result = await runCli(['new-releases', '--api-url', url], { env: emulatorEnv(emulator) });
    assert.equal(result.status, 4, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `^spotify-batch: error: HTTP 404 from ${url}/v1/browse/new-releases\\?[^ ]+ \\(offset 0\\), not a Spotify API answer \\(is --api-url right\\?\\): "NoSuchKey The specified key does not exist\\. x+…"\\n$`,
      ),
    );
    assert.ok(result.stderr.length < 300, `${result.stderr.length} characters`);
  } finally {
    server.close();
  }
});

test("a JSON error body's message reaches stderr on one short line: no newline, no escape sequence", async () => {
  const injected = `bad\n\u001b[31mspotify-batch: error: forged line\u001b[0m\r\n${'y'.repeat(400)}`;
  const server = createServer((req, res) => {
    // A proxy answering JSON: the token endpoint with an OAuth-style body, the API with Spotify's.
    const body = req.url?.startsWith('/api/token')
      ? { error: 'invalid_client', error_description: injected }
      : { error: { status: 404, message: injected } };
    res.writeHead(req.url?.startsWith('/api/token') ? 400 : 404, {
      'content-type': 'application/json',
    });
    res.end(JSON.stringify(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const [flag, status] of [
      ['--api-url', 4],
      ['--accounts-url', 3],
    ] as const) {
      const result = await runCli(['new-releases', flag, url], { env: emulatorEnv(emulator) });
      assert.equal(result.status, status, result.stderr);
      assert.match(
        result.stderr,
        /^spotify-batch: error: [^\n]*bad spotify-batch: error: forged line y+…/,
      );
      assert.equal(
        result.stderr.split('\n').length,
        2,
        `one line: ${JSON.stringify(result.stderr)}`,
      );
      assert.ok(
        ![...result.stderr.trimEnd()].some((c) => c < ' ' || c === '\u007f'),
        JSON.stringify(result.stderr),
      );
      assert.ok(!result.stderr.includes('[31m'), JSON.stringify(result.stderr));
      assert.ok(result.stderr.length < 450, `${result.stderr.length} characters`);
    }
  } finally {
    server.close();
  }
});

test('check finds outputs it cannot write: /proc/x.csv, /dev/full (the run’s own status, 5)', async () => {
  for (const [out, message] of [
    [
      '/proc/x.csv',
      /^spotify-batch: error: cannot write \/proc\/x\.csv: \/proc takes no new files\n$/,
    ],
    [
      '/dev/full',
      /^spotify-batch: error: cannot write \/dev\/full: no space left on the device\n$/,
    ],
  ] as const) {
    for (const command of ['check', 'new-releases']) {
      const before = emulator.stats.apiRequests;
      const result = await runCli([command, '--out', out], { env: emulatorEnv(emulator) });
      assert.equal(result.status, 5, `${command} --out ${out}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(emulator.stats.apiRequests, before, 'nothing fetched');
    }
  }
});

test('stdout closed (>&-): nothing is fetched, the run says nothing was written, with the status of a closed pipe (0)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-closed-'));
  const state = join(dir, 'state.tsv');
  const before = { ...emulator.stats };
  const child = spawn(
    'sh',
    ['-c', `exec "$0" "$1" new-releases --state "$2" >&-`, process.execPath, CLI, state],
    {
      env: { PATH: process.env.PATH, ...emulatorEnv(emulator) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [status] = (await once(child, 'close')) as [number | null];
  assert.equal(status, 0, stderr);
  assert.equal(
    stderr,
    `spotify-batch: stdout is closed: nothing was written (not written either: ${state})\n`,
  );
  assert.deepEqual(await readdir(dir), []);
  // Found out before the run: no token, no page, no lease.
  assert.equal(emulator.stats.tokenRequests - before.tokenRequests, 0, 'token requests');
  assert.equal(emulator.stats.apiRequests - before.apiRequests, 0, 'API requests');
});

test('--help groups the options by task; the top-level help has examples', async () => {
  const help = (await runCli(['new-releases', '--help'])).stdout.toString();
  const headings = help.split('\n').filter((line) => /^[A-Z][A-Za-z0-9 ]+:$/.test(line));
  assert.deepEqual(headings, [
    'Output:',
    'Source and markets:',
    'Incremental:',
    'Raw and report:',
    'S3:',
    'Retries and pacing:',
    'Logging:',
    'Options:',
    'Examples:',
  ]);
  const section = (name: string) => help.slice(help.indexOf(`\n${name}:\n`)).split('\n\n')[0] ?? '';
  assert.match(section('Incremental'), /--state\b[\s\S]*--new-only[\s\S]*--date\b/);
  assert.match(section('Retries and pacing'), /--max-rate\b/);
  const replay = (await runCli(['replay', '--help'])).stdout.toString();
  assert.ok(!replay.includes('Retries and pacing:'), 'replay lists no group of live-only flags');
  const top = (await runCli(['--help'])).stdout.toString();
  assert.match(top, /\nExamples:\n {2}spotify-batch emulator/);
  assert.match(top, /spotify-batch new-releases --out - \| head -3/);
});

test('--log-format json: progress events at a steady interval while a long pull goes on', {
  // Without progress events the held run would wait for ever: fail instead.
  timeout: 60_000,
}, async () => {
  // Every page after the first is held: the run is under way, however fast the machine, until
  // the test has seen progress events; then it is let go to finish.
  const slow = await startEmulator({ seed: 11, albums: 500 });
  const hold = slow.hold((r) => r.offset > 0);
  try {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'new-releases',
        '--out',
        '/dev/null',
        '--log-format',
        'json',
        '--progress-interval',
        '0.05',
      ],
      {
        env: { PATH: process.env.PATH, ...emulatorEnv(slow) },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const closed = once(child, 'close');
    await stderrMatches(
      child,
      /"event":"progress"[^\n]*\n[^\n]*"event":"progress"[^\n]*"albums":50\b/,
    );
    hold.release();
    const [status] = (await closed) as [number | null];
    assert.equal(status, 0, stderr);
    const events = stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const progress = events.filter((e) => e.event === 'progress');
    assert.ok(progress.length >= 2, `${progress.length} progress events`);
    const held = progress.find((e) => e.albums === 50);
    assert.ok(held, JSON.stringify(progress));
    assert.deepEqual(Object.keys(held).sort(), [
      'albums',
      'albumsPerSecond',
      'bytes',
      'etaSeconds',
      'event',
      'pages',
      'rows',
      'seconds',
      'time',
      'total',
    ]);
    assert.equal(held.pages, 1);
    assert.equal(held.total, 500);
    assert.ok(typeof held.etaSeconds === 'number' && typeof held.albumsPerSecond === 'number');
    // Bytes count what reached the output: the first page's rows are still being gathered
    // into a 64 KiB chunk.
    assert.ok((held.rows as number) > 0 && typeof held.bytes === 'number', JSON.stringify(held));
    assert.equal(events.at(-1)?.event, 'report', 'the report is still the last line');
  } finally {
    hold.release();
    await slow.stop();
  }
});

test('--progress-interval must be a number > 0', async () => {
  const result = await runCli(['new-releases', '--log-format', 'json', '--progress-interval', '0']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /option --progress-interval must be a number > 0, got 0/);
  assert.equal(result.stderr.trim().split('\n').length, 1);
});
