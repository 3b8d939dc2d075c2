/**
 * README and docs examples are executed (issues 12 and 25). Every shell example in README.md and
 * docs/*.md (```sh blocks and `$ ` prompt lines) runs as written, in bash, against the Spotify
 * emulator and the local S3: only the environment differs from a user's (endpoints, keys, a temp
 * working directory, and `spotify-batch` / `npx spotify-batch` meaning the built CLI on this
 * Node). Each command must exit 0 (or the status its comment documents, `# exits 7`) and leave
 * what it promises: its `--out` files or objects (per market, star tables, the manifest), or CSV
 * on stdout.
 *
 * A block that cannot run here (and every block that is not shell: SQL, JSON, a program's
 * output) carries `<!-- readme-test: skip (reason) -->` right before it; the marked blocks are
 * listed with their reasons. An unmarked block that cannot run fails. Links between the pages
 * must reach a file and, for a Markdown page, one of its headings. The try-out the README opens
 * with (`npm start`, `npm start -- --keep`: scripts/demo.ts) is run too.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import { SPOTIFY_MARKETS } from '../src/core/markets.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { CLI } from './helpers/cli.ts';
import {
  type Block,
  type CliCall,
  CONTRACT_COLUMNS,
  type Command,
  cliCalls,
  documentedStatus,
  extractBlocks,
  type Format,
  remoteUrls,
  simpleCommands,
} from './helpers/readme.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The pages whose examples run: README.md, then every docs/*.md, by name. */
const PAGES = [
  'README.md',
  ...(await readdir(join(ROOT, 'docs')))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];
/** A fenced block of one of the {@link PAGES}. */
type PageBlock = Block & { file: string };
const texts = new Map<string, string>();
const blocks: PageBlock[] = [];
const problems: string[] = [];
for (const file of PAGES) {
  const text = await readFile(join(ROOT, file), 'utf8');
  texts.set(file, text);
  const extracted = extractBlocks(text, file);
  blocks.push(...extracted.blocks.map((b) => ({ ...b, file })));
  problems.push(...extracted.problems);
}
const runnable = blocks.filter((b) => b.shell && b.skip === undefined);
const MARK = '<!-- readme-test: skip (reason) -->';
/** A hang guard, not a measurement: a block still running then (a server?) fails. */
const BLOCK_TIMEOUT_MS = 60_000;
/** Programs an example may name that reach beyond this machine or this checkout. */
const NOT_HERE: Record<string, string> = {
  npm: 'installs, builds or tests this checkout',
  docker: 'needs a Docker engine',
  aws: 'needs AWS',
};

let emulator: Emulator;
let s3: LocalS3;
let root: string;
let bin: string;
let credentials: { clientId: string; clientSecret: string };

/**
 * The credentials the examples export (`export SPOTIFY_CLIENT_ID=… …`, the README's
 * placeholders), so that such a block runs unchanged: the emulator accepts exactly those.
 */
function exportedCredentials(): { clientId: string; clientSecret: string } {
  const found: Record<string, string> = {};
  for (const block of runnable) {
    for (const command of block.commands) {
      for (const { words } of simpleCommands(command.text)) {
        for (const word of words) {
          const match = /^(?:SPOTIFY_)?(CLIENT_ID|CLIENT_SECRET)=(.+)$/.exec(word);
          if (match && !((match[1] as string) in found)) found[match[1] as string] = match[2] ?? '';
        }
      }
    }
  }
  return {
    clientId: found.CLIENT_ID ?? 'emulator-id',
    clientSecret: found.CLIENT_SECRET ?? 'emulator-secret',
  };
}

const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

