/**
 * What the album stream carries from the source to the transforms: the album as Spotify sent
 * it (validated later, by the transforms), and the market it was listed in.
 */
export interface SourceItem {
  album: unknown;
  market: string | undefined;
  /** When its page arrived (ISO 8601), for the `fetched_at` column. */
  fetchedAt: string;
  /** With `--state`: the UTC date the album was first emitted (today for a new one). */
  firstSeenAt?: string;
}
