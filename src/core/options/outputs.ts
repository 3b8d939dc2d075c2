import { type Column, resolveColumns } from '../columns.ts';
import { usageError } from '../errors.ts';
import {
  DEFAULTS,
  expandOut,
  type Format,
  formatFromName,
  type Options,
  parseDestination,
} from '../options.ts';
import { checkPlaceholders, choice, integer, sideLocation, unbounded } from './checks.ts';
import type { MarketsConfig } from './markets.ts';
import type { StateConfig } from './state.ts';

/** The data outputs and the files beside them (rejects, raw landing, manifest), and their bytes. */
export interface OutputsConfig {
  /** May hold `{date}`, `{run_id}`, `{market}` (see {@link expandOut}). */
  out: string;
  model: 'flat' | 'star';
  format: Format;
  gzip: boolean;
  columns: Column[];
  csvEscapeFormulas: boolean;
  parquetRowGroupRows: number;
  rejects: string | undefined;
  maxRejects: number;
  /** The raw landing: page bodies as received. */
  raw: string | undefined;
  /** Write `_manifest.json` beside the data. */
  manifest: boolean;
  /** Hash each output: the manifest and the report list its SHA-256. */
  digest: boolean;
}

export function normalizeOutputs(
  options: Pick<
    Options,
    | 'out'
    | 'model'
    | 'format'
    | 'gzip'
    | 'force'
    | 'columns'
    | 'csvEscapeFormulas'
    | 'parquetRowGroupRows'
    | 'rejects'
    | 'maxRejects'
    | 'raw'
    | 'from'
    | 'manifest'
    | 'report'
  >,
  { markets, state }: { markets: MarketsConfig; state: StateConfig },
): OutputsConfig {
  const out = options.out ?? DEFAULTS.out;
  const model = choice('--model', options.model, ['flat', 'star'] as const) ?? DEFAULTS.model;
  const { perMarket } = markets;
  const sample = checkOut(out, model, perMarket, options.columns);
  const rejects = sideLocation('--rejects', options.rejects, 'a file path or s3:// key');
  const raw = sideLocation('--raw', options.raw, 'a file path or s3:// key');
  if (raw !== undefined && options.from !== undefined) {
    throw usageError('option --raw keeps what Spotify sent: it needs a live pull, not a replay');
  }
  if (raw !== undefined) checkRawName(raw, options.force);
  if (options.maxRejects !== undefined && rejects === undefined) {
    throw usageError('option --max-rejects needs --rejects FILE');
  }
  const explicitFormat = choice('--format', options.format, ['csv', 'ndjson', 'parquet'] as const);
  const { format, gzip } = outputFormat(out, model, explicitFormat, options.gzip, options.force);
  if (options.csvEscapeFormulas && format !== 'csv') {
    throw usageError('option --csv-escape-formulas applies to CSV output only');
  }
  if (options.manifest && parseDestination(sample).kind === 'stdout') {
    throw usageError('option --manifest needs a file or s3:// output to sit beside');
  }
  const manifest = options.manifest ?? (perMarket || model === 'star');
  // Several markets in one output: the market column, by default.
  const withMarket = markets.list.length > 1 && !perMarket;
  return {
    out,
    model,
    format,
    gzip,
    columns: resolveColumns(
      options.columns,
      withMarket,
      markets.list.length > 0,
      state.location !== undefined,
    ),
    csvEscapeFormulas: options.csvEscapeFormulas ?? DEFAULTS.csvEscapeFormulas,
    parquetRowGroupRows: integer(
      'parquet-row-group',
      options.parquetRowGroupRows,
      DEFAULTS.parquetRowGroupRows,
      1_000,
      10_000_000,
    ),
    rejects,
    maxRejects: unbounded('max-rejects', options.maxRejects, 0),
    raw,
    manifest,
    digest: manifest || options.report !== undefined,
  };
}

/**
 * `--out`, checked now with sample values so a mistake fails before any request: a file, an S3
 * key or stdout for the flat model, a folder or prefix ending in / for a star's three tables.
 * Returns the sample location.
 */
