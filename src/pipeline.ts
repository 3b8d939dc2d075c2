import { publishAll } from './commit/publish.ts';
import type { NormalizedOptions } from './core/options/normalize.ts';
import type { Options } from './core/options.ts';
import { planOutputs } from './plan/plan.ts';
import { preflight } from './plan/preflight.ts';
import { folderChanges, tellChanges } from './plan/previous.ts';
import { pullAll, pullConfig } from './pull/market.ts';
import { endSideOutputs, openSideOutputs } from './pull/outputs.ts';
import { type RunReport, summarize } from './pull/summary.ts';
import { drawReport, startReporter } from './report/draw.ts';
import { leaseState, stateUpdate } from './run/lease.ts';
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
  // Started before the options are resolved: given raw options, a replay's look at its inputs
  // is part of the run's time.
  const clock = startClock();
  const o = await resolveOptions(options, context.env ?? process.env);
  await using scope = new RunScope(clock, { s3: o.s3, date: o.state.date }, context);
  try {
    // Proven before the first request to Spotify: a mistake costs a second and no quota. It
    // also reads the folder's previous manifest and moves the raw landing beside a taken one.
    const { plan, previous } = await preflight(planOutputs(o, scope.vars), scope.destinations, {
      newOnly: o.state.newOnly,
      runId: scope.vars.runId,
    });
    const state = await leaseState(scope, plan, o.state.newOnly);
    const reporter = await startReporter(plan.report, o.report.settings, scope);
    scope.connect(o.source.spotify, o.pacing, reporter);
    const { maxRejects } = o.outputs;
    const side = await openSideOutputs(scope.commit, plan, maxRejects, o.markets.list, scope.stats);
    const pulled = await pullAll(scope, pullConfig(o), plan, side, state);
    const lastByte = performance.now();
    await endSideOutputs(side);
    // The previous run's outputs this run does not rewrite: carried over or removed.
    const changes = folderChanges(pulled.closed ? undefined : previous, plan, pulled.locations);
    await drawReport(scope, side.report, pulled, plan, state);
    const published = await publishAll(scope, plan, pulled, {
      config: { source: o.source, markets: o.markets.list, outputs: o.outputs },
      state: state && stateUpdate(state, plan, o.state.ttlDays),
      previous,
      changes,
    });
    tellChanges(changes, plan, scope.onEvent);
    return summarize(scope, plan, pulled, published, { lastByte, state });
  } catch (error) {
    // A signal explains the errors it caused, up to the commit point (RunScope.failed).
    throw scope.failed(error);
  }
}