before(async () => {
  credentials = exportedCredentials();
  // Small: two pages per market (limit 50), so paging is exercised and `--market all` is quick.
  emulator = await startEmulator({ seed: 12, albums: 60, ...credentials });
  s3 = await startS3();
  const buckets = new Set<string>();
  for (const block of runnable) {
    for (const command of block.commands) {
      for (const match of command.text.matchAll(/s3:\/\/([a-z0-9][a-z0-9.-]+[a-z0-9])/g)) {
        buckets.add(match[1] as string);
      }
    }
  }
  for (const bucket of buckets) await s3.createBucket(bucket);
  root = await mkdtemp(join(tmpdir(), 'spotify-batch-readme-'));
  bin = join(root, 'bin');
  await mkdir(bin);
  const node = quote(process.execPath);
  const cli = quote(CLI);
  const scripts: Record<string, string> = {
    'spotify-batch': `exec ${node} ${cli} "$@"`,
    node: `exec ${node} "$@"`,
    npx: [
      'for arg do case $arg in -*) shift ;; *) break ;; esac; done # npx flags (--yes)',
      `case "$1" in spotify-batch) shift; exec ${node} ${cli} "$@";; node) shift; exec ${node} "$@";; esac`,
      `echo "readme-test: npx $1 is not available offline; if the example cannot run here, mark it with ${MARK}" >&2`,
      'exit 127',
    ].join('\n'),
  };
  for (const [program, why] of Object.entries(NOT_HERE)) {
    scripts[program] = [
      `echo "readme-test: ${program} is not run by the README test (it ${why}); mark the block with ${MARK}" >&2`,
      'exit 127',
    ].join('\n');
  }
  for (const [name, body] of Object.entries(scripts)) {
    await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(bin, name), 0o755);
  }
});
after(async () => {
  await Promise.all([emulator?.stop(), s3?.stop()]);
  if (root) await rm(root, { recursive: true, force: true });
});

/** A command on one line, without its comment, shortened for a test name. */
const summary = (text: string) => {
  const one = (text.replace(/\\\n\s*/g, '').split('\n')[0] ?? '').replace(/\s+#[^'"]*$/, '');
  return one.length > 70 ? `${one.slice(0, 69)}…` : one;
};
const blockName = (block: PageBlock) => {
  const first = block.commands[0]?.text ?? block.text.split('\n')[0] ?? '';
  const more = block.commands.length > 1 ? ` (+${block.commands.length - 1} more)` : '';
  return `${block.file}:${block.line} ${block.lang || 'untagged'}: ${summary(first)}${more}`;
};

test('README.md and docs/*.md: every block is run or marked with a reason, every marker sits on a block', (t) => {
  assert.deepEqual(problems, [], problems.join('\n'));
  assert.ok(runnable.length > 0, 'no runnable shell example found: is the extraction broken?');
  for (const file of PAGES) {
    const mine = blocks.filter((b) => b.file === file);
    const run = mine.filter((b) => b.shell && b.skip === undefined).length;
    t.diagnostic(`${file}: ${mine.length} blocks: ${run} run, ${mine.length - run} marked`);
  }
  for (const block of blocks.filter((b) => b.skip !== undefined)) {
    t.diagnostic(
      `marked: ${block.file}:${block.line} (${block.lang || 'untagged'}): ${block.skip}`,
    );
  }
  // A block that is not shell (SQL, JSON, TypeScript, a program's output) is not run: it says
  // why, so that "every example is run or marked" holds for the pages as a whole.
  const unmarked = blocks
    .filter((b) => !b.shell && b.skip === undefined)
    .map(
      (b) =>
        `${b.file}:${b.line} (${b.lang || 'untagged'}) is not shell and not marked: add ${MARK}`,
    );
  assert.deepEqual(unmarked, [], unmarked.join('\n'));
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a Markdown page's headings (outside fences), duplicates numbered as GitHub does. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const counts = new Map<string, number>();
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const open = /^\s*(`{3,}|~{3,})/.exec(line);
    if (open) {
      if (fence === undefined) fence = open[1];
      else if ((open[1] as string).startsWith(fence)) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1] as string);
    const n = counts.get(base) ?? 0;
    counts.set(base, n + 1);
    found.add(n === 0 ? base : `${base}-${n}`);
  }
  return found;
}

test('README.md and docs/*.md: every relative link reaches a file, and a heading when it names one', async () => {
  const broken: string[] = [];
  for (const file of PAGES) {
    const text = (texts.get(file) as string).replace(/^\s*(`{3,}|~{3,})[\s\S]*?^\s*\1\s*$/gm, '');
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = match[1] as string;
      if (/^[a-z]+:/i.test(link)) continue;
      const [path = '', anchor] = link.split('#');
      const target = path === '' ? file : relative(ROOT, resolve(ROOT, dirname(file), path));
      const where = `${file}: (${link})`;
      const exists = await stat(join(ROOT, target)).then(
        () => true,
        () => false,
      );
      if (!exists) {
        broken.push(`${where}: no file ${target}`);
        continue;
      }
      if (anchor === undefined || !target.endsWith('.md')) continue;
      const text = texts.get(target) ?? (await readFile(join(ROOT, target), 'utf8'));
      if (!anchors(text).has(anchor)) broken.push(`${where}: ${target} has no heading #${anchor}`);
    }
  }
  assert.deepEqual(broken, [], broken.join('\n'));
});

