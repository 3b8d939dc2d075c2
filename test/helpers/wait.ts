/**
 * Signals to tie a wait to the process under test: a test awaiting something a run was to do
 * fails as soon as the run has ended, naming what it waited for, instead of hanging or guessing
 * a time.
 */
import type { ChildProcess } from 'node:child_process';
import { createStats, type RunStats } from '../../src/core/stats.ts';
import { Waiters } from '../../src/emulator/wait.ts';

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
 * Counters for a run to fill (`RunContext.stats`), watched: `waitFor(condition)` re-checks
 * `condition` after every counter the run changes, so a test can await a state of the run's
 * stages (pages pushed by the source, requests its client sent) as it awaits the servers'.
 */
export function watchedStats(): {
  stats: RunStats;
  waitFor(
    condition: (stats: RunStats) => boolean,
    options?: { signal?: AbortSignal },
  ): Promise<void>;
} {
  const counters = createStats();
  const waiters = new Waiters(() => counters);
  const stats = new Proxy(counters, {
    set(target, name, value) {
      const done = Reflect.set(target, name, value);
      waiters.notify();
      return done;
    },
  });
  return { stats, waitFor: (condition, options) => waiters.waitFor(condition, options) };
}

/** Anything with a `waitFor(condition)` hook: the emulator, the local S3, {@link watchedStats}. */
interface Watched {
  waitFor(condition: () => boolean, options: { signal?: AbortSignal }): Promise<void>;
}

/**
 * Resolves once `condition` holds, re-checked on every change any of `watched` reports: for a
 * condition across servers and the run (each re-checks it on its own events, so the last change
 * that makes it hold is seen wherever it happens). With `signal`, rejects when it aborts first.
 */
export async function whenAll(
  condition: () => boolean,
  watched: Watched[],
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const controller = new AbortController();
  const signal = options.signal
    ? AbortSignal.any([options.signal, controller.signal])
    : controller.signal;
  try {
    await Promise.race(watched.map((w) => w.waitFor(() => condition(), { signal })));
  } finally {
    controller.abort();
  }
}
