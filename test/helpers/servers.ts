import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { type LocalS3, startS3 } from '../../scripts/local-s3.ts';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../src/emulator/server.ts';

/**
 * A factory of emulators for one test file, each started with `defaults` and the options given,
 * and all stopped after the file's tests: `const emulator = emulators({ seed: 21 })` at the top
 * of the file, then `await emulator({ albums: 600 })` in any test.
 */
export function emulators(
  defaults: EmulatorOptions = {},
): (options?: EmulatorOptions) => Promise<Emulator> {
  const started: Emulator[] = [];
  after(() => Promise.all(started.map((e) => e.stop())));
  return async (options = {}) => {
    const e = await startEmulator({ ...defaults, ...options });
    started.push(e);
    return e;
  };
}

/**
 * A server started before the file's tests and stopped after them, usable as the server itself
 * from the tests on: a stand-in that hands every property read to it (methods bound to it).
 * node:test starts a file's top-level `before` hooks together, without awaiting one before the
 * next: use it from tests (or what they call), not from another `before` hook.
 */
function startedBefore<T extends object>(
  what: string,
  start: () => Promise<T>,
  stop: (server: T) => Promise<unknown>,
): T {
  let server: T | undefined;
  before(async () => {
    server = await start();
  });
  after(() => (server === undefined ? undefined : stop(server)));
  return new Proxy({} as T, {
    get(_, name) {
      if (server === undefined) throw new Error(`${what} is used before the file's tests start`);
      const value: unknown = Reflect.get(server, name);
      return typeof value === 'function' ? value.bind(server) : value;
    },
  });
}

/**
 * The local S3 (scripts/local-s3.ts) for one test file, with `buckets` made, started before its
 * tests and stopped after: `const s3 = localS3('faults')` at the top of the file.
 */
export function localS3(...buckets: string[]): LocalS3 {
  return startedBefore(
    'the local S3',
    async () => {
      const s3 = await startS3();
      for (const bucket of buckets) await s3.createBucket(bucket);
      return s3;
    },
    (s3) => s3.stop(),
  );
}

/**
 * An emulator for one test file, started with `options` before its tests and stopped after:
 * `const small = emulator({ seed: 42, albums: 230 })` at the top of the file.
 */
export function emulator(options: EmulatorOptions): Emulator {
  return startedBefore(
    'the emulator',
    () => startEmulator(options),
    (e) => e.stop(),
  );
}

/** A temporary directory for one test file, made now and removed after its tests. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
