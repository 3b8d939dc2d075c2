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
export {
  DEFAULTS,
  type Format,
  type NormalizedOptions,
  normalizeOptions,
  normalizeS3Options,
  type Options,
  type S3Options,
  type Via,
} from './core/options.ts';
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
