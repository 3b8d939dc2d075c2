/**
 * Counters shared by the stages of one run. Stages only add to them; the pipeline turns them
 * into the run report. A plain object, so counting costs nothing on the hot path.
 */
export interface RunStats {
  pages: number;
  albums: number;
  rows: number;
  bytes: number;
  /** `total` reported by the first page, once known. */
  totalAlbums: number | undefined;
  /** Requests repeated after a transient failure (network, 5xx, 429, truncated body). */
  retries: number;
  /** Spotify API requests sent, retries and refused ones included (token requests not). */
  requests: number;
  /** 429 answers received. */
  rateLimited: number;
  /**
   * Requests per second the run held, from its first request to its last (pauses included),
   * once anything paced it (a 429 or `maxRate`); null when nothing did.
   */
  rate: number | null;
  /** Milliseconds all requests were paused by Retry-After. */
  rateLimitWaitMs: number;
  /** Access tokens fetched (the first one included). */
  tokens: number;
  /** Records diverted to the rejects file. */
  rejected: number;
  /** Albums dropped by the dedupe because an earlier one (another market's) had the same id. */
  duplicates: number;
  /** Search only: `total` was beyond Spotify's offset cap, so the pull stopped at the cap. */
  searchCapped: boolean;
  /** Search only: the page size Spotify accepted, when it refused the one asked for. */
  searchLimit: number | undefined;
}

export function createStats(): RunStats {
  return {
    pages: 0,
    albums: 0,
    rows: 0,
    bytes: 0,
    totalAlbums: undefined,
    retries: 0,
    requests: 0,
    rateLimited: 0,
    rate: null,
    rateLimitWaitMs: 0,
    tokens: 0,
    rejected: 0,
    duplicates: 0,
    searchCapped: false,
    searchLimit: undefined,
  };
}

/** Something worth telling while a run goes on (shown on stderr, or as JSON lines). */
export type RunEvent =
  | {
      event: 'retry';
      url: string;
      offset: number | null;
      attempt: number;
      reason: string;
      delayMs: number;
    }
  | {
      event: 'rate-limited';
      url: string;
      retryAfter: number | null;
      /** Requests in flight at most (`concurrency`; requests are paced by rate, not by this). */
      concurrency: number;
      /** Requests per second the client paces to from now on (null: no limit learned). */
      rate: number | null;
    }
  | { event: 'market-failed'; market: string; reason: string }
  | {
      /** The state's lease was left by a run that is gone (killed) or expired: taken over. */
      event: 'lease-taken-over';
      location: string;
      reason: 'holder-gone' | 'expired';
      runId: string | null;
      host: string | null;
      pid: number | null;
      startedAt: string | null;
    }
  | {
      /**
       * An output of the folder's previous run (listed in its manifest) that this run did not
       * rewrite: removed (this run no longer writes it, and its raw pages are kept), or kept and
       * listed again with the run that wrote it (its market failed, or no raw copy is kept).
       */
      event: 'previous-output';
      action: 'removed' | 'kept';
      location: string;
      runId: string;
      raw: string | null;
      reason: 'not-written' | 'not-replaced' | 'no-raw-copy';
    }
  | {
      /** A failed output's multipart upload could not be aborted: its parts stay, billed. */
      event: 'abort-failed';
      location: string;
      bucket: string;
      key: string;
      uploadId: string;
      reason: string;
    };

export type EventListener = (event: RunEvent) => void;
