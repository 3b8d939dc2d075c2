import type { StateUpdate } from '../commit/publish.ts';
import type { EventListener } from '../core/stats.ts';
import { type Plan, target } from '../plan/plan.ts';
import { refuseOverwrite } from '../plan/preflight.ts';
import type { Destinations } from '../sinks/open.ts';
import { acquireLease, type LoadedState, loadState, stateLines } from '../state/state.ts';
import type { StateCounts, StateEntries } from '../transforms/state.ts';

/** The incremental state as this run holds it, under its lease. */
export interface HeldState {
  loaded: LoadedState;
  /** The albums this run claims as they pass (a market that fails gives its own back). */
  added: StateEntries;
  /** Distinct albums new to the state and seen before. */
  counts: StateCounts;
  /** Ids dropped by age and kept, counted as the new state is written. */
  written: { dropped: number; kept: number };
  /** The run's `{date}`: an album's first sighting. */
  today: string;
}

/** What taking the lease uses of the run (src/run/scope.ts). */
interface LeaseScope {
  readonly destinations: Destinations;
  readonly vars: { runId: string; date: string };
  readonly startedAt: Date;
  readonly onEvent: EventListener | undefined;
  hold(lease: AsyncDisposable | undefined): void;
}

/**
 * One writer per state: the lease is taken before anything is fetched (the run holds it until it
 * ends), then the state is read under it. The --new-only guard is asked again under the lease: a
 * run that published this partition since the preflight's look (and released the lease) would
 * otherwise be overwritten with only the albums new since.
 */
export async function leaseState(
  run: LeaseScope,
  plan: Plan,
  newOnly: boolean,
): Promise<HeldState | undefined> {
  const { destinations, vars } = run;
  if (plan.state !== undefined) {
    run.hold(await acquireLease(destinations, plan.state, vars.runId, run.startedAt, run.onEvent));
  }
  const loaded = plan.state === undefined ? undefined : await loadState(destinations, plan.state);
  if (newOnly) await refuseOverwrite(destinations, plan.outputs);
  return (
    loaded && {
      loaded,
      added: new Map(),
      counts: { new: 0, seen: 0 },
      written: { dropped: 0, kept: 0 },
      today: vars.date,
    }
  );
}

/** The new state, staged with the run's outputs in phase two (src/commit/publish.ts). */
export function stateUpdate(state: HeldState, plan: Plan, ttlDays: number): StateUpdate {
  const { loaded, added, today, written } = state;
  return {
    location: loaded.location,
    version: loaded.version,
    open: target(plan, loaded.location),
    lines: stateLines(loaded.entries, added, today, ttlDays, written),
  };
}
