/**
 * What a source emits: one page of albums as the API (or a raw line) gave them, whole — the
 * unit of retry — with where and when it came from. Sources do not look inside the albums; the
 * albums stage (src/transforms/albums.ts) validates them, for the live pull and replay alike.
 */
export interface SourcePage {
  items: unknown[];
  /** The market it was listed in; undefined for Spotify's default list or plain JSON input. */
  market: string | undefined;
  /** Its offset in its market's list. */
  offset: number;
  /** The list's total as this page stated it, if it did. */
  total: number | undefined;
  /** When it arrived (ISO 8601): a replay gives the raw line's time, as the live run had it. */
  fetchedAt: string;
  /** Where it came from: the request URL (a raw line's), or the replayed input's location. */
  url: string;
}

/**
 * What the album stream carries from the albums stage to the rows: the album (validated), and
 * the market it was listed in.
 */
export interface SourceItem {
  album: unknown;
  market: string | undefined;
  /** When its page arrived (ISO 8601), for the `fetched_at` column. */
  fetchedAt: string;
  /** With `--state`: the UTC date the album was first emitted (today for a new one). */
  firstSeenAt?: string;
}
