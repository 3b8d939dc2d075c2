/**
 * The Lambda handler invoked as Lambda does: in a process of its own whose environment is the
 * function's configuration, so a test sets variables without touching its own `process.env`.
 */
import { spawn } from 'node:child_process';
import type { RunReport } from '../../src/pipeline.ts';

const LAMBDA = new URL('../../src/lambda.ts', import.meta.url).href;
const ERRORS = new URL('../../src/core/errors.ts', import.meta.url).href;

/** What the handler returned, or what it threw (with whether it was a SpotifyBatchError). */
export type Invocation =
  | { ok: true; report: RunReport }
  | { ok: false; error: { message: string; code?: string; spotifyBatchError: boolean } };

/**
 * Calls `handler(event, context)` in a child process with exactly `env` (plus PATH and HOME);
 * `remainingMs` is what the context's getRemainingTimeInMillis() says (no context without it).
 */
export async function invokeLambda(
  env: NodeJS.ProcessEnv,
  event?: unknown,
  remainingMs?: number,
): Promise<Invocation> {
  const script = `
const { handler } = await import(${JSON.stringify(LAMBDA)});
const { SpotifyBatchError } = await import(${JSON.stringify(ERRORS)});
const [event, remaining] = JSON.parse(process.argv[1]);
const context = remaining === null ? undefined : { getRemainingTimeInMillis: () => remaining };
let outcome;
try {
  outcome = { ok: true, report: await handler(event ?? undefined, context) };
} catch (error) {
  outcome = { ok: false, error: { message: String(error?.message ?? error), code: error?.code, spotifyBatchError: error instanceof SpotifyBatchError } };
}
process.stdout.write(JSON.stringify(outcome));
`;
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', script, JSON.stringify([event ?? null, remainingMs ?? null])],
    {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const status = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (status !== 0 || stdout === '') {
    throw new Error(`the handler's process ended with ${status}: ${stderr}`);
  }
  return JSON.parse(stdout) as Invocation;
}

/** The report of an invocation that must have succeeded. */
export function reportOf(invocation: Invocation): RunReport {
  if (!invocation.ok) throw new Error(`the handler failed: ${invocation.error.message}`);
  return invocation.report;
}
