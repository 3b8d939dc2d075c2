import { STAR_TABLES } from '../core/columns.ts';
import type { OutputsConfig } from '../core/options/outputs.ts';
import type { SourceConfig } from '../core/options/source.ts';
import type { RunStats } from '../core/stats.ts';
import { packageVersion } from '../core/version.ts';
import type { OutputReport } from '../transforms/encode.ts';

/**
 * An output as the manifest lists it: `bytes` and `sha256` of what was stored, the run that
 * wrote it and the raw landing that holds its pages (null: none was kept).
 */
export function manifestObject(
  { location, market, rows, storedBytes, sha256, etag }: OutputReport,
  runId: string,
  raw: string | null,
) {
  return {
    location,
    market,
    rows,
    bytes: storedBytes,
    sha256,
    ...(etag === undefined ? {} : { etag }),
    runId,
    raw,
  };
}

/** What `_manifest.json` says about one run, from what it published. */
export interface ManifestInput {
  runId: string;
  /** The run's `{date}` (`--date`, or its UTC start day). */
  date: string;
  /** The version of spotify-batch that wrote it. */
  version: string;
  startedAt: Date;
  endedAt: Date;
  source: { via: string; query: string; apiUrl: string };
  /** The markets asked for (a single output holds them all). */
  markets: string[];
  failed: { market: string; code: string; message: string }[];
  counts: { pages: number; albums: number; rejected: number; duplicates: number };
  /** Why the outputs hold less than Spotify listed (`--max-items`, the search cap); null if they do not. */
  incomplete: string | null;
  format: string;
  gzip: boolean;
  /** The data's columns: one list, or per table of a star model. */
  columns: readonly string[] | Record<string, readonly string[]>;
  /** The raw landing this run kept (`--raw`; beside a taken one) and its HTML report. */
  raw: string | null;
  report: string | undefined;
  /** Rows of a star model (its tables count differently); otherwise the outputs' rows are summed. */
  starRows: number | undefined;
  outputs: OutputReport[];
  /**
   * Outputs of earlier runs of the folder this run did not rewrite, listed as they were (with
   * their own `runId` and `raw`): see src/plan/previous.ts.
   */
  carried: Record<string, unknown>[];
  /** The state written with the run, when there is one. */
  state: { location: string; version: string | null } | undefined;
}

/**
 * Why a run's outputs hold less than Spotify listed, or null. `--max-items` cut the list when
 * it was reached and Spotify's total (each market's first page adds its own) is above it, or
 * unknown for a market not reached; the search cap when Spotify lists more than search serves.
 */
function incompleteReason(
  maxItems: number,
  markets: number,
  stats: { albums: number; totalAlbums: number | undefined; searchCapped: boolean },
): string | null {
  if (Number.isFinite(maxItems) && stats.albums >= maxItems) {
    const total = stats.totalAlbums;
    // One list whose total the run reached: the cap took all of it.
    const whole = total !== undefined && total <= stats.albums && markets <= 1;
    if (!whole) {
      const of =
        total === undefined ? '' : ` of ${markets > 1 ? 'at least ' : ''}${total} albums listed`;
      return `--max-items ${maxItems}: stopped at ${stats.albums}${of}`;
    }
  }
  if (stats.searchCapped) return "stopped at Spotify's search cap of 1000";
  return null;
}

/** The manifest's text. */
export function manifestBody(m: ManifestInput): string {
  const body = {
    runId: m.runId,
    date: m.date,
    tool: { name: 'spotify-batch', version: m.version },
    startedAt: m.startedAt.toISOString(),
    endedAt: m.endedAt.toISOString(),
    source: {
      via: m.source.via,
      ...(m.source.via === 'search' ? { query: m.source.query } : {}),
      api: m.source.apiUrl,
    },
    markets: {
      // A star's three tables hold the same markets: each listed once.
      done: [
        ...new Set(m.outputs.flatMap((out) => (out.market !== null ? [out.market] : m.markets))),
      ],
      failed: m.failed,
    },
    // A reader can tell a whole list from a sample without comparing counts to Spotify's.
    complete: m.incomplete === null,
    ...(m.incomplete === null ? {} : { incompleteReason: m.incomplete }),
    format: m.format,
    gzip: m.gzip,
    columns: m.columns,
    raw: m.raw,
    report: m.report ?? null,
    pages: m.counts.pages,
    albums: m.counts.albums,
    // Albums a market listed after another one had: dropped by the dedupe, not lost.
    duplicates: m.counts.duplicates,
    // What was published (a skipped market's discarded rows are not counted).
    rows: m.starRows ?? m.outputs.reduce((n, out) => n + out.rows, 0),
    rejected: m.counts.rejected,
    bytes: m.outputs.reduce((n, out) => n + out.storedBytes, 0),
    // Every data file of the folder: this run's, then those carried over from earlier runs.
    objects: [...m.outputs.map((out) => manifestObject(out, m.runId, m.raw)), ...m.carried],
    ...(m.state === undefined ? {} : { state: m.state }),
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** What the manifest says of a run's source, markets and outputs (its options). */
export interface ManifestConfig {
  source: Pick<SourceConfig, 'via' | 'query' | 'maxItems'> & { spotify: { apiUrl: string } };
  /** Every market of the run. */
  markets: string[];
  outputs: Pick<OutputsConfig, 'model' | 'format' | 'gzip' | 'columns'>;
}

/**
 * What the manifest says of the run from its options, its raw landing and report, and its
 * counters as they are when it is written.
 */
export function manifestOf(
  { source, markets, outputs }: ManifestConfig,
  { raw, report }: { raw: string | undefined; report: string | undefined },
  stats: RunStats,
  vars: { runId: string; date: string },
): Omit<ManifestInput, 'startedAt' | 'endedAt' | 'failed' | 'outputs' | 'carried' | 'state'> {
  const star = outputs.model === 'star';
  return {
    runId: vars.runId,
    date: vars.date,
    version: packageVersion(),
    source: { via: source.via, query: source.query, apiUrl: source.spotify.apiUrl },
    markets,
    counts: stats,
    incomplete: incompleteReason(source.maxItems, markets.length, stats),
    format: outputs.format,
    gzip: outputs.gzip,
    columns: star ? STAR_TABLES : outputs.columns,
    raw: raw ?? null,
    report,
    starRows: star ? stats.rows : undefined,
  };
}
