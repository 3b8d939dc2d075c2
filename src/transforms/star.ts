import { PassThrough, type Readable, Writable } from 'node:stream';
import { STAR_TABLES, type StarTable } from '../core/columns.ts';
import type { SourceItem } from '../core/records.ts';
import type { RunStats } from '../core/stats.ts';
import { albumCheck, projectAlbum, projectRows, type Row } from './rows.ts';

export { STAR_TABLES, type StarTable };
export const STAR_TABLE_NAMES = Object.keys(STAR_TABLES) as StarTable[];

export interface StarRows {
  dim_album: Row[];
  dim_artist: Row[];
  bridge_album_artist: Row[];
}

const ARTIST_COLUMNS = [...STAR_TABLES.dim_artist, 'artist_position'] as const;

/**
 * The star model's check of an album (for the albums stage, which also drops an album seen
 * before: a star always dedupes, its dim_album is keyed by id): its rows can be made.
 */
export const checkStar: (item: SourceItem) => void = albumCheck(
  STAR_TABLES.dim_album,
  ARTIST_COLUMNS,
);

/**
 * One album's rows in the three tables; an artist already seen adds only bridge rows. Throws
 * ERR_BAD_RECORD like the flat rows.
 */
export function albumToStar(item: SourceItem, seenArtists: Set<string>): StarRows {
  const out: StarRows = { dim_album: [], dim_artist: [], bridge_album_artist: [] };
  // An album without artists still belongs in dim_album: it was released.
  out.dim_album.push(projectAlbum(item, STAR_TABLES.dim_album));
  const id = (item.album as { id: string }).id;
  const rows = projectRows(item, ARTIST_COLUMNS);
  for (const [artistId, name, url, uri, position] of rows as string[][]) {
    if (!seenArtists.has(artistId as string)) {
      seenArtists.add(artistId as string);
      out.dim_artist.push([artistId, name, url, uri] as Row);
    }
    out.bridge_album_artist.push([id, artistId, position] as Row);
  }
  return out;
}

/**
 * albums (validated and deduped by the albums stage with {@link checkStar}) in, three row
 * streams out (objectMode), one per table, with backpressure from the slowest: the next album
 * is taken only when every table had room for the last one.
 */
export class StarSplitter extends Writable {
  readonly outputs: Record<StarTable, Readable & PassThrough>;
  readonly #stats: RunStats;
  /** Rows written per table. */
  readonly rows: Record<StarTable, number> = {
    dim_album: 0,
    dim_artist: 0,
    bridge_album_artist: 0,
  };
  readonly #artists = new Set<string>();

  constructor(stats: RunStats) {
    super({ objectMode: true, highWaterMark: 16 });
    this.#stats = stats;
    const make = () => new PassThrough({ objectMode: true, highWaterMark: 64 });
    this.outputs = { dim_album: make(), dim_artist: make(), bridge_album_artist: make() };
  }

  override _write(
    item: SourceItem,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    let star: StarRows;
    try {
      star = albumToStar(item, this.#artists);
    } catch (error) {
      // Checked by the albums stage: an album that fails here is a bug, and fails the run.
      callback(error as Error);
      return;
    }
    this.#stats.rows += star.bridge_album_artist.length;
    const waits: Promise<void>[] = [];
    for (const table of STAR_TABLE_NAMES) {
      const output = this.outputs[table];
      let room = true;
      this.rows[table] += star[table].length;
      for (const row of star[table]) room = output.write(row) && room;
      if (!room) waits.push(new Promise((resolve) => output.once('drain', resolve)));
    }
    if (waits.length === 0) {
      callback();
      return;
    }
    Promise.all(waits).then(() => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    for (const table of STAR_TABLE_NAMES) this.outputs[table].end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const table of STAR_TABLE_NAMES) this.outputs[table].destroy(error ?? undefined);
    callback(error);
  }
}
