/**
 * The `--report` page in a run: its observer started before the first request, and the page
 * drawn once every data output is staged, to be published with them. Only the types of
 * ./index.ts are imported here: a run without --report never loads the aggregates or the charts.
 */
import type { ReportedSettings } from '../core/options/report.ts';
import type { StagedSink } from '../core/sink.ts';
import type { RunStats } from '../core/stats.ts';
import type { RenderInput, ReportOutput, RunReporter } from './index.ts';

/** What the report uses of the run (src/run/scope.ts's RunScope is one). */
export interface ReportScope {
  readonly vars: { runId: string; date: string };
  readonly started: number;
  readonly startedAt: Date;
  readonly stats: RunStats;
}

/** The `--report` aggregates, loaded only by a run that asks for a report (`at`). */
export async function startReporter(
  at: string | undefined,
  settings: ReportedSettings,
  { vars, stats, started }: ReportScope,
): Promise<RunReporter | undefined> {
  if (at === undefined) return undefined;
  const { RunReporter } = await import('./index.ts');
  return new RunReporter({ settings, date: vars.date, stats, started });
}

/**
 * Draws the page into its staged output (`page`) once every data output is staged, so it is
 * published with them. A reader that left early ends the run with nothing published: no page.
 */
export async function drawReport(
  run: ReportScope & { readonly reporter: RunReporter | undefined },
  page: StagedSink | undefined,
  staged: {
    describe(results: { location: string }[]): ReportOutput[];
    failed: RenderInput['marketsFailed'];
    closed: boolean;
  },
  /** Where the run's other outputs went (its plan). */
  places: { rejects: string | undefined; manifest: string | undefined; report: string | undefined },
  state: { loaded: { location: string }; counts: { new: number; seen: number } } | undefined,
): Promise<void> {
  const { reporter } = run;
  if (reporter === undefined || page === undefined || staged.closed) return;
  page.writable.end(
    await reporter.render({
      runId: run.vars.runId,
      startedAt: run.startedAt,
      stats: run.stats,
      // As staged: the locations they will have once published.
      outputs: staged.describe([]),
      rejects: places.rejects ?? null,
      manifest: places.manifest ?? null,
      report: places.report as string,
      state: state === undefined ? null : { location: state.loaded.location, ...state.counts },
      marketsFailed: staged.failed,
    }),
  );
}
