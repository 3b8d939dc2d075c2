import { posix } from 'node:path';
import { expandOut, type OutVars } from '../core/options.ts';
import type { OutputReport } from '../transforms/encode.ts';

/**
 * `_manifest.json` beside the data: in the directory (or key prefix) that holds every output —
 * for `s3://b/dt={date}/market={market}/albums.csv`, in `s3://b/dt=…/`.
 */
export function manifestLocation(out: string, vars: OutVars): string {
  const marker = '\u0000';
  const expanded = expandOut(out, { ...vars, market: marker });
  const fixed = expanded.includes(marker) ? expanded.slice(0, expanded.indexOf(marker)) : expanded;
  const dir = fixed.slice(0, fixed.lastIndexOf('/') + 1);
  if (/^s3:\/\//i.test(fixed)) return `${dir}_manifest.json`;
  return posix.join(dir === '' ? '.' : dir, '_manifest.json');
}

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
  startedAt: Date;
  endedAt: Date;
  source: { via: string; query: string; apiUrl: string };
  /** The markets asked for (a single output holds them all). */
  markets: string[];
  failed: { market: string; code: string; message: string }[];
  counts: { pages: number; albums: number; rejected: number };
  /** Rows of a star model (its tables count differently); otherwise the outputs' rows are summed. */
  starRows: number | undefined;
  outputs: OutputReport[];
  /** This run's raw landing (`--raw`), when it kept one. */
  raw: string | null;
  /**
   * Outputs of earlier runs of the folder this run did not rewrite, listed as they were (with
   * their own `runId` and `raw`): see src/plan/previous.ts.
   */
  carried: Record<string, unknown>[];
  /** The state written with the run, when there is one. */
  state: { location: string; version: string | null } | undefined;
}

/** The manifest's text. */
export function manifestBody(m: ManifestInput): string {
  const body = {
    runId: m.runId,
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
    pages: m.counts.pages,
    albums: m.counts.albums,
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
