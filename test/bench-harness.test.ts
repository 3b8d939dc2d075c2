/**
 * The benchmark harness's emulator process: stop() answers once the process is gone, also when
 * it was gone already (stopped before, or exited on its own), rather than waiting for an 'exit'
 * that came before the call.
 */
import { test } from 'node:test';
import { startEmulatorProcess } from '../bench/harness.ts';

test('stop() of an emulator process that has already exited resolves', {
  timeout: 30_000,
}, async () => {
  const server = await startEmulatorProcess(10);
  await server.stop();
  await server.stop();
});
