import { manifestBody, manifestOf } from './commit/manifest.ts';
import { type PublishedRun, publishRun, type StagedRun } from './commit/publish.ts';
import type { NormalizedOptions } from './core/options/normalize.ts';
import type { ReportedSettings } from './core/options/report.ts';
import type { Options } from './core/options.ts';
import type { RunStats } from './core/stats.ts';
import type { Plan } from './plan/plan.ts';
import { planOutputs } from './plan/plan.ts';
import { preflight } from './plan/preflight.ts';
import type { FolderChanges, PreviousRun } from './plan/previous.ts';
import { folderChanges, tellChanges } from './plan/previous.ts';
import { pullAll } from './pull/market.ts';
import { endSideOutputs, openSideOutputs } from './pull/outputs.ts';
import { type RunReport, summarize } from './pull/summary.ts';
import type { RunReporter } from './report/index.ts';
import { type HeldState, leaseState, stateUpdate } from './run/lease.ts';
import { resolveOptions } from './run/options.ts';
import { type RunContext, RunScope, startClock } from './run/scope.ts';

export type { MarketFailure } from './pull/markets.ts';
export type { RunReport, StateReport } from './pull/summary.ts';
export { resolveOptions } from './run/options.ts';
export type { RunContext } from './run/scope.ts';
export type { OutputReport } from './transforms/encode.ts';

/**
 * Runs one pull: plan → preflight → lease → per market: source → albums → rows → encode →
 * staged sinks → commit (src/commit/commit.ts) → report. Resolves with the report once every
 * output is in place; rejects with a {@link SpotifyBatchError} after discarding every staged
 * output, so the destination is left as it was.
 */
export async function run(
  options: Options | NormalizedOptions,
  context: RunContext = {},
): Promise<RunReport> {
  // Started before the options are resolved: a replay's look at its inputs is part of the run.
  const clock = startClock();
  const o = await resolveOptions(options, context.env ?? process.env);
  await using run = new RunScope(clock, { s3: o.s3, date: o.state.date }, context);
  // Proven before the first request to Spotify: a mistake costs a second and no quota. It also
  // reads the folder's previous manifest and moves the raw landing beside a taken one.
  const { plan, previous } = await run.guard(
    preflight(planOutputs(o, run.vars), run.destinations, {
      newOnly: o.state.newOnly,
      runId: run.vars.runId,
    }),
  );
  const state = await leaseState(run, plan, o.state.newOnly);
  // --report: its aggregates fill in during this run's own pass; Vega loads only to draw it.
  const reporter =
    plan.report === undefined
      ? undefined
      : await startReporter(o.report.settings, run.vars.date, run.stats, run.started);
  run.connect(o.source.spotify, o.pacing, reporter);
  try {
    const { maxRejects } = o.outputs;
    const side = await openSideOutputs(run.commit, plan, maxRejects, o.markets.list, run.stats);
    const { concurrency } = o.pacing;
    const config = { source: o.source, markets: o.markets, outputs: o.outputs, concurrency };
    const pulled = await pullAll(run, { ...config, newOnly: o.state.newOnly }, plan, side, state);
    const lastByte = performance.now();
    await endSideOutputs(side);
    // The previous run's outputs this run does not rewrite: carried over or removed.
    const changes = folderChanges(pulled.closed ? undefined : previous, plan, pulled.locations);
    // The page is drawn once every data output is staged, and published with them.
    if (reporter !== undefined && side.report !== undefined && !pulled.closed) {
      side.report.writable.end(
        await reporter.render({
          runId: run.vars.runId,
          startedAt: run.startedAt,
          stats: run.stats,
          outputs: pulled.describe([]),
          ...placesOf(plan),
          state: state === undefined ? null : { location: state.loaded.location, ...state.counts },
          marketsFailed: pulled.failed,
        }),
      );
    }
    const published = await publishAll(run, plan, pulled, {
      config: {
        source: o.source,
        markets: o.markets.list,
        outputs: o.outputs,
        ttlDays: o.state.ttlDays,
      },
      state,
      previous,
      changes,
    });
    tellChanges(changes, plan, run.onEvent);
    return summarize(run, plan, pulled, published, { lastByte, state });
  } catch (error) {
    throw run.failed(error);
  }
}

/** What phase two uses of the run. */
interface PublishScope {
  readonly commit: RunScope['commit'];
  readonly destinations: RunScope['destinations'];
  readonly signal: AbortSignal;
  readonly stats: RunStats;
  readonly vars: { runId: string; date: string };
  readonly startedAt: Date;
  commitPoint(): void;
}

/**
 * Phase two (src/commit/publish.ts): every staged output published, the state after them, the
 * folder's outputs this run replaces removed, and the manifest last. A reader that left early
 * (`| head`) ends the run cleanly with nothing else published (the state neither: the data it
 * goes with was cut short).
 */
function publishAll(
  run: PublishScope,
  plan: Plan,
  staged: StagedRun,
  {
    config,
    state,
    previous,
    changes,
  }: {
    config: Parameters<typeof manifestOf>[0] & { ttlDays: number };
    state: HeldState | undefined;
    previous: PreviousRun | undefined;
    changes: FolderChanges;
  },
): Promise<PublishedRun> {
  const closed = staged.closed;
  return publishRun(run.commit, run.destinations, plan.manifest, closed ? [] : staged.sinks, {
    state: state === undefined || closed ? undefined : stateUpdate(state, plan, config.ttlDays),
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
                : { location: state.loaded.location, version: stateResult?.version ?? null },
          }),
    onCommitPoint: () => run.commitPoint(),
  });
}

/** The `--report` aggregates, loaded only by a run that asks for a report. */
async function startReporter(
  settings: ReportedSettings,
  date: string,
  stats: RunStats,
  started: number,
): Promise<RunReporter> {
  const { RunReporter } = await import('./report/index.ts');
  return new RunReporter({ settings, date, stats, started });
}

/** Where the report says the run's other outputs went. */
function placesOf(plan: Plan) {
  return {
    rejects: plan.rejects ?? null,
    manifest: plan.manifest ?? null,
    report: plan.report as string,
  };
}