test('extraction: GitHub heading anchors', () => {
  assert.deepEqual(
    [...anchors('# A b\n## `--out`, `-o`\n```\n# not a heading\n```\n## A b\n### Rate limits?')],
    ['a-b', '--out--o', 'a-b-1', 'rate-limits'],
  );
});

for (const block of blocks) {
  // Marked blocks are listed (with their reasons) by the inventory test above, not reported as
  // skipped tests: nothing in this suite is skipped.
  if (block.skip !== undefined) continue;
  if (block.shell) {
    test(blockName(block), async (t) => {
      const { failures, notes } = await runBlock(block);
      for (const note of notes) t.diagnostic(note);
      if (failures.length > 0) assert.fail(`\n${failures.join('\n\n')}`);
    });
  }
}

interface BlockResult {
  failures: string[];
  notes: string[];
}

/** Runs a block's commands in one bash, each with its stdout, stderr and status recorded. */
async function runBlock(block: PageBlock): Promise<BlockResult> {
  const failures: string[] = [];
  const notes: string[] = [];
  const hint = `Fix the example (or the CLI); if it cannot run offline, mark the block with ${MARK}.`;
  for (const command of block.commands) {
    const remote = simpleCommands(command.text).flatMap((c) => c.words.flatMap(remoteUrls));
    if (remote.length > 0) {
      failures.push(
        `${block.file}:${command.line}: \`${command.text}\` reaches ${remote.join(', ')}: tests stay on loopback. ${hint}`,
      );
    }
  }
  if (failures.length > 0) return { failures, notes };

  const dir = await mkdtemp(join(root, `block-${block.file.replace(/\W/g, '_')}-${block.line}-`));
  const work = join(dir, 'work');
  const home = join(dir, 'home');
  const rec = join(dir, 'rec');
  await Promise.all([work, home, rec].map((d) => mkdir(d)));
  const file = (n: number, ext: string) => join(rec, `${n}.${ext}`);
  // The commands verbatim, each in a `{ … }` group (same shell: exports and `cd` carry over)
  // whose output and status are recorded; pipefail so `spotify-batch … | head` is the CLI's status.
  const script = [
    'set -o pipefail',
    ...block.commands.map(
      (c, n) =>
        `{ ${c.text}\n} >${quote(file(n, 'out'))} 2>${quote(file(n, 'err'))} </dev/null; echo $? >${quote(file(n, 'status'))}`,
    ),
  ].join('\n');
  await writeFile(join(dir, 'block.sh'), `${script}\n`);

  const s3Mark = s3.calls.length;
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: home,
    LANG: 'C.UTF-8',
    SPOTIFY_API_URL: emulator.url,
    SPOTIFY_ACCOUNTS_URL: emulator.url,
    SPOTIFY_CLIENT_ID: credentials.clientId,
    SPOTIFY_CLIENT_SECRET: credentials.clientSecret,
    ...s3.env,
    AWS_ENDPOINT_URL: s3.endpoint,
    AWS_CONFIG_FILE: join(home, '.aws', 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, '.aws', 'credentials'),
  };
  const finished = await runBash(join(dir, 'block.sh'), work, env);
  if (!finished.ok) failures.push(`${block.file}:${block.line}: ${finished.why}`);

  const written = s3.calls
    .slice(s3Mark)
    .filter((c) => c.kind === 'put' || c.kind === 'complete')
    .map((c) => `${c.bucket}/${c.key}`);
  for (const [n, command] of block.commands.entries()) {
    const where = `${block.file}:${command.line}: \`${command.text}\``;
    const statusText = await readFile(file(n, 'status'), 'utf8').catch(() => '');
    const stderr = await readFile(file(n, 'err'), 'utf8').catch(() => '');
    if (statusText === '') {
      failures.push(`${where} did not finish`);
      continue;
    }
    const status = Number(statusText.trim());
    if (status !== command.expectedStatus) {
      failures.push(
        `${where} exited ${status}, expected ${command.expectedStatus}\n  stderr: ${stderr.trim().split('\n').slice(-5).join('\n          ')}\n  ${hint}`,
      );
      continue;
    }
    notes.push(`${block.file}:${command.line} exit ${status}: ${summary(command.text)}`);
    if (status !== 0) continue;
    const stdout = await readFile(file(n, 'out'));
    for (const call of cliCalls(command.text, SPOTIFY_MARKETS)) {
      for (const p of call.promised) {
        const at =
          p.where === 'stdout'
            ? ''
            : p.where === 's3'
              ? ` s3://${p.bucket}/${p.key}`
              : ` ${p.path}`;
        notes.push(
          `  checked: ${p.what}${at} (${p.format.gzip ? 'gzipped ' : ''}${p.format.type})`,
        );
      }
      for (const problem of await checkOutputs(call, { stdout, work, written })) {
        failures.push(`${where}: ${problem}`);
      }
      for (const note of call.unchecked) notes.push(`  not checked: ${note}`);
    }
  }
  return { failures, notes };
}

