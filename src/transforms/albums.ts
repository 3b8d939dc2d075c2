import { Transform, type TransformCallback } from 'node:stream';
import { SpotifyBatchError } from '../core/errors.ts';
import type { SourceItem, SourcePage } from '../core/records.ts';
import type { RunStats } from '../core/stats.ts';

/**
 * Called with a record that failed validation. Returning diverts it (the run goes on); throwing
 * fails the run. Without a handler, the first bad record fails the run.
 */
export type RejectHandler = (record: unknown, error: SpotifyBatchError) => void;

/**
 * Diverts a bad record to the handler (counting it); returns the error that fails the run, if
 * any: the record's own when there is no handler, the handler's when it refuses.
 */
export function divertBadRecord(
  onReject: RejectHandler | undefined,
  stats: RunStats,
  album: unknown,
  error: unknown,
): Error | undefined {
  if (!(error instanceof SpotifyBatchError) || !onReject) return error as Error;
  try {
    onReject(album, error);
  } catch (fatal) {
    return fatal as Error;
  }
  stats.rejected++;
  return undefined;
}

/**
 * A filter that passes an album the first time its id is seen and drops it after that, e.g.
 * when several markets list it. An album's artists are the same in every market, so this keeps
 * exactly the first row per (album, artist), for one short string per distinct album
 * (bench/dedupe.ts measures it).
 */
export function createDeduper(): (albumId: string) => boolean {
  const seen = new Set<string>();
  return (albumId) => {
    if (seen.has(albumId)) return false;
    seen.add(albumId);
    return true;
  };
}

export interface AlbumsOptions {
  stats: RunStats;
  /**
   * The output model's check of one album (src/transforms/rows.ts `checkRows`, star.ts
   * `checkStar`): throws ERR_BAD_RECORD for an album it could not make its rows from, without
   * making them (the rows stage does, once).
   */
  check: (item: SourceItem) => void;
  /** Keep an album's first valid occurrence only (e.g. across markets). */
  dedupe: boolean;
  onReject?: RejectHandler | undefined;
}

/**
 * The albums of one page, in order: the bad ones diverted (or failing the run), and with
 * `dedupe` those already passed dropped. One rule for every model: an album is marked as seen
 * once it passed validation, so a bad copy in one market does not hide a good copy in the
 * next. Returns the error that fails the run, if any.
 */
export function pageAlbums(
  page: SourcePage,
  o: AlbumsOptions,
  keep: ((albumId: string) => boolean) | undefined,
  emit: (item: SourceItem) => void,
): Error | undefined {
  const { market, fetchedAt } = page;
  for (const album of page.items) {
    const item: SourceItem = { album, market, fetchedAt };
    try {
      o.check(item);
    } catch (error) {
      const fatal = divertBadRecord(o.onReject, o.stats, album, error);
      if (fatal !== undefined) return fatal;
      continue;
    }
    // Validated: `id` is a non-empty string.
    if (keep !== undefined && !keep((album as { id: string }).id)) {
      o.stats.duplicates++;
      continue;
    }
    emit(item);
  }
  return undefined;
}

/**
 * pages → albums (objectMode): the stage after the source, the same for a live pull and a
 * replay, so both validate, reject and dedupe alike before new-only and the rows.
 */
export class AlbumsTransform extends Transform {
  readonly #o: AlbumsOptions;
  readonly #keep: ((albumId: string) => boolean) | undefined;

  constructor(options: AlbumsOptions) {
    super({ writableObjectMode: true, readableObjectMode: true, writableHighWaterMark: 1 });
    this.#o = options;
    this.#keep = options.dedupe ? createDeduper() : undefined;
  }

  override _transform(page: SourcePage, _e: BufferEncoding, callback: TransformCallback): void {
    callback(pageAlbums(page, this.#o, this.#keep, (item) => this.push(item)));
  }
}
