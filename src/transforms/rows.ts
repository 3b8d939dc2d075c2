import { Transform, type TransformCallback } from 'node:stream';
import { CONTRACT_COLUMNS, type Column } from '../core/columns.ts';
import { SpotifyBatchError } from '../core/errors.ts';
import type { SourceItem } from '../core/records.ts';
import type { RunStats } from '../core/stats.ts';

/** The CSV contract's columns, in order (see the README). */
export const COLUMNS = CONTRACT_COLUMNS;

/** One output row: one value per column of the run, in order. */
export type Row = string[];

type Json = Record<string, unknown>;

function text(record: Json, field: string, albumId: string | undefined): string {
  const value = record[field];
  if (typeof value === 'string') return value;
  throw badRecord(albumId, field, value);
}

/** An artist's field; the field's name (`artists[i].field`) is made only for the error. */
function artistText(artist: Json, field: string, albumId: string, i: number): string {
  const value = artist[field];
  if (typeof value === 'string') return value;
  throw badRecord(albumId, `artists[${i}].${field}`, value);
}

function spotifyUrl(record: Json, albumId: string | undefined, i?: number): string {
  const urls = record.external_urls as Json | undefined;
  const value = urls && typeof urls === 'object' ? urls.spotify : undefined;
  if (typeof value === 'string') return value;
  const where = i === undefined ? '' : `artists[${i}].`;
  throw badRecord(albumId, `${where}external_urls.spotify`, value);
}

function badRecord(albumId: string | undefined, field: string, value: unknown): SpotifyBatchError {
  const got = value === undefined ? 'missing' : `got ${JSON.stringify(value)}`;
  const album = albumId === undefined ? 'an album without an id' : `album ${albumId}`;
  return new SpotifyBatchError('ERR_BAD_RECORD', `bad record: ${album}: field ${field} is ${got}`, {
    context: { field, ...(albumId === undefined ? {} : { albumId }) },
  });
}

/**
 * Every value the contract's seven columns need, checked in the order of the columns and the
 * artists, with nothing made: throws ERR_BAD_RECORD naming the album and the first bad field. An
 * empty string is data, a null is not.
 */
function checkContract(album: unknown): asserts album is Json {
  if (!album || typeof album !== 'object' || Array.isArray(album)) {
    throw badRecord(undefined, 'album', album);
  }
  const record = album as Json;
  const rawId = record.id;
  const id = typeof rawId === 'string' && rawId !== '' ? rawId : undefined;
  if (id === undefined) throw badRecord(undefined, 'id', rawId);
  text(record, 'name', id);
  text(record, 'release_date', id);
  spotifyUrl(record, id);
  const artists = record.artists;
  if (!Array.isArray(artists)) throw badRecord(id, 'artists', artists);
  for (let i = 0; i < artists.length; i++) {
    const artist = artists[i] as Json;
    if (!artist || typeof artist !== 'object') throw badRecord(id, `artists[${i}]`, artist);
    artistText(artist, 'id', id, i);
    artistText(artist, 'name', id, i);
    spotifyUrl(artist, id, i);
  }
}

/**
 * One row per artist of `album`, in the API's artist order; none for an album without artists
 * (as the tutorial's loop does). Throws ERR_BAD_RECORD naming the album and the field when a
 * value a column needs is missing or not a string (see {@link checkContract}).
 */
export function albumToRows(album: unknown): Row[] {
  checkContract(album);
  // Checked above: every value read below is a string.
  const id = album.id as string;
  const name = album.name as string;
  const releaseDate = album.release_date as string;
  const albumUrl = (album.external_urls as Json).spotify as string;
  const artists = album.artists as Json[];
  const rows: Row[] = [];
  for (let i = 0; i < artists.length; i++) {
    const artist = artists[i] as Json;
    rows.push([
      id,
      name,
      releaseDate,
      albumUrl,
      artist.id as string,
      artist.name as string,
      (artist.external_urls as Json).spotify as string,
    ]);
  }
  return rows;
}

/**
 * Rows with any choice of columns: the contract's seven come from {@link albumToRows} (which
 * validates the album); the others are read here, and a value they need that is missing makes
 * the record bad, as for the seven.
 */
export function projectRows(item: SourceItem, columns: readonly Column[]): Row[] {
  const base = albumToRows(item.album);
  const album = item.album as Json;
  const artists = album.artists as Json[];
  return base.map((row, i) =>
    columns.map((column) => columnValue(column, item, row, artists[i] as Json, i)),
  );
}

/**
 * The album-level columns of one album, also for an album without artists (which has no row in
 * the flat output but is still an album): validated like the rows.
 */
export function projectAlbum(item: SourceItem, columns: readonly Column[]): Row {
  checkContract(item.album);
  const album = item.album;
  const row = [
    album.id as string,
    album.name as string,
    album.release_date as string,
    (album.external_urls as Json).spotify as string,
  ];
  return columns.map((column) => columnValue(column, item, row, undefined, -1));
}

/** One column's value; `row` holds the contract's values (the first four are the album's). */
function columnValue(
  column: Column,
  item: SourceItem,
  row: Row,
  artist: Json | undefined,
  i: number,
): string {
  if (isContractColumn(column)) {
    const index = CONTRACT_INDEX[column];
    if (index >= 4) artistOf(column, artist);
    return row[index] as string;
  }
  return extraValue(column, item, artist, i, row[0] as string);
}

