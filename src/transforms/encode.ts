import type { Transform } from 'node:stream';
import type { Column } from '../core/columns.ts';
import type { Format } from '../core/options.ts';
import type { SinkResult } from '../core/sink.ts';
import type { RunStats } from '../core/stats.ts';
import { COALESCE_BYTES, Coalescer } from './coalesce.ts';
import { createCsvStringifier } from './csv.ts';
import { DigestTransform } from './digest.ts';
import { NdjsonSerializer } from './ndjson.ts';

/** One object or file the run wrote. */
export interface OutputReport extends SinkResult {
  /** The market of a per-market output (`{market}` in `out`), else null. */
  market: string | null;
  rows: number;
  /** Bytes the serializer produced (before compression). */
  serializedBytes: number;
  /** Bytes stored (after compression). */
  storedBytes: number;
  /** SHA-256 of the stored bytes: computed when a manifest is written. */
  sha256: string | null;
}

export interface EncodeOptions {
  format: Format;
  gzip: boolean;
  csvEscapeFormulas: boolean;
  parquetRowGroupRows: number;
  /** Count and hash the stored bytes (for the manifest). */
  digest: boolean;
}

/** An output's encoder chain, and how to describe the output once it is published. */
export interface Encoding {
  stages: Transform[];
  output(result: SinkResult, market: string | null, rows: number): OutputReport;
}

/**
 * rows → the bytes stored: the format's serializer, 64 KiB coalescing (few, large writes
 * downstream), gzip when asked, and the digest when a manifest will list the output. zlib and
 * the Parquet writer are loaded only by the runs that use them.
 */
export async function encode(
  o: EncodeOptions,
  columns: readonly Column[],
  stats: RunStats,
): Promise<Encoding> {
  const coalescer = new Coalescer(stats);
  // Without gzip the stored bytes are the serialized ones: counting them again costs a stage.
  const digest = o.digest || o.gzip ? new DigestTransform({ hash: o.digest }) : undefined;
  const gzip = o.gzip
    ? [(await import('node:zlib')).createGzip({ chunkSize: COALESCE_BYTES })]
    : [];
  const stages: Transform[] = [
    await serializer(o, columns),
    coalescer,
    ...gzip,
    ...(digest ? [digest] : []),
  ];
  return {
    stages,
    output: (result, market, rows) => ({
      ...result,
      market,
      rows,
      serializedBytes: coalescer.bytes,
      storedBytes: digest?.bytes ?? coalescer.bytes,
      sha256: digest?.sha256 ?? null,
    }),
  };
}

async function serializer(o: EncodeOptions, columns: readonly Column[]): Promise<Transform> {
  switch (o.format) {
    case 'csv':
      return createCsvStringifier({ escapeFormulas: o.csvEscapeFormulas, columns });
    case 'ndjson':
      return new NdjsonSerializer(columns);
    case 'parquet': {
      const { ParquetSerializer } = await import('./parquet.ts');
      return new ParquetSerializer(columns, o.parquetRowGroupRows);
    }
  }
}

/**
 * Content-Type for S3. Compressed outputs are stored as `application/gzip` without a
 * Content-Encoding header: with `Content-Encoding: gzip`, HTTP clients (browsers, curl
 * --compressed, some S3 readers) decompress on download while Athena, Spark, DuckDB and
 * `aws s3 cp` go by the `.gz` name and decompress again.
 */
export function contentType(o: { format: Format; gzip: boolean }): string {
  if (o.gzip) return 'application/gzip';
  return {
    csv: 'text/csv; charset=utf-8',
    ndjson: 'application/x-ndjson',
    parquet: 'application/vnd.apache.parquet',
  }[o.format];
}