function checkOut(
  out: string,
  model: 'flat' | 'star',
  perMarket: boolean,
  columns: string[] | undefined,
): string {
  checkOutSyntax(out);
  if (perMarket && out !== '-' && parseDestination(out).kind === 'stdout') {
    throw usageError('option --out: {market} needs a file path or s3:// key');
  }
  if (model === 'star') {
    if (!out.endsWith('/')) {
      throw usageError(
        `option --model star writes three tables: --out must be a folder or prefix ending in /, got ${out}`,
      );
    }
    if (perMarket) throw usageError('option --model star: {market} in --out is not supported');
    if (columns !== undefined) throw usageError('option --columns does not apply to --model star');
  } else if (out.endsWith('/')) {
    throw usageError(
      `option --out: ${out} names a folder; name a file (e.g. ${out === 's3://' ? 's3://my-bucket/' : out}albums.csv), or use --model star for tables in a folder`,
    );
  }
  const sample = expandOut(out, { date: '2026-01-01', runId: 'run', market: 'SE' });
  parseDestination(model === 'star' ? `${sample}dim_album.csv` : sample);
  return sample;
}

/**
 * The format and compression, from `--format`/`--gzip` and the output's name. A name that says
 * one thing while the flags say another (`--format parquet --out f.csv`, `--gzip` without `.gz`)
 * is a mistake someone finds a week later in a data lake, so it is refused unless `force`.
 * Names with an extension of no known format (`f.json`, `f.txt`) are refused too; names without
 * one (`/dev/null`, `-`) are CSV.
 */
function outputFormat(
  out: string,
  model: 'flat' | 'star',
  format: Format | undefined,
  gzip: boolean | undefined,
  force = false,
): { format: Format; gzip: boolean } {
  const inferred = model === 'star' ? { format: undefined, gzip: false } : formatFromName(out);
  const named = model === 'flat' && out !== '-' && !out.endsWith('/');
  const base = out.split('/').at(-1) ?? '';
  const extension = /\.([A-Za-z0-9]+)(\.gz)?$/i.exec(base)?.[1]?.toLowerCase();
  if (named && inferred.format === undefined && extension !== undefined && !force) {
    throw usageError(
      `option --out: cannot tell the format from .${extension}: name the output .csv, .ndjson (or .jsonl) or .parquet, with .gz to compress, or pass --format with --force`,
    );
  }
  if (named && !force) {
    if (format !== undefined && inferred.format !== undefined && format !== inferred.format) {
      throw usageError(
        `option --format ${format} but --out ends in .${inferred.format}: rename the output, or pass --force to write ${format} under that name`,
      );
    }
    if (gzip === true && !inferred.gzip) {
      throw usageError(
        'option --gzip but --out does not end in .gz: add .gz to the name, or pass --force',
      );
    }
    if (gzip === false && inferred.gzip) {
      throw usageError('option --no-gzip but --out ends in .gz: drop the .gz, or pass --force');
    }
  }
  const result = { format: format ?? inferred.format ?? 'csv', gzip: gzip ?? inferred.gzip };
  if (result.format === 'parquet' && result.gzip) {
    throw usageError('Parquet compresses its own pages (SNAPPY): drop --gzip / .gz');
  }
  return result;
}

/**
 * `--out` as written: not empty, and only known placeholders. Checked before the markets, whose
 * own messages (`{market}` needs --market) would otherwise hide a mistyped placeholder.
 */
export function checkOutSyntax(out: string): void {
  if (out.trim() === '') {
    throw usageError('option --out is empty: give - (stdout), a file path or s3://bucket/key');
  }
  checkPlaceholders('--out', out);
}

/**
 * `--raw` is gzipped unless its name ends in .ndjson or .jsonl. A name with another extension
 * and no .gz (`raw.json`) would hold gzip bytes under a name that says otherwise, the trap
 * `--out` refuses too: refused unless `force`. Names without an extension (`raw`) are gzip.
 */
function checkRawName(raw: string, force = false): void {
  const name = raw.split('/').at(-1) ?? '';
  if (name === '') {
    throw usageError(
      `option --raw names a file, not a folder: end it with a file name (${raw}pages.ndjson.gz)`,
    );
  }
  const extension = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  if (force || extension === undefined || ['gz', 'ndjson', 'jsonl'].includes(extension)) return;
  const stem = name.slice(0, -extension.length - 1);
  throw usageError(
    `option --raw: the raw landing is NDJSON, gzipped unless named .ndjson or .jsonl: name it ${stem}.ndjson.gz (or ${stem}.ndjson, plain), or pass --force`,
  );
}
