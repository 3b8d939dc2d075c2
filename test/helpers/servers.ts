import { after } from 'node:test';
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
