import { usageError } from './errors.ts';
import { didYouMean } from './suggest.ts';

/** The CSV contract's columns, in order: what the tutorial writes. */
export const CONTRACT_COLUMNS = [
  'album_id',
  'album_name',
  'release_date',
  'album_spotify_url',
  'artist_id',
  'artist_name',
  'artist_spotify_url',
] as const;

/** Columns that `--columns` may add (documented in the README). */
export const EXTRA_COLUMNS = [
  'album_type',
  'total_tracks',
  'release_date_precision',
  'album_uri',
  'artist_uri',
  'artist_position',
  'market',
  'fetched_at',
  'first_seen_at',
] as const;

export type Column = (typeof CONTRACT_COLUMNS)[number] | (typeof EXTRA_COLUMNS)[number];

const ALL = new Set<string>([...CONTRACT_COLUMNS, ...EXTRA_COLUMNS]);

/**
 * The columns of a run: the contract's seven (plus `market` when several markets share one
 * output), or the user's choice, validated: known names, no repeats, `market` only with markets.
 */
export function resolveColumns(
  chosen: readonly string[] | undefined,
  withMarket: boolean,
  hasMarkets: boolean,
  hasState = false,
): Column[] {
  if (chosen === undefined || chosen.length === 0) {
    return withMarket ? [...CONTRACT_COLUMNS, 'market'] : [...CONTRACT_COLUMNS];
  }
  const columns = chosen
    .flatMap((c) => c.split(','))
    .map((c) => c.trim())
    .filter(Boolean);
  if (columns.length === 0) throw usageError('option --columns is empty: name at least one column');
  const seen = new Set<string>();
  for (const column of columns) {
    if (!ALL.has(column)) {
      throw usageError(
        `option --columns: unknown column ${column}${didYouMean(column, [...ALL])}; one of ${[...ALL].join(', ')}`,
      );
    }
    if (seen.has(column)) throw usageError(`option --columns: ${column} is named twice`);
    seen.add(column);
  }
  if (seen.has('market') && !hasMarkets)
    throw usageError('option --columns: market needs --market');
  if (seen.has('first_seen_at') && !hasState)
    throw usageError('option --columns: first_seen_at needs --state');
  return columns as Column[];
}

/** Column types for typed formats (Parquet); CSV and NDJSON carry every value as text. */
export const COLUMN_TYPES: Record<Column, 'STRING' | 'INT32' | 'TIMESTAMP'> = {
  album_id: 'STRING',
  album_name: 'STRING',
  release_date: 'STRING',
  album_spotify_url: 'STRING',
  artist_id: 'STRING',
  artist_name: 'STRING',
  artist_spotify_url: 'STRING',
  album_type: 'STRING',
  total_tracks: 'INT32',
  release_date_precision: 'STRING',
  album_uri: 'STRING',
  artist_uri: 'STRING',
  artist_position: 'INT32',
  market: 'STRING',
  fetched_at: 'TIMESTAMP',
  first_seen_at: 'STRING',
};

/**
 * The star schema: two dimensions keyed by Spotify id and the bridge between them (grain: one
 * row per album × artist). Column order is part of the documented model (README).
 */
export const STAR_TABLES = {
  dim_album: [
    'album_id',
    'album_name',
    'album_type',
    'release_date',
    'release_date_precision',
    'total_tracks',
    'album_spotify_url',
    'album_uri',
  ],
  dim_artist: ['artist_id', 'artist_name', 'artist_spotify_url', 'artist_uri'],
  bridge_album_artist: ['album_id', 'artist_id', 'artist_position'],
} as const;

export type StarTable = keyof typeof STAR_TABLES;