async function runBash(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const child = spawn('bash', [script], { cwd, env, stdio: 'ignore', detached: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, BLOCK_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) =>
    child.on('close', (c, s) => done([c, s])),
  );
  clearTimeout(timer);
  if (timedOut) {
    return {
      ok: false,
      why: `the block was still running after ${BLOCK_TIMEOUT_MS / 1000} s (a server, or waiting for input?)`,
    };
  }
  if (code !== 0 || signal) return { ok: false, why: `bash ended with ${signal ?? code}` };
  return { ok: true };
}

interface Seen {
  stdout: Buffer;
  work: string;
  /** `bucket/key` of every object the local S3 stored during the block. */
  written: string[];
}

/** What is wrong with the outputs a CLI call promised; empty when all are there and sound. */
async function checkOutputs(call: CliCall, seen: Seen): Promise<string[]> {
  const problems: string[] = [];
  for (const promised of call.promised) {
    if (promised.where === 'stdout') {
      const problem = contentProblem(seen.stdout, promised.format);
      if (problem) problems.push(`stdout: ${problem}`);
    } else if (promised.where === 's3') {
      const pattern = templateRegex(`${promised.bucket}/${promised.key}`);
      const keys = seen.written.filter((k) => pattern.test(k));
      const location = `s3://${promised.bucket}/${promised.key}`;
      if (keys.length === 0) {
        problems.push(`${promised.what}: no object ${location} was written`);
        continue;
      }
      for (const key of keys) {
        const slash = key.indexOf('/');
        const object = await s3.getObject(key.slice(0, slash), key.slice(slash + 1));
        const problem = object
          ? contentProblem(object.body, promised.format)
          : 'written, then gone';
        if (problem) problems.push(`${promised.what}: s3://${key}: ${problem}`);
      }
    } else {
      const path = isAbsolute(promised.path) ? promised.path : resolve(seen.work, promised.path);
      const files = await matchingFiles(path);
      if (files.length === 0) {
        problems.push(`${promised.what}: no file ${promised.path} (in ${seen.work})`);
        continue;
      }
      for (const f of files) {
        const problem = contentProblem(await readFile(f), promised.format);
        if (problem) problems.push(`${promised.what}: ${relative(seen.work, f)}: ${problem}`);
      }
    }
  }
  return problems;
}

