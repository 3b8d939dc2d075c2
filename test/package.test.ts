import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv } from './helpers/cli.ts';

// What users and the container get: the npm tarball installed into an empty folder, and the
// Dockerfile's install path (npm ci --omit=dev from the lockfile, then the built CLI), each
// run with production dependencies only. Catches a missing `files` entry, a dev-only import
// or a wrong bin path. Both install from the npm registry (the only network this needs).

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const golden = await readFile(new URL('./fixtures/new-releases-seed42.csv', import.meta.url));
const npmEnv = {
  ...process.env,
  npm_config_loglevel: 'error',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};
let emulator: Emulator;
let work: string;

before(async () => {
  emulator = await startEmulator({ seed: 42, albums: 230 });
  work = await mkdtemp(join(tmpdir(), 'spotify-batch-pkg-'));
});
after(async () => {
  await emulator.stop();
  await rm(work, { recursive: true, force: true });
});

/** Runs the CLI at `bin` with the test's Node and only the emulator's environment. */
async function pull(bin: string): Promise<Buffer> {
  const { stdout } = await run(process.execPath, [bin, 'new-releases', '--quiet'], {
    env: { PATH: process.env.PATH, ...emulatorEnv(emulator) },
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

test('the npm tarball installed into an empty folder runs --help and a full pull', async () => {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], {
    cwd: root,
    env: npmEnv,
  });
  const tarball = join(work, stdout.trim().split('\n').at(-1) as string);
  const app = join(work, 'app');
  await cp(join(root, 'test/fixtures/empty-package.json'), join(app, 'package.json'));
  // At npm's default log level: installing the published package prints no warning.
  const install = await run('npm', ['install', '--omit=dev', '--ignore-scripts', tarball], {
    cwd: app,
    env: { ...npmEnv, npm_config_loglevel: 'warn' },
  });
  assert.doesNotMatch(install.stderr, /npm warn/i);
  const installed = join(app, 'node_modules/spotify-batch');
  assert.deepEqual((await readdir(installed)).sort(), [
    'LICENSE',
    'README.md',
    'dist',
    'package.json',
  ]);
  const bin = join(app, 'node_modules/.bin/spotify-batch');
  const help = await run(bin, ['--help'], {
    env: { PATH: `${process.execPath.replace(/\/node$/, '')}:${process.env.PATH}` },
  });
  assert.match(help.stdout, /new-releases/);
  assert.ok((await pull(bin)).equals(golden));
  // The library entry point resolves with its types.
  const lib = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const m = await import('spotify-batch'); const e = await import('spotify-batch/emulator'); const l = await import('spotify-batch/lambda'); console.log(typeof m.run, typeof m.check, typeof m.startEmulator, typeof e.startEmulator, typeof l.handler)",
    ],
    {
      cwd: app,
    },
  );
  assert.equal(lib.stdout.trim(), 'function function undefined function function');
  assert.ok((await readdir(join(installed, 'dist/src'))).includes('index.d.ts'));
});

test("the Dockerfile's install path: npm ci --omit=dev from the lockfile, then the built CLI", async () => {
  const app = join(work, 'image');
  for (const file of ['package.json', 'package-lock.json', '.npmrc'])
    await cp(join(root, file), join(app, file));
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts'], { cwd: app, env: npmEnv });
  await cp(join(root, 'dist/src'), join(app, 'dist/src'), { recursive: true });
  await cp(join(root, 'dist/bin'), join(app, 'dist/bin'), { recursive: true });
  const modules = await readdir(join(app, 'node_modules'));
  for (const dev of ['typescript', 's3rver', '@biomejs', 'node'])
    assert.ok(!modules.includes(dev), `${dev} installed`);
  assert.ok((await pull(join(app, 'dist/bin/spotify-batch.js'))).equals(golden));
});
