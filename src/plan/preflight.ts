import { dirname } from 'node:path';
import { SpotifyBatchError } from '../core/errors.ts';
import { parseDestination } from '../core/options.ts';
import type { Destinations } from '../sinks/open.ts';
import { assertLeaseFree } from '../state/state.ts';
import type { Plan, Target } from './plan.ts';
import { besideName, type PreviousRun, readPrevious } from './previous.ts';

/** Probes in flight at once. */
const PROBES_AT_ONCE = 8;

/** What a preflight proved. */
export interface Preflight {
  /**
   * Every place of the plan but stdout, in the plan's order, once its folder was proven writable
   * (a directory, or an S3 key prefix through a created-and-aborted upload).
   */
  writable: string[];
  /** The plan, with the raw landing moved beside one that is already there. */
  plan: Plan;
  /** The folder's previous run, from its manifest (when the run writes one). */
  previous: PreviousRun | undefined;
}

/**
 * Everything a run can prove before its first request to Spotify without changing what a reader
 * sees: every place in the plan writable with the credentials the run will use (an S3 key gets a
 * multipart upload created and aborted, so a wrong key, a 403 or a bad KMS key fails here and
 * not after the whole pull), the state's lease free (or abandoned), and the --new-only guard.
 * `check` and the pull run this same code, so `check` exits with the status the run would have.
 * It also reads what a re-run replaces: the folder's old manifest, and whether the raw landing
 * is taken (then this run's lands beside it, named with `runId`).
 */
export async function preflight(
  planned: Plan,
  destinations: Destinations,
  { newOnly, runId }: { newOnly: boolean; runId: string },
): Promise<Preflight> {
  const plan = await landRaw(planned, destinations, runId);
  // One probe per file, and one per S3 key prefix: 185 markets need not make 185 uploads.
  const places = plan.targets.filter((t) => t.location !== '-');
  const probes = new Map<string, Target>();
  for (const target of places) {
    const key = probeKey(target);
    if (!probes.has(key)) probes.set(key, target);
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
        } catch (error) {
          failure ??= { error };
        }
      }
    }),
  );
  if (failure) throw failure.error;
  // Every probe passed: each place is in a folder (or under a prefix) proven writable.
  const writable = places.map((t) => t.location);
  if (plan.state !== undefined) await assertLeaseFree(destinations, plan.state, new Date());
  if (newOnly) await refuseOverwrite(destinations, plan.outputs);
  const previous =
    plan.manifest === undefined ? undefined : await readPrevious(destinations, plan.manifest);
  return { writable, plan, previous };
}

/**
 * Places that one probe proves together: an S3 prefix is one (S3 has no folders, and a key's
 * own name cannot be wrong), a file only itself, since what is at its name matters as much as
 * its folder (a directory, a device: `--raw landing/` beside `--out landing.csv`).
 */
function probeKey({ location }: Target): string {
  return parseDestination(location).kind === 's3' ? dirname(location) : location;
}

/**
 * The raw landing is append-only: a name that is taken gets the run id (see besideName). Only a
 * file or an object takes it: `/dev/null` is written in place (the pages discarded) and a
 * directory is refused by its probe, not given a name beside it.
 */
async function landRaw(plan: Plan, destinations: Destinations, runId: string): Promise<Plan> {
  const raw = plan.raw;
  if (raw === undefined || !(await destinations.taken(raw))) return plan;
  const beside = besideName(raw, runId);
  return {
    ...plan,
    raw: beside,
    targets: plan.targets.map((t) => (t.location === raw ? { ...t, location: beside } : t)),
  };
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
      `option --new-only: ${location} already exists; a --new-only run would replace it with only the albums new since the state was written. Re-run without --new-only, rebuild it from the raw landing with replay, or write a new partition ({run_id} in --out)`,
      { context: { path: location } },
    );
  }
}
