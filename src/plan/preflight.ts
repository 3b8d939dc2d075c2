import { dirname } from 'node:path';
import { SpotifyBatchError } from '../core/errors.ts';
import type { Destinations } from '../sinks/open.ts';
import { assertLeaseFree } from '../state/state.ts';
import type { Plan } from './plan.ts';

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
  const probed = new Set<string>();
  // A folder one output makes (a report, a partition) is there for the others in it too.
  const made = new Set(plan.targets.filter((t) => t.createDirs).map((t) => dirname(t.location)));
  for (const target of plan.targets) {
    const dir = dirname(target.location);
    const key = `${dir}\0${target.createDirs || made.has(dir)}`;
    if (target.location === '-' || probed.has(key)) continue;
    probed.add(key);
    await destinations.probe(target.location, {
      ...target,
      createDirs: target.createDirs || made.has(dir),
    });
    writable.push(target.location);
  }
  if (plan.state !== undefined) await assertLeaseFree(destinations, plan.state, new Date());
  if (newOnly) await refuseOverwrite(destinations, plan.outputs);
  return { writable };
}

/**
 * A --new-only run writes only what the state has not seen: run again over the same partition
 * (a retried or cleared Airflow task, a same-day re-run), it would replace yesterday's complete
 * output with the few albums new since, and the state says the rest were written. Refused.
 */
async function refuseOverwrite(destinations: Destinations, outputs: { location: string }[]) {
  for (const { location } of outputs) {
    if (location === '-' || (await destinations.version(location)) === null) continue;
    throw new SpotifyBatchError(
      'ERR_OUTPUT_EXISTS',
      `option --new-only: ${location} already exists; a --new-only run would replace it with only the albums new since the state was written. Write to a new partition (e.g. {date} or {run_id} in --out), or remove it first`,
      { context: { path: location } },
    );
  }
}
