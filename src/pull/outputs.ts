import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Commit } from '../commit/commit.ts';
import type { Column } from '../core/columns.ts';
import { SpotifyBatchError } from '../core/errors.ts';
import type { OutputsConfig } from '../core/options/outputs.ts';
import type { StagedSink } from '../core/sink.ts';
import type { RunStats } from '../core/stats.ts';
import { type Plan, rawIsPlain, target } from '../plan/plan.ts';
import type { Page } from '../sources/albums.ts';
import { rawLine } from '../sources/replay.ts';
import type { RejectHandler } from '../transforms/albums.ts';
import { type Encoding, encode } from '../transforms/encode.ts';
import { RowsTransform } from '../transforms/rows.ts';
import { STAR_TABLE_NAMES, STAR_TABLES, StarSplitter } from '../transforms/star.ts';

/** The raw landing: one line per page as received. */
export interface RawLanding {
  sink: StagedSink;
  page(page: Page, market: string | undefined, fetchedAt: string): Promise<void>;
  end(): Promise<void>;
}

/**
 * The outputs beside the data: rejects, the raw landing, the report page. Opened before anything
 * is fetched, so a destination that refuses one fails the run before its first page.
 */
export interface SideOutputs {
  rejects: StagedSink | undefined;
  onReject: RejectHandler | undefined;
  raw: RawLanding | undefined;
  report: StagedSink | undefined;
}

export async function openSideOutputs(
  commit: Commit,
  plan: Plan,
  maxRejects: number,
  markets: string[],
  stats: RunStats,
): Promise<SideOutputs> {
  const rejects =
    plan.rejects === undefined
      ? undefined
      : await commit.open(plan.rejects, target(plan, plan.rejects));
  return {
    rejects,
    onReject: rejects && rejectHandler(rejects.writable, maxRejects, stats),
    raw: plan.raw === undefined ? undefined : await openRaw(commit, plan, plan.raw, markets),
    report:
      plan.report === undefined
        ? undefined
        : await commit.open(plan.report, target(plan, plan.report)),
  };
}

/** Ends the side outputs' streams once every market is done (the report's page comes later). */
export async function endSideOutputs(side: SideOutputs): Promise<void> {
  side.rejects?.writable.end();
  await side.raw?.end();
}

/** The side outputs to publish, in the order the commit publishes them. */
export function sideSinks(side: SideOutputs): StagedSink[] {
  return [side.rejects, side.raw?.sink, side.report].filter((s) => s !== undefined);
}

/** What the rows and encoders take of the outputs' config. */
export type RowsConfig = Pick<
  OutputsConfig,
  'model' | 'columns' | 'digest' | 'format' | 'gzip' | 'csvEscapeFormulas' | 'parquetRowGroupRows'
>;

export interface FanOut {
  /** Where the albums go in. */
  head: Writable;
  tables: { location: string; rows$: Readable; rows: () => number; encoding: Encoding }[];
}

/**
 * The albums → rows stage and the outputs it feeds: the flat model is one branch (the rows
 * transform is both the head and the branch's rows); the star model, three tables under `out`.
 */
export async function fanOut(o: RowsConfig, locations: string[], stats: RunStats): Promise<FanOut> {
  const enc = (columns: readonly Column[]) => encode(encodeOptions(o), columns, stats);
  if (o.model === 'flat') {
    const rows = new RowsTransform({ stats, columns: o.columns });
    return {
      head: rows,
      tables: [
        {
          location: locations[0] as string,
          rows$: rows,
          rows: () => rows.rows,
          encoding: await enc(o.columns),
        },
      ],
    };
  }
  const splitter = new StarSplitter(stats);
  return {
    head: splitter,
    tables: await Promise.all(
      STAR_TABLE_NAMES.map(async (table, i) => ({
        location: locations[i] as string,
        rows$: splitter.outputs[table],
        rows: () => splitter.rows[table],
        encoding: await enc(STAR_TABLES[table]),
      })),
    ),
  };
}

/** What the encoders take of the options. */
function encodeOptions({
  format,
  gzip,
  csvEscapeFormulas,
  parquetRowGroupRows,
  digest,
}: RowsConfig) {
  return { format, gzip, csvEscapeFormulas, parquetRowGroupRows, digest };
}

/**
 * The raw landing: one line per page as received (src/sources/replay.ts reads it back), gzipped
 * unless the name ends in .ndjson/.jsonl. Writes wait for the sink, so memory stays one page.
 */
async function openRaw(
  commit: Commit,
  plan: Plan,
  location: string,
  markets: string[],
): Promise<RawLanding> {
  // Never over another raw landing (one was there at the start: this one is named beside it).
  const sink = await commit.open(location, { ...target(plan, location), expect: null });
  const gzip = rawIsPlain(location) ? undefined : (await import('node:zlib')).createGzip();
  const head: Writable = gzip ?? sink.writable;
  const piping = gzip === undefined ? Promise.resolve() : pipeline(gzip, sink.writable);
  piping.catch(() => {}); // surfaces through the sink's staged promise and end()
  return {
    sink,
    page: async (page, market, fetchedAt) => {
      const line = rawLine(
        {
          url: page.url ?? '',
          market: market ?? null,
          // The run's markets on every line: a replay takes them as its own (readRunMarkets).
          markets,
          offset: page.offset,
          status: 200,
          fetchedAt,
        },
        page.text ?? '',
      );
      if (!head.write(line)) await once(head, 'drain');
    },
    end: async () => {
      head.end();
      await piping;
    },
  };
}

/** Writes each rejected record as one NDJSON line; fails the run past `maxRejects`. */
function rejectHandler(rejects: Writable, maxRejects: number, stats: RunStats): RejectHandler {
  return (record, error) => {
    if (stats.rejected + 1 > maxRejects) {
      throw new SpotifyBatchError(
        'ERR_BAD_RECORD',
        `more than --max-rejects ${maxRejects} bad records; last: ${error.message}`,
        { cause: error, context: error.context },
      );
    }
    rejects.write(
      `${JSON.stringify({ reason: error.message, field: error.context.field ?? null, record })}\n`,
    );
  };
}