function artistOf(column: Column, artist: Json | undefined): Json {
  if (artist === undefined) throw new Error(`column ${column} is not an album column`);
  return artist;
}

/**
 * A column beyond the contract's seven, of an album the contract's check passed: throws
 * ERR_BAD_RECORD when the value it needs is missing.
 */
function extraValue(
  column: ExtraColumn,
  item: SourceItem,
  artist: Json | undefined,
  i: number,
  id: string,
): string {
  const album = item.album as Json;
  switch (column) {
    case 'album_type':
    case 'release_date_precision':
      return text(album, column, id);
    case 'total_tracks': {
      const n = album.total_tracks;
      if (!Number.isInteger(n)) throw badRecord(id, 'total_tracks', n);
      return String(n);
    }
    case 'album_uri':
      return text(album, 'uri', id);
    case 'artist_uri':
      return artistText(artistOf(column, artist), 'uri', id, i);
    case 'artist_position':
      artistOf(column, artist);
      return String(i + 1);
    case 'market':
      return item.market ?? '';
    case 'fetched_at':
      return item.fetchedAt;
    case 'first_seen_at':
      return item.firstSeenAt ?? '';
    default:
      // Columns are validated when options are normalized; this is a bug if reached.
      throw new Error(`unknown column ${column satisfies never}`);
  }
}

type ExtraColumn = Exclude<Column, (typeof CONTRACT_COLUMNS)[number]>;

const isContractColumn = (column: Column): column is (typeof CONTRACT_COLUMNS)[number] =>
  column in CONTRACT_INDEX;

/**
 * The albums stage's check for an output model: throws the ERR_BAD_RECORD that making the
 * album's rows would throw — {@link projectAlbum} with `albumColumns`, then
 * {@link projectRows} with `artistColumns` — and makes none of them: the rows are made once, by
 * the rows stage, and the stages meet at the album. test/rows.test.ts holds the two to the same
 * errors.
 */
export function albumCheck(
  albumColumns: readonly Column[],
  artistColumns: readonly Column[],
): (item: SourceItem) => void {
  // Only these can fail past the contract's check; in the order they would be met.
  const extra = (columns: readonly Column[]) =>
    columns.filter((c): c is ExtraColumn => !isContractColumn(c));
  const albumExtras = extra(albumColumns);
  const artistExtras = extra(artistColumns);
  return (item) => {
    checkContract(item.album);
    const id = item.album.id as string;
    for (const column of albumExtras) extraValue(column, item, undefined, -1, id);
    if (artistExtras.length === 0) return;
    const artists = item.album.artists as Json[];
    for (let i = 0; i < artists.length; i++) {
      for (const column of artistExtras) extraValue(column, item, artists[i], i, id);
    }
  };
}

const CONTRACT_INDEX = Object.fromEntries(CONTRACT_COLUMNS.map((c, i) => [c, i])) as Record<
  (typeof CONTRACT_COLUMNS)[number],
  number
>;

const isContract = (columns: readonly Column[]) =>
  columns.length >= CONTRACT_COLUMNS.length && CONTRACT_COLUMNS.every((c, i) => columns[i] === c);

/**
 * How a run makes one album's rows: the contract's seven (plus market) directly, the common
 * case with no per-column switch per row; any other choice projected. Throws ERR_BAD_RECORD.
 */
function rowMaker(columns: readonly Column[]): (item: SourceItem) => Row[] {
  const plusMarket = columns.length === CONTRACT_COLUMNS.length + 1 && columns.at(-1) === 'market';
  if (isContract(columns) && (columns.length === CONTRACT_COLUMNS.length || plusMarket)) {
    return plusMarket
      ? (item) => {
          const rows = albumToRows(item.album);
          for (const row of rows) row.push(item.market ?? '');
          return rows;
        }
      : (item) => albumToRows(item.album);
  }
  return (item) => projectRows(item, columns);
}

/** The flat model's check of an album (for the albums stage): its rows can be made. */
export function checkRows(columns: readonly Column[]): (item: SourceItem) => void {
  return albumCheck([], columns);
}

export interface RowsOptions {
  stats: RunStats;
  /** The run's columns, in order. */
  columns: readonly Column[];
}

/**
 * albums (objectMode, validated by the albums stage with {@link checkRows}) → rows
 * (objectMode), one push per row.
 */
export class RowsTransform extends Transform {
  /** Rows this instance produced (the run's stats count all outputs together). */
  rows = 0;
  readonly #stats: RunStats;
  readonly #rows: (item: SourceItem) => Row[];

  constructor(options: RowsOptions) {
    super({ objectMode: true, highWaterMark: 64 });
    this.#stats = options.stats;
    this.#rows = rowMaker(options.columns);
  }

  override _transform(
    item: SourceItem,
    _encoding: BufferEncoding,
    callback: TransformCallback,
  ): void {
    let rows: Row[];
    try {
      rows = this.#rows(item);
    } catch (error) {
      // Checked by the albums stage: an album that fails here is a bug, and fails the run.
      callback(error as Error);
      return;
    }
    this.#stats.rows += rows.length;
    this.rows += rows.length;
    for (const row of rows) this.push(row);
    callback();
  }
}
