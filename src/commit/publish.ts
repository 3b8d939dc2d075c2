import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { abortReason, SpotifyBatchError } from '../core/errors.ts';
import type { SinkResult, StagedSink } from '../core/sink.ts';
import type { RunStats } from '../core/stats.ts';
import type { Plan } from '../plan/plan.ts';
import type { FolderChanges, PreviousRun } from '../plan/previous.ts';
import type { Destinations, OpenOptions } from '../sinks/open.ts';
import type { OutputReport } from '../transforms/encode.ts';
import type { Commit } from './commit.ts';
import { type ManifestConfig, manifestBody, manifestOf } from './manifest.ts';

/** The incremental state to write with the run (its lines made by src/state/state.ts). */
export interface StateUpdate {
  location: string;
  /** Its version when the run read it (null: there was none): it is written only over that. */
  version: string | null;
  /** How it is opened (its place in the plan). */
  open: OpenOptions;
  /** The new state, made as it is written. */
  lines: Iterable<string>;
}

export interface PublishedRun {
  /** The outputs' results, in the order given. */
  results: SinkResult[];
  /** The state's result, when it was written. */
  state: SinkResult | undefined;
  /** Why the state was not written although the data was (the next run emits them again). */
  stateError: string | null;
  endedAt: Date;
}

/** What publishing uses of the run (src/run/scope.ts's RunScope is one). */
export interface PublishScope {
  readonly commit: Commit;
  readonly destinations: Destinations;
  readonly signal: AbortSignal;
  readonly stats: RunStats;
  readonly vars: { runId: string; date: string };
  readonly startedAt: Date;
  /** Called once nothing can stop the publishing any more. */
  commitPoint(): void;
}

/** What a run staged, as phase two takes it (src/pull/market.ts makes it). */
export interface StagedRun {
  /** Every staged output: the data first (as `describe` lists them), then the side outputs. */
  sinks: StagedSink[];
  /** The data outputs as the report, the manifest and the summary list them, from their results. */
  describe(results: { location: string }[]): OutputReport[];
  /** Markets skipped under `--on-market-error skip`. */
  failed: { market: string; code: string; message: string }[];
  /** stdout's reader left early (`| head`): nothing is published. */
  closed: boolean;
}

/**
 * Phase two of a whole run ({@link publishRun}): every staged output published, the state after
 * them, the folder's outputs this run replaces removed, and the manifest last. A reader that
 * left early (`| head`) ends the run cleanly with nothing else published (the state neither:
 * the data it goes with was cut short).
 */
export function publishAll(
  run: PublishScope,
  plan: Plan,
  staged: StagedRun,
  {
    config,
    state,
    previous,
    changes,
  }: {
    config: ManifestConfig;
    state: StateUpdate | undefined;
    previous: PreviousRun | undefined;
    changes: FolderChanges;
  },
): Promise<PublishedRun> {
  const closed = staged.closed;
  return publishRun(run.commit, run.destinations, plan.manifest, closed ? [] : staged.sinks, {
    state: closed ? undefined : state,
    signal: run.signal,
    folder:
      previous === undefined || closed
        ? undefined
        : {
            manifestVersion: previous.manifestVersion,
            remove: changes.removed.map(({ location, version }) => ({ location, version })),
          },
    manifest: closed
      ? undefined
      : (results, stateResult, endedAt) =>
          manifestBody({
            ...manifestOf(config, plan, run.stats, run.vars),
            startedAt: run.startedAt,
            endedAt,
            failed: staged.failed,
            outputs: staged.describe(results),
            carried: changes.carried.map((c) => ({ ...c.entry, runId: c.runId, raw: c.raw })),
            state:
              state === undefined
                ? undefined
                : { location: state.location, version: stateResult?.version ?? null },
          }),
    onCommitPoint: () => run.commitPoint(),
  });
}

/**
 * Phase two of a run (src/commit/commit.ts): the state checked unchanged and staged, every output
 * staged, then all published together and the manifest last. `onCommitPoint` is called once
 * nothing can stop the publishing any more (a signal after it does not replace its outcome).
 */
async function publishRun(
  commit: Commit,
  destinations: Destinations,
  /** Where the manifest goes (written last, beside the data), when the run writes one. */
  manifestAt: string | undefined,
  outputs: StagedSink[],
  {
    state,
    signal,
    manifest,
    folder,
    onCommitPoint,
  }: {
    state: StateUpdate | undefined;
    /**
     * The folder's previous run: its manifest's version when it was read (the run is refused if
     * that changed), and its outputs this run removes.
     */
    folder?:
      | { manifestVersion: string | null; remove: { location: string; version: string }[] }
      | undefined;
    signal: AbortSignal;
    /** The manifest's text from what was published, when there is one. */
    manifest:
      | ((published: SinkResult[], state: SinkResult | undefined, endedAt: Date) => string)
      | undefined;
    onCommitPoint: () => void;
  },
): Promise<PublishedRun> {
  // The lease keeps other runs of this tool out; a state changed by anything else since it
  // was read fails the run here, before any output is published.
  if (state !== undefined && (await destinations.version(state.location)) !== state.version) {
    throw new SpotifyBatchError(
      'ERR_LOCKED',
      `option --state: ${state.location} changed while this run was going; nothing was published`,
      { context: { path: state.location } },
    );
  }
  // What is removed was decided from the manifest read at the start: another writer since then
  // (a second run of this folder) would make that decision wrong.
  if (
    folder !== undefined &&
    manifestAt !== undefined &&
    (await destinations.version(manifestAt)) !== folder.manifestVersion
  ) {
    throw new SpotifyBatchError(
      'ERR_LOCKED',
      `the manifest ${manifestAt} changed while this run was going (another run of this folder?); nothing was published`,
      { context: { path: manifestAt } },
    );
  }
  const stateSink = state === undefined ? undefined : await stageState(commit, state, signal);
  // Every output staged before the commit point (the last parts of rejects, raw and the report
  // may still be uploading, and a signal still cancels them), and a signal that came in while
  // they were staged still wins. After this line, publishing runs to its end (a part-way
  // publish reports itself).
  await Promise.all([...outputs, ...(stateSink ? [stateSink] : [])].map((s) => s.staged));
  if (signal.aborted) throw abortReason(signal.reason);
  onCommitPoint();
  let endedAt = new Date();
  const published = await commit.publish(outputs, {
    after: stateSink ? [stateSink] : [],
    remove: folder?.remove ?? [],
    manifest:
      manifest === undefined || manifestAt === undefined
        ? undefined
        : {
            location: manifestAt,
            render: (results, after) => {
              endedAt = new Date();
              return manifest(results, after[0], endedAt);
            },
          },
  });
  if (manifest === undefined || manifestAt === undefined) endedAt = new Date();
  return {
    results: published.results,
    state: published.after[0],
    stateError: stateSink === undefined ? null : (published.afterError?.message ?? null),
    endedAt,
  };
}

/** Stages the new state as one more output of the commit. */
async function stageState(
  commit: Commit,
  { location, version, open, lines }: StateUpdate,
  signal: AbortSignal,
): Promise<StagedSink> {
  // Written only over the version read at the start (or where there was none).
  const sink = await commit.open(location, { ...open, expect: version });
  await pipeline(Readable.from(lines), sink.writable, { signal });
  return sink;
}
