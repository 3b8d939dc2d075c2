import {
  type ErrorCode,
  fileError,
  isBrokenPipe,
  SpotifyBatchError,
  toSpotifyBatchError,
} from '../core/errors.ts';
import type { EventListener } from '../core/stats.ts';

/** A market that failed under `onMarketError: 'skip'`. */
export interface MarketFailure {
  market: string;
  code: ErrorCode;
  message: string;
}

/** Errors that belong to one market (its list, its pages, its records), not to the whole run. */
const MARKET_ERRORS = new Set<ErrorCode>([
  'ERR_SPOTIFY_HTTP',
  'ERR_SPOTIFY_FORBIDDEN',
  'ERR_BAD_PAGE',
  'ERR_BAD_RECORD',
  'ERR_NETWORK',
]);

/** What one market's failure means for the run. */
export type Verdict =
  /** stdout's reader left (`| head`): the run ends cleanly, nothing else published. */
  | { kind: 'closed' }
  /** `onMarketError: 'skip'` and an error of the market's own: the others go on. */
  | { kind: 'skipped'; failure: MarketFailure }
  /** The run fails with this error. */
  | { kind: 'fatal'; error: SpotifyBatchError };

/**
 * Judges a market's failure: pure, from the error and what the run was told. `aborted` is the
 * run's abort reason when its signal fired first (it explains the errors it caused downstream).
 */
export function triage(
  caught: unknown,
  {
    market,
    toStdout,
    onMarketError,
    aborted,
  }: {
    market: string | undefined;
    toStdout: boolean;
    onMarketError: 'fail' | 'skip';
    aborted: SpotifyBatchError | undefined;
  },
): Verdict {
  const error = aborted ?? caught;
  if (toStdout && isBrokenPipe(error)) return { kind: 'closed' };
  // stdout on a full disk (`> /dev/full`) is a destination error like any file's.
  const code = (error as { code?: unknown } | null)?.code;
  const failure =
    toStdout && !(error instanceof SpotifyBatchError) && typeof code === 'string'
      ? fileError(error, 'stdout', 'write to')
      : toSpotifyBatchError(error);
  if (onMarketError === 'skip' && market !== undefined && MARKET_ERRORS.has(failure.code)) {
    return { kind: 'skipped', failure: { market, code: failure.code, message: failure.message } };
  }
  // Name the market when the failure is about its pages (not a shared token or sink).
  const url = failure.context.url ?? '';
  if (market !== undefined && new RegExp(`[?&](country|market)=${market}\\b`).test(url)) {
    failure.message = `market ${market}: ${failure.message}`;
    failure.context.market ??= market;
  }
  return { kind: 'fatal', error: failure };
}

export interface MarketsDone<T> {
  /** What each market that succeeded staged, in the order the markets were given. */
  staged: T[];
  failed: MarketFailure[];
  outputClosed: boolean;
}

/**
 * Pulls each market with `pull` (which discards what it staged when it fails), up to `workers`
 * at once. A failure is judged by {@link triage}: a skipped market is told to `onEvent`, a fatal
 * one stops the others (through `abort`) and is thrown once all have stopped.
 */
export async function pullMarkets<T>(
  markets: (string | undefined)[],
  workers: number,
  pull: (market: string | undefined, index: number) => Promise<T[]>,
  judge: (caught: unknown, market: string | undefined) => Verdict,
  {
    abort,
    onEvent,
  }: { abort: (error: SpotifyBatchError) => void; onEvent: EventListener | undefined },
): Promise<MarketsDone<T>> {
  const staged: T[][] = [];
  const failed: (MarketFailure | undefined)[] = [];
  let fatal: SpotifyBatchError | undefined;
  let outputClosed = false;
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (fatal === undefined && !outputClosed && next < markets.length) {
        const index = next++;
        const market = markets[index];
        try {
          staged[index] = await pull(market, index);
        } catch (caught) {
          if (fatal !== undefined) continue; // stopped because another market failed
          const verdict = judge(caught, market);
          if (verdict.kind === 'closed') outputClosed = true;
          else if (verdict.kind === 'skipped') {
            failed[index] = verdict.failure;
            onEvent?.({
              event: 'market-failed',
              market: verdict.failure.market,
              reason: verdict.failure.message,
            });
          } else {
            fatal = verdict.error;
            abort(fatal);
          }
        }
      }
    }),
  );
  if (fatal !== undefined) throw fatal;
  // Reports and the manifest list markets in the order they were given.
  return {
    staged: staged.flatMap((s) => s ?? []),
    failed: failed.filter((f) => f !== undefined),
    outputClosed,
  };
}