/** A location with `{date}` / `{run_id}` as a pattern; a star table's name may take any suffix. */
function templateRegex(location: string): RegExp {
  const escaped = location
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replaceAll('\\{date\\}', '\\d{4}-\\d{2}-\\d{2}')
    .replaceAll('\\{run_id\\}', '[^/]+');
  const star = /(dim_album|dim_artist|bridge_album_artist)$/.test(location);
  return new RegExp(`^${escaped}${star ? '(\\.[a-z]+)+' : ''}$`);
}

/** Files that match a path template (found under the template's fixed directory). */
async function matchingFiles(path: string): Promise<string[]> {
  if (!/\{(date|run_id)\}|(dim_album|dim_artist|bridge_album_artist)$/.test(path)) {
    return (await stat(path).catch(() => undefined)) ? [path] : [];
  }
  const fixed = path.slice(0, path.search(/\{|(dim_album|dim_artist|bridge_album_artist)$/));
  const base = fixed.slice(0, fixed.lastIndexOf('/') + 1) || '/';
  const pattern = templateRegex(path);
  const entries = await readdir(base, { recursive: true }).catch(() => [] as string[]);
  return entries.map((e) => join(base, e)).filter((p) => pattern.test(p));
}

/** Why `bytes` are not the promised format (undefined when they are). */
function contentProblem(bytes: Buffer, format: Format): string | undefined {
  if (format.type === 'any') return undefined;
  let data = bytes;
  if (format.gzip) {
    if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return 'expected gzip, no gzip header';
    data = gunzipSync(bytes);
  }
  const text = data.toString('utf8');
  const lines = text.split('\n');
  switch (format.type) {
    case 'parquet':
      return data.subarray(0, 4).toString() === 'PAR1' && data.subarray(-4).toString() === 'PAR1'
        ? undefined
        : 'expected Parquet (PAR1 … PAR1)';
    case 'json':
      try {
        JSON.parse(text);
        return undefined;
      } catch {
        return `expected JSON, got ${JSON.stringify(text.slice(0, 60))}`;
      }
    case 'ndjson':
      try {
        const first = JSON.parse(lines[0] ?? '');
        return typeof first === 'object' && first !== null ? undefined : 'expected NDJSON objects';
      } catch {
        return `expected NDJSON, got ${JSON.stringify(text.slice(0, 60))}`;
      }
    case 'csv': {
      const header = lines[0] ?? '';
      if (!/^[a-z_]+(,[a-z_]+)*$/.test(header)) {
        return `expected a CSV header, got ${JSON.stringify(text.slice(0, 80))}`;
      }
      if (Array.isArray(format.header) && header !== format.header.join(',')) {
        return `expected the header ${format.header.join(',')}, got ${header}`;
      }
      if ((lines[1] ?? '') === '') return 'the CSV has a header and no rows';
      return undefined;
    }
  }
}

// The extraction itself, on made-up Markdown: what the README test relies on to stay generic.
test('extraction: shell fences, prompts, continuations, markers, documented statuses', () => {
  const markdown = [
    '# t',
    '```sh',
    '# a comment',
    'spotify-batch new-releases --market SE,DE \\',
    "  --out 's3://b/dt={date}/market={market}/a.csv'",
    'spotify-batch new-releases --on-market-error skip   # exits 7',
    'for x in a b; do',
    '  echo "$x"',
    'done',
    '```',
    '',
    '<!-- readme-test: skip (needs a Docker engine) -->',
    '',
    '```bash',
    'docker build .',
    '```',
    '```console',
    '$ spotify-batch markets | head -3',
    'AD',
    '```',
    '```sql',
    'SELECT 1;',
    '```',
    '<!-- readme-test: skip me -->',
    'text',
  ].join('\n');
  const { blocks: found, problems: bad } = extractBlocks(markdown);
  assert.deepEqual(
    found.map((b) => [b.line, b.lang, b.shell, b.skip]),
    [
      [2, 'sh', true, undefined],
      [14, 'bash', true, 'needs a Docker engine'],
      [17, 'console', true, undefined],
      [21, 'sql', false, undefined],
    ],
  );
  const commands = found[0]?.commands as Command[];
  assert.deepEqual(
    commands.map((c) => [c.line, c.expectedStatus, c.text.split('\n').length]),
    [
      [4, 0, 2],
      [6, 7, 1],
      [7, 0, 3],
    ],
  );
  assert.deepEqual(commands[0]?.comments, ['a comment']);
  assert.deepEqual(
    found[2]?.commands.map((c) => c.text),
    ['spotify-batch markets | head -3'],
  );
  assert.equal(bad.length, 1);
  assert.match(bad[0] ?? '', /README\.md:24: .*readme-test: skip me/);
  assert.equal(documentedStatus(['exit status 2 when the flag is wrong']), 2);
});

test('extraction: what a command promises', () => {
  const [perMarket] = cliCalls(
    "npx spotify-batch new-releases --market SE,DE --out 's3://b/dt={date}/market={market}/a.csv'",
    SPOTIFY_MARKETS,
  );
  assert.deepEqual(
    perMarket?.promised.map((p) => (p.where === 's3' ? `${p.what} ${p.key}` : p.where)),
    [
      'market SE dt={date}/market=SE/a.csv',
      'market DE dt={date}/market=DE/a.csv',
      'the manifest dt={date}/_manifest.json',
    ],
  );
  const [redirected] = cliCalls('spotify-batch new-releases --out - > albums.csv', []);
  assert.deepEqual(redirected?.promised, [
    {
      where: 'file',
      path: 'albums.csv',
      format: { type: 'csv', gzip: false, header: CONTRACT_COLUMNS },
      what: 'stdout redirected to',
    },
  ]);
  const [allInOne] = cliCalls('spotify-batch new-releases --market all --out all.csv', [
    'SE',
    'DE',
  ]);
  assert.deepEqual(allInOne?.promised[0]?.format.header, [...CONTRACT_COLUMNS, 'market']);
  const [headed] = cliCalls('npx spotify-batch new-releases | head -5', []);
  assert.equal(headed?.promised[0]?.where, 'stdout');
  const [counted] = cliCalls('spotify-batch new-releases | wc -l', []);
  assert.deepEqual(counted?.promised, []);
  assert.deepEqual(counted?.unchecked, ['stdout piped into wc']);
  const [star] = cliCalls(
    'spotify-batch new-releases --model star --out s3://b/star/ --format ndjson --gzip',
    [],
  );
  assert.deepEqual(
    star?.promised.map((p) => (p.where === 's3' ? [p.key, p.format.type, p.format.gzip] : [])),
    [
      ['star/dim_album', 'ndjson', true],
      ['star/dim_artist', 'ndjson', true],
      ['star/bridge_album_artist', 'ndjson', true],
      ['star/_manifest.json', 'json', false],
    ],
  );
  assert.deepEqual(cliCalls('spotify-batch check --out s3://b/k.csv', [])[0]?.promised, []);
  assert.deepEqual(remoteUrls('--api-url https://api.spotify.com'), ['https://api.spotify.com']);
  assert.deepEqual(remoteUrls('--api-url http://127.0.0.1:8080'), []);
});

/** Runs `scripts/demo.ts` (what `npm start` runs) with `args`; stdout is read as it comes. */
function startDemo(args: string[]): { child: ChildProcess; stdout: () => string } {
  const script = fileURLToPath(new URL('../scripts/demo.ts', import.meta.url));
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8' },
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  return { child, stdout: () => out };
}

/** The `export NAME=value` lines a script printed, as an environment. */
const exportsOf = (printed: string): Record<string, string> =>
  Object.fromEntries(
    [...printed.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]),
  );

