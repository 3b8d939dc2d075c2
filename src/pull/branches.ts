import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StagedSink } from '../core/sink.ts';

/** One output of a fan-out: its rows, the stages that encode them, and its staged sink. */
export interface Branch {
  rows: Readable;
  stages: Transform[];
  sink: StagedSink;
}

/**
 * Runs `source` through `through` (album filters) into `head` (the stage that fans albums out
 * into rows) and each branch's rows
 * through its encoder into its sink, as one unit: the first failure anywhere stops every stream
 * (so a failed S3 part stops the fetching at once). Resolves when every sink is staged, rejects
 * with the first failure. A flat output is the one-branch case (head = the rows transform, whose
 * readable side is the branch); the star model has three.
 */
export async function runBranches(
  source: Readable,
  through: Transform[],
  head: Writable,
  branches: Branch[],
  signal: AbortSignal,
): Promise<void> {
  const local = new AbortController();
  const linked = AbortSignal.any([signal, local.signal]);
  let first: unknown;
  const fail = (error: unknown): never => {
    if (first === undefined) {
      first = error;
      local.abort(error);
    }
    throw error;
  };
  const running = [
    pipeline([source, ...through, head] as [Readable, ...Transform[], Writable], {
      signal: linked,
    }),
    ...branches.map((b) =>
      pipeline([b.rows, ...b.stages, b.sink.writable] as [Readable, ...Transform[], Writable], {
        signal: linked,
      }),
    ),
  ].map((p) => p.catch(fail));
  const settled = await Promise.allSettled(running);
  if (settled.some((r) => r.status === 'rejected')) throw first;
  await Promise.all(branches.map((b) => b.sink.staged));
}
