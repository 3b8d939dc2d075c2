/**
 * spotify-batch as a library: `run()` does what the CLI does; the stages are exported for
 * people composing their own pipelines, and the emulator for their own offline tests.
 */
export { type ErrorCode, type ErrorContext, ExitStatus, SpotifyBatchError } from './core/errors.ts';
export {
  type Destination,
  type NormalizedOptions,
  normalizeOptions,
  type Options,
  type Via,
} from './core/options.ts';
export type { SinkResult, StagedSink } from './core/sink.ts';
export { createStats, type EventListener, type RunEvent, type RunStats } from './core/stats.ts';
export { type FaultRule, parseFault } from './emulator/faults.ts';
export {
  Emulator,
  type EmulatorOptions,
  type EmulatorStats,
  startEmulator,
} from './emulator/server.ts';
export { type RunContext, type RunReport, run } from './pipeline.ts';
export { FileSink } from './sinks/file.ts';
export { S3Sink, S3Store } from './sinks/s3.ts';
export { StdoutSink } from './sinks/stdout.ts';
export { AlbumSource, type AlbumSourceOptions, fetchPages, type Page } from './sources/albums.ts';
export { Coalescer, createCsvStringifier } from './transforms/csv.ts';
export { albumToRows, COLUMNS, type Row, RowsTransform } from './transforms/rows.ts';
