/**
 * Signals to tie a wait to the process under test: a test awaiting something a run was to do
 * fails as soon as the run has ended, naming what it waited for, instead of hanging or guessing
 * a time.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Emulator } from '../../src/emulator/server.ts';

/** Aborts when `child` exits (or has exited). */
export function untilExit(child: ChildProcess | undefined, what: string): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort(new Error(`the run exited before ${what}`));
  if (!child || child.exitCode !== null || child.signalCode !== null) stop();
  else child.once('exit', stop);
  return controller.signal;
}

/** Aborts when `running` settles. */
export function untilSettled(running: Promise<unknown>, what: string): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort(new Error(`the run ended before ${what}`));
  running.then(stop, stop);
  return controller.signal;
}

/**
 * Resolves once the text `child` wrote on stderr matches `pattern` (the child's stderr must be
 * piped); rejects if it exits first.
 */
export function stderrMatches(child: ChildProcess | undefined, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const stderr = child?.stderr;
    if (!child || !stderr) return reject(new Error('no stderr to watch'));
    const onData = (chunk: Buffer | string) => {
      text += chunk;
      if (pattern.test(text)) {
        stderr.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = () => {
      stderr.off('data', onData);
      reject(new Error(`the run exited before its stderr matched ${pattern}: ${text}`));
    };
    stderr.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * Resolves once `emulator` has no request in flight and then received none for
 * `ms` — the one wait kept on a clock, for tests that show fetching *stopped*: an absence has
 * no event to await. It cannot fail a correct run (there is no limit on how long it waits for
 * the quiet spell, and every request restarts it); the test first awaits the state the quiet
 * spell is checked in, and asserts counts, not times.
 */
export async function quietSpell(
  emulator: Emulator,
  ms: number,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  for (;;) {
    await emulator.waitFor((s) => s.inFlight === 0, options);
    const seen = emulator.stats.apiRequests;
    const controller = new AbortController();
    const moved = emulator
      .waitFor((s) => s.apiRequests > seen, { signal: controller.signal })
      .then(
        () => true,
        () => false,
      );
    const still = sleep(ms, false, { signal: controller.signal }).catch(() => true);
    const changed = await Promise.race([moved, still]);
    controller.abort();
    options.signal?.throwIfAborted();
    if (!changed) return;
  }
}