test('the try-out: npm start (scripts/demo.ts) prints the environment, pulls into the local S3 and reads the object back', async () => {
  const { child, stdout } = startDemo([]);
  const [code] = (await once(child, 'close')) as [number | null];
  const printed = stdout();
  assert.equal(code, 0, printed);
  const env = exportsOf(printed);
  for (const name of [
    'SPOTIFY_API_URL',
    'SPOTIFY_CLIENT_ID',
    'AWS_ENDPOINT_URL_S3',
    'AWS_REGION',
  ]) {
    assert.ok(env[name], `npm start prints export ${name}=…\n${printed}`);
  }
  assert.match(
    printed,
    /\$ npx spotify-batch new-releases --out s3:\/\/spotify-demo\/spotify\/album_details\.csv/,
  );
  assert.match(printed, /spotify-batch: 2 pages, 100 albums, \d+ rows/);
  assert.match(
    printed,
    /\$ curl -s http:\/\/127\.0\.0\.1:\d+\/spotify-demo\/spotify\/album_details\.csv \| sed -n 1,5p\nalbum_id,album_name,/,
  );
  const wrong = startDemo(['--kep']);
  const [status] = (await once(wrong.child, 'close')) as [number | null];
  assert.equal(status, 2);
  assert.equal(wrong.stdout(), 'npm start: unknown argument --kep; usage: npm start [-- --keep]\n');
});

