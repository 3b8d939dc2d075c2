/**
 * spotify-batch as a library. `run()` does what the CLI's `new-releases` does and `check()` what
 * its dry run does, with the same options and the same all-or-nothing commit; `unlock()` is
 * `spotify-batch unlock`. The stages are exported for people composing their own streams. The
 * Spotify emulator (for offline tests) is the `spotify-batch/emulator` entry point.
 */

export { type CheckReport, check } from './check.ts';
export {
  type ErrorCode,
  type ErrorContext,
  ExitStatus,
  SpotifyBatchError,
} from './core/errors.ts';
export type { MarketsConfig } from './core/options/markets.ts';
export { type NormalizedOptions, normalizeOptions } from './core/options/normalize.ts';
export type { OutputsConfig } from './core/options/outputs.ts';
export type { PacingConfig } from './core/options/pacing.ts';
export type { ReportConfig } from './core/options/report.ts';
export { normalizeS3Options, type S3Options } from './core/options/s3.ts';
export type { SourceConfig, SpotifyAccess } from './core/options/source.ts';
export type { StateConfig } from './core/options/state.ts';
export { DEFAULTS, type Format, type Options, type Via } from './core/options.ts';
export type { SourceItem, SourcePage } from './core/records.ts';
export { createStats, type EventListener, type RunEvent, type RunStats } from './core/stats.ts';
export {
  type MarketFailure,
  type OutputReport,
  type RunContext,
  type RunReport,
  resolveOptions,
  run,
} from './pipeline.ts';
export { fetchPages, type LiveSourceOptions, liveSource, type Page } from './sources/albums.ts';
export { replaySource } from './sources/replay.ts';
export { type UnlockReport, unlock } from './state/unlock.ts';
export { AlbumsTransform } from './transforms/albums.ts';
export { Coalescer } from './transforms/coalesce.ts';
export { createCsvStringifier } from './transforms/csv.ts';
export { albumToRows, COLUMNS, type Row, RowsTransform } from './transforms/rows.ts';
