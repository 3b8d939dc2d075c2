import type { NormalizedOptions } from './core/options/normalize.ts';
import type { Options } from './core/options.ts';
import { planOutputs } from './plan/plan.ts';
import { preflight } from './plan/preflight.ts';
import { folderChanges } from './plan/previous.ts';
import { resolveOptions } from './run/options.ts';
import { RunScope, startClock } from './run/scope.ts';
import { firstPageUrl, toPage } from './sources/albums.ts';

/** What `spotify-batch check` found: the plan, and that each part of it works. */
export interface CheckReport {
  source: {
    via: string;
    query: string | null;
    /** The first page of each market (or the only list), as the run would request it. */
    urls: string[];
  };
  markets: string[];
  model: string;
  format: string;
  gzip: boolean;
  /** Every data output, with the templates filled in for today. */
  outputs: string[];
  rejects: string | null;
  /** The raw landing (`--raw`). */
  raw: string | null;
  /** The HTML report (`--report`). */
  report: string | null;
  /** The incremental state (`--state`); its lease is `<state>.lease`. */
  state: string | null;
  manifest: string | null;
  /** The one page asked for (limit 1): Spotify's `total` for the first market. */
  spotify: { url: string; total: number | null };
  /**
   * Every place the run writes but stdout, each in a folder (or under an S3 key prefix) proven
   * writable: a directory, or a created-and-aborted upload.
   */
  writable: string[];
  /**
   * What a successful run does with the outputs the folder's previous run published and this
   * one does not rewrite (src/plan/previous.ts): removed (their raw pages stay) or kept.
   */
  previous: { removed: PreviousOutput[]; kept: PreviousOutput[] };
}

/** An output of the folder's previous run, and the raw landing of its pages. */
export interface PreviousOutput {
  location: string;
  runId: string;
  raw: string | null;
}

/**
 * A dry run, in the order the pull meets things: the options as the run would take them, the
 * run's own preflight (src/plan/preflight.ts: every place in the plan proven writable without
 * writing anything that stays, the lease, the --new-only guard), then a token and one page
 * (limit 1) through the same client. Throws the first failure, as the run would.
 */
export async function check(
  options: Options | NormalizedOptions,
  { env = process.env }: { env?: NodeJS.ProcessEnv } = {},
): Promise<CheckReport> {
  const o = await resolveOptions(options, env);
  const { source, outputs } = o;
  const { via, query } = source;
  // The run's own scope: its destinations, signal and client, disposed of as a run's are.
  await using scope = new RunScope(startClock(), { s3: o.s3, date: o.state.date }, { env });
  const plan = planOutputs(o, scope.vars);
  const markets: (string | undefined)[] = o.markets.list.length > 0 ? o.markets.list : [undefined];
  const urls = markets.map((m) => firstPageUrl(source.spotify.apiUrl, via, source.limit, query, m));
  // In the pull's order: the preflight first (it runs before the pull's first page).
  const proven = await preflight(plan, scope.destinations, {
    newOnly: o.state.newOnly,
    runId: scope.vars.runId,
  });
  const client = scope.connect(source.spotify, o.pacing, undefined);
  const url = firstPageUrl(source.spotify.apiUrl, via, 1, query, markets[0]);
  const page = toPage(await client.getJson(url, 0), url, 0);
  const spotify: CheckReport['spotify'] = { url, total: page.total ?? null };
  // As if every planned output is published (a run that fails changes nothing).
  const changes = folderChanges(
    proven.previous,
    plan,
    plan.outputs.map((p) => p.location),
  );
  const brief = ({ location, runId, raw }: PreviousOutput): PreviousOutput => ({
    location,
    runId,
    raw,
  });
  return {
    source: { via, query: via === 'search' ? query : null, urls },
    markets: o.markets.list,
    model: outputs.model,
    format: outputs.format,
    gzip: outputs.gzip,
    outputs: plan.outputs.map((p) => p.location),
    rejects: plan.rejects ?? null,
    // Where this run's raw would land (beside a raw landing that is already there).
    raw: proven.plan.raw ?? null,
    report: plan.report ?? null,
    state: plan.state ?? null,
    manifest: plan.manifest ?? null,
    spotify,
    writable: proven.writable,
    previous: { removed: changes.removed.map(brief), kept: changes.carried.map(brief) },
  };
}