/**
 * Runs a block's commands in bash with only `env` (and `npx` meaning this build), each checked
 * against the status its comment documents; resolves with stdout, stderr and what failed.
 */
async function runAsUser(
  block: PageBlock,
  env: Record<string, string>,
): Promise<{ out: string; err: string; failed: string[] }> {
  const dir = await mkdtemp(join(root, 'try-out-'));
  const script = block.commands.map(
    (c) =>
      `{ ${c.text}\n} </dev/null; s=$?; [ "$s" = ${c.expectedStatus} ] || echo "FAILED ${block.file}:${c.line}: exit $s, expected ${c.expectedStatus}" >&2`,
  );
  await writeFile(join(dir, 'block.sh'), `set -o pipefail\n${script.join('\n')}\n`);
  const shell = spawn('bash', [join(dir, 'block.sh')], {
    cwd: dir,
    env: { PATH: `${bin}:${process.env.PATH}`, HOME: dir, LANG: 'C.UTF-8', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  shell.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  shell.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  await once(shell, 'close');
  return { out, err, failed: err.split('\n').filter((l) => l.startsWith('FAILED ')) };
}

test("the try-out: with npm start -- --keep, the README's and docs' examples run in another shell holding only the printed environment", async () => {
  const follow = blocks.find(
    (b) =>
      b.file === 'README.md' &&
      b.shell &&
      b.skip === undefined &&
      b.text.includes('s3://spotify-demo/'),
  );
  assert.ok(follow, 'README.md has a block to run against `npm start -- --keep`');
  // The README says: paste the export lines, leave out the one that exports real credentials.
  const examples = runnable.filter(
    (b) => b !== follow && !/\b(SPOTIFY_)?CLIENT_(ID|SECRET)=/.test(b.text),
  );
  const { child, stdout } = startDemo(['--keep']);
  try {
    while (!stdout().includes('Both servers stay up')) {
      if (child.exitCode !== null) assert.fail(`npm start -- --keep ended early:\n${stdout()}`);
      await once(child.stdout as NodeJS.ReadableStream, 'data');
    }
    const env = exportsOf(stdout());
    const first = await runAsUser(follow, env);
    assert.deepEqual(first.failed, [], first.err);
    assert.match(first.out, /^album_id,album_name,release_date,/m, 'curl reads the object back');
    assert.match(first.err, /→ 2 outputs/, 'the partitioned pull wrote one object per market');
    const failed: string[] = [];
    for (const block of examples) {
      const { err, failed: mine } = await runAsUser(block, env);
      if (mine.length > 0) failed.push(`${mine.join('\n')}\n  stderr: ${err.trim().slice(-400)}`);
    }
    assert.deepEqual(failed, [], failed.join('\n\n'));
  } finally {
    const closed = once(child, 'close');
    child.kill('SIGINT');
    const [code] = (await closed) as [number | null];
    assert.equal(code, 0, 'Ctrl-C stops npm start -- --keep cleanly');
  }
  assert.match(stdout(), /Stopped the emulator and the local S3/);
});
