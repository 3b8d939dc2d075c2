import { usageError } from '../errors.ts';
import { parseMarkets } from '../markets.ts';
import { DEFAULTS, type Options } from '../options.ts';
import { choice } from './checks.ts';

/** Which markets the run pulls, and how they share its outputs. */
export interface MarketsConfig {
  /** ISO codes in the order given (`all` expanded); empty: Spotify's default list. */
  list: string[];
  /** `out` has `{market}`: one object per market. */
  perMarket: boolean;
  /** Keep only the first row per (album, artist); always with --model star (normalize.ts). */
  dedupe: boolean;
  onMarketError: 'fail' | 'skip';
}

/**
 * A replay with no --market takes `inputMarkets`, the markets its raw input lists, as if they
 * had been typed: the live run's outputs, market column and dedupe follow from them.
 */
export function normalizeMarkets(
  options: Pick<Options, 'markets' | 'dedupe' | 'onMarketError' | 'out' | 'from'>,
  inputMarkets: string[],
): MarketsConfig {
  const from = options.from ?? [];
  const typed = options.markets ?? [];
  const list = parseMarkets(typed.length === 0 && from.length > 0 ? inputMarkets : typed);
  const perMarket = (options.out ?? DEFAULTS.out).includes('{market}');
  if (perMarket && list.length === 0) {
    throw usageError(
      from.length > 0
        ? 'option --out has {market}: the --from input does not list its markets (plain JSON, or a raw landing written before raw lines listed them); name them with --market'
        : 'option --out has {market}: name markets with --market',
    );
  }
  const onMarketError =
    choice('--on-market-error', options.onMarketError, ['fail', 'skip'] as const) ??
    DEFAULTS.onMarketError;
  if (onMarketError === 'skip' && !perMarket) {
    throw usageError(
      'option --on-market-error skip needs one object per market: put {market} in --out',
    );
  }
  return {
    list,
    perMarket,
    dedupe: options.dedupe ?? (list.length > 1 && !perMarket),
    onMarketError,
  };
}
