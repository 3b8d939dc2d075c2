import { dirname } from 'node:path';
import { SpotifyBatchError } from '../core/errors.ts';
import type { Destinations } from '../sinks/open.ts';
import { assertLeaseFree } from '../state/state.ts';
import type { Plan, Target } from './plan.ts';

/** Probes in flight at once. */
const PROBES_AT_ONCE = 8;

/** What a preflight proved. */
export interface Preflight {
  /** Places proven writable (a directory, or an S3 key through a created-and-aborted upload). */
  writable: string[];
}

/**
 * Everything a run can prove before its first request to Spotify without changing what a reader
 * sees: every place in the plan writable with the credentials the run will use (an S3 key gets a
 * multipart upload created and aborted, so a wrong key, a 403 or a bad KMS key fails here and
 * not after the whole pull), the state's lease free (or abandoned), and the --new-only guard.
 * `check` and the pull run this same code, so `check` exits with the status the run would have.
 */
export async function preflight(
  plan: Plan,
  destinations: Destinations,
  { newOnly }: { newOnly: boolean },
): Promise<Preflight> {
  const writable: string[] = [];
  // One probe per directory or key prefix: 185 markets need not make 185 uploads. A prefix is
  // probed once per way of opening it (a folder made for a partition, or one that must exist).
  const probes = new Map<string, Target>();
  for (const target of plan.targets) {
    const key = `${dirname(target.location)}\0${target.createDirs}`;
    if (target.location !== '-' && !probes.has(key)) probes.set(key, target);
  }
  // A few at a time: a partitioned layout (dt=…/market=…/) has a folder per market. A failure
  // stops new probes, and is thrown once those in flight are undone (no upload left open).
  const queue = [...probes.values()];
  let failure: { error: unknown } | undefined;
  await Promise.all(
    Array.from({ length: Math.min(PROBES_AT_ONCE, queue.length) }, async () => {
      for (let t = queue.shift(); t !== undefined && !failure; t = queue.shift()) {
        try {
          await destinations.probe(t.location, t);
          writable.push(t.location);
        } catch (error) {
          failure ??= { error };
        }
      }
    }),
  );
  if (failure) throw failure.error;
  if (plan.state !== undefined) await assertLeaseFree(destinations, plan.state, new Date());
  if (newOnly) await refuseOverwrite(destinations, plan.outputs);
  return { writable };
}

/**
 * A --new-only run writes only what the state has not seen: run again over the same partition
 * (a retried or cleared Airflow task, a same-day re-run), it would replace yesterday's complete
 * output with the few albums new since, and the state says the rest were written. Refused.
 */
export async function refuseOverwrite(destinations: Destinations, outputs: { location: string }[]) {
  for (const { location } of outputs) {
    if (location === '-' || (await destinations.version(location)) === null) continue;
    throw new SpotifyBatchError(
      'ERR_OUTPUT_EXISTS',
      `option --new-only: ${location} already exists; a --new-only run would replace it with only the albums new since the state was written. Write to a new partition (e.g. {date} or {run_id} in --out), or remove it first`,
      { context: { path: location } },
    );
  }
}
